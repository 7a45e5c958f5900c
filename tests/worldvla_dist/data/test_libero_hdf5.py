import json
import re

import h5py
import numpy as np
import pytest

from worldvla_dist.data.libero_hdf5 import (Demo, DemoFile, DemoFileInfo, LiberoDataError, is_validation, noop_mask,
                                            write_demo_file)


def fake_demo(t: int, seed: int) -> Demo:
    rng = np.random.default_rng(seed)
    return Demo(actions=rng.uniform(-1, 1, (t, 7)), states=rng.normal(size=(t, 47)),
                agentview=rng.integers(0, 256, (t, 16, 16, 3), dtype=np.uint8),
                eye_in_hand=rng.integers(0, 256, (t, 16, 16, 3), dtype=np.uint8),
                robot_states=rng.normal(size=(t, 9)), proprio={"ee_pos": rng.normal(size=(t, 3))},
                model_file="<mujoco/>")


INFO = DemoFileInfo(language_instruction="open the top drawer", problem_name="libero_kitchen_tabletop_manipulation",
                    bddl_file_name="libero_goal/open_the_top_drawer.bddl", bddl_file_content="(define ...)",
                    env_args={"env_name": "x", "env_kwargs": {"control_freq": 20}})


def test_round_trip_in_the_official_layout(tmp_path):
    demos = [fake_demo(5, 0), fake_demo(7, 1)]
    path = write_demo_file(tmp_path / "task_demo.hdf5", INFO, demos)
    with h5py.File(path, "r") as f:  # the keys other tools read
        data = f["data"]
        assert json.loads(data.attrs["problem_info"])["language_instruction"] == "open the top drawer"
        assert data.attrs["num_demos"] == 2 and data.attrs["total"] == 12
        assert data.attrs["macros_image_convention"] == "opengl"
        assert set(data["demo_1"].keys()) >= {"actions", "states", "rewards", "dones", "robot_states", "obs"}
        assert set(data["demo_1/obs"].keys()) == {"agentview_rgb", "eye_in_hand_rgb", "ee_pos"}
        assert data["demo_1"].attrs["num_samples"] == 7
        assert data["demo_1/dones"][()].tolist() == [0, 0, 0, 0, 0, 0, 1]
    with DemoFile(path) as f:
        assert f.info == INFO and f.names == ["demo_0", "demo_1"]
        for original, read in zip(demos, f):
            for key in ("actions", "states", "agentview", "eye_in_hand", "robot_states", "rewards", "dones"):
                assert np.array_equal(getattr(original, key), getattr(read, key)), key
            assert np.array_equal(read.proprio["ee_pos"], original.proprio["ee_pos"])
            assert np.array_equal(read.model_images(), original.agentview[:, ::-1, ::-1])


def test_missing_key_names_file_and_key(tmp_path):
    path = write_demo_file(tmp_path / "d.hdf5", INFO, [fake_demo(3, 0)])
    with h5py.File(path, "a") as f:
        del f["data/demo_0/obs/agentview_rgb"]
    with DemoFile(path) as f, pytest.raises(LiberoDataError, match=r"d.hdf5: /data/demo_0 is missing key 'obs/agentview_rgb'"):
        f["demo_0"]
    with h5py.File(path, "a") as f:
        del f["data"].attrs["problem_info"]
    with pytest.raises(LiberoDataError, match=r"data is missing attributes \['problem_info'\]"):
        DemoFile(path)


def test_corrupted_file_is_named(tmp_path):
    path = write_demo_file(tmp_path / "c.hdf5", INFO, [fake_demo(3, 0)])
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(LiberoDataError, match=r"c.hdf5: cannot be read as hdf5"):
        DemoFile(path)
    with pytest.raises(LiberoDataError, match="cannot be read"):
        DemoFile(tmp_path / "absent.hdf5")


def reference_is_noop(action, prev_action=None, threshold=1e-4):
    """A literal transcription of `is_noop` in alibaba-damo-academy/WorldVLA:
    worldvla/libero_util/regenerate_libero_dataset_filter_no_op.py."""
    if prev_action is None:
        return np.linalg.norm(action[:-1]) < threshold
    gripper_action = action[-1]
    prev_gripper_action = prev_action[-1]
    return np.linalg.norm(action[:-1]) < threshold and gripper_action == prev_gripper_action


def reference_noop_mask(orig_actions):
    """The reference's replay loop over one demo, reduced to which actions it skips."""
    actions, skipped = [], []
    for _, action in enumerate(orig_actions):
        prev_action = actions[-1] if len(actions) > 0 else None
        if reference_is_noop(action, prev_action):
            skipped.append(True)
            continue
        skipped.append(False)
        actions.append(action)
    return skipped


