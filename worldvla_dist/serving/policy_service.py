"""The policy-inference loop behind the PolicyServer actor: takes requests from all SimWorkers off a
Redis stream in dynamic batches (up to `max_batch`, waiting at most `max_wait_s` after the first),
decodes them together, replies to each asker's list, then acks. A server that dies leaves its
requests pending; the next one reclaims them (and askers re-send after their own timeout), so a
restart loses no episode. New weights are swapped in between batches, never inside one.

A request larger than `max_request_bytes` is dead-lettered by the queue before it is unpacked, and a
malformed one (frames not the model's resolution, not uint8, ...) is refused with a reason before
any model work: the server goes on with the rest. Several servers may share one request stream,
each its own consumer in the group.

The service measures its own supply: chunks/s at each batch size from its batch timings
(`ServiceStats.supply_curve`), which the fleet sizes SimWorkers against."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import redis
import torch

from worldvla_dist.runtime.codec import pack
from worldvla_dist.runtime.work_queue import Delivery, QueueConfig, WorkQueue
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.protocol import REQUEST_FIELDS, InvalidRequest, PolicyReply, PolicyRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyServiceConfig:
    queue: str = "policy:requests"
    max_batch: int = 8
    max_wait_s: float = 0.005  # after the first request of a batch, how long to wait for more
    idle_block_s: float = 0.5  # an idle server wakes this often to check for stop and new weights
    reclaim_after_s: float = 15.0  # a request unacked this long belonged to a dead server
    reply_ttl_s: float = 300.0
    # two 256-px history frames are 0.4 MB: a request 20x that is a broken or hostile client, refused unread
    max_request_bytes: int = 8 * 2 ** 20

    def queue_config(self) -> QueueConfig:
        return QueueConfig(self.queue, group="policy-servers", reclaim_after_s=self.reclaim_after_s,
                           max_deliveries=5, required_fields=REQUEST_FIELDS, max_message_bytes=self.max_request_bytes)


def take_batch(queue: WorkQueue, consumer: str, max_batch: int, max_wait_s: float, block_s: float) -> list[Delivery]:
    """Waits up to `block_s` for a first request, then gathers more for at most `max_wait_s`."""
    batch = queue.take(consumer, count=max_batch, block_s=block_s)
    if not batch:
        return batch
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_batch and (left := deadline - time.monotonic()) > 0:
        more = queue.take(consumer, count=max_batch - len(batch), block_s=left)
        if not more:
            break
        batch += more
    return batch


LATENCY_SAMPLES = 4096  # recent requests kept for percentiles: bounded memory on a server that runs for days


def percentile_ms(samples_s, q: float) -> float | None:
    """The q-th percentile of `samples_s` (seconds) in ms; None with no samples (not 0: nothing was measured)."""
    return float(np.percentile(np.asarray(samples_s), q) * 1000) if len(samples_s) else None


@dataclass
class ServiceStats:
    batches: int = 0
    requests: int = 0
    rejected: int = 0
    queue_wait_s: float = 0.0  # summed over requests: sent -> taken into a batch
    decode_s: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    batch_timings: dict[int, list[float]] = field(default_factory=dict)  # batch size -> [batches, decode seconds]
    queue_waits_s: deque = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))  # sent -> replied

    def record_batch(self, size: int, decode_s: float) -> None:
        timing = self.batch_timings.setdefault(size, [0, 0.0])
        timing[0] += 1
        timing[1] += decode_s

    def supply_curve(self) -> dict[int, float]:
        """Batch size -> chunks/s this server delivers at that size (B / mean decode time of B-batches)."""
        return {b: b * n / s for b, (n, s) in sorted(self.batch_timings.items()) if s > 0}

    def as_dict(self) -> dict:
        """Plain types only (it travels through Ray and into JSON): supply keys are strings."""
        return {"batches": self.batches, "requests": self.requests, "rejected": self.rejected,
                "mean_batch_size": self.requests / max(1, self.batches),
                "mean_queue_wait_ms": 1000 * self.queue_wait_s / max(1, self.requests),
                "mean_decode_ms_per_batch": 1000 * self.decode_s / max(1, self.batches),
                "utilisation": self.decode_s / max(1e-9, time.monotonic() - self.started_at),
                "queue_wait_ms_p50": percentile_ms(self.queue_waits_s, 50),
                "queue_wait_ms_p99": percentile_ms(self.queue_waits_s, 99),
                "latency_ms_p50": percentile_ms(self.latencies_s, 50),
                "latency_ms_p99": percentile_ms(self.latencies_s, 99),
                "supply_chunks_per_s": {str(b): round(c, 3) for b, c in self.supply_curve().items()}}


class PolicyService:
    def __init__(self, client: redis.Redis, policy: ChunkPolicy, config: PolicyServiceConfig = PolicyServiceConfig(),
                 weight_version: int = 0, consumer: str | None = None):
        self.redis, self.policy, self.config = client, policy, config
        self.queue = WorkQueue(client, config.queue_config())
        self.consumer = consumer or f"policy-{uuid.uuid4().hex[:8]}"
        self.weight_version = weight_version
        self.stats = ServiceStats()
        self._pending_weights: tuple[dict, int] | None = None
        self._lock = threading.Lock()

    def set_weights(self, state_dict: dict[str, torch.Tensor], version: int) -> None:
        """Queued; applied before the next batch."""
        with self._lock:
            self._pending_weights = (state_dict, version)

    def _apply_pending_weights(self) -> None:
        with self._lock:
            pending, self._pending_weights = self._pending_weights, None
        if pending is not None:
            state_dict, version = pending
            self.policy.model.chameleon.load_state_dict(state_dict)
            self.weight_version = version
            log.info("policy weights now version %d", version)

    def _reply(self, reply_to: str, reply: PolicyReply) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(reply_to, pack(reply.to_payload()))
        pipe.expire(reply_to, int(self.config.reply_ttl_s))
        pipe.execute()

    def _reject(self, delivery: Delivery, reason: str) -> None:
        self.stats.rejected += 1
        self.queue.reject(delivery, reason, self.consumer)
        reply_to, request_id = delivery.payload.get("reply_to"), delivery.payload.get("request_id")
        if isinstance(reply_to, str) and isinstance(request_id, str):
            self._reply(reply_to, PolicyReply(request_id, None, self.weight_version, error=reason))

    def serve_batch(self) -> int:
        """One batch (possibly empty after `idle_block_s`); returns how many requests were answered."""
        self._apply_pending_weights()
        c = self.config
        deliveries = take_batch(self.queue, self.consumer, c.max_batch, c.max_wait_s, c.idle_block_s)
        valid: list[tuple[Delivery, PolicyRequest]] = []
        for d in deliveries:
            try:
                valid.append((d, PolicyRequest.from_payload(d.payload, self.policy.image_size_px)))
            except InvalidRequest as e:
                self._reject(d, str(e))
        if not valid:
            return 0
        now = time.time()
        start = time.perf_counter()
        try:
            chunks = self.policy.predict([r for _, r in valid])
        except Exception:  # one bad request must not sink the batch: serve them one by one
            log.exception("batch of %d failed; serving one by one", len(valid))
            chunks = []
            for d, r in valid:
                try:
                    chunks.append(self.policy.predict([r])[0])
                except Exception as e:
                    chunks.append(e)
        decode_s = time.perf_counter() - start
        self.stats.decode_s += decode_s
        self.stats.record_batch(len(valid), decode_s)
        served = 0
        for (d, request), chunk in zip(valid, chunks):
            if isinstance(chunk, Exception):
                self._reject(d, f"policy failed on this request: {type(chunk).__name__}: {chunk}")
                continue
            self._reply(request.reply_to, PolicyReply(request.request_id, chunk, self.weight_version))
            self.queue.ack(d)
            wait_s = max(0.0, now - request.sent_at)
            self.stats.queue_wait_s += wait_s
            self.stats.queue_waits_s.append(wait_s)
            self.stats.latencies_s.append(max(0.0, time.time() - request.sent_at))
            served += 1
        self.stats.batches += 1
        self.stats.requests += served
        return served

    def serve_forever(self, should_stop: Callable[[], bool]) -> ServiceStats:
        while not should_stop():
            self.serve_batch()
        return self.stats
