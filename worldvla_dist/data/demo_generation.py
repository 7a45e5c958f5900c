"""Demonstrations in the official LIBERO format, the way the reference makes its training data:
trajectories found without rendering (our scripted expert, or the actions of official demo files),
then replayed at the model's resolution with both cameras, no-op actions dropped, and only the
replays that succeed kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from worldvla_dist.data.libero_hdf5 import Demo, DemoFile, DemoFileInfo, noop_mask, write_demo_file
from worldvla_dist.data.scripted_expert import run_expert
from worldvla_dist.envs.libero_env import CAMERAS, LiberoEnv, LiberoEnvConfig
from worldvla_dist.envs.libero_tasks import TaskSpec


@dataclass
class TaskDemoReport:
    """Outcome of one task: how many trials the expert solved and how many replays were kept."""

    suite: str
    task: int
    name: str
    trials: int
    expert_successes: int
    kept_demos: int
    path: str

    @property
    def expert_success_rate(self) -> float:
        return self.expert_successes / max(self.trials, 1)


def replay(env: LiberoEnv, actions: np.ndarray, start: Callable[[], None]) -> Demo | None:
    """Replays `actions` (no-ops dropped) from `start()` rendering both cameras at every step; the
    frame stored with action t is the one seen before taking it. None if the replay does not succeed."""
    kept = actions[~noop_mask(actions)]
    start()
    frames = {c: [] for c in CAMERAS}
    states, taken, proprio = [], [], {"ee_pos": [], "gripper_states": [], "joint_states": []}
    robot = env._env.env.robots[0]
    data = env.sim.data
    for action in kept:
        for c in CAMERAS:
            frames[c].append(env.raw_image(c))
        states.append(env.sim.get_state().flatten())
        proprio["ee_pos"].append(np.array(data.site_xpos[robot.eef_site_id]))
        proprio["gripper_states"].append(np.array(data.qpos[robot._ref_gripper_joint_pos_indexes]))
        proprio["joint_states"].append(np.array(data.qpos[robot._ref_joint_pos_indexes]))
        taken.append(action)
        if env.step(action, cameras=CAMERAS) or env.truncated:
            break
    if not env.done:
        return None
    return Demo(actions=np.asarray(taken), states=np.asarray(states), agentview=np.stack(frames["agentview"]),
                eye_in_hand=np.stack(frames["robot0_eye_in_hand"]),
                proprio={k: np.asarray(v) for k, v in proprio.items()},
                model_file=env.sim.model.get_xml())


def file_info(env: LiberoEnv) -> DemoFileInfo:
    robosuite = env._env.env
    return DemoFileInfo(language_instruction=env.task.language, problem_name=robosuite.__class__.__name__,
                        bddl_file_name=str(robosuite.bddl_file_name),
                        bddl_file_content=Path(robosuite.bddl_file_name).read_text(),
                        env_name=robosuite.__class__.__name__,
                        env_args={"env_name": robosuite.__class__.__name__, "suite": env.config.suite,
                                  "task": env.task.index, "camera_heights": env.config.image_size_px,
                                  "camera_widths": env.config.image_size_px, "control_freq": robosuite.control_freq})


def demo_path(out_dir: str | Path, task: TaskSpec) -> Path:
    return Path(out_dir) / task.suite / f"{task.name}_demo.hdf5"


def generate_task_demos(suite: str, task: int, out_dir: str | Path, trials: int = 50, image_size_px: int = 128,
                        max_steps: int = 400, on_trial: Callable[[int, bool], None] | None = None,
                        record: bool = True) -> TaskDemoReport:
    """Scripted expert on init states 0..trials-1 without rendering, then the successful ones
    replayed with rendering into `out_dir/<suite>/<task name>_demo.hdf5`. `record=False` only
    measures the expert's success (no replay, no file): the success table costs a third as much."""
    with LiberoEnv(LiberoEnvConfig(suite, task, image_size_px=image_size_px, max_steps=max_steps)) as env:
        demos, solved = [], 0
        for trial in range(min(trials, env.num_trials)):
            rollout = run_expert(env, trial)
            solved += rollout.success
            if rollout.success and record:
                demo = replay(env, rollout.actions, lambda t=trial: env.reset(t, cameras=CAMERAS))
                if demo is not None:
                    demos.append(demo)
            if on_trial:
                on_trial(trial, rollout.success)
        path = ""
        if record:
            path = str(demo_path(out_dir, env.task))
            write_demo_file(path, file_info(env), demos)
        return TaskDemoReport(suite, env.task.index, env.task.name, min(trials, env.num_trials), solved, len(demos),
                              path)


def regenerate_demo_file(source: str | Path, suite: str, task: int, out_dir: str | Path,
                         image_size_px: int = 128) -> TaskDemoReport:
    """An official LIBERO demo file -> the reference's regeneration: each demo replayed from its
    first state at the model's resolution, no-ops dropped, failures discarded."""
    with DemoFile(source) as original, LiberoEnv(LiberoEnvConfig(suite, task, image_size_px=image_size_px,
                                                                 max_steps=10_000)) as env:
        demos = []
        for demo in original:
            replayed = replay(env, demo.actions, lambda d=demo: env.reset_to_state(d.states[0], cameras=CAMERAS))
            if replayed is not None:
                demos.append(replayed)
        path = demo_path(out_dir, env.task)
        write_demo_file(path, file_info(env), demos)
        return TaskDemoReport(suite, env.task.index, env.task.name, len(original), len(original), len(demos), str(path))
