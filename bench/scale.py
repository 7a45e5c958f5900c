"""Capacity model, checked against measurement (worldvla_dist/evaluation/capacity.py):

  1. a SimWorker's cost on this machine: one env process, episodes stepped with an instant policy
     (sim seconds per chunk, and the reset each episode pays);
  2. the PolicyServer's batch latency at B = 1, 2, 4, 8, 16 (tiny-cpu, one torch thread, as the
     fleet's server; each request two frames, one new, as an episode's are);
  3. from those alone, episodes/hour predicted for W SimWorkers and P PolicyServers, checked against
     real runs at W = 1 and 2 with one PolicyServer (the actors' code, EpisodeWorker and
     PolicyService over Redis with LIBERO in env processes, in threads: the warm envs and model are
     reused, so no start-up is timed): error = predicted / measured - 1 (goal within 20%); the
     W = 1 run is the baseline of the speed-up column. What the real path costs a chunk beyond the
     env step and the decode (Redis, frame packing, Python) is then fitted on W = 1 and W = 2
     predicted with it: the "fitted" error is the check of the model with that one parameter;
  4. the table for cluster.yaml's node types on a 2,000-episode LIBERO evaluation: the sim side as
     measured here, the GPU side from the paper's speed figure (ASSUMPTION, marked in the table).

Prints the tables, then one JSON line.

    python bench/scale.py --quick    # 20-step episodes, 2 + 4 of them in the real runs
    python bench/scale.py            # 60-step episodes, 4 + 8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
import uuid

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from worldvla_dist.envs.env_process import EnvProcess
from worldvla_dist.envs.libero_env import LiberoEnvConfig
from worldvla_dist.envs.libero_tasks import SUITES
from worldvla_dist.evaluation.capacity import SupplyCurve, choose_workers, predict_throughput
from worldvla_dist.evaluation.episode_worker import EpisodeWorker, EpisodeWorkerConfig
from worldvla_dist.evaluation.episodes import EpisodeSpec, run_episode
from worldvla_dist.evaluation.eval_run import EvalRun, plan_episodes
from worldvla_dist.model.checkpoint import load_checkpoint, save_checkpoint
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.policy_service import PolicyService, PolicyServiceConfig
from worldvla_dist.serving.protocol import PolicyRequest
from worldvla_dist.serving.remote_policy import RemotePolicy

log = logging.getLogger("bench.scale")
BATCHES = (1, 2, 4, 8, 16)
INSTRUCTION = "put the bowl on the plate"

# ASSUMPTION (not measured): the paper's speed, 3.13 FPS at M = 2 history frames with chunking
# (../shared/WORLDVLA.md), read as one GPU at batch 1 delivering 3.13 actions/s, i.e. a K = 5 chunk
# every 1.6 s; and batching on the GPU costing +10% latency per extra request (decode is memory-bound).
PAPER_ACTIONS_PER_S = 3.13
GPU_EXTRA_PER_REQUEST = 0.10
GPUS_PER_NODE = 8  # p4d.24xlarge; one PolicyServer per GPU
SIMS_PER_CPU_NODE = 30  # c6i.8xlarge, 32 vCPUs (cluster.yaml)
CLUSTER_EPISODES = 2000
CLUSTER_SUITE = "libero_spatial"  # episodes run to the suite's cap: the slow bound (a success ends sooner)


class InstantPolicy:
    """Zero actions, no model: the env's own cost."""

    def __call__(self, instruction, frames, k):
        return np.zeros((k, 7), dtype=np.float32), 0


def warm_env(spec: EpisodeSpec) -> EnvProcess:
    """The env a SimWorker would make for `spec`, reset once (the first reset compiles llvmpipe's shaders)."""
    env = EnvProcess(LiberoEnvConfig(spec.suite, spec.task, image_size_px=EpisodeWorkerConfig.image_size_px,
                                     max_steps=spec.max_steps, render=EpisodeWorkerConfig.render))
    env.reset(spec.trial)
    return env


