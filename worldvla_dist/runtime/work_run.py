"""The driver's side of a run of work specs through a `WorkQueue` to a `ResultStore`, shared by
evaluation and imagination runs: enqueue only the specs without a result (so re-running the same run
id resumes), turn dead-lettered specs into error results (so the run ends), follow progress, tell the
workers to stop. Subclasses say how a spec and a result are parsed, what an error result is, and what
progress is. Each poll fetches only the results that are new (their keys, then their values), so a
long run does not re-read and re-decode everything it already has."""

from __future__ import annotations

import time
from typing import Any, Callable, Generic, Protocol, TypeVar

import redis

from worldvla_dist.runtime.codec import CodecError, unpack
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import WorkQueue


class Spec(Protocol):
    @property
    def key(self) -> str: ...

    def to_payload(self) -> dict: ...


S = TypeVar("S", bound=Spec)
R = TypeVar("R")


class Done(Protocol):
    done: int
    total: int


class WorkRun(Generic[S, R]):
    def __init__(self, client: redis.Redis, queue: WorkQueue, results: ResultStore, stop_key: str, specs: list[S]):
        self.redis, self.queue, self.results, self.stop_key, self.specs = client, queue, results, stop_key, specs
        self._wanted = {s.key for s in specs}
        self._done: dict[str, R] = {}
        self._dead_seen = 0

    # --- what a subclass says ---
    def parse_spec(self, payload: dict) -> S:
        raise NotImplementedError

    def parse_result(self, payload: dict) -> R:
        raise NotImplementedError

    def error_payload(self, spec: S, reason: str) -> dict:
        raise NotImplementedError

    def progress(self) -> Done:
        raise NotImplementedError

    # --- shared ---
    def enqueue_missing(self) -> int:
        """Clears any queue left by an earlier driver and enqueues the specs with no result."""
        self.redis.delete(self.stop_key)
        self.queue.clear()
        have = self.results.keys()
        missing = [s for s in self.specs if s.key not in have]
        if missing:
            self.queue.put_many([s.to_payload() for s in missing])
        return len(missing)

    def _settle_dead_letters(self) -> None:
        """A spec dead-lettered (its workers kept dying, or a worker refused it) gets an error result."""
        dead = self.queue.dead_letters()
        for record in dead[self._dead_seen:]:
            try:
                spec = self.parse_spec(unpack(record.get("original:data", b"")))
            except (CodecError, ValueError):
                continue  # garbage that was never one of our specs
            self.results.put(spec.key, self.error_payload(spec, f"dead-lettered: {record['reason']}"))
        self._dead_seen = len(dead)

    def results_so_far(self) -> dict[str, R]:
        """This run's results so far, by spec key (each fetched and parsed once)."""
        self._settle_dead_letters()
        if len(self._done) < len(self._wanted):
            new = sorted(k for k in self.results.keys() if k in self._wanted and k not in self._done)
            for key, payload in zip(new, self.results.get_many(new)):
                self._done[key] = self.parse_result(payload)
        return self._done

    def collected(self) -> list[R]:
        """The results so far, in the order of the specs."""
        done = self.results_so_far()
        return [done[s.key] for s in self.specs if s.key in done]

    def wait(self, on_progress: Callable[[Any], None] | None = None, poll_s: float = 0.5,
             timeout_s: float | None = None, on_poll: Callable[[], None] | None = None):
        """Until every spec has a result. `on_poll()` runs each poll (the job supervises actors there)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            p = self.progress()
            if on_progress:
                on_progress(p)
            if p.done >= p.total:
                return p
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.queue.config.name}: {p.done}/{p.total} done after {timeout_s} s")
            if on_poll:
                on_poll()
            time.sleep(poll_s)

    def stop_workers(self) -> None:
        self.redis.set(self.stop_key, 1)
