import torch

from worldvla_dist.sequences.attention_mask import action_attention_mask, causal_mask
from worldvla_dist.sequences.collate import collate

from tests.conftest import random_actions, random_codes


def allowed(mask: torch.Tensor) -> torch.Tensor:
    return mask[:, 0] == 0


def test_world_samples_are_causal(tokens):
    codes = random_codes(tokens, 2, seed=0)
    sample = tokens.samples.world_sample(codes[0], random_actions(1, 0)[0], codes[1])
    ids = torch.as_tensor(sample.input_ids)[None]
    assert torch.equal(action_attention_mask(ids, tokens.vocab), causal_mask(torch.ones_like(ids, dtype=torch.bool)))


def test_action_blocks_do_not_see_each_other(tokens):
    codes = random_codes(tokens, 2, seed=0)
    sample = tokens.samples.action_sample("open the drawer", [codes[0], codes[1]], random_actions(3, 0))
    ids = torch.as_tensor(sample.input_ids)[None]
    ok = allowed(action_attention_mask(ids, tokens.vocab))[0]
    p = sample.prompt_length
    block = lambda k: range(p + 9 * k, p + 9 * k + 9)  # noqa: E731
    for k in range(3):
        for q in block(k):
            assert ok[q, :p].all(), "every action sees the whole prompt"
            assert ok[q, p + 9 * k: q + 1].all(), "causal inside its own block"
            assert not ok[q, q + 1:].any(), "never the future"
            for other in range(k):
                assert not ok[q, list(block(other))].any(), f"block {k} sees block {other}"
    eot = len(ids[0]) - 1
    assert ok[eot, : eot + 1].all(), "end-of-turn belongs to no block and sees everything"


def test_unclosed_block_runs_to_the_end(tokens):
    """At a decoding step the last block is still open: the rule must already hold for it."""
    codes = random_codes(tokens, 1, seed=3)
    prompt = tokens.samples.action_prompt("x", [codes[0]])
    answer = tokens.samples.action_answer(random_actions(2, 3))[:9 + 4]  # block 0 + BOA and 3 bins of block 1
    ids = torch.tensor(prompt + answer)[None]
    ok = allowed(action_attention_mask(ids, tokens.vocab))[0]
    p = len(prompt)
    assert not ok[-1, p:p + 9].any() and ok[-1, p + 9:].all()


def test_padding_keys_are_masked(tokens):
    codes = random_codes(tokens, 2, seed=4)
    short = tokens.samples.world_sample(codes[0], random_actions(1, 4)[0], codes[1])
    long = tokens.samples.action_sample("pick", [codes[0], codes[1]], random_actions(5, 4))
    batch = collate([short, long], tokens.vocab)
    n = len(short.input_ids)
    ok = allowed(batch.attention_mask)
    assert not ok[0, :n, n:].any()
    assert batch.input_ids[0, n:].eq(tokens.vocab.pad_id).all() and batch.labels[0, n:].eq(-100).all()
    assert batch.is_world.tolist() == [True, False]