def sim_cost(env: EnvProcess, spec: EpisodeSpec, episodes: int) -> dict:
    """Sim seconds per chunk (steps and the two renders a chunk), and one reset's seconds."""
    resets, stepping, chunks = [], 0.0, 0
    for e in range(episodes):
        start = time.perf_counter()
        env.reset(spec.trial)
        resets.append(time.perf_counter() - start)
        start = time.perf_counter()
        outcome = run_episode(env, InstantPolicy(), spec.trial, spec.chunk)
        stepping += time.perf_counter() - start - resets[-1]  # run_episode resets once more
        chunks += outcome.policy_calls
    return {"sim_s_per_chunk": stepping / chunks, "reset_s": float(np.median(resets)),
            "chunks_per_episode": chunks / episodes, "steps_per_chunk": spec.chunk}


def frame(client: int, step: int, size_px: int) -> np.ndarray:
    return np.random.default_rng([client, step]).integers(0, 256, (size_px, size_px, 3), dtype=np.uint8)


def batch_latency(policy: ChunkPolicy, chunk: int, reps: int, size_px: int = 128) -> dict[int, float]:
    """Batch size -> seconds one batch takes (median of `reps`), frames cached as in an episode."""
    latency, client0 = {}, 0
    for b in BATCHES:
        def batch(step):
            return [PolicyRequest(INSTRUCTION, [frame(c, step - 1, size_px), frame(c, step, size_px)], chunk, "x")
                    for c in range(client0, client0 + b)]
        policy.predict(batch(1))  # warm: the first frames of these clients
        times = []
        for step in range(2, reps + 2):
            start = time.perf_counter()
            policy.predict(batch(step))
            times.append(time.perf_counter() - start)
        latency[b] = float(np.median(times))
        log.info("batch %d: %.0f ms", b, 1000 * latency[b])
        client0 += b
    return latency


def real_run(redis_url: str, policy: ChunkPolicy, envs: list[EnvProcess], specs: list[EpisodeSpec]) -> dict:
    """W = len(envs) EpisodeWorkers and one PolicyService over Redis, the actors' code run in threads of
    this process (each env in its own process, as in a SimWorker; Ray adds placement, not work): the
    envs and the model are already warm, so no start-up is timed. Episodes/hour over `specs`."""
    worker = EpisodeWorkerConfig(run_id=uuid.uuid4().hex[:8])
    service_config = PolicyServiceConfig(queue=f"eval:{worker.run_id}:policy")
    service = PolicyService(connect(redis_url), policy, service_config)
    stop = threading.Event()
    threads = [threading.Thread(target=service.serve_forever, args=(stop.is_set,), daemon=True)]
    for i, env in enumerate(envs):
        w = EpisodeWorker(connect(redis_url), worker, RemotePolicy(connect(redis_url), service_config, timeout_s=600),
                          f"sim-{i}")
        w.env = env  # warm, and the config each spec asks for: kept
        threads.append(threading.Thread(target=w.serve_forever, daemon=True))
    run = EvalRun(connect(redis_url), worker, specs)
    for t in threads:
        t.start()
    start = time.perf_counter()
    run.enqueue_missing()
    run.wait(poll_s=0.05)
    seconds = time.perf_counter() - start
    run.stop_workers()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    stats = service.stats.as_dict()
    log.info("W=%d: %d episodes in %.1f s", len(envs), len(specs), seconds)
    return {"workers": len(envs), "episodes": len(specs), "seconds": seconds,
            "episodes_per_hour": 3600 * len(specs) / seconds, "mean_batch": stats["mean_batch_size"],
            "utilisation": stats["utilisation"], "supply_chunks_per_s": stats["supply_chunks_per_s"]}


def gpu_curve() -> SupplyCurve:
    """ASSUMPTION: one GPU's PolicyServer, from the paper's FPS (see the constants above)."""
    chunk = SUITES.get(CLUSTER_SUITE).chunk
    l1 = chunk / PAPER_ACTIONS_PER_S
    return SupplyCurve({b: b / (l1 * (1 + GPU_EXTRA_PER_REQUEST * (b - 1))) for b in BATCHES})


