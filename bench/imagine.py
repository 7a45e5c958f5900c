"""Imagination speed on the tiny-cpu preset (random weights: the cost does not depend on them).

1. World-model frames/s with B = 1 vs B = 8 rollouts side by side: the rollout alone, and a whole
   ImaginationWorker (embedded redis-server, trajectory windows read from demo files, VQGAN encode and
   decode, PSNR / SSIM scoring, results written), the same 8 rollouts at batch 1 and batch 8.
2. Seconds per frame against the horizon (B = 1 replays at H = 10, 50, 200, --quick: 2, 8, 32 twice,
   stepped a frame of each horizon in turn; the median frame of each horizon): the world model sees
   one image and one action per frame, so this should stay flat. Inside the longest rollout, the
   frames before h = 10, 50, 200 are each compared with the shortest horizon's frames timed beside
   them, so drift cancels there too.

    python bench/imagine.py            # ~2 min
    python bench/imagine.py --quick    # under a minute

Prints a table, then one JSON line: each figure a ratio measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from worldvla_dist.data.synthetic_demos import write_random_demo_files
from worldvla_dist.imagination import rollout
from worldvla_dist.imagination.imagination_worker import ImaginationWorker, ImaginationWorkerConfig
from worldvla_dist.imagination.imagine_run import ImagineRun
from worldvla_dist.imagination.specs import plan_rollouts
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.sequences.token_space import TokenSpace


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def random_replay_inputs(rng: np.random.Generator, tokens, batch: int, horizon: int) -> tuple[torch.Tensor, np.ndarray]:
    """Start codes (B, rows, cols) and actions (B, H, 7) for a replay: random, as the weights are."""
    g = tokens.layout
    start = torch.as_tensor(rng.integers(0, tokens.vocab.num_image_codes, (batch, g.rows, g.cols)))
    return start, rng.uniform(-0.3, 0.3, (batch, horizon, 7))


def replay_frame_times(model, tokens, batch: int, horizon: int, seed: int = 0) -> np.ndarray:
    """Seconds each of the `horizon` frames of a B-rollout replay took."""
    start, actions = random_replay_inputs(np.random.default_rng(seed), tokens, batch, horizon)
    stamps = [time.perf_counter()]
    rollout.replay(model, tokens, start, actions, on_frame=lambda _h: stamps.append(time.perf_counter()))
    return np.diff(stamps)


def lane_frame_times(model, tokens, horizons: tuple[int, ...], rounds: int) -> dict[int, list[np.ndarray]]:
    """B = 1 replays at every horizon, stepped one frame per horizon in turn: horizon h's lane runs H = h
    rollouts back to back until the longest has run `rounds` times, so all horizons are timed in the
    same seconds and this machine's drift in speed (up to ~25% within minutes) weighs on all alike.
    -> per horizon, the seconds of each frame of each of its rollouts."""
    rng = np.random.default_rng(0)

    def new_rollout(h: int):
        return rollout.replay_steps(model, tokens, *random_replay_inputs(rng, tokens, 1, h))

    lanes = {h: new_rollout(h) for h in horizons}
    times: dict[int, list[list[float]]] = {h: [[]] for h in horizons}
    for step in range(max(horizons) * rounds):
        order = horizons[step % len(horizons):] + horizons[:step % len(horizons)]  # no lane always follows the same one
        for h in order:
            if len(times[h][-1]) == h:
                lanes[h] = new_rollout(h)
                times[h].append([])
            started = time.perf_counter()
            next(lanes[h])
            times[h][-1].append(time.perf_counter() - started)
    return {h: [np.array(t) for t in runs if len(t) == h] for h, runs in times.items()}


def worker_seconds(client, model, tokens, demos: Path, batch: int, rollouts: int, horizon: int) -> float:
    specs, _ = plan_rollouts(demos, rollouts, horizon, split="all")
    config = ImaginationWorkerConfig(run_id=uuid.uuid4().hex[:8], batch=batch)
    run = ImagineRun(client, config, specs)
    run.enqueue_missing()
    worker = ImaginationWorker(client, config, model, tokens)

    def drain():
        while run.progress().done < len(specs):
            worker.work_once(block_s=0.1)

    seconds = timed(drain)
    assert run.progress().errors == 0
    return seconds


def alternated_medians(frames_per_s: Callable[[int], float], repeats: int) -> dict[int, float]:
    """frames/s at B = 1 and B = 8, measured alternately `repeats` times; the medians count, since one
    run can land on a slow minute of this shared machine."""
    runs: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(repeats):
        for b in runs:
            runs[b].append(frames_per_s(b))
    return {b: float(np.median(r)) for b, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short horizons (under a minute)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_horizon = 2 if args.quick else 6
    horizons = (2, 8, 32) if args.quick else (10, 50, 200)

    torch.manual_seed(0)
    preset = MODEL_PRESETS.get("tiny-cpu")
    tokens = TokenSpace.for_preset(preset)
    model = WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg).eval()
    replay_frame_times(model, tokens, 1, 8)  # warm-up: the first few frames of a process run ~10% slower

    rows, figures = [], {}
    core = alternated_medians(lambda b: b * batch_horizon / replay_frame_times(model, tokens, b, batch_horizon).sum(), 3)
    rows.append((f"rollout only, H={batch_horizon}: frames/s", f"{core[1]:.2f}", f"{core[8]:.2f}",
                 f"{core[8] / core[1]:.2f}x"))
    figures["rollout_frames_per_s_b8_over_b1"] = round(core[8] / core[1], 3)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis() as server:
        demos = Path(tmp)
        write_random_demo_files(demos, files=2, demos=4, steps=batch_horizon + 4, size=preset.image_size_px)
        client = connect(server.url)
        frames = 8 * batch_horizon
        worker = alternated_medians(lambda b: frames / worker_seconds(client, model, tokens, demos, b, 8, batch_horizon),
                                    1 if args.quick else 3)
    rows.append((f"ImaginationWorker, 8 rollouts, H={batch_horizon}: frames/s", f"{worker[1]:.2f}", f"{worker[8]:.2f}",
                 f"{worker[8] / worker[1]:.2f}x"))
    figures["worker_frames_per_s_b8_over_b1"] = round(worker[8] / worker[1], 3)

    times = lane_frame_times(model, tokens, horizons, rounds=2 if args.quick else 1)
    per_frame = {h: float(np.median(np.concatenate(t))) for h, t in times.items()}
    # the same question inside one long rollout: its frames just before h = 10, 50, 200, each window
    # against the shortest horizon's frames timed in the same rounds (lanes step in lock-step)
    window = min(10, horizons[0])
    longest, beside = times[horizons[-1]][0], np.concatenate(times[horizons[0]])
    at_frame = {h: float(np.median(longest[h - window:h])) for h in horizons}
    over_beside = {h: at_frame[h] / float(np.median(beside[h - window:h])) for h in horizons}
    for h in horizons:
        rows.append((f"B=1 replay H={h}: median seconds/frame", f"{per_frame[h]:.3f}", "",
                     f"{per_frame[h] / per_frame[horizons[0]]:.2f}x"))
    for h in horizons:
        rows.append((f"  frames {h - window + 1}-{h} of H={horizons[-1]} vs H={horizons[0]} beside", f"{at_frame[h]:.3f}", "",
                     f"{over_beside[h]:.2f}x"))
    figures[f"seconds_per_frame_h{horizons[-1]}_over_h{horizons[0]}"] = round(per_frame[horizons[-1]] / per_frame[horizons[0]], 3)
    figures["seconds_per_frame_max_over_min"] = round(max(per_frame.values()) / min(per_frame.values()), 3)
    figures["in_rollout_seconds_per_frame_max_over_min"] = round(max(over_beside.values()) / min(over_beside.values()), 3)

    print(f"{'case':48s} {'B=1':>9s} {'B=8':>9s} {'ratio':>8s}")
    for r in rows:
        print(f"{r[0]:48s} {r[1]:>9s} {r[2]:>9s} {r[3]:>8s}")
    print("goals: B=8 / B=1 >= 4x; seconds per frame flat within 10% (max / min <= 1.10)")
    print(json.dumps({"bench": "imagine", "preset": preset.name, "quick": args.quick, "threads": args.threads,
                      "cpu_count": os.cpu_count(), "machine": platform.machine(), "torch": torch.__version__,
                      "horizons": list(horizons), **figures}))


if __name__ == "__main__":
    main()
