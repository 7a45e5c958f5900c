"""Training logs on a Redis stream, so the job driver (tables, wandb, plots) reads what the learner
processes report, wherever they run. Entries are msgpack dicts through our codec."""

from __future__ import annotations

import redis

from worldvla_dist.runtime.codec import pack, unpack


class MetricsStream:
    def __init__(self, client: redis.Redis, name: str):
        self.redis, self.name = client, name
        self._last_id = "0-0"

    def append(self, record: dict) -> None:
        self.redis.xadd(self.name, {b"data": pack(record)})

    def read_new(self) -> list[dict]:
        """Records appended since the last call (all of them on the first)."""
        entries = self.redis.xrange(self.name, min=f"({self._last_id}" if self._last_id != "0-0" else "-")
        if entries:
            self._last_id = entries[-1][0].decode()
        return [unpack(fields[b"data"]) for _, fields in entries]
