"""The data pipeline's jobs end to end on real LIBERO and a real local Ray: scripted demos -> tiny
tokenizer -> token shards; each job resumes (a second run does no work)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worldvla_dist.data.token_shards import load_samples, read_index
from worldvla_dist.sequences.token_space import TokenSpace

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout + out.stderr


def test_demos_tokenizer_shards(tmp_path):
    demos, tok, shards = tmp_path / "demos", tmp_path / "tok", tmp_path / "shards"
    log = run("jobs/make_demos.py", "--suites", "libero_object", "--tasks", "5", "--trials", "2",
              "--out", str(demos), "--num-cpus", "1")
    report = json.loads((demos / "expert_success.json").read_text())
    assert report[0]["expert_successes"] == 2 and report[0]["kept_demos"] == 2
    assert "| libero_object | 5 | 2/2 (100%) | 2 |" in log
    assert "0 tasks to generate, 1 already done" in run("jobs/make_demos.py", "--suites", "libero_object", "--tasks",
                                                         "5", "--out", str(demos))

    run("jobs/train_tokenizer.py", "--demos", str(demos), "--out", str(tok), "--steps", "3")
    assert json.loads((tok / "tokenizer_report.json").read_text())["heldout_frames"] > 0
    space = TokenSpace.from_tokenizer_dir(tok, 128)
    assert space.vocab.name == "tiny"

    run("jobs/prepare_data.py", "--demos", str(demos), "--tokenizer", str(tok), "--out", str(shards), "--num-cpus", "1")
    (entry,) = read_index(shards)
    assert entry.num_action > 0 and entry.num_world > 0
    actions, worlds = load_samples(shards, "train")
    val_actions, val_worlds = load_samples(shards, "val")
    assert len(actions) + len(val_actions) == entry.num_action and len(worlds) + len(val_worlds) == entry.num_world
    sample = (actions or val_actions)[0]
    assert sample.input_ids[0] == space.vocab.bos_id and sample.kind == "action"
    assert "0 demo files to tokenise, 1 shards already written" in run(
        "jobs/prepare_data.py", "--demos", str(demos), "--tokenizer", str(tok), "--out", str(shards))
