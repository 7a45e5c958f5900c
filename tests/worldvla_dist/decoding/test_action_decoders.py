"""The parallel chunk decoder against the one-token-at-a-time oracle, and the oracle against a
cache-free full recompute. float64 so that equal math gives equal argmaxes."""

import pytest
import torch

from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.decoding.reference_decoder import reference_decode_actions
from worldvla_dist.decoding.sampling import SamplingConfig
from worldvla_dist.sequences.attention_mask import action_attention_mask

from tests.conftest import make_tiny_model, random_codes

INSTRUCTIONS = ["pick up the black bowl and place it on the plate", "open the top drawer", "turn on the stove"]


def prompts_for(tokens, batch: int, seed: int) -> list[list[int]]:
    codes = random_codes(tokens, 2 * batch, seed=seed)
    # rows of different lengths (M = 2 or M = 1, different instructions) exercise left padding
    return [tokens.samples.action_prompt(INSTRUCTIONS[i % 3], [codes[2 * i], codes[2 * i + 1]][: 1 + (i + seed) % 2])
            for i in range(batch)]


def full_recompute_decode(model, prompt, num_actions):
    """Greedy, no KV cache: the whole sequence through the model at every step."""
    v = model.vocab
    ids = list(prompt)
    bins = []
    for k in range(num_actions):
        ids.append(v.boa_id)
        for _ in range(7):
            x = torch.tensor(ids)[None]
            logits = model.logits(x, action_attention_mask(x, v, dtype=model.dtype), torch.arange(len(ids))[None])[0]
            scores = logits[0, -1].masked_fill(~v.action_bin_mask, float("-inf"))
            ids.append(int(scores.argmax()))
            bins.append(ids[-1])
        ids.append(v.eoa_id)
    return torch.tensor(bins).reshape(num_actions, 7)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("num_actions", [1, 5, 10])
@pytest.mark.parametrize("batch", [1, 3])
def test_parallel_equals_reference(tokens, tiny_preset, seed, num_actions, batch):
    model = make_tiny_model(tokens, tiny_preset, seed=100 + seed)
    prompts = prompts_for(tokens, batch, seed)
    parallel = parallel_decode_actions(model, prompts, num_actions)
    assert parallel.shape == (batch, num_actions, 7)
    for i, prompt in enumerate(prompts):  # the oracle one row at a time: no padding at all
        assert torch.equal(parallel[i], reference_decode_actions(model, [prompt], num_actions)[0]), (seed, i)
    if batch > 1:
        assert torch.equal(parallel, reference_decode_actions(model, prompts, num_actions))


def test_reference_equals_full_recompute(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=7)
    prompt = prompts_for(tokens, 1, seed=7)[0]
    assert torch.equal(reference_decode_actions(model, [prompt], 3)[0], full_recompute_decode(model, prompt, 3))


def test_outputs_are_action_bins_even_when_sampling(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=8, dtype=torch.float32)
    prompts = prompts_for(tokens, 3, seed=8)
    v = tokens.vocab
    g = torch.Generator().manual_seed(0)
    sampled = parallel_decode_actions(model, prompts, 5, SamplingConfig(temperature=5.0), generator=g)
    assert ((sampled >= v.action_first_id) & (sampled < v.action_first_id + 256)).all()
    assert tokens.actions.decode(sampled).shape == (3, 5, 7)
    greedy = parallel_decode_actions(model, prompts, 5)
    top1 = parallel_decode_actions(model, prompts, 5, SamplingConfig(temperature=1.0, top_k=1), generator=g)
    assert torch.equal(greedy, top1)
    assert not torch.equal(greedy, sampled)


def full_recompute_causal_decode(model, prompt, num_actions):
    """Greedy, no KV cache, the plain causal mask over the whole sequence at every step."""
    from worldvla_dist.sequences.attention_mask import causal_mask

    v = model.vocab
    ids, bins = list(prompt), []
    for _ in range(num_actions):
        ids.append(v.boa_id)
        for _ in range(7):
            x = torch.tensor(ids)[None]
            mask = causal_mask(torch.ones_like(x, dtype=torch.bool), model.dtype)
            scores = model.logits(x, mask, torch.arange(len(ids))[None])[0][0, -1]
            ids.append(int(scores.masked_fill(~v.action_bin_mask, float("-inf")).argmax()))
            bins.append(ids[-1])
        ids.append(v.eoa_id)
    return torch.tensor(bins).reshape(num_actions, 7)


@pytest.mark.parametrize("seed", range(2))
def test_reference_decoder_under_the_causal_mask(tokens, tiny_preset, seed):
    """The ablation's decoder (paper Table 4, setting b): each action conditions on the ones generated before
    it. It equals a cache-free causal recompute, and differs from the action-mask decode after action 1."""
    model = make_tiny_model(tokens, tiny_preset, seed=200 + seed)
    prompts = prompts_for(tokens, 3, seed)
    causal = reference_decode_actions(model, prompts, 5, attention_mask="causal")
    action = reference_decode_actions(model, prompts, 5)
    for i, prompt in enumerate(prompts):
        assert torch.equal(causal[i], full_recompute_causal_decode(model, prompt, 5)), (seed, i)
    assert torch.equal(causal[:, 0], action[:, 0]), "the first action sees only the prompt under both masks"
    assert not torch.equal(causal[:, 1:], action[:, 1:]), "later actions see the earlier ones under the causal mask"
