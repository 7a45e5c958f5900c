"""How many SimWorkers an evaluation can use: the queue's want, bounded by what the PolicyServers
can feed (`choose_workers`), and the episodes/hour a fleet of W SimWorkers and P PolicyServers is
predicted to reach (`predict_throughput`), both from measured rates, no Ray.

Supply is a PolicyServer's chunks/s at batch B (`ServiceStats.supply_curve`); demand is what one
SimWorker asks for when it does not wait: policy calls over the seconds it spent stepping its env
(`EpisodeResult.seconds - policy_wait_s`). The rule stops adding SimWorkers once they are predicted
to draw `headroom` (0.8, as vla-evaluation-harness's tuning guide does) of the most the servers can
deliver. The prediction counts that a worker waiting on its answer asks nothing meanwhile: W workers
do not make batches of W / P. An earlier rule assumed they did and, at a GPU's speed (batching pays,
one worker already waits long), kept 1 to 3 SimWorkers and the GPU's batches empty."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from worldvla_dist.errors import ConfigError

HEADROOM = 0.8  # demand kept this far under supply: past it queue waits grow without bound


@dataclass(frozen=True)
class SupplyCurve:
    """Chunks/s a PolicyServer delivers at each measured batch size."""

    chunks_per_s: Mapping[int, float]

    @classmethod
    def from_stats(cls, supply: Mapping[str | int, float] | None) -> "SupplyCurve | None":
        """From `ServiceStats.as_dict()["supply_chunks_per_s"]` (string keys); None when nothing was measured."""
        curve = {int(b): float(c) for b, c in (supply or {}).items() if float(c) > 0}
        return cls(curve) if curve else None

    def latency_s(self, batch: float) -> float:
        """Seconds one batch of `batch` takes: linear between measured sizes; below the smallest, the
        smallest's (a smaller batch is no slower); above the largest, growing with B at the largest's
        per-chunk cost (no gain from batching is assumed past what was measured)."""
        if batch <= 0:
            raise ConfigError(f"SupplyCurve.latency_s: batch must be > 0, got {batch}")
        points = sorted((b, b / c) for b, c in self.chunks_per_s.items())
        if batch <= points[0][0]:
            return points[0][1]
        for (b0, l0), (b1, l1) in zip(points, points[1:]):
            if batch <= b1:
                return l0 + (l1 - l0) * (batch - b0) / (b1 - b0)
        b_max, l_max = points[-1]
        return l_max * batch / b_max

    def at(self, batch: float) -> float:
        """Chunks/s at batch `batch` (B / latency)."""
        return batch / self.latency_s(batch)


def demand_chunks_per_s(results: Iterable) -> float | None:
    """Chunks/s one SimWorker asks for when not waiting on the policy, from `EpisodeResult`s (or
    their payloads): total policy calls over total sim seconds. None before any usable episode
    (errors, and results without `policy_wait_s`, are left out)."""
    calls, sim_s = 0, 0.0
    for r in results:
        r = r if isinstance(r, Mapping) else r.__dict__
        if r.get("error") or not r.get("policy_calls") or r.get("policy_wait_s") is None:
            continue
        calls += r["policy_calls"]
        sim_s += max(0.0, r["seconds"] - r["policy_wait_s"])
    return calls / sim_s if calls and sim_s > 0 else None


@dataclass(frozen=True)
class ScalingDecision:
    workers: int
    bound: str  # "queue", "supply", "max" or "min": what set the count
    reason: str  # one line for logs and summary.json

    def as_dict(self) -> dict:
        return {"workers": self.workers, "bound": self.bound, "reason": self.reason}


def supply_bound(supply: SupplyCurve, demand: float, servers: int, max_batch: int, limit: int,
                 headroom: float = HEADROOM) -> tuple[int, Prediction] | None:
    """The fewest SimWorkers (up to `limit`) predicted (`predict_throughput`) to draw `headroom` of the
    most the servers can deliver (P x their best chunks/s at batch <= `max_batch`), and that prediction;
    None when `limit` workers do not (supply does not bind). Past that count a worker adds little but waiting. Where batching pays (a
    GPU) this fills the servers' batches: a batch of B needs about B x (sim + response) / latency
    waiting workers, not B; where it does not, it keeps demand near `headroom` of the batch-1 supply."""
    most = servers * max(supply.at(b) for b in range(1, max_batch + 1))
    sim_s = 1.0 / demand
    for w in range(1, limit + 1):
        prediction = predict_throughput(w, servers, sim_s, 1.0, 0.0, supply, max_batch)
        if prediction.chunks_per_s >= headroom * most:
            return w, prediction
    return None


def choose_workers(queue_depth: int, episodes_per_worker: int, min_workers: int, max_workers: int,
                   supply: SupplyCurve | None = None, demand: float | None = None, servers: int = 1,
                   max_batch: int = 8, headroom: float = HEADROOM) -> ScalingDecision:
    """SimWorkers for this queue depth: one per `episodes_per_worker` queued episodes, at most
    `max_workers`, and, once both supply and demand are measured, no more than the servers can feed;
    never fewer than `min_workers`. Without a measurement it is the queue rule alone."""
    if episodes_per_worker < 1 or min_workers < 0 or max_workers < max(1, min_workers) or servers < 1:
        raise ConfigError("choose_workers: need episodes_per_worker >= 1, 0 <= min_workers <= max_workers, "
                          f"servers >= 1; got {episodes_per_worker}, {min_workers}, {max_workers}, {servers}")
    by_queue = -(-max(0, queue_depth) // episodes_per_worker)
    candidates = [(by_queue, "queue", f"{queue_depth} queued / {episodes_per_worker} per worker"),
                  (max_workers, "max", f"max_workers {max_workers}")]
    bound_by_supply = supply_bound(supply, demand, servers, max_batch, max_workers, headroom) \
        if supply is not None and demand else None
    if bound_by_supply:
        fits, fed = bound_by_supply
        candidates.append((fits, "supply", f"a worker asks {demand:.2f} chunks/s; {fits} are predicted to draw "
                                           f"{fed.chunks_per_s:.2f} chunks/s from {servers} PolicyServer(s) at "
                                           f"batch {fed.mean_batch:.1f}, {headroom:.0%} of their most"))
    count, bound, why = min(candidates, key=lambda c: (c[0], ["supply", "max", "queue"].index(c[1])))
    if count < min_workers:
        return ScalingDecision(min_workers, "min", f"min_workers {min_workers} (else {bound}-bound: {why})")
    return ScalingDecision(count, bound, f"{bound}-bound: {why}")


@dataclass(frozen=True)
class Prediction:
    episodes_per_hour: float
    chunks_per_s: float
    mean_batch: float
    server_utilisation: float  # busy fraction of each PolicyServer
    bound: str  # "sim" (workers never wait long), "policy" (servers saturated) or "cpu" (the shared cores are)

    def as_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def predict_throughput(workers: int, servers: int, sim_s_per_chunk: float, chunks_per_episode: float,
                       episode_overhead_s: float, supply: SupplyCurve, max_batch: int = 8,
                       max_wait_s: float = 0.0, cpus: float | None = None) -> Prediction:
    """Steady-state episodes/hour of W closed-loop SimWorkers on P PolicyServers. A worker's cycle
    per chunk is its sim time Z plus the response R; the servers carry X chunks/s in batches of
    b = X / P x latency(b) (what arrives while one batch decodes, 1 <= b <= min(W / P, max_batch)),
    and R = latency(b) x (1 + utilisation / 2) (on average half a batch in progress ahead) + the
    batching wait. X = W / (Z + R), capped at P x supply(b); solved by fixed-point iteration. With
    `cpus` (workers and CPU servers on one machine's cores) X is also capped at cpus over the
    core-seconds a chunk costs (Z, its share of the reset, latency(b) / b); without, each SimWorker
    has its core and each server its device."""
    if workers < 1 or servers < 1 or sim_s_per_chunk < 0 or chunks_per_episode <= 0:
        raise ConfigError(f"predict_throughput: need workers, servers >= 1, sim_s_per_chunk >= 0, chunks_per_episode "
                          f"> 0; got {workers}, {servers}, {sim_s_per_chunk}, {chunks_per_episode}")
    cycle_overhead = episode_overhead_s / chunks_per_episode  # env resets spread over the episode's chunks
    batch_cap = min(max(1.0, workers / servers), max_batch)

    def cpu_cap(batch: float) -> float:  # chunks/s the shared cores can carry at this batch
        return cpus / (sim_s_per_chunk + cycle_overhead + supply.latency_s(batch) / batch) if cpus else math.inf

    batch, x = 1.0, 0.0
    for _ in range(200):
        latency = supply.latency_s(batch)
        util = min(1.0, x / servers * latency / batch) if x else 0.0
        response = latency * (1 + util / 2) + (max_wait_s if batch > 1 else 0.0)
        offered = workers / (sim_s_per_chunk + cycle_overhead + response)  # what the workers would ask
        x_new = min(offered, servers * supply.at(batch), cpu_cap(batch))
        batch_new = min(batch_cap, max(1.0, offered / servers * latency))  # a saturated server's batch grows
        if abs(x_new - x) < 1e-9 and abs(batch_new - batch) < 1e-9:
            break
        x, batch = x_new, 0.5 * batch + 0.5 * batch_new  # damped: batch and rate feed each other
    latency = supply.latency_s(batch)
    util = min(1.0, x / servers * latency / batch)
    cpu_bound = x >= 0.999 * cpu_cap(batch)
    return Prediction(3600 * x / chunks_per_episode, x, batch, util,
                      "cpu" if cpu_bound else "policy" if util > HEADROOM else "sim")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def serving_report(policy_stats: Mapping, scaling: Mapping | None, demand: float | None) -> str:
    """The eval summary's capacity lines for the terminal: the PolicyServer's utilisation, mean batch,
    queue wait and chunk latency p50 / p99 (ms), its supply curve, and the worker count chosen and why."""
    s = policy_stats
    if not s:
        return "PolicyServer: no statistics (nothing was run)"
    supply = ", ".join(f"B={b} {c:.2f}" for b, c in s.get("supply_chunks_per_s", {}).items()) or "-"
    lines = [f"PolicyServer: utilisation {s.get('utilisation', 0):.0%}, mean batch {s.get('mean_batch_size', 0):.2f}, "
             f"{s.get('requests', 0)} chunks, queue wait p50/p99 {_ms(s.get('queue_wait_ms_p50'))}/"
             f"{_ms(s.get('queue_wait_ms_p99'))} ms, chunk latency p50/p99 {_ms(s.get('latency_ms_p50'))}/"
             f"{_ms(s.get('latency_ms_p99'))} ms",
             f"supply (chunks/s at batch B): {supply}",
             f"a SimWorker's demand: {'-' if demand is None else f'{demand:.2f}'} chunks/s when not waiting"]
    if scaling:
        lines.append(f"SimWorkers: {scaling['workers']} ({scaling['reason']})")
    return "\n".join(lines)
