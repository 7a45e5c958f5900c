"""Scripted LIBERO demonstrations -> official-format hdf5, one Ray task per LIBERO task.

    ray job submit --working-dir . -- python jobs/make_demos.py --suites libero_spatial --trials 50
    python jobs/make_demos.py --suites libero_object --tasks 0 1 --trials 10 --out data/demos
    python jobs/make_demos.py --suites libero_object --tasks 0 1 --first-trial 40 --trials 4 --out data/heldout-demos

Resumable: a finished task is skipped (its hdf5 is written under a temporary name and renamed when
complete; its success report lies beside it as `<task name>_expert.json`). At the end, a table of the
expert's success per task (also written as `expert_success.md` / `.json` in --out).

    python jobs/make_demos.py --suites libero_spatial libero_object libero_goal libero_10 --no-record \
        --out runs/expert-table      # the expert's success on all 50 init states, no frames recorded
    python jobs/make_demos.py --robustness libero_spatial libero_object --no-record --trials 50 \
        --out runs/expert-robustness # each base suite and its runnable LIBERO-PRO perturbations: robustness.md

The expert executes quantized actions (the reference tokenizer's bin centres), so every recorded demo
replays to success once tokenized; a replay that fails is dropped ("kept" in the table).

Official LIBERO files (raw, no-ops in) are regenerated the reference's way, at the model's resolution
(256 px by default, as WorldVLA-256), the task taken from the file name or checked against --suites/--tasks:

    python jobs/make_demos.py --regenerate ~/LIBERO/datasets/libero_object/*_demo.hdf5 --out data/demos
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

import ray
from tqdm import tqdm

from actors.ray_setup import init_ray
from worldvla_dist.data.demo_generation import (DEFAULT_IMAGE_SIZE_PX, TaskDemoReport, generate_task_demos,
                                                regenerate_demo_file)
from worldvla_dist.envs.libero_pro import BASE_SUITES
from worldvla_dist.envs.libero_tasks import SUITES, TaskSpec, find_task, suite_tasks
from worldvla_dist.evaluation import robustness_table
from worldvla_dist.evaluation.robustness_table import Cell

log = logging.getLogger("make_demos")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suites", nargs="+", default=None, choices=SUITES.names(),
                   help="default: libero_spatial, or none with --robustness")
    p.add_argument("--robustness", nargs="+", default=None, choices=BASE_SUITES, metavar="BASE",
                   help="each BASE suite and its runnable LIBERO-PRO perturbations, task by task across the columns; "
                        "writes robustness.md / .csv / .json (tasks x original / language / object / swap / task)")
    p.add_argument("--tasks", nargs="*", default=None, help="task indices or names within each suite (default: all)")
    p.add_argument("--trials", type=int, default=50, help="init states per task (the suite has 50)")
    p.add_argument("--first-trial", type=int, default=0,
                   help="init states --first-trial.. (e.g. 40 for held-out demos past training ones 0..39)")
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE_PX,
                   help="the model's resolution (default: WorldVLA-256's; the tiny CPU preset uses 128)")
    p.add_argument("--max-steps", type=int, default=400)
    p.add_argument("--out", type=Path, default=Path("data/demos"))
    p.add_argument("--no-record", action="store_true",
                   help="only measure the expert's success (no rendered replays, no hdf5)")
    p.add_argument("--regenerate", nargs="+", type=Path, default=None, metavar="HDF5",
                   help="official LIBERO demo files to regenerate instead of running the expert")
    p.add_argument("--address", default=None, help="Ray address; default: RAY_ADDRESS or a local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="local Ray only: CPUs to use (default: all)")
    args = p.parse_args()
    args.layouts = [robustness_table.robustness_layout(base) for base in args.robustness or ()]
    for layout in args.layouts:
        for label, why in layout.skipped:
            log.warning("--robustness %s: %s left out, %s", layout.base, label, why)
    suites = robustness_table.layout_suites(args.layouts) + list(args.suites or ([] if args.layouts else ["libero_spatial"]))
    args.suites = list(dict.fromkeys(suites))
    return args


@ray.remote(num_cpus=1)
def make_task_demos(suite: str, task: int, out: str, trials: int, image_size: int, max_steps: int,
                    record: bool, first_trial: int) -> dict:
    return asdict(generate_task_demos(suite, task, out, trials=trials, image_size_px=image_size, max_steps=max_steps,
                                      record=record, first_trial=first_trial))


@ray.remote(num_cpus=1)
def regenerate_file(source: str, suite: str | None, task: int | None, out: str, image_size: int) -> dict:
    return asdict(regenerate_demo_file(source, suite, task, out, image_size_px=image_size))


def report_path(out: Path, task: TaskSpec) -> Path:
    return out / task.suite / f"{task.name}_expert.json"


def finished_report(out: Path, task: TaskSpec, record: bool) -> TaskDemoReport | None:
    """The report of a task finished by an earlier run (with frames recorded when `record`), or None."""
    path = report_path(out, task)
    if not path.exists():
        return None
    report = TaskDemoReport(**json.loads(path.read_text()))
    return report if report.path or report.kept_demos == 0 or not record else None


def table(reports: list[TaskDemoReport]) -> str:
    """Per task: the expert's success, and how many of its successes were kept as demos (they replay
    to success from the init state with the tokenized actions they record), the init states it
    missed, and in how many an object left the hand and was picked up again."""
    lines = ["| suite | task | expert success | kept: tokenized replay succeeds | failed init states | regrasped | name |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(reports, key=lambda r: (r.suite, r.task)):
        rate = f"{r.expert_successes}/{r.trials} ({100 * r.expert_success_rate:.0f}%)"
        missed = r.trials > r.expert_successes
        failed = ", ".join(map(str, r.failed_trials)) if r.failed_trials or not missed else "not recorded (older run)"
        lines.append(f"| {r.suite} | {r.task} | {rate} | {r.kept_demos}/{r.expert_successes} | {failed} | "
                     f"{len(r.regrasp_trials)} | {r.name} |")
    return "\n".join(lines)


def regenerate(args: argparse.Namespace) -> list[TaskDemoReport]:
    """--regenerate: one Ray task per file; with one suite and one task given, each file is checked
    against that task, else the task comes from the file."""
    suite = args.suites[0] if args.tasks and len(args.suites) == 1 else None
    task = (int(args.tasks[0]) if args.tasks[0].isdigit() else args.tasks[0]) if suite and len(args.tasks) == 1 else None
    init_ray(args.address, args.num_cpus)
    pending = {regenerate_file.remote(str(f), suite, task, str(args.out), args.image_size): f for f in args.regenerate}
    reports = []
    with tqdm(total=len(pending), desc="files", unit="file") as bar:
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            pending.pop(done)
            reports.append(TaskDemoReport(**ray.get(done)))
            bar.update()
    return reports


def run_expert_tasks(args: argparse.Namespace) -> list[TaskDemoReport]:
    jobs, reports = [], []
    for suite in args.suites:
        tasks = [find_task(suite, t) for t in args.tasks] if args.tasks else suite_tasks(suite)
        for task in tasks:
            report = finished_report(args.out, task, record=not args.no_record)
            if report:
                reports.append(report)
            else:
                jobs.append(task)
    order = {s: i for i, s in enumerate(args.suites)}
    jobs.sort(key=lambda t: (t.index, order[t.suite]))  # task 0 of every suite first: a stopped run fills every column
    log.info("%d tasks to generate, %d already done in %s", len(jobs), len(reports), args.out)
    if jobs:
        init_ray(args.address, args.num_cpus)
        pending = {make_task_demos.remote(t.suite, t.index, str(args.out), args.trials, args.image_size, args.max_steps,
                                          not args.no_record, args.first_trial): t for t in jobs}
        with tqdm(total=len(pending), desc="tasks", unit="task") as bar:
            while pending:
                (done,), _ = ray.wait(list(pending), num_returns=1)
                report = TaskDemoReport(**ray.get(done))
                path = report_path(args.out, pending.pop(done))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(asdict(report)))
                reports.append(report)
                bar.update()
                bar.set_postfix(last=f"{report.suite}/{report.task} {report.expert_successes}/{report.trials}", refresh=False)
    return reports


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.regenerate:
        reports = regenerate(args)
        log.info("regenerated\n%s", "\n".join(f"{r.suite}/{r.task}: {r.kept_demos} of {r.trials} demos replayed to "
                                               f"success -> {r.path or 'no file'}" for r in reports))
        return
    reports = run_expert_tasks(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "expert_success.json").write_text(json.dumps([asdict(r) for r in reports], indent=1))
    (args.out / "expert_success.md").write_text(table(reports) + "\n")
    log.info("scripted expert\n%s", table(reports))
    if args.layouts:
        counts = [(r.suite, r.task, Cell(r.expert_successes, r.trials - r.expert_successes)) for r in reports]
        tables = [layout.table_from_counts(counts) for layout in args.layouts]
        robustness_table.write(args.out, "robustness", tables)
        log.info("scripted expert under perturbation (%s)\n%s", args.out / "robustness.md",
                 "\n\n".join(robustness_table.markdown(t) for t in tables))


if __name__ == "__main__":
    main()
