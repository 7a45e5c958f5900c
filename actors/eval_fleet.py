"""Starts the PolicyServer and W SimWorkers for one evaluation run, and replaces any that die
(a killed actor's unacked work is reclaimed by the others through the Redis queues)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import ray
from ray.exceptions import RayActorError, RayTaskError

from actors.policy_server import PolicyServer
from actors.sim_worker import SimWorker
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
    weight_version: int = 0  # the version of `checkpoint`
    follow_run_id: str | None = None  # PolicyServers take the newer weights this training run publishes


def default_num_workers(policy_cpus: float) -> int:
    """One SimWorker per CPU of the cluster that the PolicyServer does not take."""
    return max(1, int(ray.cluster_resources().get("CPU", 2) - policy_cpus))


class EvalFleet:
    def __init__(self, redis_url: str, fleet: FleetConfig, worker: EpisodeWorkerConfig, service: PolicyServiceConfig):
        self.redis_url, self.fleet, self.worker_config, self.service_config = redis_url, fleet, worker, service
        self.servers: list = []
        self.workers: list = []
        self._runs: dict = {}  # serve() ref -> (kind, index)
        self.restarts = {"policy": 0, "sim": 0}
        self.stopping = False

    def _start_server(self, index: int):
        f = self.fleet
        actor = PolicyServer.options(num_cpus=f.policy_cpus, num_gpus=f.policy_gpus).remote(
            self.redis_url, f.checkpoint, asdict(self.service_config), f.tokenizer_dir, f.preset, f.history,
            f.policy_torch_threads, f.weight_version, f.follow_run_id)
        self._runs[actor.serve.remote()] = ("policy", index)
        return actor

    def _start_worker(self, index: int):
        actor = SimWorker.options(num_cpus=self.fleet.worker_cpus).remote(
            self.redis_url, asdict(self.worker_config), self.service_config.queue, self.fleet.policy_timeout_s,
            f"sim-{index}")
        self._runs[actor.serve.remote()] = ("sim", index)
        return actor

    def start(self) -> "EvalFleet":
        self.servers = [self._start_server(0)]
        self.workers = [self._start_worker(i) for i in range(self.fleet.num_workers)]
        return self

    def scale_to_queue(self, depth: int) -> int:
        """With `max_workers` set: asks the autoscaler for CPU bundles for the SimWorkers the queue
        depth justifies and starts them (they wait for their node); never scales below `num_workers`.
        Returns the number of SimWorkers."""
        f = self.fleet
        if f.max_workers is None or self.stopping:
            return len(self.workers)
        wanted = max(f.num_workers, min(f.max_workers, -(-depth // max(1, f.episodes_per_worker))))
        if wanted > len(self.workers):
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=[{"CPU": f.worker_cpus}] * wanted)
            log.info("queue depth %d: scaling SimWorkers %d -> %d", depth, len(self.workers), wanted)
            self.workers += [self._start_worker(i) for i in range(len(self.workers), wanted)]
        return len(self.workers)

    def placement(self) -> dict[str, list[str]]:
        """Node ids the live actors run on (a dead one is left out)."""
        def nodes(actors):
            out = []
            for actor in actors:
                try:
                    out.append(ray.get(actor.node_id.remote(), timeout=30))
                except (RayActorError, RayTaskError, ray.exceptions.GetTimeoutError):
                    pass
            return out

        return {"policy": nodes(self.servers), "sim": nodes(self.workers)}

    def supervise(self) -> list[str]:
        """Replaces actors whose serve() ended in an error; returns what was restarted."""
        if self.stopping or not self._runs:
            return []
        finished, _ = ray.wait(list(self._runs), num_returns=len(self._runs), timeout=0)
        events = []
        for ref in finished:
            kind, index = self._runs.pop(ref)
            try:
                ray.get(ref)
                continue  # a clean end (stop key set): nothing to replace
            except (RayActorError, RayTaskError) as e:
                events.append(f"{kind} actor {index} died ({type(e).__name__}: {str(e)[-800:]}); restarting")
                log.warning(events[-1])
            self.restarts[kind] += 1
            if kind == "policy":
                self.servers[index] = self._start_server(index)
            else:
                self.workers[index] = self._start_worker(index)
        return events

    def stop(self, timeout_s: float = 60.0) -> dict:
        """Call after the run's stop key is set: servers stop, workers finish their loop."""
        self.stopping = True
        stats = {}
        for s in self.servers:
            try:
                s.stop.remote()
            except RayActorError:
                pass
        ready, not_ready = ray.wait(list(self._runs), num_returns=len(self._runs), timeout=timeout_s)
        for ref in ready:
            kind, index = self._runs[ref]
            try:
                value = ray.get(ref)
                if kind == "policy":
                    stats = value
            except (RayActorError, RayTaskError) as e:
                log.warning("%s actor %d ended with %s", kind, index, type(e).__name__)
        for actor in self.servers + self.workers:
            ray.kill(actor)
        self._runs.clear()
        return stats
