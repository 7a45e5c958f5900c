"""Imagined rollouts on a random tiny model: replay chains the world model on its own frames, dream
alternates policy chunks and world-model frames, and the context per frame does not grow with the
horizon (the flat-cost property; bench/imagine.py times it)."""

import numpy as np
import pytest
import torch

from worldvla_dist.decoding.next_frame import generate_next_frames
from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.imagination import rollout

from tests.conftest import make_tiny_model, random_actions, random_codes


@pytest.fixture(scope="module")
def model(tokens, tiny_preset):
    return make_tiny_model(tokens, tiny_preset, seed=3, dtype=torch.float32)


def test_replay_feeds_each_imagined_frame_back_with_the_recorded_action(tokens, model):
    start = random_codes(tokens, 2, seed=0)
    actions = random_actions(6, seed=1).reshape(2, 3, 7)
    seen = []
    out = rollout.replay(model, tokens, start, actions, on_frame=seen.append)
    assert out.codes.shape == (2, 3, tokens.layout.rows, tokens.layout.cols) and seen == [1, 2, 3]
    current = start
    for h in range(3):
        current = generate_next_frames(model, tokens.layout, [tokens.samples.world_prompt(c, a) for c, a in
                                                               zip(current, actions[:, h])])
        assert torch.equal(out.codes[:, h], current)
    np.testing.assert_array_equal(out.actions, actions)
    with pytest.raises(ValueError, match="expected actions"):
        rollout.replay(model, tokens, start, actions[:1])


def test_replay_steps_of_two_rollouts_stepped_in_turn_match_each_run_alone(tokens, model):
    """bench/imagine.py steps rollouts of several horizons alternately: they share no state."""
    starts, actions = random_codes(tokens, 2, seed=4), random_actions(6, seed=5).reshape(2, 1, 3, 7)
    alone = [rollout.replay(model, tokens, starts[i:i + 1], actions[i]).codes for i in range(2)]
    lanes = [rollout.replay_steps(model, tokens, starts[i:i + 1], actions[i]) for i in range(2)]
    stepped = [[], []]
    for _ in range(3):
        for i in (1, 0):
            stepped[i].append(next(lanes[i]))
    for i in range(2):
        assert torch.equal(torch.stack(stepped[i], dim=1), alone[i])
        assert next(lanes[i], None) is None


def keys_per_model_call(model):
    """Records how many keys (cached + new) the attention of each model call spans."""
    seen = []
    hook = model.chameleon.model.register_forward_pre_hook(
        lambda _m, _args, kwargs: seen.append(kwargs["attention_mask"].shape[-1]), with_kwargs=True)
    return seen, hook


def test_context_per_frame_stays_flat_as_the_horizon_grows(tokens, model):
    """N = 1: frame h is generated from a fresh world prompt (image_{h-1} + a_{h-1}), so the largest
    context of a 24-frame rollout equals that of a 1-frame one, frame after frame."""
    start, actions = random_codes(tokens, 1, seed=2), random_actions(24, seed=3)[None]
    seen, hook = keys_per_model_call(model)
    try:
        rollout.replay(model, tokens, start, actions[:, :1])
        one_frame = max(seen)
        per_frame, marks = [], [0]
        seen.clear()
        rollout.replay(model, tokens, start, actions, on_frame=lambda _h: marks.append(len(seen)))
        per_frame = [max(seen[a:b]) for a, b in zip(marks, marks[1:])]
    finally:
        hook.remove()
    assert len(per_frame) == 24
    assert set(per_frame) == {one_frame}
    world_sample = len(tokens.samples.world_prompt(start[0], actions[0, 0])) + len(tokens.layout.template)
    assert one_frame < world_sample  # the cache never holds more than one world sample


def test_dream_asks_the_policy_per_chunk_on_imagined_frames(tokens, model):
    start = random_codes(tokens, 2, seed=4)
    texts = ["put the bowl on the plate", "open the top drawer"]
    out = rollout.dream(model, tokens, texts, start, horizon=5, chunk=3, history=2)
    assert out.codes.shape[:2] == (2, 5) and out.actions.shape == (2, 5, 7)

    def chunk_from(history):
        prompts = [tokens.samples.action_prompt(t, [h[i] for h in history]) for i, t in enumerate(texts)]
        return tokens.actions.decode(parallel_decode_actions(model, prompts, 3).numpy())

    np.testing.assert_allclose(out.actions[:, :3], chunk_from([start]))
    # the second chunk sees the frames of the last two steps, as in evaluation (the reference's
    # his_img[-1:] + [cur_img], eval_solver_libero_256.py): imagined frames 1 and 2; only 2 of it run
    np.testing.assert_allclose(out.actions[:, 3:], chunk_from([out.codes[:, 1], out.codes[:, 2]])[:, :2])
    first = generate_next_frames(model, tokens.layout, [tokens.samples.world_prompt(c, a) for c, a in
                                                        zip(start, out.actions[:, 0])])
    assert torch.equal(out.codes[:, 0], first)
