"""Starts the PolicyServer(s) and W SimWorkers for one evaluation run, sizes W by the queue and the
servers' measured supply (worldvla_dist/evaluation/capacity.py), and replaces any actor that dies
(`ServeSupervisor`; a killed actor's unacked work is reclaimed by the others through the Redis queues)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import ray
from ray.exceptions import RayActorError

from actors.policy_server import PolicyServer
from actors.sim_worker import SimWorker
from actors.supervisor import ServeSupervisor
from worldvla_dist.evaluation.capacity import ScalingDecision, SupplyCurve, choose_workers
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.serving.policy_service import PolicyServiceConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetConfig:
    checkpoint: str
    num_workers: int = 2
    tokenizer_dir: str | None = None
    preset: str | None = None
    history: int = 2
    policy_cpus: float = 1.0
    policy_gpus: float = 0.0  # 1 when the cluster has GPUs
    policy_torch_threads: int | None = None
    policy_timeout_s: float = 60.0  # a SimWorker re-sends a request unanswered this long
    worker_cpus: float = 1.0
    max_workers: int | None = None  # > num_workers: add SimWorkers (and ask the autoscaler) as the queue grows
    episodes_per_worker: int = 10  # queue depth that justifies one more SimWorker
    max_servers: int = 1  # > 1: add a PolicyServer (same request stream, own consumer) when supply binds
    weight_version: int = 0  # the version of `checkpoint`
    follow_run_id: str | None = None  # PolicyServers take the version this training run serves (a round's)


def default_num_workers(policy_cpus: float) -> int:
    """One SimWorker per CPU of the cluster that the PolicyServer does not take."""
    return max(1, int(ray.cluster_resources().get("CPU", 2) - policy_cpus))


class EvalFleet:
    def __init__(self, redis_url: str, fleet: FleetConfig, worker: EpisodeWorkerConfig, service: PolicyServiceConfig):
        self.redis_url, self.fleet, self.worker_config, self.service_config = redis_url, fleet, worker, service
        self.supervisor = ServeSupervisor()
        self._requested_cpus = False  # an autoscaler request of ours is in force
        self.decision: ScalingDecision | None = None  # the last sizing, with its reason
        self.server_stats: dict[int, dict] = {}  # after stop(): each PolicyServer's statistics

    @property
    def servers(self) -> list:
        return self.supervisor.of_kind("policy")

    @property
    def workers(self) -> list:
        return self.supervisor.of_kind("sim")

    @property
    def restarts(self) -> dict[str, int]:
        return self.supervisor.restarts

    def _start_server(self, index: int):
        f = self.fleet
        return self.supervisor.launch("policy", index, lambda: PolicyServer.options(
            num_cpus=f.policy_cpus, num_gpus=f.policy_gpus).remote(
            self.redis_url, f.checkpoint, asdict(self.service_config), f.tokenizer_dir, f.preset, f.history,
            f.policy_torch_threads, f.weight_version, f.follow_run_id))

    def _start_worker(self, index: int):
        return self.supervisor.launch("sim", index, lambda: SimWorker.options(num_cpus=self.fleet.worker_cpus).remote(
            self.redis_url, asdict(self.worker_config), self.service_config.queue, self.fleet.policy_timeout_s,
            f"sim-{index}"))

    def start(self) -> "EvalFleet":
        self._start_server(0)
        for i in range(self.fleet.num_workers):
            self._start_worker(i)
        return self

    def policy_stats(self, timeout_s: float = 10.0) -> list[dict]:
        """Each live PolicyServer's `ServiceStats.as_dict()` (one busy past `timeout_s`, or dead, is left out)."""
        out = []
        for server in self.servers:
            try:
                out.append(ray.get(server.health.remote(), timeout=timeout_s))
            except (RayActorError, ray.exceptions.RayTaskError, ray.exceptions.GetTimeoutError):
                pass
        return out

    def wait_for_version(self, version: int, timeout_s: float = 300.0, poll_s: float = 0.5) -> bool:
        """True once every live PolicyServer serves `version` (a round's episodes are queued only then)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.policy_stats()
            if stats and all(s["weight_version"] == version for s in stats):
                return True
            time.sleep(poll_s)
        return False

    def measured_supply(self, stats: list[dict] | None = None) -> SupplyCurve | None:
        """One server's supply curve: at each batch size, the mean over the servers that measured it."""
        by_batch: dict[int, list[float]] = {}
        for s in self.policy_stats() if stats is None else stats:
            for b, c in s.get("supply_chunks_per_s", {}).items():
                by_batch.setdefault(int(b), []).append(c)
        return SupplyCurve.from_stats({b: sum(cs) / len(cs) for b, cs in by_batch.items()})

    def scale_to_queue(self, depth: int, supply: SupplyCurve | None = None, demand: float | None = None) -> int:
        """With `max_workers` set: asks the autoscaler for CPU bundles for the SimWorkers the rule
        chooses (`choose_workers`: the queue depth, bounded by the servers' `supply` against a
        worker's `demand` in chunks/s once both are measured) and starts them (they wait for their
        node); never scales below `num_workers`, never stops a worker. Where supply binds and
        `max_servers` allows, adds a PolicyServer. Returns the number of SimWorkers."""
        f = self.fleet
        have = len(self.workers)
        if f.max_workers is None or self.supervisor.stopping:
            return have
        decision = choose_workers(depth, max(1, f.episodes_per_worker), f.num_workers,
                                  max(1, f.max_workers, f.num_workers),
                                  supply, demand, servers=len(self.servers), max_batch=self.service_config.max_batch)
        if decision != self.decision:
            log.info("SimWorkers: %d (%s)", decision.workers, decision.reason)
        self.decision = decision
        wants_more = -(-depth // max(1, f.episodes_per_worker)) > decision.workers
        add_server = decision.bound == "supply" and wants_more and len(self.servers) < f.max_servers
        if add_server or decision.workers > have:
            from ray.autoscaler.sdk import request_resources

            server = {k: v for k, v in (("CPU", f.policy_cpus), ("GPU", f.policy_gpus)) if v}
            extra_servers = len(self.servers) - 1 + add_server  # the first one is placed by start()
            request_resources(bundles=[{"CPU": f.worker_cpus}] * max(have, decision.workers)
                              + ([server] * extra_servers if server else []))
            self._requested_cpus = True
        if add_server:
            log.info("supply binds: adding PolicyServer %d on the same request stream", len(self.servers))
            self._start_server(len(self.servers))
        if decision.workers > have:
            log.info("queue depth %d: scaling SimWorkers %d -> %d", depth, have, decision.workers)
            for i in range(have, decision.workers):
                self._start_worker(i)
        return len(self.workers)

    def withdraw_resource_request(self) -> None:
        """Cancels what scale_to_queue asked the autoscaler for: a request stays in force after the job
        ends, and the nodes it holds are never released as idle."""
        if self._requested_cpus:
            from ray.autoscaler.sdk import request_resources

            request_resources(num_cpus=0)  # an empty request replaces the last one
            self._requested_cpus = False

    def placement(self) -> dict[str, list[str]]:
        """Node ids the live actors run on (a dead one is left out)."""
        return {"policy": self.supervisor.node_ids("policy"), "sim": self.supervisor.node_ids("sim")}

    def supervise(self) -> list[str]:
        """Replaces actors whose serve() ended in an error; returns what was restarted."""
        return self.supervisor.supervise()

    def stop(self, timeout_s: float = 60.0) -> dict:
        """Call after the run's stop key is set: servers stop, workers finish their loop. Returns the
        first PolicyServer's statistics (all of them, by index, in `server_stats`)."""
        self.withdraw_resource_request()
        for s in self.servers:
            try:
                s.stop.remote()
            except RayActorError:
                pass
        values = self.supervisor.finish(timeout_s)
        self.server_stats = {i: v for (kind, i), v in sorted(values.items()) if kind == "policy"}
        return values.get(("policy", 0), {})
