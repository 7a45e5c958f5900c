"""ImaginationWorker: a Ray actor around the library's `ImaginationWorker` (one GPU when asked for and
present, else CPU); it can follow a training run's published weights."""

from __future__ import annotations

import logging
import os

import ray
import torch

from actors.weight_registry import WeightFollower
from worldvla_dist.config import from_dict
from worldvla_dist.imagination.imagination_worker import ImaginationWorker as Worker
from worldvla_dist.imagination.imagination_worker import ImaginationWorkerConfig
from worldvla_dist.imagination.scoring import RolloutScorer, ScoringConfig
from worldvla_dist.model.checkpoint import load_for_inference
from worldvla_dist.runtime.redis_client import connect


@ray.remote(max_concurrency=2)  # serve() in one thread; pid / stats answer meanwhile
class ImaginationWorker:
    def __init__(self, redis_url: str, checkpoint: str, worker: dict, scoring: dict | None = None,
                 tokenizer_dir: str | None = None, preset: str | None = None, torch_threads: int | None = None,
                 weight_version: int = 0, follow_run_id: str | None = None, name: str | None = None):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        if torch_threads:
            torch.set_num_threads(torch_threads)
        model, tokens = load_for_inference(checkpoint, tokenizer_dir, preset)
        scorer = RolloutScorer(from_dict(ScoringConfig, scoring or {}))
        self.worker = Worker(connect(redis_url), from_dict(ImaginationWorkerConfig, worker), model, tokens, scorer,
                             weight_version, name)
        self.follower = None
        if follow_run_id:
            self.follower = WeightFollower(redis_url, follow_run_id, self.worker.set_weights, weight_version).start()

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def stats(self) -> dict:
        return {"name": self.worker.name, "rollouts": self.worker.rollouts_run, "frames": self.worker.frames_imagined,
                "weight_version": self.worker.weight_version}

    def serve(self) -> dict:
        """Runs rollouts until the run's stop key is set; returns the worker's counts."""
        try:
            self.worker.serve_forever()
            return self.stats()
        finally:
            if self.follower:
                self.follower.stop()
