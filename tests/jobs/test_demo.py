"""`make demo` (its memorization recipe) end to end with quick settings, on real components: a local Ray head with its job
server, an embedded Redis, scripted LIBERO demos -> hdf5 -> tiny tokenizer -> token shards, then
`jobs/train_joint.py` (Ray Train + DeepSpeed learner, PolicyServer following the published weights,
SimWorkers on LIBERO, evaluation rounds), each step a `ray job submit`, then the report. Afterwards the main job,
re-run as plain python on the same run folder, resumes instead of redoing, and each data job re-run on
the cache does no work (resumable)."""

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
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_quick_demo_runs_the_whole_pipeline_and_its_jobs_resume(tmp_path):
    cache = tmp_path / "cache"
    log = run("jobs/demo.py", "--quick", "--out", str(tmp_path / "runs"), "--cache", str(cache), "--videos",
              "--wandb", "offline")
    (run_dir,) = (tmp_path / "runs").iterdir()
    report = json.loads((run_dir / "demo_report.json").read_text())
    assert report["tokenizer"]["heldout_frames"] > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 4 and "libero_goal" in summary["rounds"]["4"]
    assert (run_dir / "loss.png").stat().st_size > 0 and (run_dir / "success_rounds.png").stat().st_size > 0
    assert "| libero_goal/7 |" in (run_dir / "rounds.md").read_text()
    submitted = [line for line in log.splitlines() if "Job 'raysubmit_" in line and "succeeded" in line]
    assert len(submitted) == 4 and "success on trained init states" in log  # make_demos, tokenizer, prepare_data, train_joint
    assert report["success"]["trained"][1] == 1 and report["recipe"] == "memorize"
    # job logs are no terminal: no line per progress-bar refresh, no Ray submission text or macro warnings
    assert "robosuite WARNING" not in log and "Next steps" not in log and log.count("VQGAN:") <= 3, log
    assert len(log.splitlines()) < 300, f"{len(log.splitlines())} lines:\n{log}"
    assert "died" not in log  # no actor lost between rounds (clearing the queue once killed blocked SimWorkers)
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 4
    episodes = [json.loads(x) for x in (run_dir / "eval" / "v000004" / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 1 and all(e["weight_version"] == 4 and e["weight_versions"] == [4] for e in episodes)
    assert Path(episodes[0]["video"]).stat().st_size > 0 and Path(episodes[0]["video"]).is_relative_to(run_dir / "videos")
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")  # losses, round table and the episode's video
    assert list(offline_run.glob("files/media/videos/**/*.mp4"))

    again = run("jobs/train_joint.py", "--config", str(run_dir / "demo_config.yaml"), "--num-cpus", "3")
    assert "resumed from" in again and json.loads((run_dir / "summary.json").read_text())["steps"] == 4
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 4  # nothing trained twice

    demos, tok, shards = cache / "demos", cache / "tokenizer", cache / "shards"
    expert = json.loads((demos / "expert_success.json").read_text())
    assert expert[0]["expert_successes"] == 2 and expert[0]["kept_demos"] == 2
    (entry,) = read_index(shards)
    actions, worlds = load_samples(shards, "train")
    val_actions, val_worlds = load_samples(shards, "val_ind")
    assert len(actions) + len(val_actions) == entry.num_action > 0 and len(worlds) + len(val_worlds) == entry.num_world
    space = TokenSpace.from_tokenizer_dir(tok, 128)
    assert (actions or val_actions)[0].input_ids[0] == space.vocab.bos_id

    assert "0 tasks to generate, 1 already done" in run("jobs/make_demos.py", "--suites", "libero_goal", "--tasks",
                                                         "7", "--out", str(demos))
    rerun = json.loads((demos / "expert_success.json").read_text())
    assert rerun[0]["expert_successes"] == 2  # the skipped task keeps its measured success, not "cached"
    assert "already" in run("jobs/train_tokenizer.py", "--demos", str(demos), "--out", str(tok)).lower()
    assert "0 demo files to tokenise, 1 shards already written" in run(
        "jobs/prepare_data.py", "--demos", str(demos), "--tokenizer", str(tok), "--out", str(shards))
