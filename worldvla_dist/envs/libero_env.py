"""One LIBERO task under the reference evaluation protocol, rendering only on demand.

The reference: trial i starts from the task's i-th stored initial state; 10 wait steps with
[0,0,0,0,0,0,-1]; at most `max_steps` policy steps; success is the env's `done`; the model sees
agentview rotated 180 degrees (`img[::-1, ::-1]`) at its own resolution.

Rendering is almost all of an env step's cost on the CPU (ENVIRONMENT.md), so cameras render only
on the steps whose frames something reads: the caller names them in `step(action, cameras=...)`
(the policy on the last M steps of each chunk, a video recorder every step). The frames stay robosuite's own camera
observations, bit-identical to rendering every step: robosuite samples a camera at an early physics
substep of the control step (its own timer decides which), so we keep every camera observable and
its timer running and only swap its sensor for a free stand-in on steps nobody reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from worldvla_dist.envs.libero_tasks import SUITES, WAIT_ACTION, WAIT_STEPS, TaskSpec, find_task
from worldvla_dist.errors import ConfigError

os.environ.setdefault("MUJOCO_GL", "egl")

CAMERAS = ("agentview", "robot0_eye_in_hand")
RENDER_MODES = ("on_demand", "every_step")


@dataclass(frozen=True)
class LiberoEnvConfig:
    suite: str = "libero_spatial"
    task: int | str = 0
    image_size_px: int = 128
    max_steps: int | None = None  # None: the suite's reference cap
    wait_steps: int = WAIT_STEPS
    render: str = "on_demand"  # "every_step": the reference script's way, every camera every step

    def __post_init__(self) -> None:
        SUITES.get(self.suite)
        if self.render not in RENDER_MODES:
            raise ConfigError(f"LiberoEnvConfig: render must be one of {RENDER_MODES}, got {self.render!r}")
        if self.image_size_px <= 0 or self.wait_steps < 0:
            raise ConfigError(f"LiberoEnvConfig: image_size_px > 0 and wait_steps >= 0, got {self}")

    @property
    def episode_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else SUITES.get(self.suite).max_steps


def _stand_in_sensor(blank: np.ndarray, real):
    def stand_in(obs_cache):
        return blank

    stand_in.__modality__ = real.__modality__  # robosuite groups observations by this attribute
    return stand_in


def to_model_orientation(raw: np.ndarray) -> np.ndarray:
    """A raw OpenGL render (upside down) -> what WorldVLA sees: the reference's `img[::-1, ::-1]`."""
    return np.ascontiguousarray(raw[::-1, ::-1])


