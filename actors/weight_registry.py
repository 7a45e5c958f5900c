"""Weight publishing: the learner hands its newest weights to a named WeightRegistry actor, which
keeps them in the Ray object store (it owns the object, so it outlives the learner process that
made it), and records the version in Redis, where PolicyServers and imagination workers look
between batches. `WeightFollower` is that look: a thread that fetches a newer version when one
appears and hands it to a callback."""

from __future__ import annotations

import logging
import threading
from typing import Callable

import ray

from worldvla_dist.runtime.redis_client import connect

log = logging.getLogger(__name__)


def version_key(run_id: str) -> str:
    return f"weights:{run_id}:version"


@ray.remote(num_cpus=0)
class WeightRegistry:
    def __init__(self, redis_url: str, run_id: str):
        self.redis, self.key = connect(redis_url), version_key(run_id)
        self.version, self.ref = -1, None

    def publish(self, state_dict: dict, version: int) -> int:
        if version > self.version:
            self.ref = ray.put(state_dict)  # owned by this actor
            self.version = version
            self.redis.set(self.key, version)
        return self.version

    def latest(self):
        """-> (version, [ObjectRef]): the ref inside a list, so Ray hands it over without fetching it."""
        return self.version, [self.ref]


def registry_name(run_id: str) -> str:
    return f"weights-{run_id}"


def get_or_create_registry(redis_url: str, run_id: str):
    return WeightRegistry.options(name=registry_name(run_id), get_if_exists=True, lifetime="detached").remote(
        redis_url, run_id)


class WeightFollower:
    """Polls the Redis version every `poll_s`; on a newer one, fetches it and calls `apply(state, version)`."""

    def __init__(self, redis_url: str, run_id: str, apply: Callable[[dict, int], None], current: int = -1,
                 poll_s: float = 1.0):
        self.redis, self.run_id, self.apply, self.current, self.poll_s = connect(redis_url), run_id, apply, current, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="weight-follower")

    def start(self) -> "WeightFollower":
        self._thread.start()
        return self

    def check(self) -> bool:
        raw = self.redis.get(version_key(self.run_id))
        if raw is None or int(raw) <= self.current:
            return False
        registry = ray.get_actor(registry_name(self.run_id))
        version, (ref,) = ray.get(registry.latest.remote())
        self.apply(ray.get(ref), version)
        self.current = version
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # a registry being replaced, Redis blips: try again next poll
                log.exception("weight follower: check failed")

    def stop(self) -> None:
        self._stop.set()
