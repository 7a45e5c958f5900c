"""A work queue on a Redis Stream with a consumer group: many workers take entries, ack them when
their result is written, and take over a dead worker's entries once they have sat unacknowledged
for `reclaim_after_s` (a live worker on a long job calls `touch` to say it is alive). An entry
delivered more than `max_deliveries` times, or one that is not a valid message, goes to the
dead-letter stream `<name>:dead` with the reason, so one poison message cannot kill workers in turn.
With `max_message_bytes` set, a larger entry is dead-lettered unread (its size recorded, not its
body, so Redis does not keep it) and `put` refuses to send one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from worldvla_dist.errors import ConfigError, WorldVLAError
from worldvla_dist.runtime.codec import CodecError, pack, unpack

log = logging.getLogger(__name__)

DATA_FIELD = b"data"


@dataclass(frozen=True)
class QueueConfig:
    name: str
    group: str = "workers"
    reclaim_after_s: float = 60.0  # an unacked entry older than this belongs to a dead consumer
    max_deliveries: int = 3  # then it is dead-lettered
    required_fields: tuple[str, ...] = ()  # a message lacking one is dead-lettered at once
    max_message_bytes: int | None = None  # larger entries are dead-lettered before unpacking; None: no limit

    def __post_init__(self) -> None:
        if self.reclaim_after_s <= 0 or self.max_deliveries < 1:
            raise ConfigError(f"QueueConfig {self.name}: reclaim_after_s > 0 and max_deliveries >= 1, got {self}")
        if self.max_message_bytes is not None and self.max_message_bytes < 1:
            raise ConfigError(f"QueueConfig {self.name}: max_message_bytes must be >= 1 or None, "
                              f"got {self.max_message_bytes}")

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}:dead"


class MessageTooLarge(WorldVLAError, ValueError):
    """A message over the queue's `max_message_bytes`: refused by `put`, dead-lettered by `take`."""


@dataclass
class Delivery:
    entry_id: str
    payload: dict[str, Any]
    deliveries: int  # 1 on first delivery, more after reclaims


