import numpy as np
import pytest

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.mixing import mixed_batches
from worldvla_dist.errors import ConfigError, TokenizationError

from tests.conftest import random_actions, random_codes


def test_counts_and_history(tokens):
    codes = random_codes(tokens, 9, seed=0)  # 8 steps
    actions = random_actions(8, seed=0)
    action_samples, world_samples = episode_samples(tokens, codes, actions, "open the drawer", history_frames=2, chunk=5)
    assert len(action_samples) == 4 and len(world_samples) == 8
    n_img = tokens.layout.num_tokens
    # t = 0 has one history frame, later steps two
    assert len(action_samples[1].input_ids) - len(action_samples[0].input_ids) == n_img
    first = tokens.samples.action_sample("open the drawer", [codes[0]], actions[0:5])
    assert np.array_equal(action_samples[0].input_ids, first.input_ids)
    third = tokens.samples.action_sample("open the drawer", [codes[1], codes[2]], actions[2:7])
    assert np.array_equal(action_samples[2].input_ids, third.input_ids)
    assert np.array_equal(world_samples[3].input_ids, tokens.samples.world_sample(codes[3], actions[3], codes[4]).input_ids)


def test_frame_action_mismatch_is_an_error(tokens):
    with pytest.raises(TokenizationError, match="expected T\\+1 frames for T actions, got 8 frames and 8 actions"):
        episode_samples(tokens, random_codes(tokens, 8, 0), random_actions(8, 0), "x")


def test_mixed_batches_keep_the_ratio(tokens):
    codes = random_codes(tokens, 9, seed=1)
    a, w = episode_samples(tokens, codes, random_actions(8, 1), "x")
    batch = next(mixed_batches(a, w, batch_size=8, world_fraction=0.25))
    assert [s.kind for s in batch].count("world") == 2 and len(batch) == 8
    with pytest.raises(ConfigError, match="world_fraction must be in"):
        next(mixed_batches(a, w, 8, 1.5))
    with pytest.raises(ConfigError, match="need 4 action and 4 world samples"):
        next(mixed_batches(a, [], 8, 0.5))
