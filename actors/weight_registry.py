"""Weight publishing: the learner hands its newest weights to a named WeightRegistry actor, which
keeps them in the Ray object store (it owns the object, so it outlives the learner process that
made it), and records the version in Redis, where PolicyServers and imagination workers look
between batches. `WeightFollower` is that look: a thread that fetches a version when it changes and
hands it to a callback. Imagination workers follow the newest version; PolicyServers follow the
*served* one, which the training job sets when an evaluation round starts (`WeightRegistry.serve`),
so that every episode of a round runs on the round's weights, not on whatever the learner published
since."""

from __future__ import annotations

import logging
import threading
from typing import Callable

import ray

from worldvla_dist.runtime.redis_client import connect

log = logging.getLogger(__name__)


KEPT_NEWEST = 2  # versions held besides the served one: a round may start on one just superseded


def version_key(run_id: str) -> str:
    return f"weights:{run_id}:version"


def served_version_key(run_id: str) -> str:
    return f"weights:{run_id}:served"


@ray.remote(num_cpus=0)
class WeightRegistry:
    def __init__(self, redis_url: str, run_id: str):
        self.redis, self.key, self.served_key = connect(redis_url), version_key(run_id), served_version_key(run_id)
        self.version, self.refs, self.served = -1, {}, None

    def publish(self, state_dict: dict, version: int) -> int:
        if version > self.version:
            self.refs[version] = ray.put(state_dict)  # owned by this actor
            self.version = version
            self._forget_old()
            self.redis.set(self.key, version)
        return self.version

    def serve(self, version: int, state_dict: dict | None = None) -> bool:
        """Makes `version` the one PolicyServers serve (an evaluation round's). False when it is no
        longer held (more than KEPT_NEWEST versions published since, or a registry that started
        after it) and no `state_dict` of it is given."""
        if version not in self.refs:
            if state_dict is None:
                return False
            self.refs[version] = ray.put(state_dict)
        self.served = version
        self._forget_old()
        self.redis.set(self.served_key, version)
        return True

    def get(self, version: int):
        """-> [ObjectRef] of `version` (in a list, so Ray hands it over without fetching it), or None."""
        return [self.refs[version]] if version in self.refs else None

    def latest(self):
        """-> (version, [ObjectRef]) of the newest version."""
        return self.version, [self.refs.get(self.version)]

    def _forget_old(self) -> None:
        keep = set(sorted(self.refs)[-KEPT_NEWEST:]) | {self.served}
        self.refs = {v: ref for v, ref in self.refs.items() if v in keep}


def registry_name(run_id: str) -> str:
    return f"weights-{run_id}"


def get_or_create_registry(redis_url: str, run_id: str):
    return WeightRegistry.options(name=registry_name(run_id), get_if_exists=True, lifetime="detached").remote(
        redis_url, run_id)


class WeightFollower:
    """Polls Redis every `poll_s`; when the followed version changes, fetches it and calls
    `apply(state, version)`. `served=False`: each newer version the learner publishes; `served=True`:
    the version the run serves (`WeightRegistry.serve`), older or newer than the current one."""

    def __init__(self, redis_url: str, run_id: str, apply: Callable[[dict, int], None], current: int = -1,
                 poll_s: float = 1.0, served: bool = False):
        self.redis, self.run_id, self.apply, self.current, self.poll_s = connect(redis_url), run_id, apply, current, poll_s
        self.served = served
        self.key = served_version_key(run_id) if served else version_key(run_id)
        self._missing: int | None = None  # a served version the registry did not hold, already reported
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="weight-follower")

    def start(self) -> "WeightFollower":
        self._thread.start()
        return self

    def check(self) -> bool:
        raw = self.redis.get(self.key)
        wanted = None if raw is None else int(raw)
        if wanted is None or wanted == self.current or (not self.served and wanted < self.current):
            return False
        registry = ray.get_actor(registry_name(self.run_id))
        if self.served:
            version, refs = wanted, ray.get(registry.get.remote(wanted))
            if refs is None:  # e.g. a resumed run's served key, from before its registry: said once, not every poll
                if self._missing != version:
                    log.warning("weight follower: served version %d is not held by the registry", version)
                self._missing = version
                return False
        else:
            version, refs = ray.get(registry.latest.remote())
        self.apply(ray.get(refs[0]), version)
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
