"""The loop behind an ImaginationWorker: take up to B rollout specs off the run's queue, imagine them
side by side (one batched world-model call per frame), score them, write each result once, ack.

- A spec whose result already exists is acked and skipped (its first worker died after writing).
- A spec naming no usable trajectory window is dead-lettered with the reason; the worker goes on.
- While a batch runs, the worker touches its entries after each frame, so only a dead worker's
  entries are reclaimed (and re-run) by the others.
- New weights (`set_weights`) are taken between batches; each result records its version."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from worldvla_dist.decoding.sampling import SamplingConfig
from worldvla_dist.envs.libero_tasks import SUITES
from worldvla_dist.evaluation.video import write_mp4
from worldvla_dist.imagination import rollout
from worldvla_dist.imagination.scoring import RolloutScorer
from worldvla_dist.imagination.specs import SPEC_FIELDS, InvalidRollout, RolloutResult, RolloutSpec, Window, read_window
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import Delivery, QueueConfig, WorkQueue
from worldvla_dist.sequences.token_space import TokenSpace

log = logging.getLogger(__name__)

SHEET_COLUMNS = 6  # frames kept per video rollout for the contact sheet
DECODE_BATCH = 16  # frames through the VQGAN decoder at once: bounds its activation memory; 16 of the tiny
# preset's 128 px frames decode ~10% faster per frame than 32 on 2 cores (the activations stay in cache)


@dataclass(frozen=True)
class ImagineChannels:
    """The Redis names one imagination run uses."""

    run_id: str

    @property
    def rollouts(self) -> str:
        return f"imagine:{self.run_id}:rollouts"

    @property
    def results(self) -> str:
        return f"imagine:{self.run_id}:results"

    @property
    def stop_key(self) -> str:
        return f"imagine:{self.run_id}:stop"


@dataclass(frozen=True)
class ImaginationWorkerConfig:
    run_id: str
    batch: int = 8  # B: rollouts imagined side by side
    history: int = 2  # M: frames the policy sees in dream mode
    chunk: int | None = None  # K in dream mode; None: the suite's (from the demo file's folder), else 5
    temperature: float = 0.0  # 0: greedy
    top_k: int = 0
    reclaim_after_s: float = 120.0  # an entry unacked (and untouched) this long belonged to a dead worker
    video_dir: str | None = None

    def queue_config(self) -> QueueConfig:
        return QueueConfig(ImagineChannels(self.run_id).rollouts, group="imagination-workers",
                           reclaim_after_s=self.reclaim_after_s, max_deliveries=3, required_fields=SPEC_FIELDS)

    def chunk_for(self, spec: RolloutSpec) -> int:
        if self.chunk:
            return self.chunk
        suite = Path(spec.source).parent.name
        return SUITES.get(suite).chunk if suite in SUITES.names() else 5


class ImaginationWorker:
    def __init__(self, client: redis.Redis, config: ImaginationWorkerConfig, model: WorldVLA, tokens: TokenSpace,
                 scorer: RolloutScorer | None = None, weight_version: int = 0, name: str | None = None):
        self.redis, self.config, self.model, self.tokens = client, config, model.eval(), tokens
        self.scorer = scorer or RolloutScorer()
        self.name = name or f"imagine-{uuid.uuid4().hex[:8]}"
        self.channels = ImagineChannels(config.run_id)
        self.queue = WorkQueue(client, config.queue_config())
        self.results = ResultStore(client, self.channels.results)
        self.sampling = SamplingConfig(config.temperature, config.top_k)
        self.weight_version = weight_version
        self._pending_weights: tuple[dict, int] | None = None
        self._lock = threading.Lock()
        self.rollouts_run = 0
        self.frames_imagined = 0

    def set_weights(self, state_dict: dict, version: int) -> None:
        """Taken before the next batch (never in the middle of one)."""
        with self._lock:
            self._pending_weights = (state_dict, version)

    def _apply_pending_weights(self) -> None:
        with self._lock:
            pending, self._pending_weights = self._pending_weights, None
        if pending:
            self.model.load_state_dict(pending[0])
            self.weight_version = pending[1]

    def should_stop(self) -> bool:
        return bool(self.redis.exists(self.channels.stop_key))

    def work_once(self, block_s: float = 1.0) -> bool:
        """Handles at most one batch of up to B specs; False when none came within `block_s`."""
        deliveries = self.queue.take(self.name, count=self.config.batch, block_s=block_s)
        if not deliveries:
            return False
        self._apply_pending_weights()
        groups: dict[tuple[str, int, int], list[tuple[Delivery, RolloutSpec, Window]]] = {}
        for delivery in deliveries:
            try:
                spec = RolloutSpec.from_payload(delivery.payload)
                if self.results.has(spec.key):
                    self.queue.ack(delivery)
                    continue
                window = read_window(spec)
            except InvalidRollout as e:
                self.queue.reject(delivery, str(e), self.name)
                continue
            groups.setdefault((spec.mode, spec.horizon, self.config.chunk_for(spec)), []).append((delivery, spec, window))
        for (mode, horizon, chunk), group in groups.items():
            self._run_group(mode, horizon, chunk, group)
        return True

    def _run_group(self, mode: str, horizon: int, chunk: int, group: list) -> None:
        deliveries = [d for d, _, _ in group]
        start = time.perf_counter()
        real = np.stack([w.frames for _, _, w in group])  # (B, H + 1, h, w, 3)
        start_codes = self.tokens.images.encode(real[:, 0])
        touch = lambda _frames: self.queue.touch(self.name, *deliveries)  # noqa: E731
        if mode == "replay":
            imagined = rollout.replay(self.model, self.tokens, start_codes, np.stack([w.actions for _, _, w in group]),
                                      self.sampling, on_frame=touch)
        else:
            imagined = rollout.dream(self.model, self.tokens, [w.instruction for _, _, w in group], start_codes,
                                     horizon, chunk, self.config.history, self.sampling, on_frame=touch)
        b, h = imagined.codes.shape[:2]
        flat = imagined.codes.reshape(b * h, *imagined.codes.shape[2:])
        frames = np.concatenate([self.tokens.images.decode(flat[i:i + DECODE_BATCH])
                                 for i in range(0, len(flat), DECODE_BATCH)])
        frames = frames.reshape(b, h, *frames.shape[1:])
        scores, features = self.scorer.score(real, frames)
        seconds = (time.perf_counter() - start) / b
        for i, (delivery, spec, _) in enumerate(group):
            result = RolloutResult(spec.key, mode, horizon, self.weight_version, None, scores[i], features[i],
                                   imagined.codes[i].numpy().astype(np.int32), imagined.actions[i].astype(np.float32),
                                   seconds=seconds, worker=self.name)
            if spec.video:
                result.sheet, result.video = self._keep_frames(spec, real[i], frames[i])
            if not self.results.put(spec.key, result.to_payload()):
                log.info("%s: result for %s was already written by another worker", self.name, spec.key)
            self.queue.ack(delivery)
        self.rollouts_run += b
        self.frames_imagined += b * h

    def _keep_frames(self, spec: RolloutSpec, real: np.ndarray, imagined: np.ndarray) -> tuple[dict, str | None]:
        """Contact-sheet columns (real | imagined at evenly spaced steps) and, with a video folder, an
        mp4 strip with the real frame left of the imagined one."""
        steps = np.unique(np.linspace(0, spec.horizon - 1, min(SHEET_COLUMNS, spec.horizon)).round().astype(np.int32))
        sheet = {"steps": steps + 1, "real": real[1:][steps], "model": imagined[steps]}
        video = None
        if self.config.video_dir:
            strip = np.concatenate([real[1:], imagined], axis=2)  # side by side
            name = spec.key.replace("/", "__") + ".mp4"
            video = str(write_mp4(Path(self.config.video_dir) / name, list(strip), fps=10))
        return sheet, video

    def serve_forever(self) -> int:
        """Until the run's stop key is set; returns the rollouts this worker ran."""
        while not self.should_stop():
            self.work_once()
        return self.rollouts_run