class WorkQueue:
    def __init__(self, client: redis.Redis, config: QueueConfig):
        self.redis, self.config = client, config
        self._ensure_group()

    def _ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.config.name, self.config.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    # ---------------- producers ----------------
    def put(self, payload: dict[str, Any]) -> str:
        return self.redis.xadd(self.config.name, {DATA_FIELD: self._packed(payload)}).decode()

    def put_many(self, payloads: list[dict[str, Any]]) -> list[str]:
        pipe = self.redis.pipeline(transaction=False)
        for p in payloads:
            pipe.xadd(self.config.name, {DATA_FIELD: self._packed(p)})
        return [i.decode() for i in pipe.execute()]

    def _packed(self, payload: dict[str, Any]) -> bytes:
        data = pack(payload)
        if (reason := self._oversize(len(data))) is not None:
            raise MessageTooLarge(f"WorkQueue.put: {reason}")
        return data

    def _oversize(self, num_bytes: int) -> str | None:
        limit = self.config.max_message_bytes
        if limit is None or num_bytes <= limit:
            return None
        return f"message of {num_bytes} bytes exceeds queue {self.config.name}'s limit of {limit} bytes"

    def put_raw(self, fields: dict[bytes | str, bytes]) -> str:
        """An entry as given, unchecked: for tools and tests that inject foreign messages."""
        return self.redis.xadd(self.config.name, fields).decode()

    # ---------------- consumers ----------------
    def take(self, consumer: str, count: int = 1, block_s: float = 1.0) -> list[Delivery]:
        """Up to `count` entries: first a dead consumer's stale ones, then new ones (waiting up to
        `block_s` for the first). Invalid or over-delivered entries are dead-lettered, not returned."""
        entries = self._reclaim(consumer, count)
        if len(entries) < count:
            block_ms = None if entries or block_s <= 0 else max(1, int(block_s * 1000))
            try:
                reply = self.redis.xreadgroup(self.config.group, consumer, {self.config.name: ">"},
                                              count=count - len(entries), block=block_ms)
            except redis.ResponseError as e:
                # the stream was deleted under us (Redis unblocks readers with an error): recreate it
                if "UNBLOCKED" not in str(e) and "NOGROUP" not in str(e):
                    raise
                log.warning("queue %s vanished while waiting (%s); recreating it", self.config.name, e)
                self._ensure_group()
                reply = None
            for _, stream_entries in reply or []:
                entries += [(eid, fields, 1) for eid, fields in stream_entries]
        deliveries = []
        for entry_id, fields, times in entries:
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            delivery = self._decode(entry_id, fields or {}, times, consumer)
            if delivery is not None:
                deliveries.append(delivery)
        return deliveries

    def _reclaim(self, consumer: str, count: int) -> list[tuple[bytes, dict, int]]:
        min_idle_ms = int(self.config.reclaim_after_s * 1000)
        _, claimed, deleted = self.redis.xautoclaim(self.config.name, self.config.group, consumer,
                                                   min_idle_time=min_idle_ms, start_id="0-0", count=count)
        if deleted:  # trimmed away while pending: nothing left to do but forget them
            self.redis.xack(self.config.name, self.config.group, *deleted)
        if not claimed:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, _ in claimed:
            pipe.xpending_range(self.config.name, self.config.group, min=entry_id, max=entry_id, count=1)
        counts = [rows[0]["times_delivered"] if rows else 1 for rows in pipe.execute()]
        for (entry_id, _), times in zip(claimed, counts):
            log.warning("reclaimed %s entry %s (delivery %d)", self.config.name, entry_id.decode(), times)
        return [(eid, fields, times) for (eid, fields), times in zip(claimed, counts)]

    def _decode(self, entry_id: str, fields: dict, times: int, consumer: str) -> Delivery | None:
        raw = fields.get(DATA_FIELD)
        if times > self.config.max_deliveries:
            self.dead_letter(entry_id, fields, f"delivered {times} times without an ack "
                                               f"(max {self.config.max_deliveries}): its workers keep dying", consumer)
            return None
        size = sum(len(v) for v in fields.values())
        if (reason := self._oversize(size)) is not None:  # unread, and its body not copied into Redis again
            self.dead_letter(entry_id, {b"size_bytes": str(size).encode()}, reason, consumer)
            return None
        if raw is None:
            self.dead_letter(entry_id, fields, f"no {DATA_FIELD.decode()!r} field (fields: "
                                               f"{sorted(k.decode(errors='replace') for k in fields)})", consumer)
            return None
        try:
            payload = unpack(raw, self.config.required_fields)
        except CodecError as e:
            self.dead_letter(entry_id, fields, str(e), consumer)
            return None
        return Delivery(entry_id, payload, times)

    def ack(self, delivery: Delivery | str) -> None:
        entry_id = delivery.entry_id if isinstance(delivery, Delivery) else delivery
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.config.name, self.config.group, entry_id)
        pipe.xdel(self.config.name, entry_id)
        pipe.execute()

    def touch(self, consumer: str, *deliveries: Delivery) -> None:
        """Resets the entries' idle time, so a live consumer on a long job is not taken for dead
        (XCLAIM with JUSTID does not count as a delivery)."""
        self.redis.xclaim(self.config.name, self.config.group, consumer, min_idle_time=0,
                          message_ids=[d.entry_id for d in deliveries], justid=True)

    def reject(self, delivery: Delivery, reason: str, consumer: str = "") -> None:
        """A valid message the consumer cannot use (bad values): dead-letter it with the reason."""
        self.dead_letter(delivery.entry_id, {DATA_FIELD: pack(delivery.payload)}, reason, consumer)

    def dead_letter(self, entry_id: str, fields: dict, reason: str, consumer: str = "") -> None:
        log.warning("dead-lettering %s entry %s: %s", self.config.name, entry_id, reason)
        record = {b"reason": reason.encode(), b"entry_id": entry_id.encode(), b"consumer": consumer.encode(),
                  b"time": str(time.time()).encode()}
        record.update({f"original:{k.decode(errors='replace') if isinstance(k, bytes) else k}".encode(): v
                       for k, v in fields.items()})
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.config.dead_letter_name, record)
        pipe.xack(self.config.name, self.config.group, entry_id)
        pipe.xdel(self.config.name, entry_id)
        pipe.execute()

    # ---------------- inspection ----------------
    def dead_letters(self) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in self.redis.xrange(self.config.dead_letter_name):
            record = {k.decode(): v for k, v in fields.items()}
            record["reason"] = record["reason"].decode()
            record["dead_letter_id"] = entry_id.decode()
            out.append(record)
        return out

    def depth(self) -> int:
        """Entries not yet acked: waiting plus in progress (what an autoscaler should look at)."""
        return self.redis.xlen(self.config.name)

    def pending(self) -> int:
        return self.redis.xpending(self.config.name, self.config.group)["pending"]

    def clear(self) -> None:
        """Drops every entry (dead letters are kept). Trimmed, not deleted: deleting the stream would
        fail every worker blocked on it ("UNBLOCKED the stream key no longer exists"); entries still
        pending are forgotten when a worker's reclaim finds them gone."""
        self._ensure_group()
        self.redis.xtrim(self.config.name, maxlen=0, approximate=False)
