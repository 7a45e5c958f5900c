"""One evaluation episode under the reference protocol, with the policy asked once per chunk.

The policy sees the frames of the last M = `history` steps, oldest first: with M = 2 the previous
step's frame and the current one, as the reference prompts (`his_img[-1:] + [cur_img]` in
libero_util/Chameleon_utils.py, `his_img` growing by one frame every step in
eval_solver_libero_256.py), the same pair a training sample holds; one frame at the first query.
The whole chunk runs open loop. The env renders the agentview only on the steps whose frames the
policy will read (the last M steps of each chunk), or every step when a video is recorded."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import numpy as np

from worldvla_dist.envs.libero_tasks import SUITES, TRIALS_PER_TASK, find_task
from worldvla_dist.errors import ConfigError, WorldVLAError

Policy = Callable[[str, list[np.ndarray], int], tuple[np.ndarray, int]]  # -> (K, 7) actions, weight version
SPEC_FIELDS = ("suite", "task", "trial")


class InvalidSpec(WorldVLAError, ValueError):
    """An episode spec naming no real suite, task or trial."""


class StepEnv(Protocol):  # EnvProcess
    language: str

    def reset(self, trial: int, cameras: tuple[str, ...] = ...) -> dict: ...

    def step(self, action: np.ndarray, cameras: tuple[str, ...] = ...) -> dict: ...


@dataclass(frozen=True)
class EpisodeSpec:
    suite: str
    task: int
    trial: int
    weight_version: int = 0
    max_steps: int | None = None  # None: the suite's reference cap
    video: bool = False

    @property
    def key(self) -> str:
        """What a result is unique on."""
        return f"{self.suite}/{self.task}/{self.trial}/{self.weight_version}"

    @property
    def chunk(self) -> int:
        return SUITES.get(self.suite).chunk

    def to_payload(self) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, p: dict) -> "EpisodeSpec":
        try:
            spec = cls(**{k: p[k] for k in ("suite", "task", "trial", "weight_version", "max_steps", "video") if k in p})
            if not all(isinstance(v, int) for v in (spec.task, spec.trial, spec.weight_version)):
                raise InvalidSpec(f"task, trial and weight_version must be ints, got {p}")
            find_task(spec.suite, spec.task)
        except (ConfigError, TypeError) as e:
            raise InvalidSpec(f"episode spec {p}: {e}") from e
        if not 0 <= spec.trial < TRIALS_PER_TASK:
            raise InvalidSpec(f"episode spec {p}: trial must be in 0..{TRIALS_PER_TASK - 1}")
        if spec.max_steps is not None and (not isinstance(spec.max_steps, int) or spec.max_steps < 1):
            raise InvalidSpec(f"episode spec {p}: max_steps must be a positive int or None")
        return spec


@dataclass
class EpisodeOutcome:
    success: bool
    steps: int
    policy_calls: int
    weight_versions: list[int]
    frames: list[np.ndarray] = field(default_factory=list)  # every step's agentview, when recording
    policy_wait_s: float = 0.0  # in policy calls: the rest of the episode's time is the worker's own


@dataclass
class EpisodeResult:
    """What is stored per (suite, task, trial, weight version). `error` set means the episode could not
    be run (env crash or hang, policy unreachable) after all attempts: not counted as a failure."""

    suite: str
    task: int
    trial: int
    weight_version: int
    success: bool
    error: str | None
    steps: int
    attempts: int
    seconds: float
    policy_calls: int = 0
    weight_versions: list[int] = field(default_factory=list)
    video: str | None = None
    worker: str = ""
    policy_wait_s: float | None = None  # of `seconds`, waiting for chunks (None: not recorded); capacity.py

    def to_payload(self) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, p: dict) -> "EpisodeResult":
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k in p})


def run_episode(env: StepEnv, policy: Policy, trial: int, chunk: int, history: int = 2, record_video: bool = False,
                on_chunk: Callable[[], None] | None = None) -> EpisodeOutcome:
    """Runs until success or the env's step cap. `on_chunk` is called after each policy answer
    (the worker uses it to tell the queue it is alive)."""
    if history < 1:
        raise ConfigError(f"run_episode: history must be >= 1 frame, got {history}")
    agentview = ("agentview",)
    reply = env.reset(trial, cameras=agentview)
    recent = [reply["frames"]["agentview"]]  # the frames of the last `history` steps, oldest first
    outcome = EpisodeOutcome(False, 0, 0, [], list(recent) if record_video else [])
    while True:
        asked = time.perf_counter()
        actions, version = policy(env.language, recent, chunk)
        outcome.policy_wait_s += time.perf_counter() - asked
        outcome.policy_calls += 1
        if version not in outcome.weight_versions:
            outcome.weight_versions.append(version)
        if on_chunk:
            on_chunk()
        for j, action in enumerate(actions):
            read_by_policy = j >= len(actions) - history  # one of the next query's M frames
            reply = env.step(action, cameras=agentview if read_by_policy or record_video else ())
            outcome.steps = reply["steps"]
            if read_by_policy:
                recent = (recent + [reply["frames"]["agentview"]])[-history:]
            if record_video:
                outcome.frames.append(reply["frames"]["agentview"])
            if reply["done"]:
                outcome.success = True
                return outcome
            if reply["truncated"]:
                return outcome
