"""The learning-rate schedule and the run config's split choice (the memorization recipe needs both)."""

import math

import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.training.learner_config import OptimConfig
from worldvla_dist.training.train_run import TrainRunConfig


def test_constant_after_warmup_is_the_default_as_in_the_reference():
    o = OptimConfig(lr=1e-3, warmup_steps=4)
    assert [o.lr_factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert OptimConfig(warmup_steps=0).lr_factor(0) == 1.0


def test_cosine_decay_reaches_its_floor_at_decay_steps_and_stays():
    o = OptimConfig(lr=1e-3, warmup_steps=10, decay_steps=110, min_lr_ratio=0.1)
    assert o.lr_factor(9) == 1.0 and o.lr_factor(10) == 1.0
    assert math.isclose(o.lr_factor(60), 0.55) and math.isclose(o.lr_factor(110), 0.1)
    assert math.isclose(o.lr_factor(500), 0.1)
    factors = [o.lr_factor(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    with pytest.raises(ConfigError, match="decay_steps must be 0 or > warmup_steps"):
        OptimConfig(warmup_steps=10, decay_steps=5)


def test_train_splits_are_named_splits():
    assert TrainRunConfig(shards="s", run_dir="r", tokenizer_dir="t").train_splits == ("train",)
    with pytest.raises(ConfigError, match="train_splits must be a non-empty subset"):
        TrainRunConfig(shards="s", run_dir="r", tokenizer_dir="t", train_splits=("train", "test"))


def test_attention_mask_is_a_named_mask():
    from worldvla_dist.training.learner_config import LearnerConfig

    assert LearnerConfig().attention_mask == "action"  # WorldVLA's; "causal" is the paper's ablation
    assert LearnerConfig(attention_mask="causal").attention_mask == "causal"
    with pytest.raises(ConfigError, match="attention_mask must be one of"):
        LearnerConfig(attention_mask="full")
