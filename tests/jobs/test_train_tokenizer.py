"""jobs/train_tokenizer.py as a user runs it: a tokenizer folder the loader reads, with its held-out PSNR,
and a clear refusal where there is too little data to hold any out."""

import json
import subprocess
import sys
from pathlib import Path

from worldvla_dist.data.synthetic_demos import write_random_demo_files
from worldvla_dist.sequences.token_space import TokenSpace

ROOT = Path(__file__).resolve().parents[2]


def train_tokenizer(demos: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "jobs/train_tokenizer.py", "--demos", str(demos), "--out", str(out),
                           "--steps", "2", "--batch-size", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_two_trajectories_train_a_tokenizer_the_loader_reads(tmp_path):
    write_random_demo_files(tmp_path / "demos", files=1, demos=2, steps=4)
    done = train_tokenizer(tmp_path / "demos", tmp_path / "tok")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "tok" / "tokenizer_report.json").read_text())
    assert report["steps"] == 2 and report["heldout_frames"] == 2 and report["train_frames"] == 2
    assert TokenSpace.from_tokenizer_dir(tmp_path / "tok", 128).images.vqgan.cfg.norm_groups == 16


def test_a_single_trajectory_is_refused_with_the_reason(tmp_path):
    """It used to end in numpy's 'need at least one array to concatenate' (found through `ray job submit`
    of a one-trial make_demos run)."""
    write_random_demo_files(tmp_path / "demos", files=1, demos=1, steps=4)
    done = train_tokenizer(tmp_path / "demos", tmp_path / "tok")
    assert done.returncode != 0 and "1 recorded trajectory" in done.stderr and "at least 2" in done.stderr
    assert not (tmp_path / "tok").exists()
