import json
import re

import h5py
import numpy as np
import pytest

from worldvla_dist.data.libero_hdf5 import (WRITER_ATTR, Demo, DemoFile, DemoFileInfo, LiberoDataError, noop_mask,
                                            require_regenerated, write_demo_file)
from worldvla_dist.envs.libero_tasks import find_task


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


def write_reference_no_noops_file(path, demo_steps: dict[int, int], size: int = 16, seed: int = 0) -> None:
    """A file exactly as alibaba-damo-academy/WorldVLA worldvla/libero_util/
    regenerate_libero_dataset_filter_no_op.py writes it: no /data attributes at all, demo_<i> kept
    under its original index (failed replays leave gaps), no demo attributes, actions from a list."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        grp = f.create_group("data")
        for i, t in demo_steps.items():
            ee_states = [rng.normal(size=6) for _ in range(t)]
            ep_data_grp = grp.create_group(f"demo_{i}")
            obs_grp = ep_data_grp.create_group("obs")
            obs_grp.create_dataset("gripper_states", data=np.stack([rng.normal(size=2) for _ in range(t)], axis=0))
            obs_grp.create_dataset("joint_states", data=np.stack([rng.normal(size=7) for _ in range(t)], axis=0))
            obs_grp.create_dataset("ee_states", data=np.stack(ee_states, axis=0))
            obs_grp.create_dataset("ee_pos", data=np.stack(ee_states, axis=0)[:, :3])
            obs_grp.create_dataset("ee_ori", data=np.stack(ee_states, axis=0)[:, 3:])
            obs_grp.create_dataset("agentview_rgb", data=rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8))
            obs_grp.create_dataset("eye_in_hand_rgb", data=rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8))
            ep_data_grp.create_dataset("actions", data=[rng.uniform(-1, 1, 7) for _ in range(t)])
            ep_data_grp.create_dataset("states", data=np.stack([rng.normal(size=79) for _ in range(t)]))
            ep_data_grp.create_dataset("robot_states", data=np.stack([rng.normal(size=9) for _ in range(t)], axis=0))
            dones = np.zeros(t).astype(np.uint8)
            dones[-1] = 1
            ep_data_grp.create_dataset("rewards", data=dones.copy())
            ep_data_grp.create_dataset("dones", data=dones)


def write_official_raw_file(path, task, actions: np.ndarray, size: int = 16) -> None:
    """A raw file as LIBERO's scripts/create_dataset.py writes it (Lifelong-Robot-Learning/LIBERO):
    its data attributes, env_args of LIBERO's kind, frames recorded after their actions."""
    t = len(actions)
    bddl = f"/home/user/LIBERO/libero/libero/bddl_files/{task.suite}/{task.name}.bddl"
    with h5py.File(path, "w") as f:
        grp = f.create_group("data")
        grp.attrs["env_name"] = "Libero_Tabletop_Manipulation"
        grp.attrs["problem_info"] = json.dumps({"problem_name": "libero_tabletop_manipulation",
                                                "domain_name": "robosuite", "language_instruction": task.language})
        grp.attrs["macros_image_convention"] = "opengl"
        grp.attrs["bddl_file_name"] = bddl
        grp.attrs["bddl_file_content"] = "(define (problem LIBERO_Tabletop_Manipulation) ...)"
        grp.attrs["env_args"] = json.dumps({"type": 1, "env_name": "Libero_Tabletop_Manipulation",
                                            "problem_name": "libero_tabletop_manipulation", "bddl_file": bddl,
                                            "env_kwargs": {"control_freq": 20, "camera_heights": 128}})
        ep = grp.create_group("demo_0")
        obs = ep.create_group("obs")
        obs.create_dataset("agentview_rgb", data=np.zeros((t, size, size, 3), np.uint8))
        obs.create_dataset("eye_in_hand_rgb", data=np.zeros((t, size, size, 3), np.uint8))
        obs.create_dataset("ee_pos", data=np.zeros((t, 3)))
        ep.create_dataset("actions", data=actions)
        ep.create_dataset("states", data=np.zeros((t, 79)))
        ep.create_dataset("robot_states", data=np.zeros((t, 9)))
        ep.create_dataset("rewards", data=np.eye(1, t, t - 1, dtype=np.uint8)[0])
        ep.create_dataset("dones", data=np.eye(1, t, t - 1, dtype=np.uint8)[0])
        ep.attrs["num_samples"], ep.attrs["model_file"], ep.attrs["init_state"] = t, "<mujoco/>", np.zeros(79)
        grp.attrs["num_demos"], grp.attrs["total"] = 1, t


