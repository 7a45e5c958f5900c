"""The driver's side of an evaluation run, without Ray: which episodes are missing, enqueue them,
follow progress, turn dead-lettered specs into error results, and write the tables.

Re-running with the same run id (same Redis data: the embedded server keeps its append-only file in
the run folder) enqueues only the trials that have no result yet."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import redis

from worldvla_dist.envs.libero_tasks import find_task, suite_tasks
from worldvla_dist.evaluation import success_table
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig, EvalChannels
from worldvla_dist.evaluation.episodes import EpisodeResult, EpisodeSpec, InvalidSpec
from worldvla_dist.runtime.codec import CodecError, unpack
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import WorkQueue


def plan_episodes(suites: Iterable[str], tasks: Iterable[int | str] | None, trials: int, weight_version: int = 0,
                  max_steps: int | None = None, video: bool = False) -> list[EpisodeSpec]:
    specs = []
    for suite in suites:
        chosen = [find_task(suite, t) for t in tasks] if tasks else suite_tasks(suite)
        specs += [EpisodeSpec(suite, t.index, trial, weight_version, max_steps, video)
                  for t in chosen for trial in range(trials)]
    return specs


@dataclass
class Progress:
    done: int
    total: int
    successes: int
    errors: int

    @property
    def success_rate(self) -> float:
        run = self.done - self.errors
        return self.successes / run if run else 0.0


class EvalRun:
    def __init__(self, client: redis.Redis, worker_config: EpisodeWorkerConfig, specs: list[EpisodeSpec]):
        self.redis, self.specs = client, specs
        self.channels = EvalChannels(worker_config.run_id)
        self.queue = WorkQueue(client, worker_config.queue_config())
        self.results = ResultStore(client, self.channels.results)
        self._counted: dict[str, EpisodeResult] = {}
        self._dead_seen = 0

    def enqueue_missing(self) -> int:
        """Clears any queue left by an earlier driver and enqueues the specs with no result."""
        self.redis.delete(self.channels.stop_key)
        self.queue.clear()
        have = self.results.keys()
        missing = [s for s in self.specs if s.key not in have]
        if missing:
            self.queue.put_many([s.to_payload() for s in missing])
        return len(missing)

    def _settle_dead_letters(self) -> None:
        """A spec dead-lettered because its workers kept dying gets an error result, so the run ends."""
        dead = self.queue.dead_letters()
        for record in dead[self._dead_seen:]:
            try:
                spec = EpisodeSpec.from_payload(unpack(record.get("original:data", b"")))
            except (CodecError, InvalidSpec):
                continue  # garbage that was never one of our specs
            self.results.put(spec.key, EpisodeResult(spec.suite, spec.task, spec.trial, spec.weight_version, False,
                                                     f"dead-lettered: {record['reason']}", 0, 0, 0.0).to_payload())
        self._dead_seen = len(dead)

    def progress(self) -> Progress:
        self._settle_dead_letters()
        wanted = {s.key for s in self.specs}
        for key, payload in self.results.items():
            if key in wanted and key not in self._counted:
                self._counted[key] = EpisodeResult.from_payload(payload)
        done = list(self._counted.values())
        return Progress(len(done), len(self.specs), sum(r.success and not r.error for r in done),
                        sum(bool(r.error) for r in done))

    def wait(self, on_progress=None, poll_s: float = 0.5, timeout_s: float | None = None, on_poll=None) -> Progress:
        """Until every spec has a result. `on_poll()` runs each poll (the job supervises actors there)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            p = self.progress()
            if on_progress:
                on_progress(p)
            if p.done >= p.total:
                return p
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"evaluation {self.channels.run_id}: {p.done}/{p.total} episodes after {timeout_s} s")
            if on_poll:
                on_poll()
            time.sleep(poll_s)

    def stop_workers(self) -> None:
        self.redis.set(self.channels.stop_key, 1)

    def collected(self) -> list[EpisodeResult]:
        self.progress()
        return [self._counted[s.key] for s in self.specs if s.key in self._counted]

    def write_tables(self, out_dir: str | Path) -> dict[str, Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        results = self.collected()
        rows = success_table.task_rows(results)
        files = {"markdown": out_dir / "success.md", "csv": out_dir / "success.csv", "json": out_dir / "success.json",
                 "episodes": out_dir / "episodes.jsonl"}
        files["markdown"].write_text(success_table.markdown(rows) + "\n")
        files["csv"].write_text(success_table.to_csv(rows))
        files["json"].write_text(success_table.to_json(rows))
        files["episodes"].write_text("".join(json.dumps(r.to_payload()) + "\n" for r in results))
        return files
