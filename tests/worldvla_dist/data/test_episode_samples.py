import numpy as np
import pytest

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.mixing import mixed_batches
from worldvla_dist.errors import ConfigError, TokenizationError

from tests.conftest import random_actions, random_codes


def test_counts_and_history(tokens):
    codes = random_codes(tokens, 8, seed=0)  # T = 8 frames, frame t observed before action t
    actions = random_actions(8, seed=0)
    action_samples, world_samples = episode_samples(tokens, codes, actions, "open the drawer", history_frames=2, chunk=5)
    assert len(action_samples) == 8 - 5 + 1 and len(world_samples) == 8 - 1
    n_img = tokens.layout.num_tokens
    # t = 0 has one history frame, later steps two
    assert len(action_samples[1].input_ids) - len(action_samples[0].input_ids) == n_img
    first = tokens.samples.action_sample("open the drawer", [codes[0]], actions[0:5])
    assert np.array_equal(action_samples[0].input_ids, first.input_ids)
    third = tokens.samples.action_sample("open the drawer", [codes[1], codes[2]], actions[2:7])
    assert np.array_equal(action_samples[2].input_ids, third.input_ids)
    assert np.array_equal(world_samples[3].input_ids, tokens.samples.world_sample(codes[3], actions[3], codes[4]).input_ids)


def test_the_last_full_chunk_and_the_last_recorded_transition_are_samples(tokens):
    codes, actions = random_codes(tokens, 9, seed=2), random_actions(9, seed=2)
    action_samples, world_samples = episode_samples(tokens, codes, actions, "x", history_frames=2, chunk=5)
    last = tokens.samples.action_sample("x", [codes[3], codes[4]], actions[4:9])  # t = T-K: actions T-K..T-1
    assert np.array_equal(action_samples[-1].input_ids, last.input_ids)
    assert np.array_equal(action_samples[-1].labels, last.labels)
    assert np.array_equal(world_samples[-1].input_ids, tokens.samples.world_sample(codes[7], actions[7], codes[8]).input_ids)


def test_a_short_episode_has_world_samples_and_no_action_sample(tokens):
    a, w = episode_samples(tokens, random_codes(tokens, 4, 3), random_actions(4, 3), "x", chunk=5)
    assert a == [] and len(w) == 3


def test_frame_action_mismatch_is_an_error(tokens):
    with pytest.raises(TokenizationError, match="expected one frame per action .* got 9 frames and 8 actions"):
        episode_samples(tokens, random_codes(tokens, 9, 0), random_actions(8, 0), "x")


def test_mixed_batches_keep_the_ratio(tokens):
    codes = random_codes(tokens, 8, seed=1)
    a, w = episode_samples(tokens, codes, random_actions(8, 1), "x")
    batch = next(mixed_batches(a, w, batch_size=8, world_fraction=0.25))
    assert [s.kind for s in batch].count("world") == 2 and len(batch) == 8
    with pytest.raises(ConfigError, match="world_fraction must be in"):
        next(mixed_batches(a, w, 8, 1.5))
    with pytest.raises(ConfigError, match="need 4 action and 4 world samples"):
        next(mixed_batches(a, [], 8, 0.5))
