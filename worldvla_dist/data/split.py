"""Which demo trajectories train and which are held out: our stable rule and the reference's.

A trajectory is tagged "train", "val_ind" (held out, of a task that is trained on) or "val_ood" (held
out with its whole task). A demo's identity is the trial it was made from, read from its group's
`source_index` attribute (the init-state index for scripted demos, the demo number of the official file
for regenerated ones), falling back to N of its group name `demo_N` for files written without it.

stable (ours, the default): a demo is "val_ind" when identity % 10 == 1, else "train"; there is no val_ood.
- A demo's side depends on its own identity alone: removing, adding or failing another demo never
  moves it, and it is the same on every machine whatever order files are listed in.
- Exactly 10% of a full 50-trial task (trials 1, 11, 21, 31, 41), one of any 10 consecutive trials.
- Every task whose trials 0..n-1 (n >= 2) were all kept holds trial 1 out, and a task of one demo
  trains on it. Offset 1 rather than a task-dependent one is what gives small tasks that guarantee;
  LIBERO's init states are drawn independently per task, so trial 1 is no special state.
- Caveat: under the group-name fallback, a failed replay renumbers the later demos of a file whose
  writer keeps demo_0.. consecutive (ours does; the reference's regenerated files keep the gaps), which
  moves them; `source_index` makes the rule stable. With
  `source_index`, a task whose trials 1, 11, 21, ... all failed to replay has no held-out demo.
The sha256-of-the-key split it replaces left one of the 40 LIBERO tasks with nothing held out.

reference (WorldVLA's action_model_conv_generation.py and world_model_conv_generation.py): per suite
(the reference's base_dir), tasks sorted by folder name (our file name without `_demo.hdf5`), those
from index ceil(0.9 n) on are val_ood; within every other task, trajectory folders `trj_<identity>`
sorted as strings, those from index ceil(0.9 m) on are val_ind. String order makes trj_5..trj_9 the
held-out five of a 50-demo task; a suite of fewer than 10 tasks has no val_ood (ceil(0.9 n) = n),
a task of fewer than 10 trajectories no val_ind.
Which task is val_ood depends on which task files the demo folder holds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import h5py

from worldvla_dist.data.demo_validation import LiberoDataError, demo_names

TRAIN, VAL_IND, VAL_OOD = "train", "val_ind", "val_ood"
SPLITS = (TRAIN, VAL_IND, VAL_OOD)
HELD_OUT = (VAL_IND, VAL_OOD)
RULES = ("stable", "reference")
IDENTITY_ATTR = "source_index"
STABLE_PERIOD, STABLE_OFFSET = 10, 1


def task_key(path: str | Path) -> str:
    """`<suite>/<task name>` for `<suite>/<task name>_demo.hdf5`."""
    path = Path(path)
    return f"{path.parent.name}/{path.stem.removesuffix('_demo')}"


def trajectory_key(path: str | Path, demo_name: str) -> str:
    """`<suite>/<task name>/<demo>`: names one trajectory of one file (shard records carry it)."""
    return f"{task_key(path)}/{demo_name}"


def demo_identity(demo_name: str, attrs: Mapping) -> int:
    """The demo's `source_index` attribute if it has one, else N of its group name `demo_N`."""
    if IDENTITY_ATTR in attrs:
        return int(attrs[IDENTITY_ATTR])
    prefix, _, number = demo_name.partition("_")
    if prefix != "demo" or not number.isdigit():
        raise LiberoDataError(f"demo_identity: expected a group named demo_<N> or a {IDENTITY_ATTR!r} "
                              f"attribute, got {demo_name!r}")
    return int(number)


def demo_identities(path: str | Path) -> dict[str, int]:
    """demo group name -> identity for every demo of one file (attributes only, no data read)."""
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise LiberoDataError(f"{path}: missing key 'data'")
            data = f["data"]
            identities = {name: demo_identity(name, data[name].attrs) for name in demo_names(Path(path), data)}
    except OSError as e:
        raise LiberoDataError(f"{path}: cannot be read as hdf5 ({e})") from e
    if len(set(identities.values())) != len(identities):
        raise LiberoDataError(f"{path}: two demos share an identity ({IDENTITY_ATTR} or demo number): {identities}")
    return identities


def stable_split(identity: int) -> str:
    """Our rule (see the module docstring): "val_ind" when identity % 10 == 1, else "train"."""
    return VAL_IND if identity % STABLE_PERIOD == STABLE_OFFSET else TRAIN


def reference_split(trajectories: Mapping[str, Iterable[str]]) -> dict[str, dict[str, str]]:
    """The reference's rule for one suite: task folder -> its trajectory folders; returns task folder ->
    trajectory folder -> split. Both orders are Python's string sort, as the reference's `sorted(os.listdir())`."""
    tasks = sorted(trajectories)
    first_ood = math.ceil(len(tasks) * 0.9)  # the reference's expression, float and all
    out = {}
    for task_index, task in enumerate(tasks):
        folders = sorted(trajectories[task])
        first_val = math.ceil(len(folders) * 0.9)
        out[task] = {trj: VAL_OOD if task_index >= first_ood else VAL_IND if i >= first_val else TRAIN
                     for i, trj in enumerate(folders)}
    return out


def assign_splits(files: Iterable[str | Path], rule: str = "stable") -> dict[Path, dict[str, str]]:
    """Demo files -> file -> demo group name -> "train" / "val_ind" / "val_ood" under `rule`. The
    reference rule needs every task file of a suite at once: pass all of them."""
    if rule not in RULES:
        raise ValueError(f"assign_splits: rule must be one of {RULES}, got {rule!r}")
    identities = {Path(p): demo_identities(p) for p in files}
    if rule == "stable":
        return {p: {name: stable_split(i) for name, i in ids.items()} for p, ids in identities.items()}
    suites: dict[str, dict[str, Path]] = defaultdict(dict)
    for p in identities:
        suite, task = task_key(p).split("/", 1)
        if task in suites[suite]:
            raise LiberoDataError(f"assign_splits: two files for task {suite}/{task}: {suites[suite][task]}, {p}")
        suites[suite][task] = p
    out = {}
    for tasks in suites.values():
        folders = {task: {f"trj_{i}": name for name, i in identities[p].items()} for task, p in tasks.items()}
        for task, by_folder in reference_split({t: list(f) for t, f in folders.items()}).items():
            out[tasks[task]] = {folders[task][trj]: split for trj, split in by_folder.items()}
    return out
