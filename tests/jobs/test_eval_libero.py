"""Distributed evaluation on real components: a local Ray, an embedded redis-server, LIBERO in env
processes, the tiny model. The reliability cases of the evaluation issue, each a test: a SimWorker
SIGKILLed mid-episode, a hung env, the PolicyServer killed and restarted, 100 malformed messages,
Redis unreachable, Redis without the password; and the job end to end with resume."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import ray

from actors.eval_fleet import EvalFleet, FleetConfig
from actors.ray_setup import init_ray
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.evaluation.eval_run import EvalRun, plan_episodes
from worldvla_dist.runtime.codec import pack
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis, free_loopback_port
from worldvla_dist.runtime.work_queue import WorkQueue
from worldvla_dist.serving.policy_service import PolicyServiceConfig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def redis_server():
    with EmbeddedRedis() as s:
        yield s


@pytest.fixture(scope="module")
def local_ray():
    init_ray(num_cpus=4)
    yield
    ray.shutdown()


def start_eval(redis_server, checkpoint, specs, workers=2, worker_kw=None, service_kw=None, **fleet_kw):
    run_id = uuid.uuid4().hex[:8]
    worker = EpisodeWorkerConfig(run_id=run_id, **(worker_kw or {}))
    service = PolicyServiceConfig(queue=f"eval:{run_id}:policy", **(service_kw or {}))
    fleet = FleetConfig(checkpoint=str(checkpoint), num_workers=workers, policy_torch_threads=1, **fleet_kw)
    run = EvalRun(connect(redis_server.url), worker, specs)
    run.enqueue_missing()
    return run, EvalFleet(redis_server.url, fleet, worker, service).start()


def wait_until(condition, fleet, timeout_s=180.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        fleet.supervise()
        time.sleep(0.2)


def pending_of(run, consumer: str) -> list[str]:
    rows = run.redis.xpending_range(run.queue.config.name, run.queue.config.group, min="-", max="+", count=100,
                                    consumername=consumer)
    return [r["message_id"].decode() for r in rows]


def finish(run, fleet, timeout_s=300.0):
    try:
        progress = run.wait(on_poll=fleet.supervise, timeout_s=timeout_s)
    finally:
        run.stop_workers()
        fleet.stop()
    return progress


def assert_exactly_one_result_per_spec(run):
    assert run.results.keys() == {s.key for s in run.specs}
    assert len(run.results) == len(run.specs)


def test_sigkill_a_simworker_mid_episode_loses_and_doubles_nothing(local_ray, redis_server, checkpoint):
    specs = plan_episodes(["libero_object"], [1], trials=6, max_steps=25)
    run, fleet = start_eval(redis_server, checkpoint, specs, worker_kw={"reclaim_after_s": 4.0})
    wait_until(lambda: pending_of(run, "sim-0") and ray.get(fleet.workers[0].env_pid.remote()), fleet,
               what="sim-0 to be running an episode")
    (held,) = pending_of(run, "sim-0")
    os.kill(ray.get(fleet.workers[0].pid.remote()), signal.SIGKILL)
    progress = finish(run, fleet)
    assert_exactly_one_result_per_spec(run)
    assert progress.errors == 0 and fleet.restarts["sim"] == 1
    assert held not in {e for e in pending_of(run, "sim-0")}  # the held episode was reclaimed and acked


def test_a_hung_env_is_retried_then_recorded_as_an_error(local_ray, redis_server, checkpoint):
    specs = plan_episodes(["libero_object"], [2], trials=1, max_steps=150)
    run, fleet = start_eval(redis_server, checkpoint, specs, workers=1,
                            worker_kw={"step_timeout_s": 3.0, "max_episode_attempts": 2})
    stopped = []
    for _ in range(2):  # stop the env of the first attempt, then the fresh env of the retry
        wait_until(lambda: (pid := ray.get(fleet.workers[0].env_pid.remote())) and pid not in stopped, fleet,
                   what="a running env process")
        pid = ray.get(fleet.workers[0].env_pid.remote())
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
    finish(run, fleet)
    (result,) = run.collected()
    assert result.attempts == 2 and "EnvTimeout" in result.error and not result.success
    assert fleet.restarts["sim"] == 0  # the worker itself lived on
    for pid in stopped:  # the hung processes were killed, not left stopped
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_the_policy_server_killed_and_restarted_loses_no_episode(local_ray, redis_server, checkpoint):
    specs = plan_episodes(["libero_object"], [3], trials=4, max_steps=25)
    run, fleet = start_eval(redis_server, checkpoint, specs, service_kw={"reclaim_after_s": 3.0},
                            policy_timeout_s=10.0)
    wait_until(lambda: run.progress().done >= 1, fleet, what="a first result")
    os.kill(ray.get(fleet.servers[0].pid.remote()), signal.SIGKILL)
    progress = finish(run, fleet)
    assert_exactly_one_result_per_spec(run)
    assert progress.errors == 0 and fleet.restarts == {"policy": 1, "sim": 0}  # workers waited it out


def test_a_hundred_malformed_messages_are_dead_lettered_and_no_worker_dies(local_ray, redis_server, checkpoint):
    specs = plan_episodes(["libero_object"], [1], trials=2, max_steps=10)
    run, fleet = start_eval(redis_server, checkpoint, specs, workers=1)
    policy_queue = WorkQueue(run.redis, fleet.service_config.queue_config())
    for i in range(50):
        run.queue.put_raw([{b"data": b"\x93garbage"}, {b"nodata": b"1"},
                           {b"data": pack({"suite": "libero_object", "task": 1, "trial": 99})},
                           {b"data": pack({"suite": "no_such_suite", "task": 0, "trial": 0})},
                           {b"data": pack({"suite": "libero_object", "task": "x", "trial": 1})}][i % 5])
        policy_queue.put_raw([{b"data": b"\xc1"}, {b"data": pack({"request_id": "r"})},
                              {b"data": pack({"request_id": f"r{i}", "reply_to": f"junk:{i}", "instruction": "x",
                                              "frames": [], "num_actions": 5})},
                              {b"data": pack({"request_id": f"r{i}", "reply_to": f"junk:{i}", "instruction": "x",
                                              "frames": ["not an image"], "num_actions": 99})}][i % 4])
    # the run can finish its two episodes before the workers have read every piece of garbage
    dead_letters = lambda: run.queue.dead_letters() + policy_queue.dead_letters()  # noqa: E731
    wait_until(lambda: len(dead_letters()) >= 100, fleet, what="100 dead letters")
    finish(run, fleet)
    assert_exactly_one_result_per_spec(run)
    dead = dead_letters()
    assert len(dead) == 100 and all(d["reason"] for d in dead)
    assert fleet.restarts == {"policy": 0, "sim": 0}


def run_job(*args, timeout=600):
    return subprocess.run([sys.executable, "jobs/eval_libero.py", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_unreachable_redis_is_a_clear_error_naming_the_url(checkpoint):
    port = free_loopback_port()
    out = run_job("--checkpoint", str(checkpoint), "--redis-url", f"redis://:pw@127.0.0.1:{port}/0", timeout=120)
    assert out.returncode != 0 and f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in out.stderr


def test_a_missing_checkpoint_fails_before_any_actor_starts(tmp_path):
    start = time.monotonic()
    out = run_job("--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path), timeout=120)
    assert out.returncode != 0 and f"checkpoint folder {tmp_path / 'nowhere'} does not exist" in out.stderr
    assert "episodes" not in out.stderr and time.monotonic() - start < 60  # no fleet started (it took ~80 s)


def test_redis_without_the_password_is_refused(redis_server, checkpoint):
    out = run_job("--checkpoint", str(checkpoint), "--redis-url", f"redis://127.0.0.1:{redis_server.port}/0",
                  timeout=120)
    assert out.returncode != 0 and "requires a password" in out.stderr


def test_the_job_end_to_end_then_resumes_only_the_missing_trials(checkpoint, tmp_path):
    common = ["--checkpoint", str(checkpoint), "--suites", "libero_object", "--tasks", "4", "--max-steps", "10",
              "--workers", "1", "--num-cpus", "2", "--out", str(tmp_path), "--run-id", "resume"]
    first = run_job(*common, "--trials", "2", "--videos")
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp_path / "eval-resume"
    assert "libero_object      4       2" in first.stdout
    assert len((run_dir / "episodes.jsonl").read_text().splitlines()) == 2
    assert len(list((run_dir / "videos" / "libero_object").glob("*.mp4"))) == 2
    assert "| libero_object | 4 |" in (run_dir / "success.md").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    served = summary["policy_server"]
    assert served["requests"] > 0 and served["utilisation"] > 0 and served["latency_ms_p99"] is not None
    assert served["supply_chunks_per_s"]["1"] > 0 and summary["worker_demand_chunks_per_s"] > 0
    assert summary["scaling"]["workers"] == 1 and summary["scaling"]["bound"] == "fixed"
    assert "the rule would choose" in summary["scaling"]["reason"]
    assert "supply (chunks/s at batch B): B=1" in first.stdout and "SimWorkers: 1 (fixed" in first.stdout
    second = run_job(*common, "--trials", "3", "--wandb", "offline")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "3 episodes, 2 already done" in second.stderr
    assert len((run_dir / "episodes.jsonl").read_text().splitlines()) == 3
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")  # the table went to an offline wandb run
    assert list(offline_run.glob("*.wandb"))
