"""Results written exactly once per key: a Redis hash set with HSETNX, so a re-run of the same work
(a reclaimed entry whose first worker died after writing) neither doubles nor loses a result."""

from __future__ import annotations

from typing import Any, Iterator

import redis

from worldvla_dist.runtime.codec import pack, unpack


class ResultStore:
    def __init__(self, client: redis.Redis, name: str):
        self.redis, self.name = client, name

    def put(self, key: str, payload: dict[str, Any]) -> bool:
        """True if this call wrote the result, False if one was already there (kept as it was)."""
        return bool(self.redis.hsetnx(self.name, key, pack(payload)))

    def has(self, key: str) -> bool:
        return bool(self.redis.hexists(self.name, key))

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.name, key)
        return None if raw is None else unpack(raw)

    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        return [None if raw is None else unpack(raw) for raw in self.redis.hmget(self.name, keys)]

    def keys(self) -> set[str]:
        return {k.decode() for k in self.redis.hkeys(self.name)}

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, raw in self.redis.hscan_iter(self.name, count=1000):
            yield key.decode(), unpack(raw)

    def __len__(self) -> int:
        return self.redis.hlen(self.name)
