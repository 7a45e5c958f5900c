import dataclasses

import torch
import torch.nn.functional as F

from worldvla_dist.model.presets import LossConfig
from worldvla_dist.sequences.collate import collate

from tests.conftest import make_tiny_model, random_actions, random_codes


def mixed_batch(tokens, seed=0):
    codes = random_codes(tokens, 3, seed=seed)
    samples = [tokens.samples.action_sample("open the drawer", [codes[0], codes[1]], random_actions(5, seed)),
               tokens.samples.world_sample(codes[1], random_actions(1, seed + 1)[0], codes[2])]
    return collate(samples, tokens.vocab)


def test_loss_is_weighted_cross_entropy_plus_z_loss(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=0, dtype=torch.float32)
    batch = mixed_batch(tokens)
    out = model(batch)

    # independent computation from full logits and torch's weighted cross entropy
    logits = model.logits(batch.input_ids, batch.attention_mask, batch.position_ids)[0][:, :-1]
    targets = batch.labels[:, 1:]
    weight = torch.ones(tokens.vocab.size)
    weight[list(tokens.vocab.image_code_ids)] = 0.04
    flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    ce = F.cross_entropy(flat_logits, flat_targets, weight=weight, ignore_index=-100)
    labelled = flat_targets != -100
    z = 1e-5 * (torch.logsumexp(flat_logits[labelled], -1) ** 2).mean()
    assert torch.allclose(out.total, ce + z, rtol=1e-5)

    plain = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_targets, reduction="none").reshape(targets.shape)
    assert torch.allclose(out.action_ce, plain[0][targets[0] != -100].mean(), rtol=1e-5)
    assert torch.allclose(out.world_ce, plain[1][targets[1] != -100].mean(), rtol=1e-5)
    assert out.num_action_tokens == 46 and out.num_world_tokens == tokens.layout.num_tokens + 1
    assert torch.isfinite(out.total)  # the stock HF forward would make image targets inf


def test_loss_weights_are_configurable(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=0, dtype=torch.float32)
    batch = mixed_batch(tokens)
    base = model(batch).total
    model.preset = dataclasses.replace(tiny_preset, loss=LossConfig(image_weight=1.0, z_loss_weight=0.0))
    assert not torch.allclose(model(batch).total, base)


def test_a_few_steps_fit_a_batch(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=0, dtype=torch.float32).train()
    batch = mixed_batch(tokens)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        out = model(batch)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        first = first if first is not None else out.total.item()
    assert out.total.item() < 0.5 * first
    assert not any(p.grad is not None for p in model.chameleon.model.vqmodel.parameters())
