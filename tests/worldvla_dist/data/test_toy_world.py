import numpy as np

from worldvla_dist.data.toy_world import ToyWorld
from worldvla_dist.tokenizers.action_tokenizer import REFERENCE_BOUNDS


def test_expert_episode_shapes_and_bounds():
    ep = ToyWorld(128, steps=32).expert_episode(seed=4)
    assert ep.frames.shape == (33, 128, 128, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (32, 7) and ep.actions.dtype == np.float32
    assert (ep.actions >= np.array(REFERENCE_BOUNDS.low)).all() and (ep.actions <= np.array(REFERENCE_BOUNDS.high)).all()
    assert "block" in ep.instruction and "corner" in ep.instruction


def test_the_expert_grasps_and_releases_and_frames_follow_actions():
    ep = ToyWorld().expert_episode(seed=1)
    gripper = ep.actions[:, 6]
    assert gripper[0] == -1 and (gripper == 1).any() and gripper[-1] == -1  # closes, then opens again
    moving = np.abs(ep.actions[:, :3]).max(axis=1) > 0
    changed = np.abs(ep.frames[1:].astype(int) - ep.frames[:-1]).max(axis=(1, 2, 3)) > 0
    assert (changed[moving]).all()


def test_episodes_are_deterministic_per_seed():
    a, b = ToyWorld().expert_episode(7), ToyWorld().expert_episode(7)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.actions, b.actions)
