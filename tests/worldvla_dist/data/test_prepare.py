"""A demo file -> shard records: every sample the recorded steps allow, tagged with its trajectory's split."""

import numpy as np
import pytest

from worldvla_dist.data.libero_hdf5 import DemoFile, LiberoDataError
from worldvla_dist.data.prepare import tokenize_demo_file
from worldvla_dist.data.split import assign_splits
from worldvla_dist.data.synthetic_demos import write_random_demo_files


def test_every_full_chunk_is_a_sample_up_to_the_last_one(tmp_path, tokens):
    steps, chunk = 9, 5
    (path,) = write_random_demo_files(tmp_path, files=1, demos=2, steps=steps)
    records = tokenize_demo_file(tokens, path, assign_splits([path])[path], history_frames=2, chunk=chunk)
    for name, split in (("demo_0", "train"), ("demo_1", "val_ind")):
        mine = [r for r in records if r.trajectory == f"libero_object/task_0/{name}"]
        actions = [r.sample for r in mine if r.sample.kind == "action"]
        assert len(actions) == steps - chunk + 1 and len(mine) - len(actions) == steps - 1
        assert {r.split for r in mine} == {split}
        with DemoFile(path) as f:
            demo = f[name]
            codes = tokens.images.encode(demo.model_images())
            last = tokens.samples.action_sample(f.info.language_instruction, [codes[-chunk - 1], codes[-chunk]],
                                                demo.actions[steps - chunk:steps])
        assert np.array_equal(actions[-1].labels, last.labels)  # the answer: actions T-K..T-1


def test_a_demo_without_a_split_is_refused(tmp_path, tokens):
    (path,) = write_random_demo_files(tmp_path, files=1, demos=2, steps=6)
    with pytest.raises(LiberoDataError, match=r"no split given for \['demo_1'\]"):
        tokenize_demo_file(tokens, path, {"demo_0": "train"})


def test_a_raw_official_file_is_refused_with_the_command_that_regenerates_it(tmp_path, tokens):
    from tests.worldvla_dist.data.test_libero_hdf5 import write_official_raw_file
    from worldvla_dist.envs.libero_tasks import find_task

    task = find_task("libero_object", 2)
    actions = np.zeros((8, 7))
    actions[:, 6] = -1
    actions[3:, 0] = 0.3
    path = tmp_path / f"{task.name}_demo.hdf5"
    write_official_raw_file(path, task, actions)
    with pytest.raises(LiberoDataError, match=r"make_demos.py --regenerate .* --suites libero_object --tasks 2"):
        tokenize_demo_file(tokens, path, {"demo_0": "train"})
