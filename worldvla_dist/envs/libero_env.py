"""One LIBERO task under the reference evaluation protocol, rendering only on demand.

The reference: trial i starts from the task's i-th stored initial state; 10 wait steps with
[0,0,0,0,0,0,-1]; at most `max_steps` policy steps; success is the env's `done`; the model sees
agentview rotated 180 degrees (`img[::-1, ::-1]`) at its own resolution.

Rendering is almost all of an env step's cost on the CPU (ENVIRONMENT.md), so the env is built
without camera observations and a camera is rendered only when `image()` asks, at most once per
step: the policy asks once per chunk, a video recorder every step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from worldvla_dist.envs.libero_tasks import SUITES, WAIT_ACTION, WAIT_STEPS, TaskSpec, find_task
from worldvla_dist.errors import ConfigError

os.environ.setdefault("MUJOCO_GL", "egl")

CAMERAS = ("agentview", "robot0_eye_in_hand")


@dataclass(frozen=True)
class LiberoEnvConfig:
    suite: str = "libero_spatial"
    task: int | str = 0
    image_size_px: int = 128
    max_steps: int | None = None  # None: the suite's reference cap
    wait_steps: int = WAIT_STEPS

    def __post_init__(self) -> None:
        SUITES.get(self.suite)
        if self.image_size_px <= 0 or self.wait_steps < 0:
            raise ConfigError(f"LiberoEnvConfig: image_size_px > 0 and wait_steps >= 0, got {self}")

    @property
    def episode_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else SUITES.get(self.suite).max_steps


def to_model_orientation(raw: np.ndarray) -> np.ndarray:
    """A raw OpenGL render (upside down) -> what WorldVLA sees: the reference's `img[::-1, ::-1]`."""
    return np.ascontiguousarray(raw[::-1, ::-1])


class LiberoEnv:
    """`reset(trial)` then `step(action)` until `done` or `truncated`; `image(camera)` renders lazily."""

    def __init__(self, config: LiberoEnvConfig):
        from libero.libero import benchmark, get_libero_path  # noqa: F401  (heavy; imported on use)
        from libero.libero.envs import OffScreenRenderEnv

        self.config = config
        self.task: TaskSpec = find_task(config.suite, config.task)
        suite = benchmark.get_benchmark_dict()[config.suite]()
        self.init_states = suite.get_task_init_states(self.task.index)
        self._env = OffScreenRenderEnv(
            bddl_file_name=suite.get_task_bddl_file_path(self.task.index), use_camera_obs=False,
            camera_heights=config.image_size_px, camera_widths=config.image_size_px, hard_reset=False)
        self._frames: dict[str, np.ndarray] = {}
        self.steps = 0
        self.done = False
        self.renders = 0  # camera renders so far, for the benchmark

    @property
    def num_trials(self) -> int:
        return len(self.init_states)

    @property
    def sim(self):
        return self._env.sim

    def reset(self, trial: int) -> None:
        """Init state `trial`, then the wait steps (not counted, never rendered)."""
        if not 0 <= trial < self.num_trials:
            raise ConfigError(f"{self.task.key} has init states 0..{self.num_trials - 1}, got trial {trial}")
        self._env.reset()
        self._env.set_init_state(self.init_states[trial])
        for _ in range(self.config.wait_steps):
            self._env.step(np.asarray(WAIT_ACTION))
        self._frames.clear()
        self.steps, self.done = 0, False

    def step(self, action: np.ndarray) -> bool:
        """One policy step; returns `done` (task success)."""
        if self.done or self.truncated:
            raise RuntimeError(f"LiberoEnv.step: episode of {self.task.key} is over (done={self.done})")
        _, _, done, _ = self._env.step(np.asarray(action, dtype=np.float64))
        self.steps += 1
        self.done = bool(done)
        self._frames.clear()
        return self.done

    @property
    def truncated(self) -> bool:
        return self.steps >= self.config.episode_steps and not self.done

    def raw_image(self, camera: str = "agentview") -> np.ndarray:
        """(H, W, 3) uint8 as the renderer gives it (OpenGL: upside down); cached until the next step."""
        if camera not in CAMERAS:
            raise ConfigError(f"unknown camera {camera!r}; valid cameras are {list(CAMERAS)}")
        if camera not in self._frames:
            size = self.config.image_size_px
            self._frames[camera] = self.sim.render(camera_name=camera, height=size, width=size)
            self.renders += 1
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
