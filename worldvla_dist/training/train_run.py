"""One learner process's whole run, independent of the launcher: build or resume the model, stream
mixed batches from the token shards (each rank its own seed), train, checkpoint every `save_every`
steps, and every `publish_every` steps export the model folder and hand the weights to `publish`
(rank 0). Killed at any point, a rerun resumes from the last checkpoint with step count and data
position continuous."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from worldvla_dist.data.mixing import mixed_batches
from worldvla_dist.data.split import SPLITS, TRAIN
from worldvla_dist.data.token_shards import load_samples
from worldvla_dist.errors import ConfigError
from worldvla_dist.model.checkpoint import load_checkpoint
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.training.deepspeed_learner import DeepSpeedLearner
from worldvla_dist.training.learner_config import LearnerConfig

log = logging.getLogger(__name__)

Publish = Callable[[dict[str, torch.Tensor], int, Path], None]  # (state dict, version, exported folder)


@dataclass(frozen=True)
class TrainRunConfig:
    shards: str  # token shard folder (jobs/prepare_data.py)
    run_dir: str  # deepspeed/ checkpoints and exports/v<step>/ model folders go here
    tokenizer_dir: str | None = None  # a fresh tiny preset's trained tokenizer (else the init checkpoint's)
    init_checkpoint: str | None = None  # start from these weights (our folder); None: a fresh preset
    preset: str = "tiny-cpu"
    steps: int = 300
    save_every: int = 50
    publish_every: int = 50
    log_every: int = 1
    # which shard splits the learner reads: ("train",) normally; the memorization setting adds "val_ind"
    # so that every demo it is evaluated on was trained on (issue 18)
    train_splits: tuple[str, ...] = (TRAIN,)
    learner: LearnerConfig = field(default_factory=LearnerConfig)

    def __post_init__(self) -> None:
        if self.init_checkpoint is None and self.tokenizer_dir is None:
            raise ConfigError("TrainRunConfig: a fresh model needs tokenizer_dir (or give init_checkpoint)")
        if min(self.steps, self.save_every, self.publish_every, self.log_every) < 1:
            raise ConfigError(f"TrainRunConfig: steps and the every-N settings must be >= 1, got {self}")
        if not self.train_splits or set(self.train_splits) - set(SPLITS):
            raise ConfigError(f"TrainRunConfig: train_splits must be a non-empty subset of {SPLITS}, "
                              f"got {self.train_splits}")


def build_model(config: TrainRunConfig) -> tuple[WorldVLA, TokenSpace]:
    dtype = torch.bfloat16 if config.learner.precision == "bf16" else torch.float32
    if config.init_checkpoint:
        return load_checkpoint(config.init_checkpoint, dtype=dtype)
    preset = MODEL_PRESETS.get(config.preset)
    tokens = TokenSpace.from_tokenizer_dir(config.tokenizer_dir, preset.image_size_px)
    torch.manual_seed(config.learner.seed)
    return WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg, dtype=dtype), tokens


def run_training(config: TrainRunConfig, report: Callable[[dict], None] | None = None,
                 publish: Publish | None = None) -> dict:
    """Trains until `config.steps`; returns the last logs. `report` gets every `log_every`-th step's logs."""
    model, tokens = build_model(config)
    learner = DeepSpeedLearner(model, config.learner)
    run_dir = Path(config.run_dir)
    ckpt_dir = run_dir / "deepspeed"
    learner.load(ckpt_dir)
    action, world = [], []
    for split in config.train_splits:
        a, w = load_samples(config.shards, split)
        action, world = action + a, world + w
    lc = config.learner
    batches = mixed_batches(action, world, lc.micro_batch_size, lc.world_fraction, seed=lc.seed + 1000 * learner.rank,
                            start=learner.micro_steps)
    logs: dict = {"step": learner.step}
    while learner.step < config.steps:
        logs = learner.train_micro_batch(next(batches))
        if learner.micro_steps % lc.grad_accum_steps:
            continue  # mid-accumulation: no optimizer step yet
        step = learner.step
        if step % config.save_every == 0 or step == config.steps:
            learner.save(ckpt_dir)
        if (step % config.publish_every == 0 or step == config.steps) and learner.rank == 0:
            folder = learner.export(run_dir / "exports" / f"v{step:06d}", tokens)
            if publish:
                publish({k: v.detach().cpu() for k, v in learner.model.chameleon.state_dict().items()}, step, folder)
        if report and (step % config.log_every == 0 or step == config.steps):
            report({**logs, "world_size": learner.world_size, "rank": learner.rank})
    return logs
