"""Open-loop action errors per dimension and chunk position (issue 18 §3: where a trained policy's errors are)."""

import json

import numpy as np
import pytest

from jobs import action_errors
from worldvla_dist.data.synthetic_demos import write_random_demo_files
from worldvla_dist.evaluation.action_errors import ACTION_DIM_NAMES, action_error_breakdown, markdown


def test_the_breakdown_counts_exact_hits_near_misses_and_distance_per_dimension_and_position():
    targets = np.full((4, 3, 7), 100)
    predicted = targets.copy()
    predicted[:, 2, 2] += 1  # z one bin off at position 3 only
    predicted[:2, :, 6] -= 5  # the gripper 5 bins off in half the chunks, every position
    train = np.full((2, 3, 7), 100)
    train[..., 0] = 7  # x's majority bin is not the held-out one
    got = action_error_breakdown(predicted, targets, train)
    acc = np.asarray(got.accuracy)
    assert acc.shape == (3, 7) and acc[2, 2] == 0.0 and acc[:2, 2].tolist() == [1.0, 1.0]
    assert acc[:, 6].tolist() == [0.5, 0.5, 0.5] and acc[:, :2].min() == 1.0
    assert got.within_one_bin[2] == 1.0 and got.within_one_bin[6] == 0.5
    assert got.mean_bin_error[6] == pytest.approx(2.5) and got.mean_bin_error[2] == pytest.approx(1 / 3)
    assert got.majority_accuracy[0] == 0.0 and got.majority_accuracy[1] == 1.0
    assert got.by_position[2] == pytest.approx((5 + 0.5) / 7)
    table = markdown(got)
    assert table.count("\n") == 2 + len(ACTION_DIM_NAMES)  # header, rule, 7 dimensions, the "all" row
    assert "| gripper | 0.500 | 0.500 | 0.500 | 0.500 | 1.000 | 0.500 | 2.50 |" in table


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="expected two equal"):
        action_error_breakdown(np.zeros((2, 3, 7)), np.zeros((2, 2, 7)), np.zeros((1, 1, 7)))


def test_the_job_writes_its_table_on_held_out_demos(tmp_path, tiny_checkpoint):
    write_random_demo_files(tmp_path / "held", files=1, demos=2, steps=5)
    write_random_demo_files(tmp_path / "train", files=2, demos=2, steps=5, seed=1)
    payload = action_errors.main(["--checkpoint", str(tiny_checkpoint), "--demos", str(tmp_path / "held"),
                                  "--train-demos", str(tmp_path / "train"), "--chunk", "2", "--out", str(tmp_path / "out")])
    assert payload["num_chunks"] == 2 * (5 - 2 + 1) and np.asarray(payload["accuracy"]).shape == (2, 7)
    assert json.loads((tmp_path / "out" / "action_errors.json").read_text())["dimensions"] == list(ACTION_DIM_NAMES)
    assert "| yaw |" in (tmp_path / "out" / "action_errors.md").read_text()


def test_a_folder_without_demos_is_named(tmp_path, tiny_checkpoint):
    with pytest.raises(SystemExit):
        action_errors.parse_args(["--checkpoint", str(tiny_checkpoint), "--demos", str(tmp_path),
                                  "--train-demos", str(tmp_path)])
