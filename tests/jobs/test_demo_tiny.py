"""`make demo`'s job end to end (quick settings): it must keep running after every change."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worldvla_dist.model.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_quick_run_writes_its_outputs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / "demo_tiny.py"), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["action_token_accuracy"]["model"] <= 1.0
    assert summary["next_frame"]["num_frames"] > 0
    assert summary["decoders"]["agreement"] > 0.9
    assert (run_dir / "next_frames.png").stat().st_size > 1000
    model, tokens = load_checkpoint(run_dir / "checkpoint")
    assert model.preset.name == "tiny-cpu" and tokens.layout.num_tokens == 76
    assert "held-out action-token accuracy" in out.stderr
