"""LIBERO evaluation throughput, same episodes and same tiny model in one run:

  (a) the reference script's loop: one env, batch 1, every camera rendered every step, the model
      called in the same process;
  (b) this system: 2 SimWorkers + the PolicyServer (Ray actors, Redis queues, render on demand);
  (c) the sim-only ceiling: the same episodes with the actions (a) chose, replayed by 2 workers
      with no model.

Env start-up is left out of every timing (envs are reset once, and the system's SimWorkers run a
warm-up episode each, before the clock starts), so the figures are steady-state episodes per hour. Prints a table, then one JSON line: (b)/(a), the efficiency
(b)/(c) (goal >= 0.8 on this machine), the PolicyServer's mean batch size and queue wait.

    python bench/eval.py --quick     # 4 episodes of 20 steps: ~1 min, two thirds of it starting Ray and envs
    python bench/eval.py             # 8 episodes of 100 steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np
import ray
import torch

from actors.eval_fleet import EvalFleet, FleetConfig
from actors.ray_setup import init_ray
from worldvla_dist.envs.env_process import EnvProcess
from worldvla_dist.envs.libero_env import LiberoEnvConfig
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.evaluation.episodes import EpisodeSpec, run_episode
from worldvla_dist.evaluation.eval_run import EvalRun, plan_episodes
from worldvla_dist.model.checkpoint import load_checkpoint, save_checkpoint
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.policy_service import PolicyServiceConfig
from worldvla_dist.serving.protocol import PolicyRequest


class RecordingPolicy:
    """The model in-process, batch 1, remembering every chunk it returns (for the replay ceiling)."""

    def __init__(self, policy: ChunkPolicy):
        self.policy, self.chunks = policy, []

    def __call__(self, instruction, frames, k):
        chunk = self.policy.predict([PolicyRequest(instruction, frames, k, "local")])[0]
        self.chunks.append(chunk)
        return chunk, 0


class ReplayPolicy:
    def __init__(self, chunks):
        self.chunks = list(chunks)

    def __call__(self, instruction, frames, k):
        return self.chunks.pop(0), 0


def env_config(spec: EpisodeSpec, render: str) -> LiberoEnvConfig:
    return LiberoEnvConfig(spec.suite, spec.task, max_steps=spec.max_steps, render=render)


def warm_env(config: LiberoEnvConfig, trial: int) -> EnvProcess:
    """An env process, reset once: the first reset compiles llvmpipe's shaders."""
    env = EnvProcess(config)
    env.reset(trial)
    return env


def sequential_reference(env: EnvProcess, checkpoint: str, specs: list[EpisodeSpec]) -> tuple[float, dict]:
    """(a): seconds for `specs` on one env, and the chunks chosen per episode."""
    model, tokens = load_checkpoint(checkpoint)
    policy = RecordingPolicy(ChunkPolicy(model, tokens))
    recorded = {}
    start = time.perf_counter()
    for spec in specs:
        policy.chunks = []
        run_episode(env, policy, spec.trial, spec.chunk)
        recorded[spec.key] = policy.chunks
    return time.perf_counter() - start, recorded


def sim_only_ceiling(envs: list[EnvProcess], specs: list[EpisodeSpec], recorded: dict) -> float:
    """(c): seconds for `specs` split over the envs, each env stepped by its own thread with the
    recorded actions (the env processes run in parallel; the threads only wait on their pipes)."""
    def replay(env, share):
        for spec in share:
            run_episode(env, ReplayPolicy(recorded[spec.key]), spec.trial, spec.chunk)

    start = time.perf_counter()
    with ThreadPoolExecutor(len(envs)) as pool:
        for done in [pool.submit(replay, env, specs[i::len(envs)]) for i, env in enumerate(envs)]:
            done.result()
    return time.perf_counter() - start


def warm_fleet(redis_url: str, checkpoint: str, warmups: list[EpisodeSpec], workers: int) -> tuple[EvalFleet, EpisodeWorkerConfig]:
    """(b)'s fleet, started and run through one warm-up episode per worker."""
    worker = EpisodeWorkerConfig(run_id=uuid.uuid4().hex[:8])
    service = PolicyServiceConfig(queue=f"eval:{worker.run_id}:policy")
    fleet = EvalFleet(redis_url, FleetConfig(checkpoint, num_workers=workers, policy_torch_threads=1), worker,
                      service).start()
    warm = EvalRun(connect(redis_url), worker, warmups)
    warm.enqueue_missing()
    warm.wait(on_poll=fleet.supervise)
    return fleet, worker


