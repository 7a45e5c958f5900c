"""PolicyServer: a Ray actor around `PolicyService` (one GPU when the cluster has one, else CPU)."""

from __future__ import annotations

import os
import threading
from dataclasses import asdict

import ray
import torch

from actors.weight_registry import WeightFollower
from worldvla_dist.config import from_dict
from worldvla_dist.model.checkpoint import load_for_inference
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.policy_service import PolicyService, PolicyServiceConfig


@ray.remote(max_concurrency=4)  # serve() runs in one thread; health / stop / set_weights answer meanwhile
class PolicyServer:
    def __init__(self, redis_url: str, checkpoint: str, service: dict | None = None, tokenizer_dir: str | None = None,
                 preset: str | None = None, history: int = 2, torch_threads: int | None = None,
                 weight_version: int = 0, follow_run_id: str | None = None):
        """`follow_run_id`: serve the version that run's evaluation round serves (WeightRegistry.serve)."""
        if torch_threads:
            torch.set_num_threads(torch_threads)
        model, tokens = load_for_inference(checkpoint, tokenizer_dir, preset)
        self.config = from_dict(PolicyServiceConfig, service or {})
        self.service = PolicyService(connect(redis_url), ChunkPolicy(model, tokens, history), self.config, weight_version)
        self._stop = threading.Event()
        self.follower = None
        if follow_run_id:
            self.follower = WeightFollower(redis_url, follow_run_id, self.service.set_weights, weight_version,
                                           served=True).start()

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def health(self) -> dict:
        return {"ok": True, "consumer": self.service.consumer, "weight_version": self.service.weight_version,
                "device": str(self.service.policy.model.device), **self.service.stats.as_dict()}

    def serve(self) -> dict:
        """Blocks until `stop()`; returns the service's statistics."""
        self.service.serve_forever(self._stop.is_set)
        return self.service.stats.as_dict()

    def stop(self) -> None:
        self._stop.set()
        if self.follower:
            self.follower.stop()

    def set_weights(self, state_dict: dict, version: int) -> None:
        self.service.set_weights(state_dict, version)

    def config_dict(self) -> dict:
        return asdict(self.config)
