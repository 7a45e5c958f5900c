"""Every malformed demo file is a LiberoDataError naming the file, the demo and what was expected."""

import json

import h5py
import numpy as np
import pytest

from tests.worldvla_dist.data.test_libero_hdf5 import INFO, fake_demo
from worldvla_dist.data.libero_hdf5 import DemoFile, LiberoDataError, write_demo_file


def replace(f: h5py.File, key: str, values: np.ndarray) -> None:
    del f[key]
    f.create_dataset(key, data=values)


def set_attr(key: str, value: str):
    def mutate(f: h5py.File) -> None:
        f["data"].attrs[key] = value
    return mutate


def replace_in_demo_1(key: str, make):
    """Replaces data/demo_1/<key> (demo_1 has 4 steps) by make(old values)."""
    def mutate(f: h5py.File) -> None:
        replace(f, f"data/demo_1/{key}", make(f[f"data/demo_1/{key}"][()]))
    return mutate


def rename_demo_1(new_name: str):
    def mutate(f: h5py.File) -> None:
        f["data"].move("demo_1", new_name)
    return mutate


def empty_demo_1(f: h5py.File) -> None:
    for key in ("actions", "states", "rewards", "dones", "robot_states", "obs/agentview_rgb", "obs/eye_in_hand_rgb",
                "obs/ee_pos"):
        replace(f, f"data/demo_1/{key}", f[f"data/demo_1/{key}"][:0])


def no_demos(f: h5py.File) -> None:
    del f["data/demo_0"], f["data/demo_1"]


CASES = {
    "problem_info without language_instruction": (
        set_attr("problem_info", json.dumps({"problem_name": "p"})),
        r"data attribute 'problem_info' should hold a 'language_instruction' string, got keys \['problem_name'\]"),
    "problem_info not JSON": (set_attr("problem_info", "{'language_instruction': 'x'"),
                              r"data attribute 'problem_info' is not JSON \(.*\): \"\{'language_instruction'"),
    "problem_info a JSON list": (set_attr("problem_info", "[1]"),
                                 r"'problem_info' should be a JSON object, got list"),
    "env_args not JSON": (set_attr("env_args", "env_name=x"), r"data attribute 'env_args' is not JSON"),
    "actions of width 6": (replace_in_demo_1("actions", lambda a: a[:, :6]),
                           r"/data/demo_1/actions: expected \(T, 7\) float, got \(4, 6\) float64"),
    "actions of width 8": (replace_in_demo_1("actions", lambda a: np.pad(a, ((0, 0), (0, 1)))),
                           r"/data/demo_1/actions: expected \(T, 7\) float, got \(4, 8\) float64"),
    "1-D actions": (replace_in_demo_1("actions", lambda a: a.ravel()),
                    r"/data/demo_1/actions: expected \(T, 7\) float, got \(28,\) float64"),
    "a demo of 0 steps": (empty_demo_1, r"/data/demo_1: 0 steps \(actions \(0, 7\)\); a demo needs at least one"),
    "a demo named demo_final": (rename_demo_1("demo_final"),
                                r"/data/demo_final: expected demo groups named demo_<integer>, got 'demo_final'"),
    "eye_in_hand one frame short": (replace_in_demo_1("obs/eye_in_hand_rgb", lambda a: a[:-1]),
                                    r"/data/demo_1/obs/eye_in_hand_rgb: 3 frames, expected one per action \(4\)"),
    "rewards one too many": (replace_in_demo_1("rewards", lambda a: np.append(a, 0)),
                             r"/data/demo_1/rewards: 5 rows \(\(5,\)\), expected one per action \(4\)"),
    "dones one short": (replace_in_demo_1("dones", lambda a: a[:-1]),
                        r"/data/demo_1/dones: 3 rows \(\(3,\)\), expected one per action \(4\)"),
    "2-D dones": (replace_in_demo_1("dones", lambda a: a[:, None]),
                  r"/data/demo_1/dones: expected 1-D \(4\), got \(4, 1\)"),
    "channels-first images": (replace_in_demo_1("obs/agentview_rgb", lambda a: a.transpose(0, 3, 1, 2)),
                              r"/data/demo_1/obs/agentview_rgb: expected \(4, H, W, 3\) uint8, "
                              r"got \(4, 3, 16, 16\) uint8 \(channels first\?\)"),
    "float images": (replace_in_demo_1("obs/agentview_rgb", lambda a: a / 255.0),
                     r"/data/demo_1/obs/agentview_rgb: expected \(4, H, W, 3\) uint8, got \(4, 16, 16, 3\) float64"),
    "a state short of the actions": (replace_in_demo_1("states", lambda a: a[:-1]),
                                     r"/data/demo_1/states: 3 rows \(\(3, 47\)\), expected one per action \(4\)"),
    "robot_states one short": (replace_in_demo_1("robot_states", lambda a: a[:-1]),
                               r"/data/demo_1/robot_states: 3 rows"),
    "ee_pos one short": (replace_in_demo_1("obs/ee_pos", lambda a: a[:-1]), r"/data/demo_1/obs/ee_pos: 3 rows"),
    "a file with zero demos": (no_demos, r": no demos \(expected groups /data/demo_0, /data/demo_1, \.\.\.\)"),
}


def read_every_demo(path) -> None:
    with DemoFile(path) as f:
        for name in f.names:
            f[name]


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_file_is_named_with_its_demo_and_what_was_expected(tmp_path, case):
    mutate, expected = CASES[case]
    path = write_demo_file(tmp_path / "bad_demo.hdf5", INFO, [fake_demo(3, 0), fake_demo(4, 1)])
    read_every_demo(path)  # well-formed before the change
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(LiberoDataError, match=expected) as raised:
        read_every_demo(path)
    assert str(raised.value).startswith(f"{path}: ")
    with h5py.File(path, "a"):  # the failed DemoFile closed its handle
        pass


def test_every_way_to_reach_a_demo_checks_it_first(tmp_path):
    path = write_demo_file(tmp_path / "bad_demo.hdf5", INFO, [fake_demo(3, 0), fake_demo(4, 1)])
    with h5py.File(path, "a") as f:
        replace(f, "data/demo_1/states", f["data/demo_1/states"][:-1])
    with DemoFile(path) as f:
        assert f.length("demo_0") == 3 and len(f["demo_0"]) == 3
        for read in (lambda: f["demo_1"], lambda: f.length("demo_1"), lambda: f.window("demo_1", 0, 2)):
            with pytest.raises(LiberoDataError, match=r"bad_demo.hdf5: /data/demo_1/states: 3 rows"):
                read()


def test_a_file_with_zero_demos_opens_when_allowed(tmp_path):
    path = write_demo_file(tmp_path / "empty_demo.hdf5", INFO, [])  # a task whose every replay failed
    with DemoFile(path, allow_empty=True) as f:
        assert len(f) == 0 and f.names == []
