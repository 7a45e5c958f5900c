import numpy as np
import pytest
import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.tokenizers.action_tokenizer import REFERENCE_BOUNDS, ActionTokenizer
from worldvla_dist.tokenizers.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def chameleon_actions(chameleon_tokenizer_dir):
    return ActionTokenizer(Vocabulary.from_chameleon_tokenizer_file(chameleon_tokenizer_dir / "text_tokenizer.json"))


def reference_ids(actions: np.ndarray) -> np.ndarray:
    """WORLDVLA.md, written out independently: normalise with the bounds, digitize on 256 edges, + 10005."""
    low, high = np.array(REFERENCE_BOUNDS.low), np.array(REFERENCE_BOUNDS.high)
    norm = np.clip(2 * (actions - low) / (high - low + 1e-8) - 1, -1, 1)
    return np.digitize(norm, np.linspace(-1, 1, 256)) + 10005


def test_ids_equal_the_reference_formula(chameleon_actions):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.2, 1.2, (4, 10, 7))  # includes clipped values
    actions[0, 0] = REFERENCE_BOUNDS.low
    actions[0, 1] = np.array(REFERENCE_BOUNDS.high) + 0.1  # clipped to exactly 1 -> the 256th value
    ids = chameleon_actions.encode(actions)
    np.testing.assert_array_equal(ids, reference_ids(actions))
    assert ids[0, 0].tolist() == [10006] * 7 and ids[0, 1].tolist() == [10261] * 7


def test_round_trip_error_at_most_half_a_bin(chameleon_actions):
    rng = np.random.default_rng(1)
    low, high = np.array(REFERENCE_BOUNDS.low), np.array(REFERENCE_BOUNDS.high)
    actions = rng.uniform(low, high, (64, 5, 7))
    decoded = chameleon_actions.decode(chameleon_actions.encode(actions))
    assert decoded.shape == actions.shape and decoded.dtype == np.float32
    err = np.abs(decoded - actions).max(axis=(0, 1))
    assert (err <= chameleon_actions.bin_width / 2 + 1e-6).all(), (err, chameleon_actions.bin_width / 2)


def test_encode_blocks_wraps_each_action(chameleon_actions):
    blocks = chameleon_actions.encode_blocks(np.zeros((2, 3, 7)))
    assert blocks.shape == (2, 3, 9)
    assert (blocks[..., 0] == 10004).all() and (blocks[..., -1] == 15004).all()


def test_accepts_torch_tensors():
    tok = ActionTokenizer(Vocabulary.tiny())
    ids = tok.encode(torch.zeros(3, 7))
    np.testing.assert_array_equal(tok.encode(np.zeros((3, 7))), ids)
    assert tok.decode(torch.as_tensor(ids)).shape == (3, 7)


@pytest.mark.parametrize("bad, message", [
    (np.full((2, 7), np.nan), "finite"),
    (np.array([[0, 0, np.inf, 0, 0, 0, 0]]), r"finite, got inf at index \(0, 2\)"),
    (np.zeros((2, 6)), r"shape \(\.\.\., 7\), got \(2, 6\)"),
    (np.float64(1.0), "shape"),
])
def test_bad_actions_are_refused(bad, message):
    with pytest.raises(TokenizationError, match=message):
        ActionTokenizer(Vocabulary.tiny()).encode(bad)


def test_decode_refuses_non_action_ids():
    tok = ActionTokenizer(Vocabulary.tiny())
    with pytest.raises(TokenizationError, match="not an action bin"):
        tok.decode(np.full((1, 7), tok.vocab.boa_id))