def system(redis_url: str, fleet: EvalFleet, worker: EpisodeWorkerConfig, specs: list[EpisodeSpec]) -> tuple[float, dict]:
    """(b): seconds for `specs` on the warm fleet, and the PolicyServer's figures over them."""
    policy = fleet.servers[0]
    before = ray.get(policy.health.remote())
    run = EvalRun(connect(redis_url), worker, specs)
    start = time.perf_counter()
    run.queue.put_many([s.to_payload() for s in specs])
    run.wait(on_poll=fleet.supervise, poll_s=0.05)
    seconds = time.perf_counter() - start
    after = ray.get(policy.health.remote())
    n = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    wait_ms = (after["mean_queue_wait_ms"] * after["requests"] - before["mean_queue_wait_ms"] * before["requests"]) / max(n, 1)
    return seconds, {"requests": n, "mean_batch_size": n / max(batches, 1), "mean_queue_wait_ms": wait_ms}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--task", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    episodes, max_steps = (4, 20) if args.quick else (8, 100)
    torch.manual_seed(0)
    preset = MODEL_PRESETS.get("tiny-cpu")
    tokens = TokenSpace.for_preset(preset)
    checkpoint = save_checkpoint(WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg), tokens,
                                 os.path.join(tempfile.mkdtemp(prefix="bench-eval-"), "checkpoint"))
    all_specs = plan_episodes([args.suite], [args.task], episodes + args.workers, max_steps=max_steps)
    warmups, specs = all_specs[:args.workers], all_specs[args.workers:]

    # Every start-up at once (Ray, the fleet and its warm-up episodes, the envs of (a) and (c)), none
    # timed: on 2 cores they overlap to about half their sequential ~70 s. The phases then run one
    # after another, the idle ones blocked on their queues.
    init_ray(num_cpus=args.workers + 2)
    with EmbeddedRedis() as server, ExitStack() as envs, ThreadPoolExecutor(args.workers + 1) as starts:
        reference_env = starts.submit(warm_env, env_config(specs[0], "every_step"), specs[0].trial)
        replay_envs = [starts.submit(warm_env, env_config(specs[0], "on_demand"), specs[0].trial)
                       for _ in range(args.workers)]
        fleet, worker = warm_fleet(server.url, str(checkpoint), warmups, args.workers)
        try:
            reference_env, *replay_envs = [envs.enter_context(f.result()) for f in (reference_env, *replay_envs)]
            a_s, recorded = sequential_reference(reference_env, str(checkpoint), specs)
            c_s = sim_only_ceiling(replay_envs, specs, recorded)
            b_s, stats = system(server.url, fleet, worker, specs)
        finally:
            EvalRun(connect(server.url), worker, warmups).stop_workers()
            fleet.stop()
    ray.shutdown()

    per_hour = {k: 3600 * len(specs) / s for k, s in (("a", a_s), ("b", b_s), ("c", c_s))}
    rows = [("(a) reference loop: 1 env, batch 1, render every step", a_s, per_hour["a"]),
            (f"(b) {args.workers} SimWorkers + PolicyServer", b_s, per_hour["b"]),
            (f"(c) sim-only ceiling: {args.workers} workers, recorded actions", c_s, per_hour["c"])]
    print(f"{len(specs)} episodes of up to {max_steps} steps, {args.suite} task {args.task}, tiny-cpu, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"{'mode':58s} {'seconds':>8s} {'episodes/h':>11s}")
    for name, s, ph in rows:
        print(f"{name:58s} {s:8.1f} {ph:11.0f}")
    print(f"PolicyServer: {stats['requests']} requests, mean batch {stats['mean_batch_size']:.2f}, "
          f"mean queue wait {stats['mean_queue_wait_ms']:.1f} ms")
    print(json.dumps({"bench": "eval", "quick": args.quick, "episodes": len(specs), "max_steps": max_steps,
                      "speedup_b_over_a": per_hour["b"] / per_hour["a"],
                      "efficiency_b_over_c": per_hour["b"] / per_hour["c"],
                      "policy_mean_batch_size": stats["mean_batch_size"],
                      "policy_mean_queue_wait_ms": stats["mean_queue_wait_ms"]}))


if __name__ == "__main__":
    main()