def test_the_references_no_noops_file_is_read_with_its_task_from_the_file_name(tmp_path):
    task = find_task("libero_goal", 3)
    folder = tmp_path / "libero_goal_no_noops"
    folder.mkdir()
    path = folder / f"{task.name}_demo.hdf5"
    write_reference_no_noops_file(path, {0: 4, 2: 6, 10: 3})  # demo_1 and demo_3..9 failed their replay
    with DemoFile(path) as f:
        assert f.source == "no_noops" and f.task == task
        assert f.names == ["demo_0", "demo_2", "demo_10"]
        assert f.info.language_instruction == task.language
        assert f.info.bddl_file_name == f"libero_goal/{task.name}.bddl"
        demo = f["demo_2"]
        assert len(demo) == f.length("demo_2") == 6 and demo.actions.dtype == np.float64
        assert set(demo.proprio) == {"ee_pos", "ee_ori", "ee_states", "gripper_states", "joint_states"}
        assert demo.eye_in_hand.shape == (6, 16, 16, 3) and demo.dones.tolist() == [0, 0, 0, 0, 0, 1]
        frames, actions = f.window("demo_10", 1, 3)
        np.testing.assert_array_equal(frames, f["demo_10"].model_images()[1:3])  # stored upside down, as rendered
        assert actions.shape == (2, 7)
        require_regenerated(f)  # the reference's regeneration: frames before actions, no-ops dropped


def test_a_file_without_attributes_whose_name_is_no_task_is_named(tmp_path):
    path = tmp_path / "my_own_task_demo.hdf5"
    write_reference_no_noops_file(path, {0: 3})
    with pytest.raises(LiberoDataError, match=r"my_own_task_demo.hdf5: /data has no attributes .* "
                                              r"'my_own_task' is no task of libero_10, libero_90, "):
        DemoFile(path)


def test_a_raw_official_file_is_read_but_refused_for_training_with_the_command_that_regenerates_it(tmp_path):
    task = find_task("libero_spatial", 4)
    actions = np.zeros((8, 7))
    actions[:, 6] = -1
    actions[3:6, 0] = 0.3  # three leading no-ops, two trailing ones
    path = tmp_path / f"{task.name}_demo.hdf5"
    write_official_raw_file(path, task, actions)
    with DemoFile(path) as f:
        assert f.source == "official" and f.task == task
        assert f.info.language_instruction == task.language and f.info.env_args["type"] == 1
        assert len(f["demo_0"]) == 8  # readable: regenerate_demo_file replays its actions
        with pytest.raises(LiberoDataError) as raised:
            require_regenerated(f)
    message = str(raised.value)
    assert message.startswith(f"{path}: a raw LIBERO demo file") and "5 of 8 actions of demo_0 are no-ops" in message
    assert f"python jobs/make_demos.py --regenerate {path} --suites libero_spatial --tasks 4 --out data/demos" in message
    # renamed: the task still comes from its bddl file's name
    renamed = path.rename(tmp_path / "downloaded.hdf5")
    with DemoFile(renamed) as f, pytest.raises(LiberoDataError, match=r"--suites libero_spatial --tasks 4 --out data/demos"):
        require_regenerated(f)


def test_our_files_are_told_apart_from_official_ones_by_their_marker_or_their_env_args(tmp_path):
    path = write_demo_file(tmp_path / "x_demo.hdf5", INFO, [fake_demo(3, 0)])
    with DemoFile(path) as f:
        assert f.source == "ours" and f.task is None
        require_regenerated(f)
    with h5py.File(path, "a") as f:  # written before the marker: demo_generation.file_info's env_args
        del f["data"].attrs[WRITER_ATTR]
        f["data"].attrs["env_args"] = json.dumps({"env_name": "x", "suite": "libero_goal", "task": 3})
    with DemoFile(path) as f:
        assert f.source == "ours"
    with h5py.File(path, "a") as f:
        f["data"].attrs["env_args"] = json.dumps({"type": 1, "env_name": "x"})
    with DemoFile(path) as f:
        assert f.source == "official"
