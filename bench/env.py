"""LIBERO env throughput: the reference protocol (both cameras rendered every step) vs render on
demand (agentview on the last M = 2 steps of each chunk of K, the frames the policy reads), on the same
trials and actions;
and scripted demonstrations per minute (expert rollout without rendering + rendered replay); and
(full run only) two envs in one process, stepped in turn, against two envs in their own subprocesses
(`EnvProcess`, what a SimWorker uses), stepped at once.

    python bench/env.py            # 3 trials per mode
    python bench/env.py --quick    # 1 trial, 40 steps: about a minute, most of it building the env

Prints a table, then one JSON line with the ratios measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from worldvla_dist.data.demo_generation import replay
from worldvla_dist.data.scripted_expert import run_expert
from worldvla_dist.envs.env_process import EnvProcess
from worldvla_dist.envs.libero_env import LiberoEnv, LiberoEnvConfig


HISTORY = 2  # M: the policy reads the frames of the last two steps of each chunk (episodes.py)


def reads_frame(i: int, chunk: int) -> bool:
    """Is step i's frame one the policy reads (the last HISTORY steps of its chunk)?"""
    return i % chunk >= chunk - HISTORY


def steps_per_second(env: LiberoEnv, actions: list[np.ndarray], trials: list[int], chunk: int | None) -> float:
    """Runs the given actions from each trial; chunk None = the reference's render-every-step mode."""
    env.config = replace(env.config, render="every_step" if chunk is None else "on_demand")
    steps, start = 0, time.perf_counter()
    for trial, trial_actions in zip(trials, actions):
        env.reset(trial)
        for i, a in enumerate(trial_actions):
            read = chunk is None or reads_frame(i, chunk)
            env.step(a, cameras=("agentview",) if read else ())
            if read:
                env.image()
            steps += 1
            if env.done or env.truncated:
                break
    return steps / (time.perf_counter() - start)


def two_envs_steps_per_second(config: LiberoEnvConfig, actions: np.ndarray, chunk: int = 5) -> tuple[float, float]:
    """Steps/s of two envs running `actions` from trial 0, render on demand: (one process, in turn;
    two subprocesses, driven from two threads). Env start-up is not timed."""
    def read(i: int) -> tuple[str, ...]:
        return ("agentview",) if reads_frame(i, chunk) else ()

    envs = [LiberoEnv(config), LiberoEnv(config)]
    try:
        for env in envs:
            env.reset(0)
        start = time.perf_counter()
        for i, a in enumerate(actions):
            for env in envs:
                env.step(a, cameras=read(i))
        in_turn = 2 * len(actions) / (time.perf_counter() - start)
    finally:
        for env in envs:
            env.close()

    def drive(env: EnvProcess) -> None:
        for i, a in enumerate(actions):
            env.step(a, cameras=read(i))

    procs = [EnvProcess(config), EnvProcess(config)]
    try:
        for env in procs:
            env.reset(0, cameras=())
        with ThreadPoolExecutor(2) as pool:
            start = time.perf_counter()
            list(pool.map(drive, procs))
            concurrent = 2 * len(actions) / (time.perf_counter() - start)
    finally:
        for env in procs:
            env.close()
    return in_turn, concurrent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--suite", default="libero_spatial")
    p.add_argument("--task", type=int, default=0)
    p.add_argument("--image-size", type=int, default=128)
    args = p.parse_args()
    trials = [0] if args.quick else [0, 1, 2]
    max_steps = 40 if args.quick else 220

    with LiberoEnv(LiberoEnvConfig(args.suite, args.task, image_size_px=args.image_size, max_steps=max_steps)) as env:
        env.reset(0)  # warm-up: the first reset compiles llvmpipe's shaders
        start = time.perf_counter()
        rollouts = [run_expert(env, t) for t in trials]
        expert_s = time.perf_counter() - start
        actions = [r.actions[:max_steps] for r in rollouts]
        start = time.perf_counter()
        for t, r in zip(trials, rollouts):
            replay(env, r.actions, env.init_states[t], source_index=t)
        replay_s = time.perf_counter() - start
        reference = steps_per_second(env, actions, trials, None)
        k5 = steps_per_second(env, actions, trials, 5)
        k10 = steps_per_second(env, actions, trials, 10)

    demos_per_min = 60.0 * len(trials) / (expert_s + replay_s)
    per_process = None
    if not args.quick:
        config = LiberoEnvConfig(args.suite, args.task, image_size_px=args.image_size, max_steps=max_steps)
        per_process = two_envs_steps_per_second(config, actions[0])
    rows = [("reference (2 cameras every step)", f"{reference:6.2f} steps/s", "1.00x"),
            ("render on demand, K=5", f"{k5:6.2f} steps/s", f"{k5 / reference:.2f}x"),
            ("render on demand, K=10", f"{k10:6.2f} steps/s", f"{k10 / reference:.2f}x"),
            ("scripted demos (rollout + replay)", f"{demos_per_min:6.2f} /min",
             f"rollout {expert_s / len(trials):.1f}s + replay {replay_s / len(trials):.1f}s")]
    if per_process:
        in_turn, concurrent = per_process
        rows += [("2 envs, one process, in turn (K=5)", f"{in_turn:6.2f} steps/s", "1.00x"),
                 ("2 envs, two subprocesses (K=5)", f"{concurrent:6.2f} steps/s", f"{concurrent / in_turn:.2f}x")]
    for r in rows:
        print(f"{r[0]:36s} {r[1]:>16s}   {r[2]}")
    print(json.dumps({"bench": "env", "suite": args.suite, "task": args.task, "image_size": args.image_size,
                      "quick": args.quick, "cpu_count": os.cpu_count(), "machine": platform.machine(),
                      "on_demand_speedup_k5": round(k5 / reference, 3), "on_demand_speedup_k10": round(k10 / reference, 3),
                      "reference_steps_per_s": round(reference, 3), "scripted_demos_per_min": round(demos_per_min, 3),
                      **({"two_subprocesses_over_one_process": round(per_process[1] / per_process[0], 3)}
                         if per_process else {})}))


if __name__ == "__main__":
    main()
