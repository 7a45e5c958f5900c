"""The main job end to end on real components (Ray Train + DeepSpeed learner, embedded Redis,
PolicyServer following published weights, SimWorkers on LIBERO): training and evaluation rounds
run together, outputs are written, and a rerun of the same run folder resumes instead of redoing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from worldvla_dist.data.synthetic_shards import write_random_shards

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_train_joint_trains_evaluates_rounds_and_resumes(tokens, tmp_path):
    tokenizer, shards = write_random_shards(tokens, tmp_path / "data")
    config = {
        "train": {"shards": str(shards), "tokenizer_dir": str(tokenizer), "run_dir": str(tmp_path / "run"),
                  "steps": 4, "save_every": 2, "publish_every": 2,
                  "learner": {"micro_batch_size": 2, "optim": {"lr": 1e-3, "warmup_steps": 1}}},
        "eval": {"suites": ["libero_object"], "tasks": [0], "trials": 2, "max_steps": 10},
        "resources": {"learner_cpus": 1, "policy_cpus": 0.5, "sim_workers": 1, "sim_cpus": 0.5},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "jobs/train_joint.py", "--config", str(tmp_path / "config.yaml"), "--num-cpus", "3"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-4000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and "4" in summary["rounds"]
    assert (run / "loss.png").stat().st_size > 0 and (run / "success_rounds.png").stat().st_size > 0
    assert "| libero_object/0 |" in (run / "rounds.md").read_text() and "v4" in first.stdout
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4
    episodes = [json.loads(l) for l in (run / "eval" / "v000004" / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2 and all(e["weight_version"] == 4 and 4 in e["weight_versions"] for e in episodes)

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "resumed from" in again.stderr + again.stdout and json.loads((run / "summary.json").read_text())["steps"] == 4
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4  # nothing trained twice
