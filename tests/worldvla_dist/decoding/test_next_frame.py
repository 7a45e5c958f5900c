import torch

from worldvla_dist.decoding.next_frame import generate_next_frames
from worldvla_dist.decoding.sampling import SamplingConfig
from worldvla_dist.sequences.attention_mask import action_attention_mask

from tests.conftest import random_actions, random_codes


def world_prompts(tokens, batch, seed):
    codes = random_codes(tokens, batch, seed=seed)
    actions = random_actions(batch, seed)
    return [tokens.samples.world_prompt(codes[i], actions[i]) for i in range(batch)]


def full_recompute_frame(model, layout, prompt):
    """Greedy, no cache: one token at a time through the whole sequence, forced tokens from the layout."""
    ids = list(prompt)
    for slot in layout.template.tolist():
        if slot >= 0:
            ids.append(slot)
            continue
        x = torch.tensor(ids)[None]
        logits = model.logits(x, action_attention_mask(x, model.vocab, dtype=model.dtype), torch.arange(len(ids))[None])[0]
        ids.append(int(logits[0, -1].masked_fill(~model.vocab.image_code_mask, float("-inf")).argmax()))
    return layout.tokens_to_codes(torch.tensor(ids[len(prompt):]))[0]


def test_greedy_frame_equals_full_recompute_and_batching_changes_nothing(tokens, tiny_model64):
    prompts = world_prompts(tokens, 3, seed=0)
    frames = generate_next_frames(tiny_model64, tokens.layout, prompts)
    assert frames.shape == (3, tokens.layout.rows, tokens.layout.cols)
    assert torch.equal(frames[0], full_recompute_frame(tiny_model64, tokens.layout, prompts[0]))
    for i in range(3):
        assert torch.equal(frames[i], generate_next_frames(tiny_model64, tokens.layout, prompts[i:i + 1])[0])


def test_sampling_is_seeded_and_well_formed(tokens, tiny_model64):
    prompts = world_prompts(tokens, 2, seed=1)
    cfg = SamplingConfig(temperature=1.0, top_k=20)
    a = generate_next_frames(tiny_model64, tokens.layout, prompts, cfg, torch.Generator().manual_seed(3))
    b = generate_next_frames(tiny_model64, tokens.layout, prompts, cfg, torch.Generator().manual_seed(3))
    c = generate_next_frames(tiny_model64, tokens.layout, prompts, cfg, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() < tokens.vocab.num_image_codes
    images = tokens.images.decode(a)
    assert images.shape == (2, 128, 128, 3)