class LiberoEnv:
    """`reset(trial)` then `step(action)` until `done` or `truncated`; `image(camera)` returns the frame
    of a camera named in the last `step(..., cameras=...)` / `reset(..., cameras=...)`."""

    def __init__(self, config: LiberoEnvConfig):
        from libero.libero import benchmark  # heavy: imported on use
        from libero.libero.envs import OffScreenRenderEnv

        self.config = config
        self.task: TaskSpec = find_task(config.suite, config.task)
        suite = benchmark.get_benchmark_dict()[SUITES.get(config.suite).package_suite]()
        self.init_states = suite.get_task_init_states(self.task.index)
        self._env = OffScreenRenderEnv(
            bddl_file_name=suite.get_task_bddl_file_path(self.task.index), camera_names=list(CAMERAS),
            camera_heights=config.image_size_px, camera_widths=config.image_size_px, hard_reset=False)
        observables = self._env.env._observables  # robosuite 1.4 keeps them here, by name
        self._observables = {c: observables[f"{c}_image"] for c in CAMERAS}
        self._sensors = {c: o._sensor for c, o in self._observables.items()}
        blank = np.zeros((config.image_size_px, config.image_size_px, 3), dtype=np.uint8)
        self._stand_ins = {c: _stand_in_sensor(blank, sensor) for c, sensor in self._sensors.items()}
        self._live: set[str] = set(CAMERAS)
        self._frames: dict[str, np.ndarray] = {}
        self.steps = 0
        self.done = False
        self.renders = 0  # camera frames rendered so far, for the benchmark

    @property
    def bddl_language(self) -> str:
        """The `(:language ...)` of the BDDL file the env was built from (robosuite's
        `language_instruction`); the policy gets `task.language` (envs/libero_pro.py says when they differ)."""
        return self._env.language_instruction

    @property
    def num_trials(self) -> int:
        return len(self.init_states)

    @property
    def sim(self):
        return self._env.sim

    def _use_cameras(self, cameras) -> None:
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ConfigError(f"unknown cameras {unknown}; valid cameras are {list(CAMERAS)}")
        self._live = set(CAMERAS) if self.config.render == "every_step" else set(cameras)
        for camera, observable in self._observables.items():
            observable._sensor = self._sensors[camera] if camera in self._live else self._stand_ins[camera]

    def _run(self, action: np.ndarray, cameras) -> bool:
        """One control step; the cameras in `cameras` render real frames."""
        self._use_cameras(cameras)
        obs, _, done, _ = self._env.step(np.asarray(action, dtype=np.float64))
        self._frames = {c: obs[f"{c}_image"] for c in self._live}
        self.renders += len(self._live)
        return bool(done)

    def reset(self, trial: int, cameras: tuple[str, ...] = ("agentview",)) -> None:
        """Init state `trial`, then the wait steps (not counted); `cameras` render at the last one.

        Every trial starts from what a freshly built reference env carries at its first episode
        (eval_solver_libero_256.py: `get_libero_env` seeds numpy with 0, then `reset`,
        `set_init_state`): LIBERO's reset re-places fixtures (cabinets, stoves) with numpy's global
        RNG and the stored init state does not cover them, so numpy is seeded with 0 before each
        reset; and the state robosuite carries across resets (gripper command, joint torques) is
        cleared. The camera timers are left as robosuite's reset and `set_init_state` leave them:
        both force an observation, which fixes the sampling phase whatever ran before. Frames then
        equal a fresh reference env's bit for bit, and a retried trial replays identically."""
        if not 0 <= trial < self.num_trials:
            raise ConfigError(f"{self.task.key} has init states 0..{self.num_trials - 1}, got trial {trial}")
        self.reset_to_state(self.init_states[trial], cameras)

    def reset_to_state(self, state: np.ndarray, cameras: tuple[str, ...] = ("agentview",)) -> None:
        """As `reset`, from a flattened MuJoCo state (a demonstration's states[0]): the reference's
        regeneration also lets the scene settle with the wait steps first."""
        self._use_cameras(())
        np.random.seed(0)
        self._env.reset()
        self._env.set_init_state(np.asarray(state))
        self._clear_carried_state()
        for i in range(self.config.wait_steps):
            self._run(np.asarray(WAIT_ACTION), cameras if i == self.config.wait_steps - 1 else ())
        self.steps, self.done = 0, False

    @property
    def state_size(self) -> int:
        """Length of a flattened MuJoCo state of this task's scene."""
        return int(self.sim.get_state().flatten().size)

    def _clear_carried_state(self) -> None:
        """What a soft reset leaves behind and a fresh env does not have. The camera timers are not
        touched: resetting them after `set_init_state` shifts the camera's sampling phase by a
        substep (up to 42 levels on libero_object task 0), and reset + `set_init_state` already
        leave them in the fresh env's state (0.004 s since the last sample, sampled)."""
        for robot in self._env.env.robots:
            # robosuite's Panda gripper integrates its command in `current_action` and no reset clears
            # it: the last episode's gripper state would leak into this one's first steps
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
            robot.torques = None  # a fresh robot has none until its first step

    def step(self, action: np.ndarray, cameras: tuple[str, ...] = ()) -> bool:
        """One policy step; `cameras` are rendered after it. Returns `done` (task success)."""
        if self.done or self.truncated:
            raise RuntimeError(f"LiberoEnv.step: the episode of {self.task.key} is over (done={self.done})")
        self.done = self._run(action, cameras)
        self.steps += 1
        return self.done

    def replay_step(self, action: np.ndarray, cameras: tuple[str, ...] = ()) -> bool:
        """A step that goes on past success and the step cap: regeneration replays every action of a
        demo and judges `done` after the last one (regenerate_libero_dataset_filter_no_op.py)."""
        self.done = self._run(action, cameras)
        self.steps += 1
        return self.done

    @property
    def truncated(self) -> bool:
        return self.steps >= self.config.episode_steps and not self.done

    def raw_image(self, camera: str = "agentview") -> np.ndarray:
        """(H, W, 3) uint8 as robosuite gives it (OpenGL convention: upside down)."""
        if camera not in self._frames:
            raise ConfigError(f"camera {camera!r} was not rendered at step {self.steps}; name it in "
                              f"step(..., cameras=...) (rendered: {sorted(self._frames)})")
        return self._frames[camera]

    def image(self, camera: str = "agentview") -> np.ndarray:
        """(H, W, 3) uint8 in the model's orientation."""
        return to_model_orientation(self.raw_image(camera))

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    def __enter__(self) -> "LiberoEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
