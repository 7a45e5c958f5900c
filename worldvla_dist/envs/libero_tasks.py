"""LIBERO's suites and tasks by suite + index or by name, and the reference protocol's per-suite
numbers; answered from a shipped table, so looking a task up never imports the simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from worldvla_dist.config import Registry
from worldvla_dist.errors import ConfigError


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    max_steps: int  # the reference evaluation's cap per episode
    chunk: int  # K, actions per chunk (WORLDVLA.md)


SUITES: Registry[SuiteSpec] = Registry("LIBERO suite")
for _spec in (SuiteSpec("libero_spatial", 220, 5), SuiteSpec("libero_object", 280, 5),
              SuiteSpec("libero_goal", 300, 5), SuiteSpec("libero_10", 520, 10), SuiteSpec("libero_90", 400, 5)):
    SUITES.register(_spec.name, _spec)

WAIT_STEPS = 10  # the reference lets objects settle for 10 steps of WAIT_ACTION first
WAIT_ACTION = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0)
TRIALS_PER_TASK = 50


@dataclass(frozen=True)
class TaskSpec:
    suite: str
    index: int
    name: str
    language: str

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.index}"


@lru_cache(maxsize=1)
def all_tasks() -> tuple[TaskSpec, ...]:
    rows = json.loads((resources.files("worldvla_dist") / "assets" / "libero_tasks.json").read_text())
    return tuple(TaskSpec(r["suite"], r["index"], r["name"], r["language"]) for r in rows)


def suite_tasks(suite: str) -> list[TaskSpec]:
    SUITES.get(suite)
    return [t for t in all_tasks() if t.suite == suite]


def find_task(suite: str, task: int | str) -> TaskSpec:
    """A task by index within its suite, or by name (LIBERO's underscore name or its instruction)."""
    tasks = suite_tasks(suite)
    if isinstance(task, int) or (isinstance(task, str) and task.isdigit()):
        index = int(task)
        if not 0 <= index < len(tasks):
            raise ConfigError(f"{suite} has tasks 0..{len(tasks) - 1}, got index {index}")
        return tasks[index]
    for t in tasks:
        if task in (t.name, t.language):
            return t
    raise ConfigError(f"unknown task {task!r} in {suite}; valid tasks are: " + ", ".join(t.name for t in tasks))
