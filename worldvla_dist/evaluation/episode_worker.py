"""The loop behind a SimWorker: take an episode spec off the run's queue, run it in an env process
(`EnvProcess`: a crash or hang kills only that process), write the result once, ack.

- A spec whose result already exists is acked and skipped (its first worker died after writing).
- An env crash or hang, or an unreachable policy, retries the episode from the same init state up
  to `max_episode_attempts` times; then the result records the error (counted apart from failures).
- A spec that names no real task is dead-lettered with the reason; the worker goes on.
- While an episode runs, the worker touches its queue entry after each chunk, so only a dead
  worker's entry is reclaimed by the others."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import redis

from worldvla_dist.envs.env_process import EnvCrashed, EnvProcess
from worldvla_dist.envs.libero_env import LiberoEnvConfig
from worldvla_dist.evaluation.episodes import SPEC_FIELDS, EpisodeResult, EpisodeSpec, InvalidSpec, Policy, run_episode
from worldvla_dist.evaluation.video import write_mp4
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import QueueConfig, WorkQueue
from worldvla_dist.serving.remote_policy import PolicyRejected, PolicyUnavailable

log = logging.getLogger(__name__)

RETRYABLE = (EnvCrashed, PolicyUnavailable)


@dataclass(frozen=True)
class EvalChannels:
    """The Redis names one evaluation run uses."""

    run_id: str

    @property
    def episodes(self) -> str:
        return f"eval:{self.run_id}:episodes"

    @property
    def results(self) -> str:
        return f"eval:{self.run_id}:results"

    @property
    def stop_key(self) -> str:
        return f"eval:{self.run_id}:stop"


@dataclass(frozen=True)
class EpisodeWorkerConfig:
    run_id: str
    image_size_px: int = 128
    history: int = 2  # M, frames the policy sees
    render: str = "on_demand"  # "every_step": the reference script's rendering, for comparisons
    step_timeout_s: float = 60.0  # per env call: longer means hung
    max_episode_attempts: int = 2
    reclaim_after_s: float = 120.0  # a spec unacked (and untouched) this long belonged to a dead worker
    video_dir: str | None = None

    def queue_config(self) -> QueueConfig:
        return QueueConfig(EvalChannels(self.run_id).episodes, group="sim-workers",
                           reclaim_after_s=self.reclaim_after_s, max_deliveries=3, required_fields=SPEC_FIELDS)


class EpisodeWorker:
    def __init__(self, client: redis.Redis, config: EpisodeWorkerConfig, policy: Policy, name: str | None = None):
        self.redis, self.config, self.policy = client, config, policy
        self.name = name or f"sim-{uuid.uuid4().hex[:8]}"
        self.channels = EvalChannels(config.run_id)
        self.queue = WorkQueue(client, config.queue_config())
        self.results = ResultStore(client, self.channels.results)
        self.env: EnvProcess | None = None
        self.episodes_run = 0

    @property
    def env_pid(self) -> int | None:
        """The env process's pid once it is up (None while it starts)."""
        return self.env.pid if self.env is not None and self.env.ready else None

    def _env_for(self, spec: EpisodeSpec) -> EnvProcess:
        wanted = LiberoEnvConfig(spec.suite, spec.task, image_size_px=self.config.image_size_px,
                                 max_steps=spec.max_steps, render=self.config.render)
        if self.env is None or self.env.config != wanted:
            if self.env is not None:
                self.env.close()
            self.env = EnvProcess(wanted, step_timeout_s=self.config.step_timeout_s)
        return self.env

    def should_stop(self) -> bool:
        return bool(self.redis.exists(self.channels.stop_key))

    def work_once(self, block_s: float = 1.0) -> bool:
        """Handles at most one spec; False when none came within `block_s`."""
        deliveries = self.queue.take(self.name, count=1, block_s=block_s)
        if not deliveries:
            return False
        delivery = deliveries[0]
        try:
            spec = EpisodeSpec.from_payload(delivery.payload)
        except InvalidSpec as e:
            self.queue.reject(delivery, str(e), self.name)
            return True
        if not self.results.has(spec.key):
            result = self.run(spec, on_chunk=lambda: self.queue.touch(self.name, delivery))
            if not self.results.put(spec.key, result.to_payload()):
                log.info("%s: result for %s was already written by another worker", self.name, spec.key)
        self.queue.ack(delivery)
        return True

    def run(self, spec: EpisodeSpec, on_chunk: Callable[[], None] | None = None) -> EpisodeResult:
        start, error = time.perf_counter(), None
        for attempt in range(1, self.config.max_episode_attempts + 1):
            try:
                env = self._env_for(spec)
                outcome = run_episode(env, self.policy, spec.trial, spec.chunk, self.config.history,
                                      record_video=spec.video, on_chunk=on_chunk)
                video = self._save_video(spec, outcome.frames) if spec.video else None
                self.episodes_run += 1
                return EpisodeResult(spec.suite, spec.task, spec.trial, spec.weight_version, outcome.success, None,
                                     outcome.steps, attempt, time.perf_counter() - start, outcome.policy_calls,
                                     outcome.weight_versions, video, self.name, outcome.policy_wait_s)
            except RETRYABLE as e:
                error = f"{type(e).__name__}: {e}"
                log.warning("%s: %s attempt %d failed: %s", self.name, spec.key, attempt, error)
            except PolicyRejected as e:
                error = f"{type(e).__name__}: {e}"
                break  # the same request would be refused again
        return EpisodeResult(spec.suite, spec.task, spec.trial, spec.weight_version, False, error, 0, attempt,
                             time.perf_counter() - start, worker=self.name)

    def _save_video(self, spec: EpisodeSpec, frames) -> str | None:
        if not self.config.video_dir or not frames:
            return None
        path = Path(self.config.video_dir) / spec.suite / f"task{spec.task:02d}_trial{spec.trial:02d}_v{spec.weight_version}.mp4"
        return str(write_mp4(path, frames))

    def serve_forever(self) -> int:
        """Until the run's stop key is set; returns the episodes this worker ran."""
        while not self.should_stop():
            self.work_once()
        return self.episodes_run

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
