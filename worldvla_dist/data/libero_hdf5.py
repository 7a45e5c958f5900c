"""The official LIBERO demonstration format (robomimic-style hdf5), read and written.

    data                      attrs: env_name, problem_info (json), macros_image_convention, bddl_file_name,
                                     bddl_file_content, env_args (json), num_demos, total, worldvla_dist_writer
    data/demo_i               attrs: num_samples, model_file, init_state
        actions (T, 7)  states (T, D)  robot_states (T, 9)  rewards (T,) uint8  dones (T,) uint8
        obs/agentview_rgb (T, H, W, 3) uint8   obs/eye_in_hand_rgb   obs/ee_pos, ee_ori, ee_states,
            gripper_states, joint_states (when recorded)

Images are stored as the renderer gives them (`macros_image_convention`, "opengl" in LIBERO's files:
upside down); `Demo.model_images()` turns them into what WorldVLA sees. Three kinds of file read
(`DemoFile.source`): "ours" (write_demo_file), "no_noops" (the reference's regenerated files: no
`data` attributes; the task comes from the file name) and "official" (raw LIBERO files: frames
recorded after their actions, no-ops in; `require_regenerated` refuses them). Also here: the
reference's no-op filter (the train / held-out split is in split.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

# LiberoDataError lives with the checks; callers import it from here
from worldvla_dist.data.demo_validation import (PROPRIO_KEYS, LiberoDataError, check_demo, demo_names, json_attr,
                                                text_attr)
from worldvla_dist.envs.libero_env import to_model_orientation
from worldvla_dist.envs.libero_tasks import LIBERO_SUITES, TaskSpec, all_tasks

DEMO_KEYS = ("actions", "states", "rewards", "dones", "obs/agentview_rgb")
FILE_ATTRS = ("problem_info", "bddl_file_name")
NOOP_THRESHOLD = 1e-4
WRITER_ATTR = "worldvla_dist_writer"  # marks our files: LIBERO's and the reference's writers set no such key
SOURCES = ("ours", "no_noops", "official")


@dataclass
class Demo:
    actions: np.ndarray  # (T, 7) float64
    states: np.ndarray  # (T, D) flattened MuJoCo states, states[t] before actions[t]
    agentview: np.ndarray  # (T, H, W, 3) uint8, stored convention
    eye_in_hand: np.ndarray | None = None
    rewards: np.ndarray | None = None  # (T,) uint8; default: 1 at the last step
    dones: np.ndarray | None = None
    robot_states: np.ndarray | None = None
    proprio: dict[str, np.ndarray] = field(default_factory=dict)  # ee_pos, gripper_states, ...
    model_file: str = ""
    image_convention: str = "opengl"
    source_index: int | None = None  # init state (ours) or source demo number (regenerated): split.py keys on it

    def __post_init__(self) -> None:
        t = len(self.actions)
        for name in ("states", "agentview"):
            if len(getattr(self, name)) != t:
                raise LiberoDataError(f"Demo: {name} has {len(getattr(self, name))} steps, actions {t}")
        if self.rewards is None:
            self.rewards = np.zeros(t, dtype=np.uint8)
            self.rewards[-1:] = 1
        if self.dones is None:
            self.dones = self.rewards.copy()

    def __len__(self) -> int:
        return len(self.actions)

    def model_images(self, camera: str = "agentview") -> np.ndarray:
        """(T, H, W, 3) uint8 in WorldVLA's orientation (the reference's 180-degree turn of a raw render)."""
        return model_oriented(self.agentview if camera == "agentview" else self.eye_in_hand, self.image_convention)


def model_oriented(images: np.ndarray, image_convention: str) -> np.ndarray:
    """Stored (T, H, W, 3) frames -> WorldVLA's orientation."""
    if image_convention == "opencv":  # already flipped upright: one more flip gives the raw render
        images = images[:, ::-1]
    return np.stack([to_model_orientation(im) for im in images])