def cluster_table(sim: dict) -> list[dict]:
    """A 2,000-episode LIBERO evaluation on cluster.yaml's node types, sim side as measured here."""
    cap = SUITES.get(CLUSTER_SUITE).max_steps
    chunks = -(-cap // SUITES.get(CLUSTER_SUITE).chunk)
    sim_s = sim["sim_s_per_chunk"] * SUITES.get(CLUSTER_SUITE).chunk / sim["steps_per_chunk"]
    supply, rows = gpu_curve(), []
    for gpu_nodes in (1, 2):
        servers = gpu_nodes * GPUS_PER_NODE
        for cpu_nodes in (1, 4, 16):
            workers = cpu_nodes * SIMS_PER_CPU_NODE
            p = predict_throughput(workers, servers, sim_s, chunks, sim["reset_s"], supply, max_batch=16)
            rule = choose_workers(CLUSTER_EPISODES, 10, 1, workers, supply, 1 / sim_s, servers, max_batch=16)
            fed = predict_throughput(rule.workers, servers, sim_s, chunks, sim["reset_s"], supply, max_batch=16)
            rows.append({"cpu_nodes": cpu_nodes, "gpu_nodes": gpu_nodes, "workers": workers, "servers": servers,
                         "episodes_per_hour": p.episodes_per_hour, "hours": CLUSTER_EPISODES / p.episodes_per_hour,
                         "bound": p.bound, "mean_batch": p.mean_batch, "rule_workers": rule.workers,
                         "rule_bound": rule.bound, "rule_episodes_per_hour": fed.episodes_per_hour})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--task", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="episode length (default 20 with --quick, else 60)")
    p.add_argument("--episodes", type=int, default=None, help="per worker in the real runs (default 2, else 4)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    max_steps = args.max_steps or (20 if args.quick else 60)
    per_worker = args.episodes or (2 if args.quick else 4)
    torch.manual_seed(0)
    preset = MODEL_PRESETS.get("tiny-cpu")
    tokens = TokenSpace.for_preset(preset)
    checkpoint = str(save_checkpoint(WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg), tokens,
                                     os.path.join(tempfile.mkdtemp(prefix="bench-scale-"), "checkpoint")))
    specs = plan_episodes([args.suite], [args.task], 3 * per_worker, max_steps=max_steps)
    chunk = specs[0].chunk

    started = time.perf_counter()
    torch.set_num_threads(1)  # as the fleet's PolicyServer (policy_torch_threads=1)
    with ThreadPoolExecutor(1) as starts:  # the second worker's env starts while the first is measured
        second_env = starts.submit(warm_env, specs[0])
        first_env = warm_env(specs[0])
        sim = sim_cost(first_env, specs[0], episodes=2 if args.quick else 4)
        log.info("sim: %s", sim)
        model, tokens = load_checkpoint(checkpoint)
        policy = ChunkPolicy(model, tokens)
        latency = batch_latency(policy, chunk, reps=2 if args.quick else 6)
        envs = [first_env, second_env.result()]
    supply = SupplyCurve({b: b / s for b, s in latency.items()})
    service = PolicyServiceConfig()
    runs = []
    try:
        with EmbeddedRedis() as server:
            used = 0
            for workers in (1, 2):
                runs.append(real_run(server.url, policy, envs[:workers], specs[used:used + workers * per_worker]))
                used += workers * per_worker
    finally:
        for env in envs:
            env.close()
    for r in runs:
        # the real runs share this machine's cores: the envs, the policy and our Python between them
        pred = predict_throughput(r["workers"], 1, sim["sim_s_per_chunk"], sim["chunks_per_episode"], sim["reset_s"],
                                  supply, service.max_batch, service.max_wait_s, cpus=os.cpu_count())
        r.update(predicted_episodes_per_hour=pred.episodes_per_hour, predicted_mean_batch=pred.mean_batch,
                 error=pred.episodes_per_hour / r["episodes_per_hour"] - 1)
    # what the real path costs a chunk beyond the env's step and the batch's decode (the Redis round trip,
    # packing frames, our Python): fitted on the W=1 run, then W=2 is predicted with it, which checks it
    chunks = sim["chunks_per_episode"]
    measured_1, predicted_1 = (runs[0][k] * chunks / 3600 for k in ("episodes_per_hour", "predicted_episodes_per_hour"))
    overhead_s = max(0.0, 1 / measured_1 - 1 / predicted_1)
    for r in runs[1:]:
        pred = predict_throughput(r["workers"], 1, sim["sim_s_per_chunk"] + overhead_s, chunks, sim["reset_s"],
                                  supply, service.max_batch, service.max_wait_s, cpus=os.cpu_count())
        r.update(fitted_predicted_episodes_per_hour=pred.episodes_per_hour,
                 fitted_error=pred.episodes_per_hour / r["episodes_per_hour"] - 1)
    cluster = cluster_table({**sim, "sim_s_per_chunk": sim["sim_s_per_chunk"] + overhead_s})

    print(f"tiny-cpu, {args.suite} task {args.task}, episodes of {max_steps} steps (K={chunk}), "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"SimWorker: {1000 * sim['sim_s_per_chunk']:.0f} ms sim per chunk "
          f"({1000 * sim['sim_s_per_chunk'] / chunk:.0f} ms a step), reset {1000 * sim['reset_s']:.0f} ms, "
          f"demand {1 / sim['sim_s_per_chunk']:.2f} chunks/s")
    print(f"{'batch':>5s} {'latency ms':>10s} {'chunks/s':>9s} {'vs B=1':>7s}")
    for b, s in latency.items():
        print(f"{b:5d} {1000 * s:10.0f} {b / s:9.2f} {supply.at(b) / supply.at(1):7.2f}")
    print(f"{'W':>2s} {'P':>2s} {'episodes':>8s} {'measured ep/h':>13s} {'vs W=1':>7s} {'predicted ep/h':>14s} "
          f"{'error':>6s} {'batch meas/pred':>15s}")
    for r in runs:
        print(f"{r['workers']:2d} {1:2d} {r['episodes']:8d} {r['episodes_per_hour']:13.0f} "
              f"{r['episodes_per_hour'] / runs[0]['episodes_per_hour']:7.2f} {r['predicted_episodes_per_hour']:14.0f} "
              f"{100 * r['error']:+5.0f}% {r['mean_batch']:7.2f}/{r['predicted_mean_batch']:.2f}")
    print(f"per-chunk overhead of the real path, fitted on W=1: {1000 * overhead_s:.0f} ms; with it W=2 is predicted "
          f"at {runs[1]['fitted_predicted_episodes_per_hour']:.0f} ep/h, error {100 * runs[1]['fitted_error']:+.0f}%")
    print(f"\nMODEL: {CLUSTER_EPISODES} {CLUSTER_SUITE} episodes (each to the {SUITES.get(CLUSTER_SUITE).max_steps}-step "
          f"cap) on cluster.yaml's nodes; sim as measured here (with the fitted overhead), {SIMS_PER_CPU_NODE} SimWorkers a CPU node; "
          f"GPU side an ASSUMPTION: paper's {PAPER_ACTIONS_PER_S} FPS at batch 1, +{GPU_EXTRA_PER_REQUEST:.0%} "
          f"latency per extra request, {GPUS_PER_NODE} PolicyServers a GPU node")
    print(f"{'CPU nodes':>9s} {'GPU nodes':>9s} {'W':>4s} {'P':>3s} {'ep/h':>7s} {'hours':>6s} {'bound':>6s} "
          f"{'batch':>5s} {'rule: W':>7s} {'rule ep/h':>9s}")
    for c in cluster:
        print(f"{c['cpu_nodes']:9d} {c['gpu_nodes']:9d} {c['workers']:4d} {c['servers']:3d} "
              f"{c['episodes_per_hour']:7.0f} {c['hours']:6.1f} {c['bound']:>6s} {c['mean_batch']:5.1f} "
              f"{c['rule_workers']:7d} {c['rule_episodes_per_hour']:9.0f}")
    print(json.dumps({
        "bench": "scale", "quick": args.quick, "max_steps": max_steps, "chunk": chunk,
        "sim_ms_per_chunk": round(1000 * sim["sim_s_per_chunk"], 1), "reset_ms": round(1000 * sim["reset_s"], 1),
        "batch_latency_ms": {str(b): round(1000 * s, 1) for b, s in latency.items()},
        "supply_vs_b1": {str(b): round(supply.at(b) / supply.at(1), 3) for b in latency},
        "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
        "max_abs_error": round(max(abs(r["error"]) for r in runs), 4),
        "overhead_ms_per_chunk": round(1000 * overhead_s, 1), "fitted_error_w2": round(runs[1]["fitted_error"], 4),
        "speedup_w2_over_w1": round(runs[1]["episodes_per_hour"] / runs[0]["episodes_per_hour"], 3),
        "cluster_assumption": {"paper_actions_per_s": PAPER_ACTIONS_PER_S, "gpu_extra_per_request": GPU_EXTRA_PER_REQUEST},
        "cluster": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in c.items()} for c in cluster],
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_count": os.cpu_count(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
