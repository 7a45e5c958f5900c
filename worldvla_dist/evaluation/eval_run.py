"""The driver's side of an evaluation run, without Ray (`WorkRun`: enqueue the missing episodes,
dead letters become error results), with success counts as progress, and the tables.

Re-running with the same run id (same Redis data: the embedded server keeps its append-only file in
the run folder) enqueues only the trials that have no result yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import redis

from worldvla_dist.envs.libero_tasks import find_task, suite_tasks
from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation import success_table
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig, EvalChannels
from worldvla_dist.evaluation.episodes import EpisodeResult, EpisodeSpec
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import WorkQueue
from worldvla_dist.runtime.work_run import WorkRun


def plan_episodes(suites: Iterable[str], tasks: Iterable[int | str] | None, trials: int, weight_version: int = 0,
                  max_steps: int | None = None, video: bool = False, first_trial: int = 0) -> list[EpisodeSpec]:
    """Init states first_trial .. first_trial + trials - 1 of each task, trial-major (trial 0 of every
    task of every suite, then trial 1, ...): workers take episodes in this order, so partial results
    cover every task evenly. `first_trial` > 0 evaluates on init states a recipe never trained on
    (trains on 0..39, evaluates on 40..49)."""
    if trials < 1 or first_trial < 0:
        raise ConfigError(f"plan_episodes: trials must be >= 1 and first_trial >= 0, got {trials}, {first_trial}")
    chosen = []
    for suite in suites:
        chosen += [find_task(suite, t) for t in tasks] if tasks else suite_tasks(suite)
    return [EpisodeSpec(t.suite, t.index, trial, weight_version, max_steps, video)
            for trial in range(first_trial, first_trial + trials) for t in chosen]


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


class EvalRun(WorkRun[EpisodeSpec, EpisodeResult]):
    def __init__(self, client: redis.Redis, worker_config: EpisodeWorkerConfig, specs: list[EpisodeSpec]):
        self.channels = EvalChannels(worker_config.run_id)
        super().__init__(client, WorkQueue(client, worker_config.queue_config()),
                         ResultStore(client, self.channels.results), self.channels.stop_key, specs)

    def parse_spec(self, payload: dict) -> EpisodeSpec:
        return EpisodeSpec.from_payload(payload)

    def parse_result(self, payload: dict) -> EpisodeResult:
        return EpisodeResult.from_payload(payload)

    def error_payload(self, spec: EpisodeSpec, reason: str) -> dict:
        return EpisodeResult(spec.suite, spec.task, spec.trial, spec.weight_version, False, reason, 0, 0,
                             0.0).to_payload()

    def progress(self) -> Progress:
        done = list(self.results_so_far().values())
        return Progress(len(done), len(self.specs), sum(r.success and not r.error for r in done),
                        sum(bool(r.error) for r in done))

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
