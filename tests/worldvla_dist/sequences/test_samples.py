import numpy as np
import pytest

from worldvla_dist.errors import TokenizationError
from worldvla_dist.sequences.samples import ACTION_QUESTION, IGNORE_INDEX, WORLD_QUESTION
from worldvla_dist.sequences.token_space import TokenSpace

from tests.conftest import random_actions, random_codes


def test_action_sample_layout(tokens):
    v, layout = tokens.vocab, tokens.layout
    codes = random_codes(tokens, 2, seed=0)
    actions = random_actions(5, seed=0)
    sample = tokens.samples.action_sample("open the top drawer", [codes[0], codes[1]], actions)
    question = tokens.text.encode(ACTION_QUESTION.format(instruction="open the top drawer"))
    n_img = layout.num_tokens
    ids = sample.input_ids.tolist()
    prompt_len = 1 + len(question) + 2 * n_img + 1
    assert ids[0] == v.bos_id and ids[1:1 + len(question)] == question
    img0 = ids[1 + len(question): 1 + len(question) + n_img]
    assert img0 == layout.codes_to_tokens(codes[:1])[0].tolist()
    assert ids[prompt_len - 1] == v.end_of_turn_id
    answer = ids[prompt_len:]
    assert len(answer) == 5 * 9 + 1 and answer[-1] == v.end_of_turn_id
    assert answer[:-1] == tokens.actions.encode_blocks(actions).flatten().tolist()
    assert sample.prompt_length == prompt_len
    assert (sample.labels[:prompt_len] == IGNORE_INDEX).all()
    assert sample.labels[prompt_len:].tolist() == answer  # the whole answer turn and its end-of-turn
    assert sample.kind == "action"


def test_world_sample_layout(tokens):
    v = tokens.vocab
    codes = random_codes(tokens, 2, seed=1)
    action = random_actions(1, seed=1)[0]
    sample = tokens.samples.world_sample(codes[0], action, codes[1])
    question = tokens.text.encode(WORLD_QUESTION)
    n_img = tokens.layout.num_tokens
    prompt_len = 1 + len(question) + n_img + 9 + 1
    ids = sample.input_ids.tolist()
    assert ids[1 + len(question) + n_img] == v.boa_id and ids[prompt_len - 2] == v.eoa_id
    assert ids[prompt_len:-1] == tokens.layout.codes_to_tokens(codes[1:2])[0].tolist()
    assert ids[-1] == v.end_of_turn_id and sample.prompt_length == prompt_len
    assert len(ids) == prompt_len + n_img + 1 and sample.kind == "world"


def test_reference_sample_lengths(chameleon_tokenizer_dir):
    """At 256 px an image is 276 tokens, so an M=2, K=5 action answer sits after two of them."""
    space = TokenSpace.from_tokenizer_dir(chameleon_tokenizer_dir, 256)
    codes = np.zeros((16, 16), dtype=np.int64)
    sample = space.samples.action_sample("pick up the ketchup", [codes, codes], np.zeros((5, 7)))
    question = space.text.encode(ACTION_QUESTION.format(instruction="pick up the ketchup"))
    assert len(sample.input_ids) == 1 + len(question) + 2 * 276 + 1 + 45 + 1
    assert sample.input_ids[sample.prompt_length] == 10004


def test_bad_input(tokens):
    codes = random_codes(tokens, 1, seed=2)
    with pytest.raises(TokenizationError, match="at least one image"):
        tokens.samples.action_prompt("x", [])
    with pytest.raises(TokenizationError, match=r"one action \(7,\), got \(2, 7\)"):
        tokens.samples.world_prompt(codes[0], np.zeros((2, 7)))
    with pytest.raises(TokenizationError, match=r"\(\.\.\., 7\), got \(5, 6\)"):
        tokens.samples.action_sample("x", [codes[0]], np.zeros((5, 6)))
