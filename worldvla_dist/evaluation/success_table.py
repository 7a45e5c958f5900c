"""Success tables from episode results: per task, and per suite in the paper's layout (Spatial,
Object, Goal, Long, Avg). Errors (episodes that could not be run) are counted apart from failures
and left out of the rate's denominator, so a crashing env never reads as a bad policy."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Iterable

from worldvla_dist.envs.libero_tasks import find_task
from worldvla_dist.evaluation.episodes import EpisodeResult

PAPER_COLUMNS = (("libero_spatial", "Spatial"), ("libero_object", "Object"), ("libero_goal", "Goal"),
                 ("libero_10", "Long"))


@dataclass
class TaskRow:
    suite: str
    task: int
    name: str
    trials: int
    successes: int
    failures: int
    errors: int

    @property
    def rate(self) -> float | None:
        run = self.successes + self.failures
        return self.successes / run if run else None


def task_rows(results: Iterable[EpisodeResult]) -> list[TaskRow]:
    rows: dict[tuple[str, int], TaskRow] = {}
    for r in results:
        row = rows.setdefault((r.suite, r.task), TaskRow(r.suite, r.task, find_task(r.suite, r.task).name, 0, 0, 0, 0))
        row.trials += 1
        count_outcome(row, r)
    return [rows[k] for k in sorted(rows)]


def count_outcome(counts, result: EpisodeResult) -> None:
    """Adds one episode to `counts` (anything with successes / failures / errors): an error is not a failure."""
    if result.error:
        counts.errors += 1
    elif result.success:
        counts.successes += 1
    else:
        counts.failures += 1


def suite_rates(rows: list[TaskRow]) -> dict[str, float]:
    """Success rate per suite over its run episodes, plus "avg": the mean of the suites present."""
    out = {}
    for suite in sorted({r.suite for r in rows}):
        run = sum(r.successes + r.failures for r in rows if r.suite == suite)
        if run:
            out[suite] = sum(r.successes for r in rows if r.suite == suite) / run
    if out:
        out["avg"] = sum(out.values()) / len(out)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown(rows: list[TaskRow]) -> str:
    lines = ["| suite | task | name | trials | success | failure | error | SR % |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.suite} | {r.task} | {r.name} | {r.trials} | {r.successes} | {r.failures} | {r.errors} | "
              f"{_pct(r.rate)} |" for r in rows]
    rates = suite_rates(rows)
    extra = [(s, label) for s, label in PAPER_COLUMNS if s in rates] + \
            [(s, s) for s in rates if s != "avg" and s not in dict(PAPER_COLUMNS)]
    lines += ["", "| " + " | ".join([label for _, label in extra] + ["Avg"]) + " |",
              "|" + "---|" * (len(extra) + 1),
              "| " + " | ".join([_pct(rates[s]) for s, _ in extra] + [_pct(rates.get("avg"))]) + " |"]
    return "\n".join(lines)


def terminal(rows: list[TaskRow]) -> str:
    w = max([15] + [len(r.suite) for r in rows])  # perturbed suites' names are longer (libero_spatial_object)
    head = f"{'suite':{w}s} {'task':>4s}  {'trials':>6s} {'succ':>5s} {'fail':>5s} {'err':>4s} {'SR %':>6s}  name"
    lines = [head, "-" * len(head)]
    lines += [f"{r.suite:{w}s} {r.task:4d}  {r.trials:6d} {r.successes:5d} {r.failures:5d} {r.errors:4d} "
              f"{_pct(r.rate):>6s}  {r.name}" for r in rows]
    rates = suite_rates(rows)
    lines += ["-" * len(head)] + [f"{s:{w}s} SR {_pct(v)} %" for s, v in rates.items()]
    return "\n".join(lines)


def to_csv(rows: list[TaskRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["suite", "task", "name", "trials", "successes", "failures", "errors", "success_rate"])
    for r in rows:
        writer.writerow([r.suite, r.task, r.name, r.trials, r.successes, r.failures, r.errors,
                         "" if r.rate is None else f"{r.rate:.4f}"])
    return buf.getvalue()


def to_json(rows: list[TaskRow]) -> str:
    return json.dumps({"tasks": [{**asdict(r), "success_rate": r.rate} for r in rows],
                       "suites": suite_rates(rows)}, indent=1)