def test_noop_rule():
    actions = np.array([
        [0, 0, 0, 0, 0, 0, 1],                 # leading and still: dropped whatever the gripper
        [0, 0, 0, 0, 0, 0, -1],                # still dropped: nothing kept yet to compare with
        [5e-5, 0, 0, 0, 0, 0, -1],             # below the threshold, nothing kept yet -> dropped
        [2e-4, 0, 0, 0, 0, 0, -1],             # moves -> kept (gripper -1)
        [0, 0, 0, 0, 0, 0, -1],                # still, same gripper -> no-op
        [6e-5, 6e-5, 6e-5, 0, 0, 0, -1],       # each below 1e-4, but the norm is ~1.04e-4 -> kept
        [0, 0, 0, 0, 0, 0, 1],                 # gripper changes -> kept
        [0, 0, 0, 0, 0, 0, 1],                 # -> no-op
    ], dtype=float)
    assert noop_mask(actions).tolist() == [True, True, True, False, True, False, False, True]
    assert noop_mask(actions).tolist() == reference_noop_mask(actions)


def test_leading_still_actions_are_dropped_whatever_their_gripper():
    for gripper in (-1.0, 0.0, 1.0):
        actions = np.array([[0, 0, 0, 0, 0, 0, gripper]] * 3 + [[0.5, 0, 0, 0, 0, 0, gripper]])
        assert noop_mask(actions).tolist() == [True, True, True, False]


def test_the_gripper_is_compared_with_the_previous_kept_action_not_the_previous_raw_one():
    # a dropped action in mid-demo has the kept gripper by definition, so the two "previous" differ
    # only after dropped leading actions: here the raw previous gripper of action 1 is 1, which it
    # differs from, but nothing is kept yet, so the reference drops it on its norm alone
    actions = np.array([
        [0, 0, 0, 0, 0, 0, 1],      # leading still -> dropped
        [0, 0, 0, 0, 0, 0, -1],     # raw previous gripper 1 (changed), kept previous: none -> dropped
        [0.5, 0, 0, 0, 0, 0, 1],    # moves -> kept, kept gripper 1
        [0, 0, 0, 0, 0, 0, 1],      # still, kept gripper 1 -> no-op
        [0, 0, 0, 0, 0, 0, -1],     # raw previous 1 = kept previous 1, gripper changes -> kept
        [0, 0, 0, 0, 0, 0, -1],     # -> no-op
    ], dtype=float)
    assert noop_mask(actions).tolist() == [True, True, False, True, False, True]


def test_noop_mask_matches_the_reference_loop_on_random_demos():
    rng = np.random.default_rng(0)
    for _ in range(300):
        t = int(rng.integers(0, 40))
        # mostly still arms around the threshold, grippers from {-1, 0, 1} so that repeats are common
        scale = rng.choice([0.0, 3e-5, 5e-5, 1e-4, 1e-2], size=(t, 1))
        actions = np.concatenate([rng.normal(size=(t, 6)) * scale, rng.choice([-1.0, 0.0, 1.0], size=(t, 1))], axis=1)
        assert noop_mask(actions).tolist() == reference_noop_mask(actions), actions


@pytest.mark.parametrize("shape", [(4, 6), (4, 8), (7,)])
def test_noop_mask_rejects_actions_of_the_wrong_shape(shape):
    with pytest.raises(LiberoDataError, match=rf"expected actions \(T, 7\), got shape {re.escape(str(shape))}"):
        noop_mask(np.zeros(shape))


def test_split_is_deterministic_and_about_ten_percent():
    keys = [f"libero_spatial/{t}/demo_{i}" for t in range(10) for i in range(50)]
    val = [k for k in keys if is_validation(k)]
    assert val == [k for k in reversed(keys) if is_validation(k)][::-1]
    assert 0.06 < len(val) / len(keys) < 0.14
    assert is_validation("x", 0.0) is False and is_validation("x", 1.0) is True


@pytest.mark.parametrize("convention", ["opengl", "opencv"])
def test_a_window_reads_the_same_frames_and_actions_as_the_whole_demo(tmp_path, convention):
    demo = fake_demo(9, seed=3)
    demo.image_convention = convention
    info = DemoFileInfo(**{**INFO.__dict__, "image_convention": convention})
    path = write_demo_file(tmp_path / "libero_goal" / "x_demo.hdf5", info, [demo])
    with DemoFile(path) as f:
        frames, actions = f.window("demo_0", 2, 6)
        whole = f["demo_0"]
        assert f.length("demo_0") == 9
        np.testing.assert_array_equal(frames, whole.model_images()[2:6])
        np.testing.assert_array_equal(actions, whole.actions[2:6])
        with pytest.raises(LiberoDataError, match="no demo 'demo_7'"):
            f.window("demo_7", 0, 1)
