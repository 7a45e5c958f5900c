"""The learner for real: DeepSpeed in two data-parallel Ray Train workers (gloo) on token shards
written in the real format; weights published through the registry and followed from Redis; and a
learner SIGKILLed mid-run resumes with step count and data position continuous."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import ray
import torch

from actors.learner import launch_learner
from actors.policy_server import PolicyServer
from actors.ray_setup import init_ray
from actors.weight_registry import WeightFollower, registry_name
from worldvla_dist.config import from_dict, to_dict
from worldvla_dist.data.synthetic_shards import write_random_shards
from worldvla_dist.model.checkpoint import load_checkpoint
from worldvla_dist.runtime.metrics_stream import MetricsStream
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.training.learner_config import LearnerConfig, OptimConfig
from worldvla_dist.training.train_run import TrainRunConfig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def data(tmp_path_factory, tokens):
    """A tokenizer folder and one token shard of random episodes, in the real formats."""
    root = tmp_path_factory.mktemp("learner_data")
    write_random_shards(tokens, root)
    return root


def run_config(data, run_dir, **kw) -> TrainRunConfig:
    return TrainRunConfig(**{"shards": str(data / "shards"), "run_dir": str(run_dir), "tokenizer_dir": str(data / "tokenizer"),
                             "steps": 4, "save_every": 2, "publish_every": 2,
                             "learner": LearnerConfig(micro_batch_size=2, optim=OptimConfig(lr=1e-3, warmup_steps=1)), **kw})


def test_config_round_trips_through_plain_dicts(data, tmp_path):
    config = run_config(data, tmp_path)
    assert from_dict(TrainRunConfig, json.loads(json.dumps(to_dict(config)))) == config


@pytest.fixture(scope="module")
def cluster():
    init_ray(num_cpus=3)
    with EmbeddedRedis() as server:
        yield server
    ray.shutdown()


def test_state_api_answers_inside_actors_of_a_local_ray(cluster):
    """Ray Train's PlacementGroupCleaner asks the state API, from an actor, whether the controller
    lives; a local Ray must point it at its own dashboard (not at /tmp/ray's last `ray start`)."""

    @ray.remote(num_cpus=0)
    class Probe:
        def state_of(self, actor_id: str) -> str:
            from ray.util.state import get_actor
            return get_actor(actor_id, timeout=5).state

    probe = Probe.remote()
    assert ray.get(probe.state_of.remote(probe._actor_id.hex()), timeout=60) == "ALIVE"
    ray.kill(probe)


def test_two_data_parallel_workers_train_and_publish_weights(data, tmp_path, cluster):
    launch_learner(run_config(data, tmp_path), num_workers=2, redis_url=cluster.url, run_id="dp")
    logs = MetricsStream(connect(cluster.url), "train:dp:metrics").read_new()
    assert [r["step"] for r in logs] == [1, 2, 3, 4] and {r["world_size"] for r in logs} == {2}
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["v000002", "v000004"]
    assert int(connect(cluster.url).get("weights:dp:version")) == 4
    got = {}
    follower = WeightFollower(cluster.url, "dp", apply=lambda state, v: got.update(state=state, version=v))
    assert follower.check() and got["version"] == 4 and not follower.check()
    model, _ = load_checkpoint(tmp_path / "exports" / "v000004")
    for name, value in model.chameleon.state_dict().items():
        assert torch.equal(value, got["state"][name]), name

    # an evaluation round serves an older version than the newest: a PolicyServer follows the served one
    server = PolicyServer.remote(cluster.url, str(tmp_path / "exports" / "v000004"), {"queue": "served:test"},
                                 weight_version=4, follow_run_id="dp")
    serving = server.serve.remote()
    registry = ray.get_actor(registry_name("dp"))
    assert ray.get(registry.serve.remote(2))
    deadline = time.monotonic() + 60
    while ray.get(server.health.remote())["weight_version"] != 2:
        assert time.monotonic() < deadline, "the PolicyServer never took the served version 2"
        time.sleep(0.2)
    ray.get(server.stop.remote())
    ray.get(serving)
    served = {}
    follower = WeightFollower(cluster.url, "dp", apply=lambda state, v: served.update(state=state, version=v),
                              current=4, served=True)
    assert follower.check() and served["version"] == 2 and not follower.check()
    model, _ = load_checkpoint(tmp_path / "exports" / "v000002")
    for name, value in model.chameleon.state_dict().items():
        assert torch.equal(value, served["state"][name]), name
    assert not ray.get(registry.serve.remote(1))  # never published, none given: refused
    ray.kill(server)
    ray.kill(registry)


def test_ray_train_restarts_a_killed_worker_and_training_resumes(data, tmp_path, cluster):
    config = run_config(data, tmp_path, steps=8, save_every=3, publish_every=8)
    metrics = MetricsStream(connect(cluster.url), "train:kill:metrics")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (launch_learner(config, redis_url=cluster.url, run_id="kill"), done.set()))
    thread.start()
    seen, deadline = [], time.monotonic() + 600
    while not seen or seen[-1]["step"] < 4:  # past the step-3 checkpoint
        assert time.monotonic() < deadline and thread.is_alive()
        seen += metrics.read_new()
        time.sleep(0.05)
    os.kill(seen[-1]["pid"], signal.SIGKILL)
    thread.join(timeout=600)
    assert done.is_set()
    seen += metrics.read_new()
    steps = [r["step"] for r in seen]
    restart = next(i for i in range(1, len(steps)) if steps[i] <= steps[i - 1])
    checkpoint = steps[restart] - 1  # the newest checkpoint when the worker died: 3 (or 6 if it got that far)
    assert checkpoint in (3, 6) and checkpoint in steps[:restart] and steps[restart - 1] < checkpoint + 3
    assert steps[restart:] == list(range(checkpoint + 1, 9)) and len({r["pid"] for r in seen}) == 2
    ray.kill(ray.get_actor(registry_name("kill")))


TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys
    from worldvla_dist.config import from_dict
    from worldvla_dist.training.train_run import TrainRunConfig, run_training
    config = from_dict(TrainRunConfig, json.loads(sys.argv[1]))
    with open(sys.argv[2], "a") as log:
        run_training(config, report=lambda logs: (log.write(json.dumps(logs) + "\\n"), log.flush()))
""")


def train_in_subprocess(config, log_path):
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, json.dumps(to_dict(config)), str(log_path)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_killed_learner_resumes_with_continuous_steps_and_data(data, tmp_path):
    straight_log, killed_log, resumed_log = (tmp_path / f"{n}.jsonl" for n in ("straight", "killed", "resumed"))
    straight = train_in_subprocess(run_config(data, tmp_path / "straight", steps=6, publish_every=6), straight_log)
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-3000:]

    config = run_config(data, tmp_path / "killed", steps=6, publish_every=6)
    latest = tmp_path / "killed" / "deepspeed" / "latest"
    proc = train_in_subprocess(config, killed_log)
    deadline = time.monotonic() + 600
    while not (latest.exists() and latest.read_text().strip() == "step00000004"):
        assert proc.poll() is None and time.monotonic() < deadline, "the learner ended before its step-4 checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed_from = int(latest.read_text().strip().removeprefix("step"))
    again = train_in_subprocess(config, resumed_log)
    assert again.wait(timeout=600) == 0, again.stderr.read()[-3000:]

    expected = {r["step"]: r["loss"] for r in map(json.loads, straight_log.read_text().splitlines())}
    rows = [json.loads(line) for line in resumed_log.read_text().splitlines()]
    assert resumed_from >= 4 and [r["step"] for r in rows] == list(range(resumed_from + 1, 7))
    for r in rows:  # the same batches and the same optimizer state as the uninterrupted run
        assert r["loss"] == pytest.approx(expected[r["step"]], rel=1e-6)
