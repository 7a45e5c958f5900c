"""Keeps long-running actors alive: each is started by a factory and runs a blocking `serve()`; when
that call ends in an error (the process was killed, it crashed), the actor is started again under the
same slot. Work is never lost with it: a dead actor's unacked queue entries are reclaimed by the
others (runtime/work_queue.py)."""

from __future__ import annotations

import logging
from typing import Any, Callable

import ray
from ray.exceptions import RayActorError, RayTaskError

log = logging.getLogger(__name__)

Slot = tuple[str, int]  # (kind, index)


class ActorKeepsDying(RuntimeError):
    """An actor slot died more than `max_restarts` times: a bad checkpoint path, a broken node; restarting
    it again would only loop. The message carries the last death's cause."""


class ServeSupervisor:
    def __init__(self, max_restarts: int = 5):
        """`max_restarts` per slot; one more death raises `ActorKeepsDying` from `supervise()`."""
        self.max_restarts = max_restarts
        self._slot_restarts: dict[Slot, int] = {}
        self.actors: dict[Slot, Any] = {}
        self._factories: dict[Slot, Callable[[], Any]] = {}
        self._runs: dict[Any, Slot] = {}  # serve() ref -> slot
        self.stopping = False

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts so far per kind of actor (0 for every kind launched)."""
        kinds = dict.fromkeys(kind for kind, _ in self.actors)
        return {kind: sum(n for (k, _), n in self._slot_restarts.items() if k == kind) for kind in kinds}

    def launch(self, kind: str, index: int, factory: Callable[[], Any]):
        """Starts `factory()` in slot (kind, index) and its serve(); returns the actor handle."""
        slot = (kind, index)
        self._factories[slot] = factory
        actor = factory()
        self.actors[slot] = actor
        self._runs[actor.serve.remote()] = slot
        return actor

    def of_kind(self, kind: str) -> list:
        return [a for (k, _), a in sorted(self.actors.items()) if k == kind]

    def supervise(self) -> list[str]:
        """Restarts actors whose serve() ended in an error; returns what happened."""
        if self.stopping or not self._runs:
            return []
        finished, _ = ray.wait(list(self._runs), num_returns=len(self._runs), timeout=0)
        events = []
        for ref in finished:
            kind, index = slot = self._runs.pop(ref)
            try:
                ray.get(ref)
                continue  # a clean end (stop key set): nothing to replace
            except (RayActorError, RayTaskError) as e:
                cause = f"{type(e).__name__}: {str(e)[-800:]}"
                if self._slot_restarts.get(slot, 0) >= self.max_restarts:
                    raise ActorKeepsDying(f"{kind} actor {index} died {self._slot_restarts[slot] + 1} times "
                                          f"(max restarts {self.max_restarts}); last: {cause}") from e
                events.append(f"{kind} actor {index} died ({cause}); restarting")
                log.warning(events[-1])
            self._slot_restarts[slot] = self._slot_restarts.get(slot, 0) + 1
            self.launch(kind, index, self._factories[slot])
        return events

    def node_ids(self, kind: str) -> list[str]:
        """Node ids the live actors of `kind` run on (a dead one is left out)."""
        out = []
        for actor in self.of_kind(kind):
            try:
                out.append(ray.get(actor.node_id.remote(), timeout=30))
            except (RayActorError, RayTaskError, ray.exceptions.GetTimeoutError):
                pass
        return out

    def finish(self, timeout_s: float = 60.0) -> dict[Slot, Any]:
        """After the actors were told to stop: waits for their serve() values, then kills them all."""
        self.stopping = True
        ready, _ = ray.wait(list(self._runs), num_returns=len(self._runs), timeout=timeout_s)
        values = {}
        for ref in ready:
            slot = self._runs[ref]
            try:
                values[slot] = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                log.warning("%s actor %d ended with %s", *slot, type(e).__name__)
        for actor in self.actors.values():
            ray.kill(actor)
        self._runs.clear()
        return values
