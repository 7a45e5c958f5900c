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


def test_causal_mode_lets_each_action_see_the_earlier_ones(tokens):
    """The ablation's knob (paper Table 4): under "causal" action j sees actions < j; under "action" it does not."""
    codes = random_codes(tokens, 2, seed=5)
    sample = tokens.samples.action_sample("open the drawer", [codes[0], codes[1]], random_actions(3, 5))
    p = sample.prompt_length
    block = lambda k: list(range(p + 9 * k, p + 9 * k + 9))  # noqa: E731
    action = allowed(collate([sample], tokens.vocab).attention_mask)[0]
    causal = allowed(collate([sample], tokens.vocab, attention_mask="causal").attention_mask)[0]
    n = len(sample.input_ids)
    assert torch.equal(causal, torch.ones(n, n, dtype=torch.bool).tril()), "causal: every earlier token"
    for j in range(1, 3):
        for q in block(j):
            for earlier in range(j):
                assert causal[q, block(earlier)].all(), f"causal: action {j} sees action {earlier}"
                assert not action[q, block(earlier)].any(), f"action mask: action {j} does not see {earlier}"


def test_causal_mode_keeps_padding_masked(tokens):
    codes = random_codes(tokens, 2, seed=6)
    short = tokens.samples.action_sample("pick", [codes[0]], random_actions(1, 6))
    long = tokens.samples.action_sample("pick", [codes[0], codes[1]], random_actions(5, 6))
    ok = allowed(collate([short, long], tokens.vocab, attention_mask="causal").attention_mask)
    n = len(short.input_ids)
    assert not ok[0, :n, n:].any() and ok[1].equal(torch.ones_like(ok[1]).tril())


def test_unknown_mask_mode_is_refused(tokens):
    import pytest

    from worldvla_dist.errors import ConfigError
    from worldvla_dist.sequences.attention_mask import ATTENTION_MASKS

    codes = random_codes(tokens, 1, seed=7)
    sample = tokens.samples.action_sample("pick", [codes[0]], random_actions(2, 7))
    with pytest.raises(ConfigError, match=str(ATTENTION_MASKS[0])):
        collate([sample], tokens.vocab, attention_mask="bidirectional")
