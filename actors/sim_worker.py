"""SimWorker: a Ray actor around `EpisodeWorker`; it asks the PolicyServer for actions over Redis."""

from __future__ import annotations

import logging
import os

import ray

from worldvla_dist.config import from_dict
from worldvla_dist.evaluation.episode_worker import EpisodeWorker, EpisodeWorkerConfig
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.serving.policy_service import PolicyServiceConfig
from worldvla_dist.serving.remote_policy import RemotePolicy


@ray.remote(max_concurrency=2)  # serve() in one thread; pid / env_pid answer meanwhile
class SimWorker:
    def __init__(self, redis_url: str, worker: dict, policy_queue: str = PolicyServiceConfig.queue,
                 policy_timeout_s: float = 60.0, name: str | None = None):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        policy = RemotePolicy(connect(redis_url), PolicyServiceConfig(queue=policy_queue), timeout_s=policy_timeout_s)
        self.worker = EpisodeWorker(connect(redis_url), from_dict(EpisodeWorkerConfig, worker), policy, name)

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def env_pid(self) -> int | None:
        return self.worker.env_pid

    def serve(self) -> int:
        """Runs episodes until the run's stop key is set; returns how many it ran."""
        try:
            return self.worker.serve_forever()
        finally:
            self.worker.close()