@dataclass
class DemoFileInfo:
    """The file-level attributes of a LIBERO demo file."""

    language_instruction: str
    problem_name: str
    bddl_file_name: str
    bddl_file_content: str = ""
    env_name: str = ""
    env_args: dict[str, Any] = field(default_factory=dict)
    domain_name: str = "robosuite"
    image_convention: str = "opengl"


def write_demo_file(path: str | Path, info: DemoFileInfo, demos: list[Demo]) -> Path:
    """Writes `demos` as data/demo_0.. in the official layout (gzip-compressed images)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    with h5py.File(tmp, "w") as f:
        grp = f.create_group("data")
        grp.attrs["env_name"] = info.env_name
        grp.attrs["problem_info"] = json.dumps({"problem_name": info.problem_name, "domain_name": info.domain_name,
                                                "language_instruction": info.language_instruction})
        grp.attrs["macros_image_convention"] = info.image_convention
        grp.attrs["bddl_file_name"] = info.bddl_file_name
        grp.attrs["bddl_file_content"] = info.bddl_file_content
        grp.attrs["env_args"] = json.dumps(info.env_args)
        grp.attrs[WRITER_ATTR] = "worldvla_dist.data.libero_hdf5.write_demo_file"
        for i, demo in enumerate(demos):
            ep = grp.create_group(f"demo_{i}")
            ep.create_dataset("actions", data=np.asarray(demo.actions, dtype=np.float64))
            ep.create_dataset("states", data=demo.states)
            ep.create_dataset("rewards", data=demo.rewards.astype(np.uint8))
            ep.create_dataset("dones", data=demo.dones.astype(np.uint8))
            if demo.robot_states is not None:
                ep.create_dataset("robot_states", data=demo.robot_states)
            obs = ep.create_group("obs")
            obs.create_dataset("agentview_rgb", data=demo.agentview, compression="gzip", compression_opts=4)
            if demo.eye_in_hand is not None:
                obs.create_dataset("eye_in_hand_rgb", data=demo.eye_in_hand, compression="gzip", compression_opts=4)
            for name, values in demo.proprio.items():
                obs.create_dataset(name, data=values)
            ep.attrs["num_samples"] = len(demo)
            ep.attrs["model_file"] = demo.model_file
            ep.attrs["init_state"] = demo.states[0]
            if demo.source_index is not None:
                ep.attrs["source_index"] = int(demo.source_index)
        grp.attrs["num_demos"] = len(demos)
        grp.attrs["total"] = int(sum(len(d) for d in demos))
    tmp.replace(path)  # a crash mid-write never leaves a file that looks finished
    return path


class DemoFile:
    """Read access to one LIBERO demo file; every malformed part is reported with the file and demo.

    `source` says how the file was made (SOURCES): "ours" (write_demo_file), "no_noops" (the
    reference's regenerate_libero_dataset_filter_no_op.py: no `data` attributes, so the instruction
    and bddl file come from the task the file name names) or "official" (raw LIBERO data, see
    `require_regenerated`). `task` is the LIBERO task the file holds, when its name tells.
    A file without demos is an error unless `allow_empty` (a task whose every replay failed).
    Each demo's shapes are checked from metadata on its first access (check_demo)."""

    def __init__(self, path: str | Path, allow_empty: bool = False):
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except (OSError, FileNotFoundError) as e:
            raise LiberoDataError(f"{self.path}: cannot be read as hdf5 ({e})") from e
        self._steps: dict[str, int] = {}  # demo -> T, for the demos checked so far
        try:
            self._open(allow_empty)
        except BaseException:
            self._file.close()
            raise

    def _open(self, allow_empty: bool) -> None:
        data = self._file.get("data")
        if not isinstance(data, h5py.Group):
            raise LiberoDataError(f"{self.path}: missing key 'data'")
        self.names = demo_names(self.path, data)
        if not self.names and not allow_empty:
            raise LiberoDataError(f"{self.path}: no demos (expected groups /data/demo_0, /data/demo_1, ...); "
                                  "a task whose every replay failed leaves such a file: remove it or record more")
        if not any(a in data.attrs for a in (*FILE_ATTRS, "env_args")):
            self.source = "no_noops"
            self.task = task_for_file(self.path)
            if self.task is None:
                raise LiberoDataError(
                    f"{self.path}: /data has no attributes (problem_info, bddl_file_name, env_args), as in the "
                    f"reference's *_no_noops files, so the task must come from the file name <task name>_demo.hdf5; "
                    f"{self.path.stem.removesuffix('_demo')!r} is no task of {', '.join(LIBERO_SUITES)}")
            self.info = DemoFileInfo(language_instruction=self.task.language, problem_name="",
                                     bddl_file_name=f"{self.task.suite}/{self.task.name}.bddl", domain_name="")
            return
        missing = [a for a in FILE_ATTRS if a not in data.attrs]
        if missing:
            raise LiberoDataError(f"{self.path}: data is missing attributes {missing}")
        problem = json_attr(self.path, data, "problem_info")
        if not isinstance(problem.get("language_instruction"), str):
            raise LiberoDataError(f"{self.path}: data attribute 'problem_info' should hold a 'language_instruction' "
                                  f"string, got keys {sorted(problem)}")
        env_args = json_attr(self.path, data, "env_args", default="{}")
        self.info = DemoFileInfo(
            language_instruction=problem["language_instruction"], problem_name=problem.get("problem_name", ""),
            domain_name=problem.get("domain_name", ""), bddl_file_name=text_attr(data.attrs["bddl_file_name"]),
            bddl_file_content=text_attr(data.attrs.get("bddl_file_content", "")),
            env_name=text_attr(data.attrs.get("env_name", "")), env_args=env_args,
            image_convention=text_attr(data.attrs.get("macros_image_convention", "opengl")))
        # files of ours written before WRITER_ATTR: demo_generation.file_info's env_args name the suite and task
        ours = WRITER_ATTR in data.attrs or {"suite", "task"} <= env_args.keys()
        self.source = "ours" if ours else "official"
        self.task = task_for_file(self.path, self.info.bddl_file_name)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Demo]:
        return (self[name] for name in self.names)

    def _read(self, group: h5py.Group, key: str, required: bool = True, rows: slice | None = None) -> np.ndarray | None:
        """The whole dataset, or only `rows` of it (h5py reads just those)."""
        if key not in group:
            if required:
                raise LiberoDataError(f"{self.path}: {group.name} is missing key '{key}'")
            return None
        try:
            return group[key][()] if rows is None else group[key][rows]
        except OSError as e:  # truncated or corrupted chunk
            raise LiberoDataError(f"{self.path}: {group.name}/{key} is corrupted ({e})") from e

    def _episode(self, name: str) -> h5py.Group:
        """The demo's group, its shapes checked (once per demo)."""
        if name not in self.names:
            raise LiberoDataError(f"{self.path}: no demo {name!r}; the file has {len(self.names)} demos")
        ep = self._file["data"][name]
        if name not in self._steps:
            self._steps[name] = check_demo(self.path, ep)
        return ep

    def __getitem__(self, name: str) -> Demo:
        ep = self._episode(name)
        required = {k: self._read(ep, k) for k in DEMO_KEYS}
        proprio = {}
        if "obs" in ep:
            for key in PROPRIO_KEYS:
                if key in ep["obs"]:
                    proprio[key] = self._read(ep["obs"], key)
        return Demo(actions=required["actions"], states=required["states"], agentview=required["obs/agentview_rgb"],
                    eye_in_hand=self._read(ep, "obs/eye_in_hand_rgb", required=False),
                    rewards=required["rewards"], dones=required["dones"],
                    robot_states=self._read(ep, "robot_states", required=False), proprio=proprio,
                    model_file=text_attr(ep.attrs.get("model_file", "")), image_convention=self.info.image_convention,
                    source_index=int(ep.attrs["source_index"]) if "source_index" in ep.attrs else None)

    def window(self, name: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Model-oriented agentview frames and actions [start, stop) of one demo, read without loading
        the rest of it (a real demo at 256 px is tens of MB; an imagined rollout needs a few frames)."""
        ep = self._episode(name)
        frames, actions = (self._read(ep, key, rows=slice(start, stop)) for key in ("obs/agentview_rgb", "actions"))
        return model_oriented(frames, self.info.image_convention), actions

    def length(self, name: str) -> int:
        """Steps of one demo, from its datasets' shapes alone."""
        self._episode(name)
        return self._steps[name]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "DemoFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def task_for_file(path: str | Path, bddl_file_name: str = "") -> TaskSpec | None:
    """The LIBERO task named by a demo file's name, `<task name>_demo.hdf5` (as LIBERO's, the
    reference's and our writers name them), or else by its bddl file's name; None if neither does."""
    by_name = {t.name: t for t in all_tasks()}
    for stem in (Path(path).stem.removesuffix("_demo"), Path(bddl_file_name).stem):
        if stem in by_name:
            return by_name[stem]
    return None


def regenerate_command(path: str | Path, task: TaskSpec | None, out_dir: str = "data/demos") -> str:
    """The shell command that regenerates a raw official demo file the reference's way into `out_dir`."""
    suite, index = (task.suite, task.index) if task else ("<suite>", "<task index>")
    return f"python jobs/make_demos.py --regenerate {path} --suites {suite} --tasks {index} --out {out_dir}"


def require_regenerated(demo_file: DemoFile) -> None:
    """Raises LiberoDataError for a raw official LIBERO file (source "official"): LIBERO's recorder
    stores each frame after its action and keeps the no-ops, so its frames and actions are one step
    apart from what WorldVLA trains on. Files of ours and the reference's *_no_noops files pass."""
    if demo_file.source != "official":
        return
    evidence = ""
    if demo_file.names:  # actions are small: count the no-ops of the first demo as evidence
        first = demo_file.names[0]
        actions = demo_file._read(demo_file._episode(first), "actions")
        evidence = f"; {int(noop_mask(actions).sum())} of {len(actions)} actions of {first} are no-ops"
    raise LiberoDataError(
        f"{demo_file.path}: a raw LIBERO demo file (LIBERO's data attributes, not written by worldvla_dist{evidence}): "
        f"its frames are recorded after their actions and no-ops are kept. Regenerate it first (frames before "
        f"actions, no-ops dropped): {regenerate_command(demo_file.path, demo_file.task)}")


def noop_mask(actions: np.ndarray) -> np.ndarray:
    """(T, 7) -> (T,) bool, True for the reference's no-ops (regenerate_libero_dataset_filter_no_op.py
    `is_noop`): the L2 norm of a[:6] below 1e-4 and the gripper a[6] equal to that of the previous KEPT
    action. Until an action is kept the norm alone decides, so leading still actions are dropped
    whatever their gripper."""
    actions = np.asarray(actions)
    if actions.ndim != 2 or actions.shape[1] != 7:
        raise LiberoDataError(f"noop_mask: expected actions (T, 7), got shape {actions.shape}")
    mask = np.zeros(len(actions), dtype=bool)
    kept_gripper = None  # the gripper command of the last kept action
    for t, action in enumerate(actions):  # sequential: which action is "previous" depends on what was dropped
        still = np.linalg.norm(action[:6]) < NOOP_THRESHOLD  # the reference's 1-D norm, bit for bit
        mask[t] = still and (kept_gripper is None or action[6] == kept_gripper)
        if not mask[t]:
            kept_gripper = action[6]
    return mask

