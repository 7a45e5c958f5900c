"""The action mask, proven on a real (random, tiny) Chameleon: what an action block can and cannot see."""

import torch

from worldvla_dist.sequences.attention_mask import action_attention_mask, causal_mask
from worldvla_dist.sequences.collate import collate

from tests.conftest import random_actions, random_codes


def forward(model, ids, mask):
    positions = torch.arange(ids.shape[1])[None]
    return model.logits(ids, mask, positions)[0]


def perturbed_block(tokens, sample, k):
    ids = torch.as_tensor(sample.input_ids)[None].clone()
    p = sample.prompt_length
    bins = slice(p + 9 * k + 1, p + 9 * k + 8)
    ids[0, bins] = tokens.vocab.action_first_id + (ids[0, bins] - tokens.vocab.action_first_id + 97) % 256
    return ids


def test_perturbing_block_k_changes_no_later_block_under_the_action_mask(tokens, tiny_model64):
    codes = random_codes(tokens, 2, seed=0)
    sample = tokens.samples.action_sample("pick up the bowl", [codes[0], codes[1]], random_actions(5, 0))
    ids = torch.as_tensor(sample.input_ids)[None]
    p, k = sample.prompt_length, 1
    changed = perturbed_block(tokens, sample, k)
    later = slice(p + 9 * (k + 1), p + 9 * 5)  # blocks k+1.. (the final end-of-turn sees all, by design)

    am = lambda x: action_attention_mask(x, tokens.vocab, dtype=torch.float64)  # noqa: E731
    base, pert = forward(tiny_model64, ids, am(ids)), forward(tiny_model64, changed, am(changed))
    assert torch.equal(base[0, :p + 9 * k + 1], pert[0, :p + 9 * k + 1])  # nothing before the change moves
    assert torch.allclose(base[0, later], pert[0, later], atol=1e-12, rtol=0)

    full = torch.ones_like(ids, dtype=torch.bool)
    cm = causal_mask(full, torch.float64)
    base_c, pert_c = forward(tiny_model64, ids, cm), forward(tiny_model64, changed, cm)
    assert (base_c[0, later] - pert_c[0, later]).abs().max() > 1e-4


def test_world_sample_logits_equal_a_plain_causal_forward(tokens, tiny_model64):
    codes = random_codes(tokens, 2, seed=1)
    sample = tokens.samples.world_sample(codes[0], random_actions(1, 1)[0], codes[1])
    ids = torch.as_tensor(sample.input_ids)[None]
    ours = forward(tiny_model64, ids, action_attention_mask(ids, tokens.vocab, dtype=torch.float64))
    stock = tiny_model64.chameleon.lm_head(tiny_model64.chameleon.model(input_ids=ids).last_hidden_state)
    assert torch.allclose(ours, stock, atol=1e-10, rtol=0)


def test_padded_batch_gives_the_same_logits_as_single_samples(tokens, tiny_model64):
    codes = random_codes(tokens, 3, seed=2)
    samples = [tokens.samples.world_sample(codes[0], random_actions(1, 2)[0], codes[1]),
               tokens.samples.action_sample("open", [codes[1], codes[2]], random_actions(5, 2))]
    batch = collate(samples, tokens.vocab, dtype=torch.float64)
    batched = forward(tiny_model64, batch.input_ids, batch.attention_mask)
    for i, s in enumerate(samples):
        ids = torch.as_tensor(s.input_ids)[None]
        single = forward(tiny_model64, ids, action_attention_mask(ids, tokens.vocab, dtype=torch.float64))
        assert torch.allclose(batched[i, :len(s.input_ids)], single[0], atol=1e-10, rtol=0)
