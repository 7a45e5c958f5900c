"""The main job's config (jobs/train_joint.py), read from YAML (configs/*.yaml): what the learner
trains, how evaluation rounds run on the published weights, and how the cluster's CPUs are split."""

from __future__ import annotations

from dataclasses import dataclass, field

from worldvla_dist.envs.libero_tasks import SUITES
from worldvla_dist.errors import ConfigError
from worldvla_dist.training.train_run import TrainRunConfig


@dataclass(frozen=True)
class EvalRoundsConfig:
    suites: tuple[str, ...] = ("libero_object",)
    tasks: tuple[int, ...] | None = None  # None: every task of each suite
    trials: int = 50
    first_trial: int = 0  # init states first_trial .. first_trial + trials - 1 (40 with trials 10: held out)
    max_steps: int | None = None  # None: the suite's reference cap
    every_versions: int = 1  # a round on every n-th published version; the last version always gets one
    videos: bool = False

    def __post_init__(self) -> None:
        for suite in self.suites:
            SUITES.get(suite)
        if self.trials < 1 or self.every_versions < 1 or self.first_trial < 0:
            raise ConfigError(f"EvalRoundsConfig: trials and every_versions must be >= 1 and first_trial >= 0, "
                              f"got {self}")


@dataclass(frozen=True)
class ResourcesConfig:
    """Ray resources per role. On one small machine, training and evaluation share the cores: these
    numbers decide who waits (README: resource split)."""

    learner_workers: int = 1
    learner_cpus: float = 1.0
    policy_cpus: float = 1.0
    policy_gpus: float | None = None  # None: 1 if the cluster has a GPU
    sim_workers: int | None = None  # None: the CPUs left after the learner and the PolicyServer
    max_sim_workers: int | None = None  # autoscale SimWorkers up to this many as a round's queue is deep
    episodes_per_sim_worker: int = 10
    sim_cpus: float = 1.0
    policy_torch_threads: int | None = 1


@dataclass(frozen=True)
class JointJobConfig:
    train: TrainRunConfig
    eval: EvalRoundsConfig = field(default_factory=EvalRoundsConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    wandb: str = "off"  # "offline" / "online"
