"""The DeepSpeed learner on the CPU (gloo) with the tiny model: it matches a plain PyTorch step,
trains under ZeRO 0/1/2 and bf16, and a resumed learner continues exactly where an uninterrupted
one would be (model, optimizer, scheduler, step, data position); the exported folder loads."""

import numpy as np
import pytest
import torch

from tests.conftest import make_tiny_model
from worldvla_dist.data.mixing import mixed_batches
from worldvla_dist.model.checkpoint import load_checkpoint
from worldvla_dist.training.deepspeed_learner import DeepSpeedLearner
from worldvla_dist.training.learner_config import LearnerConfig, OptimConfig
from worldvla_dist.training.torch_loop import train_steps

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def samples(tokens):
    rng = np.random.default_rng(0)
    codes = torch.as_tensor(rng.integers(0, tokens.vocab.num_image_codes, (6, tokens.layout.rows, tokens.layout.cols)))
    acts = rng.uniform(-0.5, 0.5, (6, 7))
    action = [tokens.samples.action_sample("pick up the bowl", [codes[i], codes[i + 1]], acts[i:i + 2]) for i in range(4)]
    world = [tokens.samples.world_sample(codes[i], acts[i], codes[i + 1]) for i in range(4)]
    return action, world


def config(**kw) -> LearnerConfig:
    return LearnerConfig(**{"micro_batch_size": 2, "optim": OptimConfig(lr=1e-3, warmup_steps=2), **kw})


def batches(samples, start=0):
    return mixed_batches(*samples, batch_size=2, world_fraction=0.5, seed=3, start=start)


def params(model):
    return torch.cat([p.detach().float().flatten() for p in model.parameters() if p.requires_grad])


def test_a_deepspeed_step_equals_a_plain_pytorch_step(tokens, tiny_preset, samples):
    plain = make_tiny_model(tokens, tiny_preset, seed=2, dtype=torch.float32)
    ds = DeepSpeedLearner(make_tiny_model(tokens, tiny_preset, seed=2, dtype=torch.float32),
                          config(optim=OptimConfig(lr=1e-3, warmup_steps=0)))
    history = train_steps(plain, batches(samples), 2, lr=1e-3)
    logs = [ds.train_micro_batch(b) for b, _ in zip(batches(samples), range(2))]
    assert [h["loss"] for h in history] == pytest.approx([l["loss"] for l in logs], rel=1e-5)
    assert torch.allclose(params(plain), params(ds.model), atol=1e-6)


@pytest.mark.parametrize("zero_stage,precision", [(1, "fp32"), (2, "bf16")])
def test_zero_stages_and_bf16_train(tokens, tiny_preset, samples, zero_stage, precision):
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    learner = DeepSpeedLearner(make_tiny_model(tokens, tiny_preset, seed=2, dtype=dtype),
                               config(zero_stage=zero_stage, precision=precision))
    before = params(learner.model)
    fixed = next(batches(samples))
    losses = [learner.train_micro_batch(fixed)["loss"] for _ in range(6)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert not torch.equal(before, params(learner.model)) and learner.step == 6


def test_resume_continues_exactly_and_the_export_loads(tokens, tiny_preset, samples, tmp_path):
    cfg = config(zero_stage=1)
    straight = DeepSpeedLearner(make_tiny_model(tokens, tiny_preset, seed=4, dtype=torch.float32), cfg)
    stream = batches(samples)
    expected = [straight.train_micro_batch(next(stream))["loss"] for _ in range(5)]

    first = DeepSpeedLearner(make_tiny_model(tokens, tiny_preset, seed=4, dtype=torch.float32), cfg)
    stream = batches(samples)
    got = [first.train_micro_batch(next(stream))["loss"] for _ in range(3)]
    first.save(tmp_path / "ds", extra={"note": "kept"})
    del first  # the learner "dies"; a new one, from other weights, resumes
    resumed = DeepSpeedLearner(make_tiny_model(tokens, tiny_preset, seed=99, dtype=torch.float32), cfg)
    state = resumed.load(tmp_path / "ds")
    assert state["note"] == "kept" and resumed.step == 3 and resumed.micro_steps == 3
    stream = batches(samples, start=resumed.micro_steps)
    got += [resumed.train_micro_batch(next(stream))["loss"] for _ in range(2)]
    assert got == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(params(straight.model), params(resumed.model), atol=1e-7)
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()

    model, _ = load_checkpoint(resumed.export(tmp_path / "export", tokens))
    assert torch.equal(params(model), params(resumed.model))
    assert DeepSpeedLearner.load(resumed, tmp_path / "empty") is None


def test_the_learner_trains_under_the_mask_its_config_names(tokens, tiny_preset, samples):
    """LearnerConfig.attention_mask (the paper's Table 4 ablation): the same chunked action batch gives the
    plain causal collate's loss under "causal" and the action mask's under the default."""
    from worldvla_dist.sequences.collate import collate

    action_only = samples[0][:2]  # chunks of 2 actions: the masks differ on the second
    losses = {}
    for kind in ("action", "causal"):
        model = make_tiny_model(tokens, tiny_preset, seed=5, dtype=torch.float32)
        with torch.no_grad():
            expected = model(collate(action_only, tokens.vocab, attention_mask=kind)).total.item()
        learner = DeepSpeedLearner(model, config(attention_mask=kind))
        losses[kind] = learner.train_micro_batch(action_only)["loss"]
        assert losses[kind] == pytest.approx(expected, rel=1e-5), kind
    assert losses["action"] != pytest.approx(losses["causal"], rel=1e-6)
