"""The learner on Ray Train: `launch_learner` runs `run_training` in N data-parallel workers through
TorchTrainer (gloo on the CPU, nccl on GPUs); rank 0 publishes weights to the WeightRegistry."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from actors.weight_registry import get_or_create_registry
from worldvla_dist.config import from_dict, to_dict
from worldvla_dist.runtime.metrics_stream import MetricsStream
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.training.train_run import TrainRunConfig, run_training


def _train_loop_per_worker(loop_config: dict) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = from_dict(TrainRunConfig, loop_config["run"])
    registry = get_or_create_registry(loop_config["redis_url"], loop_config["run_id"]) if loop_config["redis_url"] else None

    metrics = MetricsStream(connect(loop_config["redis_url"]), f"train:{loop_config['run_id']}:metrics") \
        if loop_config["redis_url"] else None

    def publish(state_dict, version, folder):
        if registry is not None:
            ray.get(registry.publish.remote(state_dict, version))

    def report(logs):
        # Not `ray.train.report`: it is a barrier through the controller (~1.1 s a call on 2 cores, more
        # than a tiny-preset step), and Ray Train V2 keeps metrics only with checkpoints anyway
        if logs["rank"] != 0:
            return
        logs = {**logs, "pid": os.getpid()}
        if metrics is not None:
            metrics.append(logs)
        else:
            logging.getLogger("learner").info("step %d: %s", logs["step"], logs)

    run_training(config, report=report, publish=publish)


def launch_learner(config: TrainRunConfig, num_workers: int = 1, use_gpu: bool = False, redis_url: str | None = None,
                   run_id: str = "train", cpus_per_worker: float = 1.0, max_failures: int = 3):
    """Blocks until training ends; returns Ray Train's Result. Rank 0's logs go to the Redis stream
    `train:<run_id>:metrics` (MetricsStream) when a Redis URL is given. A worker that dies makes Ray
    Train restart the group (up to `max_failures` times), and `run_training` resumes from the last
    checkpoint."""
    trainer = TorchTrainer(
        _train_loop_per_worker,
        train_loop_config={"run": to_dict(config), "redis_url": redis_url, "run_id": run_id},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker}),
        run_config=RunConfig(name=f"learner-{run_id}", storage_path=str(Path(config.run_dir).resolve() / "ray_train"),
                             failure_config=FailureConfig(max_failures=max_failures)))
    return trainer.fit()
