"""Demonstrations in the official LIBERO format, the way the reference makes its training data
(regenerate_libero_dataset_filter_no_op.py): trajectories found without rendering (our scripted
expert, or the actions of official demo files), then replayed at the model's resolution with both
cameras, no-op actions dropped, and only the replays that end in success kept.

The scripted expert executes quantized actions (bin centres within the reference bounds), so what it
records is exactly what the model can output: its demos replay to success once tokenized."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from worldvla_dist.data.libero_hdf5 import Demo, DemoFile, DemoFileInfo, LiberoDataError, noop_mask, write_demo_file
from worldvla_dist.data.scripted_expert import run_expert
from worldvla_dist.envs.libero_env import CAMERAS, LiberoEnv, LiberoEnvConfig
from worldvla_dist.envs.libero_tasks import TaskSpec, find_task
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.tokenizers.action_tokenizer import ActionTokenizer
from worldvla_dist.tokenizers.vocabulary import Vocabulary

# the reference regenerates at its model's resolution: 256 px for WorldVLA-256
DEFAULT_IMAGE_SIZE_PX = MODEL_PRESETS.get("worldvla-256").image_size_px


def action_quantizer() -> Callable[[np.ndarray], np.ndarray]:
    """Actions -> the bin centres of the reference action tokenizer (bins and bounds do not depend on
    the vocabulary's ids)."""
    return ActionTokenizer(Vocabulary.tiny()).quantize


@dataclass
class TaskDemoReport:
    """Outcome of one task: how many trials the expert solved (for a regenerated file: how many of its
    demos replayed to success) and how many replays were kept."""

    suite: str
    task: int
    name: str
    trials: int
    expert_successes: int
    kept_demos: int
    path: str
    no_skill: str = ""  # the expert's reason when it has no skill for a goal predicate (e.g. the microwave)
    # init states the expert did not solve (for a regenerated file: demos whose replay failed), so a
    # miss can be traced without running the whole task again
    failed_trials: list[int] = field(default_factory=list)
    regrasp_trials: list[int] = field(default_factory=list)  # init states where an object left the hand and was picked again

    @property
    def expert_success_rate(self) -> float:
        return self.expert_successes / max(self.trials, 1)


def replay(env: LiberoEnv, actions: np.ndarray, start_state: np.ndarray, source_index: int | None = None) -> Demo | None:
    """The reference's regeneration of one demo: from `start_state`, the wait steps (not recorded),
    then every action that is not a no-op, recording both cameras before each; kept (not None) if
    the env reports `done` after the last action, wherever success came first. As the reference,
    states[0] is `start_state` itself and the later states are the sim's."""
    kept = actions[~noop_mask(actions)]
    if len(kept) == 0:
        return None
    env.reset_to_state(start_state, cameras=CAMERAS)
    frames = {c: [] for c in CAMERAS}
    states, proprio = [np.asarray(start_state)], {"ee_pos": [], "gripper_states": [], "joint_states": []}
    robot = env._env.env.robots[0]
    data = env.sim.data
    done = False
    for i, action in enumerate(kept):
        for c in CAMERAS:
            frames[c].append(env.raw_image(c))
        if i > 0:
            states.append(env.sim.get_state().flatten())
        proprio["ee_pos"].append(np.array(data.site_xpos[robot.eef_site_id]))
        proprio["gripper_states"].append(np.array(data.qpos[robot._ref_gripper_joint_pos_indexes]))
        proprio["joint_states"].append(np.array(data.qpos[robot._ref_joint_pos_indexes]))
        done = env.replay_step(action, cameras=CAMERAS if i < len(kept) - 1 else ())
    if not done:
        return None
    return Demo(actions=np.asarray(kept), states=np.asarray(states), agentview=np.stack(frames["agentview"]),
                eye_in_hand=np.stack(frames["robot0_eye_in_hand"]),
                proprio={k: np.asarray(v) for k, v in proprio.items()},
                model_file=env.sim.model.get_xml(), source_index=source_index)


def replays_to_success(env: LiberoEnv, actions: np.ndarray, start_state: np.ndarray) -> bool:
    """`actions` (no-ops dropped) from `start_state` after the wait steps, without rendering: `done`
    after the last one? The check that a demo's tokenized actions still solve its task."""
    kept = actions[~noop_mask(actions)]
    env.reset_to_state(start_state, cameras=())
    done = False
    for action in kept:
        done = env.replay_step(action)
    return bool(len(kept)) and done


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


def generate_task_demos(suite: str, task: int, out_dir: str | Path, trials: int = 50,
                        image_size_px: int = DEFAULT_IMAGE_SIZE_PX, max_steps: int = 400,
                        on_trial: Callable[[int, bool], None] | None = None, record: bool = True,
                        first_trial: int = 0) -> TaskDemoReport:
    """Scripted expert (quantized actions) on init states first_trial..first_trial+trials-1 (held-out
    demos for open-loop error analysis start past the training ones) without rendering, then the
    successful ones replayed with rendering into `out_dir/<suite>/<task name>_demo.hdf5`; a replay
    that does not succeed is dropped, and no file is written when none does. `record=False` only
    measures the expert's success (no replay, no file): the success table costs a third as much."""
    quantize = action_quantizer()
    with LiberoEnv(LiberoEnvConfig(suite, task, image_size_px=image_size_px, max_steps=max_steps)) as env:
        demos, failed, regrasped, no_skill = [], [], [], ""
        if not 0 <= first_trial < env.num_trials:
            raise ValueError(f"{suite} task {task}: first_trial {first_trial} is not one of its "
                             f"{env.num_trials} init states")
        chosen = range(first_trial, min(first_trial + trials, env.num_trials))
        for trial in chosen:
            rollout = run_expert(env, trial, quantize)
            if not rollout.success:
                failed.append(trial)
            if rollout.regrasps:
                regrasped.append(trial)
            no_skill = no_skill or rollout.error
            if rollout.success and record:
                demo = replay(env, rollout.actions, env.init_states[trial], source_index=trial)
                if demo is not None:
                    demos.append(demo)
            if on_trial:
                on_trial(trial, rollout.success)
        path = ""
        if record and demos:
            path = str(write_demo_file(demo_path(out_dir, env.task), file_info(env), demos))
        return TaskDemoReport(suite, env.task.index, env.task.name, len(chosen), len(chosen) - len(failed), len(demos),
                              path, no_skill, failed, regrasped)


def task_of_demo_file(source: DemoFile, suite: str | None = None, task: int | str | None = None) -> TaskSpec:
    """The task whose demos `source` holds; with `suite` and `task` given, a file of another task is
    refused (replayed in the wrong scene it could still "succeed" and be labelled with the wrong
    instruction)."""
    if suite is None or task is None:
        if source.task is None:
            raise LiberoDataError(f"{source.path}: neither its name nor its bddl file names a LIBERO task; "
                                  f"give the suite and task it belongs to")
        return source.task
    wanted = find_task(suite, task)
    if source.task is not None and source.task.name != wanted.name:
        raise LiberoDataError(f"{source.path}: holds demos of {source.task.suite} task {source.task.index} "
                              f"({source.task.name}), not of {wanted.key} ({wanted.name})")
    if source.task is None and source.info.language_instruction != wanted.language:
        raise LiberoDataError(f"{source.path}: its instruction {source.info.language_instruction!r} is not "
                              f"{wanted.key}'s ({wanted.language!r})")
    return wanted


def regenerate_demo_file(source: str | Path, suite: str | None = None, task: int | str | None = None,
                         out_dir: str | Path = "data/demos", image_size_px: int = DEFAULT_IMAGE_SIZE_PX,
                         on_demo: Callable[[str, bool], None] | None = None) -> TaskDemoReport:
    """An official LIBERO demo file -> the reference's regeneration (`replay`) of each of its demos
    at the model's resolution, into `out_dir/<suite>/<task name>_demo.hdf5`. The task comes from the
    file (its name or bddl file) unless `suite` and `task` are given, which must then match it."""
    with DemoFile(source) as original:
        spec = task_of_demo_file(original, suite, task)
        with LiberoEnv(LiberoEnvConfig(spec.suite, spec.index, image_size_px=image_size_px, max_steps=None)) as env:
            demos, failed = [], []
            for name in original.names:
                demo = original[name]
                if demo.states.shape[1] != env.state_size:
                    raise LiberoDataError(f"{original.path}: {name} has states of size {demo.states.shape[1]}, but "
                                          f"{spec.key} ({spec.name}) has {env.state_size}: a file of another scene")
                index = int(name.split("_")[-1])
                replayed = replay(env, demo.actions, demo.states[0], source_index=index)
                if replayed is not None:
                    demos.append(replayed)
                else:
                    failed.append(index)
                if on_demo:
                    on_demo(name, replayed is not None)
            path = str(write_demo_file(demo_path(out_dir, spec), file_info(env), demos)) if demos else ""
            return TaskDemoReport(spec.suite, spec.index, spec.name, len(original), len(demos), len(demos), path,
                                  failed_trials=failed)
