"""The imagination worker and run on a real embedded redis-server with a random tiny model: every
rollout written once with its scores, bad specs dead-lettered into error results, a dead worker's
rollouts re-run by another, weights taken between batches, and a re-run with the same id resumes."""

import time
import uuid

import numpy as np
import pytest
import torch

from worldvla_dist.data.synthetic_demos import write_random_demo_files
from worldvla_dist.imagination.imagination_worker import ImaginationWorker, ImaginationWorkerConfig
from worldvla_dist.imagination.imagine_run import ImagineRun
from worldvla_dist.imagination.scoring import RolloutScorer, ScoringConfig
from worldvla_dist.imagination.specs import RolloutSpec, plan_rollouts, read_window
from worldvla_dist.metrics.image_quality import psnr
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis

from tests.conftest import make_tiny_model
from tests.worldvla_dist.metrics.test_lpips import backbone_state, linear_state
from tests.worldvla_dist.metrics.test_video_quality import TinyVideoNet

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client():
    with EmbeddedRedis() as server:
        yield connect(server.url)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    write_random_demo_files(root, files=2, demos=2, steps=8)
    return root


@pytest.fixture(scope="module")
def model(tokens, tiny_preset):
    return make_tiny_model(tokens, tiny_preset, seed=5, dtype=torch.float32)


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    torch.save(backbone_state(), root / "alexnet.pth")
    torch.save(linear_state(), root / "alex.pth")
    torch.jit.script(TinyVideoNet()).save(str(root / "i3d.pt"))
    return RolloutScorer(ScoringConfig(str(root / "alexnet.pth"), str(root / "alex.pth"), str(root / "i3d.pt"),
                                       i3d_size=32, clip_lengths=(2, 3)))


def new_run(client, specs, **kw):
    config = ImaginationWorkerConfig(run_id=uuid.uuid4().hex[:8], **kw)
    run = ImagineRun(client, config, specs)
    run.enqueue_missing()
    return run, config


def drain(worker, run, max_batches=20):
    for _ in range(max_batches):
        if run.progress().done == len(run.specs):
            return
        worker.work_once(block_s=0.2)
    raise AssertionError(f"not done: {run.progress()}")


def test_every_rollout_is_written_once_with_scores_and_the_run_resumes(client, demos, tokens, model, scorer, tmp_path):
    specs, used = plan_rollouts(demos, 5, horizon=3, videos=2, split="all")
    assert used == "all" and len(specs) == 5 and len({s.key for s in specs}) == 5
    crowded, _ = plan_rollouts(demos, 40, horizon=6, videos=3, split="all")  # 4 trajectories x 2 starts
    assert len(crowded) == len({s.key for s in crowded}) == 8
    run, config = new_run(client, specs, batch=4, video_dir=str(tmp_path / "strips"))
    worker = ImaginationWorker(client, config, model, tokens, scorer, name="w0")
    drain(worker, run)
    results = run.collected()
    assert [r.key for r in results] == [s.key for s in specs] and not any(r.error for r in results)
    assert worker.rollouts_run == 5 and worker.frames_imagined == 15
    for spec, r in zip(specs, results):
        window = read_window(spec)
        # the stored codes are the frames that were scored, and the baseline repeats the start frame
        frames = tokens.images.decode(torch.as_tensor(r.codes))
        np.testing.assert_allclose(r.scores["model/psnr"], np.minimum(psnr(frames, window.frames[1:]), 100), rtol=1e-5)
        np.testing.assert_allclose(r.scores["copy/psnr"], psnr(np.repeat(window.frames[:1], 3, 0), window.frames[1:]),
                                   rtol=1e-5)
        assert r.scores["model/lpips"].shape == (3,) and r.features["model/3"].shape == (8,)
        assert bool(r.sheet) == spec.video and (r.video is not None) == spec.video
    files = run.write_outputs(tmp_path / "out", lengths=(2, 3))
    table = files["markdown"].read_text()
    assert "FVD ↓ @3" in table and "n/a" not in table.split("\n\n")[0]  # every cell measured
    assert files["contact_sheet"].stat().st_size > 0 and len(list((tmp_path / "strips").glob("*.mp4"))) == 2
    assert ImagineRun(client, config, specs).enqueue_missing() == 0  # resume: nothing left to imagine


def test_bad_specs_are_dead_lettered_into_error_results(client, demos, tokens, model, tmp_path):
    good = plan_rollouts(demos, 1, horizon=2, split="all")[0]
    missing_file = RolloutSpec(str(demos / "nope_demo.hdf5"), "demo_0", 0, 2)
    too_long = RolloutSpec(good[0].source, good[0].demo, 6, 5)
    corrupted_file = tmp_path / "libero_object" / "broken_demo.hdf5"
    corrupted_file.parent.mkdir()
    corrupted_file.write_bytes(b"not hdf5 at all")
    corrupted = RolloutSpec(str(corrupted_file), "demo_0", 0, 2)
    run, config = new_run(client, [*good, missing_file, too_long, corrupted], batch=5)
    run.queue.put_raw({b"data": b"\x00 not msgpack"})
    worker = ImaginationWorker(client, config, model, tokens, name="w1")
    drain(worker, run)
    by_key = {r.key: r for r in run.collected()}
    assert by_key[good[0].key].error is None
    assert "does not exist" in by_key[missing_file.key].error and "needs 12" in by_key[too_long.key].error
    assert "cannot be read as hdf5" in by_key[corrupted.key].error
    assert len(run.queue.dead_letters()) == 4  # the three specs and the garbage, each with a reason


def test_a_dead_workers_rollouts_are_reclaimed_and_new_weights_are_taken_between_batches(client, demos, tokens, model,
                                                                                        tiny_preset):
    specs = plan_rollouts(demos, 3, horizon=2, split="all")[0]
    run, config = new_run(client, specs, batch=4, reclaim_after_s=0.5)
    assert len(run.queue.take("dead-worker", count=2, block_s=0)) == 2  # taken, never acked
    worker = ImaginationWorker(client, config, model, tokens, name="w2", weight_version=3)
    other = make_tiny_model(tokens, tiny_preset, seed=9, dtype=torch.float32)
    worker.set_weights(other.state_dict(), 7)
    time.sleep(0.6)
    drain(worker, run)
    results = run.collected()
    assert len(results) == 3 and {r.weight_version for r in results} == {7}
    assert run.queue.pending() == 0 and run.queue.depth() == 0
    assert torch.equal(worker.model.chameleon.lm_head.weight, other.chameleon.lm_head.weight)
