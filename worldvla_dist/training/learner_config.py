"""The learner's typed config and the DeepSpeed config it turns into. Defaults are the reference's
7B fine-tuning settings (WORLDVLA.md: AdamW (0.9, 0.95), weight decay 0.1, lr 5e-6 constant after
warm-up, grad clip 4, batch 8 per GPU); the warm-up length is not in the paper: 100 steps is ours."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from worldvla_dist.errors import ConfigError
from worldvla_dist.sequences.attention_mask import check_attention_mask

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 5e-6
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    warmup_steps: int = 100
    grad_clip: float = 4.0
    # 0: constant after warm-up (the reference). N > 0: cosine from lr down to min_lr_ratio * lr at step N,
    # which the small CPU recipes use so that the weights settle at the end of a short run.
    decay_steps: int = 0
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip <= 0:
            raise ConfigError(f"OptimConfig: lr > 0, warmup_steps >= 0 and grad_clip > 0, got {self}")
        if self.decay_steps < 0 or not 0 <= self.min_lr_ratio <= 1 or (self.decay_steps and self.decay_steps <= self.warmup_steps):
            raise ConfigError(f"OptimConfig: decay_steps must be 0 or > warmup_steps, min_lr_ratio in [0, 1], got {self}")

    def lr_factor(self, step: int) -> float:
        """The multiple of `lr` at optimizer step `step` (0-based): linear warm-up, then constant or cosine."""
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if not self.decay_steps:
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / (self.decay_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class LearnerConfig:
    zero_stage: int = 0  # 0, 1 or 2
    precision: str = "fp32"  # "bf16": bf16 weights and activations, fp32 master copy in the optimizer
    micro_batch_size: int = 8  # samples per process per micro-step
    grad_accum_steps: int = 1
    world_fraction: float = 0.5  # share of world samples in each batch
    seed: int = 0
    # "causal": action samples train under the plain causal mask, the paper's ablation (Table 4); the
    # default is WorldVLA's action mask (sequences/attention_mask.py)
    attention_mask: str = "action"
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        if self.zero_stage not in (0, 1, 2):
            raise ConfigError(f"LearnerConfig: zero_stage must be 0, 1 or 2, got {self.zero_stage}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"LearnerConfig: precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.micro_batch_size < 1 or self.grad_accum_steps < 1:
            raise ConfigError(f"LearnerConfig: micro_batch_size and grad_accum_steps must be >= 1, got {self}")
        check_attention_mask(self.attention_mask, "LearnerConfig")

    def deepspeed_config(self, world_size: int) -> dict:
        """The optimizer and scheduler are passed as objects, so none is named here (naming DeepSpeed's
        AdamW would compile fused_adam for ~100 s on the CPU)."""
        return {
            "train_micro_batch_size_per_gpu": self.micro_batch_size,
            "gradient_accumulation_steps": self.grad_accum_steps,
            "train_batch_size": self.micro_batch_size * self.grad_accum_steps * world_size,
            "gradient_clipping": self.optim.grad_clip,
            "zero_optimization": {"stage": self.zero_stage},
            "bf16": {"enabled": self.precision == "bf16"},
            "steps_per_print": 10 ** 9,
            "wall_clock_breakdown": False,
        }
