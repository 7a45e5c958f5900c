"""Trajectory splits: our stable rule, and the reference's, pinned to alibaba-damo-academy/WorldVLA:
worldvla/data/action_model_conv_generation.py (same rule in world_model_conv_generation.py):

    task_list = sorted(os.listdir(base_dir))
    split_index_ood = math.ceil(len(task_list) * 0.9)
    ...
        trj_list = sorted(os.listdir(task_path))
        split_index_ind = math.ceil(len(trj_list) * 0.9)
        ...
            if task_id < split_index_ood and i < split_index_ind: train
            elif task_id < split_index_ood and i >= split_index_ind: val_ind
            else: val_ood

with trajectory folders named trj_<demo number> (libero_util/regenerate_libero_dataset_save_img_action.py)."""

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from worldvla_dist.data.libero_hdf5 import Demo, DemoFileInfo, LiberoDataError, write_demo_file
from worldvla_dist.data.split import (IDENTITY_ATTR, TRAIN, VAL_IND, VAL_OOD, assign_splits, demo_identity,
                                      reference_split, stable_split)
from worldvla_dist.envs.libero_tasks import all_tasks

SUITES_40 = ("libero_spatial", "libero_object", "libero_goal", "libero_10")


def write_task(folder: Path, suite: str, task: str, identities: list[int], with_attr: bool = True) -> Path:
    """A demo file of tiny demos written as demo_0.. (the writer's renumbering), each carrying its
    identity as `source_index` when `with_attr`."""
    rng = np.random.default_rng(0)
    demos = [Demo(actions=rng.uniform(-1, 1, (2, 7)), states=np.zeros((2, 3)),
                  agentview=np.zeros((2, 4, 4, 3), np.uint8)) for _ in identities]
    info = DemoFileInfo(language_instruction=task.replace("_", " "), problem_name="p", bddl_file_name=f"{task}.bddl")
    path = write_demo_file(folder / suite / f"{task}_demo.hdf5", info, demos)
    if with_attr:
        with h5py.File(path, "a") as f:
            for i, identity in enumerate(identities):
                f["data"][f"demo_{i}"].attrs[IDENTITY_ATTR] = identity
    return path


def by_identity(path: Path, splits: dict) -> dict[int, str]:
    with h5py.File(path, "r") as f:
        return {demo_identity(name, f["data"][name].attrs): split for name, split in splits[path].items()}


# ---------------- the reference's rule ----------------

def test_reference_holds_out_the_last_tenth_of_tasks_and_of_each_tasks_trajectories_in_string_order():
    tasks = [f"task_{c}" for c in "jcbadefghi"]  # 10 tasks, listed out of order
    split = reference_split({t: [f"trj_{i}" for i in range(50)] for t in tasks})
    assert [t for t in sorted(tasks) if set(split[t].values()) == {VAL_OOD}] == ["task_j"]  # from ceil(0.9 * 10) = 9
    for task in sorted(tasks)[:9]:
        held = sorted(trj for trj, s in split[task].items() if s == VAL_IND)
        assert held == sorted(sorted(f"trj_{i}" for i in range(50))[math.ceil(50 * 0.9):])
        assert held == ["trj_5", "trj_6", "trj_7", "trj_8", "trj_9"]  # string order: not trj_45..trj_49
        assert sum(s == TRAIN for s in split[task].values()) == 45


@pytest.mark.parametrize("num_tasks, num_ood", [(1, 0), (3, 0), (9, 0), (10, 1), (11, 1), (20, 2), (40, 4)])
def test_reference_val_ood_count_is_what_ceil_gives(num_tasks, num_ood):
    tasks = [f"t{i:02d}" for i in range(num_tasks)]
    split = reference_split({t: ["trj_0"] for t in tasks})
    assert [t for t in tasks if split[t]["trj_0"] == VAL_OOD] == tasks[num_tasks - num_ood:]


