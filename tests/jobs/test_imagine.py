"""Imagination at scale on real components: a local Ray, embedded redis-servers, ImaginationWorker
actors with the tiny model. Replay and dream end to end through jobs/imagine.py (with resume), and a
worker SIGKILLed mid-rollout: its rollouts re-run elsewhere, none lost or doubled."""

import json
import os
import shutil
import signal
import time
import uuid
from dataclasses import asdict

import pytest
import ray

from actors.imagination_worker import ImaginationWorker
from actors.ray_setup import init_ray
from actors.supervisor import ActorKeepsDying, ServeSupervisor
from jobs import imagine
from worldvla_dist.data.synthetic_demos import write_random_demo_files
from worldvla_dist.errors import CheckpointError
from worldvla_dist.imagination.imagination_worker import ImaginationWorkerConfig
from worldvla_dist.imagination.imagine_run import ImagineRun
from worldvla_dist.imagination.specs import plan_rollouts
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis


pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    write_random_demo_files(root, files=2, demos=2, steps=10)
    return root


@pytest.fixture(scope="module")
def local_ray():
    init_ray(num_cpus=4)
    yield
    ray.shutdown()


def run_job(tmp_path, checkpoint, demos, *extra):
    return imagine.main(["--checkpoint", str(checkpoint), "--demos", str(demos), "--split", "all",
                         "--out", str(tmp_path), "--torch-threads", "1", *extra])


def test_replay_and_dream_end_to_end_with_resume(local_ray, checkpoint, demos, tmp_path):
    summary = run_job(tmp_path, checkpoint, demos, "--mode", "replay", "--horizon", "2", "--rollouts", "3",
                      "--workers", "2", "--batch", "2", "--videos", "1", "--run-id", "replay1")
    assert summary["rollouts"] == 3 and summary["errors"] == 0 and summary["restarts"] == {"imagine": 0}
    assert sum(w["rollouts"] for w in summary["workers"]) == 3
    run_dir = tmp_path / "imagine-replay1"
    assert "| WorldVLA (this checkpoint) |" in (run_dir / "results.md").read_text()
    assert (run_dir / "contact_sheet.png").is_file() and len(list((run_dir / "strips").glob("*.mp4"))) == 1
    lines = [json.loads(x) for x in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(x["error"] is None and x["model/psnr"] > 0 for x in lines)

    again = run_job(tmp_path, checkpoint, demos, "--mode", "replay", "--horizon", "2", "--rollouts", "3",
                    "--run-id", "replay1", "--wandb", "offline")
    assert again["rollouts"] == 3 and again["workers"] == []  # resumed: nothing left to imagine
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")  # table, contact sheet and strip logged offline
    media = {p.suffix for p in (offline_run / "files" / "media").rglob("*") if p.is_file()}
    assert {".png", ".mp4", ".json"} <= media, media

    dream = run_job(tmp_path, checkpoint, demos, "--mode", "dream", "--horizon", "3", "--chunk", "2",
                    "--rollouts", "2", "--workers", "1", "--batch", "2", "--run-id", "dream1")
    assert dream["rollouts"] == 2 and dream["errors"] == 0
    assert all(x.startswith("dream/") for x in
               (json.loads(line)["key"] for line in (tmp_path / "imagine-dream1/rollouts.jsonl").read_text().splitlines()))


def test_a_worker_killed_mid_rollout_has_its_rollouts_rerun(local_ray, checkpoint, demos):
    specs, _ = plan_rollouts(demos, 6, horizon=5, split="all")
    with EmbeddedRedis() as server:
        client = connect(server.url)
        config = ImaginationWorkerConfig(run_id=uuid.uuid4().hex[:8], batch=2, reclaim_after_s=3.0)
        run = ImagineRun(client, config, specs)
        run.enqueue_missing()
        supervisor = ServeSupervisor()
        for i in range(2):
            supervisor.launch("imagine", i, lambda i=i: ImaginationWorker.options(num_cpus=1).remote(
                server.url, str(checkpoint), asdict(config), torch_threads=1, name=f"imagine-{i}"))

        def held_by(consumer):
            return run.redis.xpending_range(run.queue.config.name, run.queue.config.group, min="-", max="+",
                                            count=10, consumername=consumer)

        deadline = time.monotonic() + 180
        while not held_by("imagine-0"):
            assert time.monotonic() < deadline, "imagine-0 never took a batch"
            time.sleep(0.2)
        held = {r["message_id"] for r in held_by("imagine-0")}
        os.kill(ray.get(supervisor.actors[("imagine", 0)].pid.remote()), signal.SIGKILL)
        try:
            progress = run.wait(on_poll=supervisor.supervise, timeout_s=300)
        finally:
            run.stop_workers()
            supervisor.finish()
        assert progress.done == 6 and progress.errors == 0 and supervisor.restarts == {"imagine": 1}
        assert run.results.keys() == {s.key for s in specs} and len(run.results) == 6
        assert not held & {r["message_id"] for r in held_by("imagine-0")}  # the held rollouts were re-run and acked


def test_workers_that_cannot_start_end_the_job_with_their_error(local_ray, checkpoint, demos, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):  # caught by the driver, before any actor
        run_job(tmp_path, tmp_path / "no-such-checkpoint", demos, "--horizon", "2", "--rollouts", "1")
    broken = tmp_path / "broken-checkpoint"  # every file there, but weights the workers cannot read
    shutil.copytree(checkpoint, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ActorKeepsDying, match="died 2 times"):
        run_job(tmp_path, broken, demos, "--horizon", "2", "--rollouts", "1", "--workers", "1", "--max-restarts", "1")
