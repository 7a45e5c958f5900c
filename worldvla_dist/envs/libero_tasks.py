"""LIBERO's suites and tasks by suite + index or by name, and the reference protocol's per-suite
numbers; answered from shipped tables, so looking a task up never imports the simulator.

LIBERO-PRO's perturbed suites (`libero_object_swap`, ...; envs/libero_pro.py) are registered with their
base suite's step cap and chunk size; their tasks come from `libero_pro_tasks.json`, whose `language`
is the instruction the policy gets there (the BDDL's, see libero_pro.py).

`<base>_paraphrase` is the base suite (its BDDL files, its init states) with each task's instruction
replaced by its LIBERO-PRO `_lan` paraphrase: only the words change, trial by trial, so that
`eval_libero.py --instruction-variants` compares the same episodes under two instructions (the `_lan`
suite itself ships other init states)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

from worldvla_dist.config import Registry
from worldvla_dist.envs.libero_pro import BASE_SUITES, PERTURBATIONS
from worldvla_dist.errors import ConfigError


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    max_steps: int  # the reference evaluation's cap per episode
    chunk: int  # K, actions per chunk (WORLDVLA.md)
    base: str = ""  # a LIBERO-PRO perturbed suite: the suite it perturbs
    perturbation: str = ""  # "lan", "object", "swap", "task", or "paraphrase" (ours, see above)
    scene: str = ""  # the package suite whose BDDL files and init states the env loads ("": this one)

    @property
    def package_suite(self) -> str:
        return self.scene or self.name


SUITES: Registry[SuiteSpec] = Registry("LIBERO suite")
for _spec in (SuiteSpec("libero_spatial", 220, 5), SuiteSpec("libero_object", 280, 5),
              SuiteSpec("libero_goal", 300, 5), SuiteSpec("libero_10", 520, 10), SuiteSpec("libero_90", 400, 5)):
    SUITES.register(_spec.name, _spec)
LIBERO_SUITES = tuple(SUITES.names())  # LIBERO's own suites, whose task names are unique
for _base in BASE_SUITES:  # the reference protocol of the base suite: same cap, same chunk
    for _p in PERTURBATIONS:
        _b = SUITES.get(_base)
        SUITES.register(f"{_base}_{_p}", SuiteSpec(f"{_base}_{_p}", _b.max_steps, _b.chunk, _base, _p))
    SUITES.register(f"{_base}_paraphrase", SuiteSpec(f"{_base}_paraphrase", _b.max_steps, _b.chunk, _base,
                                                     "paraphrase", scene=_base))
LIBERO_PRO_SUITES = tuple(s for s in SUITES.names() if SUITES.get(s).perturbation in PERTURBATIONS)

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
    """The tasks of LIBERO's own suites (names are unique within them; perturbed suites reuse them)."""
    return _read_tasks("libero_tasks.json")


@lru_cache(maxsize=1)
def perturbed_tasks() -> tuple[TaskSpec, ...]:
    return _read_tasks("libero_pro_tasks.json")


def _read_tasks(asset: str) -> tuple[TaskSpec, ...]:
    rows = json.loads((resources.files("worldvla_dist") / "assets" / asset).read_text())
    return tuple(TaskSpec(r["suite"], r["index"], r["name"], r["language"]) for r in rows)


def suite_tasks(suite: str) -> list[TaskSpec]:
    spec = SUITES.get(suite)
    if spec.perturbation == "paraphrase":
        paraphrases = {t.index: t.language for t in suite_tasks(f"{spec.base}_lan")}
        return [replace(t, suite=suite, language=paraphrases[t.index]) for t in suite_tasks(spec.base)]
    return [t for t in (perturbed_tasks() if spec.base else all_tasks()) if t.suite == suite]


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