def test_reference_small_tasks_string_order():
    split = reference_split({f"t{i}": [f"trj_{j}" for j in range(n)] for i, n in enumerate([1, 5, 11, 10])})
    assert set(split["t0"].values()) == {TRAIN} and set(split["t1"].values()) == {TRAIN}  # ceil(4.5) = 5
    assert [trj for trj, s in split["t2"].items() if s == VAL_IND] == ["trj_9"]  # trj_10 sorts before trj_2
    assert [trj for trj, s in split["t3"].items() if s == VAL_IND] == ["trj_9"]  # ceil(9.0) = 9
    assert not any(s == VAL_OOD for t in split.values() for s in t.values())  # ceil(0.9 * 4) = 4 of 4 tasks


def test_reference_from_files_is_per_suite_and_names_trajectories_by_identity(tmp_path):
    paths = [write_task(tmp_path, "libero_goal", f"task_{t}", list(range(11))) for t in range(10)]
    paths.append(write_task(tmp_path, "libero_object", "alone", list(range(11))))
    splits = assign_splits(paths, "reference")
    assert set(splits[paths[9]].values()) == {VAL_OOD}  # last of libero_goal's 10 tasks by name
    assert set(splits[paths[10]].values()) == {TRAIN, VAL_IND}  # a suite of one task keeps it
    assert by_identity(paths[0], splits)[9] == VAL_IND and sum(s == VAL_IND for s in splits[paths[0]].values()) == 1


# ---------------- our stable rule ----------------

def test_stable_holds_out_a_tenth_of_every_one_of_the_40_tasks():
    tasks = [t for t in all_tasks() if t.suite in SUITES_40]
    assert len(tasks) == 40
    for task in tasks:  # the rule reads only the demo's identity, so every task gets the same five
        held = [i for i in range(50) if stable_split(i) == VAL_IND]
        assert held == [1, 11, 21, 31, 41], task.key


def test_stable_gives_every_small_task_a_validation_trajectory_and_keeps_a_single_demo_for_training():
    assert stable_split(0) == TRAIN
    for n in range(2, 101):
        assert any(stable_split(i) == VAL_IND for i in range(n)), n
    for start in range(100):  # exactly one of any 10 consecutive trials
        assert sum(stable_split(i) == VAL_IND for i in range(start, start + 10)) == 1


def test_stable_from_files_gives_every_task_a_validation_trajectory(tmp_path):
    paths = [write_task(tmp_path, "libero_goal", f"task_{n}", list(range(n)), with_attr=False) for n in range(2, 12)]
    splits = assign_splits(paths, "stable")
    for path in paths:
        assert VAL_IND in splits[path].values() and set(splits[path].values()) <= {TRAIN, VAL_IND}, path.name


def test_a_demos_membership_does_not_depend_on_another_demo(tmp_path):
    full = write_task(tmp_path / "a", "libero_goal", "task", list(range(50)))
    for failed in (0, 1, 7, 49):  # trial `failed` lost: the writer renumbers the later demos, source_index stays
        kept = [i for i in range(50) if i != failed]
        fewer = write_task(tmp_path / f"b{failed}", "libero_goal", "task", kept)
        before, after = by_identity(full, assign_splits([full])), by_identity(fewer, assign_splits([fewer]))
        assert after == {i: s for i, s in before.items() if i != failed}


def test_without_source_index_a_gap_in_demo_names_moves_no_one(tmp_path):
    path = write_task(tmp_path, "libero_goal", "task", list(range(20)), with_attr=False)
    before = assign_splits([path])[path]
    with h5py.File(path, "a") as f:  # the reference's regeneration keeps the original numbers, with gaps
        del f["data"]["demo_3"]
    after = assign_splits([path])[path]
    assert after == {name: s for name, s in before.items() if name != "demo_3"}


def test_identity_prefers_the_attribute_and_rejects_what_it_cannot_read(tmp_path):
    assert demo_identity("demo_4", {IDENTITY_ATTR: np.int64(11)}) == 11 and demo_identity("demo_4", {}) == 4
    with pytest.raises(LiberoDataError, match="expected a group named demo_<N>"):
        demo_identity("episode", {})
    path = write_task(tmp_path, "libero_goal", "dup", [3, 3])
    with pytest.raises(LiberoDataError, match="two demos share an identity"):
        assign_splits([path])
    with pytest.raises(ValueError, match="rule must be one of"):
        assign_splits([path], "random")
