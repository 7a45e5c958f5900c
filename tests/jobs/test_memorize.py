"""Closed-loop memorization (issue 18 §2): what proves train / serve / eval consistency.

The micro-cpu model learns two scripted demos of one short task (configs/memorize_cpu.yaml), through
the real chain: the scripted expert's quantized actions recorded as the reference regenerates demos
-> a VQGAN trained on their frames -> token shards (jobs/prepare_data.py) -> jobs/train_joint.py: a
DeepSpeed learner under Ray Train exports the weights, a PolicyServer actor serves them and a SimWorker
actor runs LIBERO on exactly the trained init states. The simulator is deterministic and decoding
greedy, so a model that learned its data replays it; a failure here means the chain is inconsistent
somewhere (frames, history, action bins, chunking, prompt, export), not that the model is small.
"""

import json
from pathlib import Path

import pytest
import yaml

from jobs import prepare_data, train_joint, train_tokenizer
from worldvla_dist.data.demo_generation import generate_task_demos

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_model_replays_the_demos_it_was_trained_on(tmp_path):
    recipe = yaml.safe_load((ROOT / "configs" / "memorize_cpu.yaml").read_text())
    (suite,), (task,), trials = recipe["eval"]["suites"], recipe["eval"]["tasks"], recipe["eval"]["trials"]
    demos, tokenizer, shards = tmp_path / "demos", tmp_path / "tokenizer", tmp_path / "shards"

    report = generate_task_demos(suite, task, demos, trials=trials, image_size_px=128)
    assert report.kept_demos == trials, report  # every demo's tokenized actions replay to success
    train_tokenizer.main(["--demos", str(demos), "--out", str(tokenizer), "--steps", "200"])
    prepare_data.main(["--demos", str(demos), "--tokenizer", str(tokenizer), "--out", str(shards), "--num-cpus", "2"])

    recipe["train"].update(shards=str(shards), tokenizer_dir=str(tokenizer), run_dir=str(tmp_path / "run"))
    config = tmp_path / "memorize.yaml"
    config.write_text(yaml.safe_dump(recipe))
    summary = train_joint.main(["--config", str(config), "--num-cpus", "2"])

    steps = recipe["train"]["steps"]
    assert summary["steps"] == steps and summary["final_L_action"] < 0.2, summary
    episodes = [json.loads(line) for line in
                (tmp_path / "run" / "eval" / f"v{steps:06d}" / "episodes.jsonl").read_text().splitlines()]
    assert sorted(e["trial"] for e in episodes) == list(range(trials))  # exactly the trained init states
    assert all(e["weight_version"] == steps and e["weight_versions"] == [steps] and not e.get("error")
               for e in episodes), episodes
    successes = sum(e["success"] for e in episodes)
    assert successes >= 0.8 * trials, f"{successes}/{trials} of the trained init states replayed: {episodes}"
