import json

import numpy as np
import pytest

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.token_shards import (_LEN, ShardEntry, ShardRecord, load_samples, read_index, read_shard,
                                             write_index, write_shard)
from worldvla_dist.errors import WorldVLAError
from worldvla_dist.runtime.codec import pack

from tests.conftest import random_actions, random_codes


def test_shard_round_trip(tmp_path, tokens):
    a, w = episode_samples(tokens, random_codes(tokens, 8, 0), random_actions(8, 0), "open the drawer")
    tags = ("train", "val_ind", "val_ood")
    records = [ShardRecord(s, tags[i % 3], f"t/{i}") for i, s in enumerate(a + w)]
    counts = write_shard(tmp_path / "s" / "task.msgpack", records)
    assert counts == (len(a), len(w), sum(r.split == "val_ind" for r in records), sum(r.split == "val_ood" for r in records))
    back = list(read_shard(tmp_path / "s" / "task.msgpack"))
    assert len(back) == len(records)
    for r, b in zip(records, back):
        assert np.array_equal(r.sample.input_ids, b.sample.input_ids) and np.array_equal(r.sample.labels, b.sample.labels)
        assert (r.sample.kind, r.split, r.trajectory) == (b.sample.kind, b.split, b.trajectory)
    write_index(tmp_path / "s", [ShardEntry("task.msgpack", "t", *counts)])
    for split in tags:
        got_a, got_w = load_samples(tmp_path / "s", split)
        assert len(got_a) + len(got_w) == sum(r.split == split for r in records)
    with pytest.raises(WorldVLAError, match="split must be one of .* got 'val'"):
        load_samples(tmp_path / "s", "val")
    with pytest.raises(WorldVLAError, match="split must be one of"):
        write_shard(tmp_path / "bad.msgpack", [ShardRecord(a[0], "test", "x")])


def test_shards_and_indexes_from_before_val_ind_read_their_val_as_val_ind(tmp_path, tokens):
    a, _ = episode_samples(tokens, random_codes(tokens, 6, 1), random_actions(6, 1), "x")
    with (tmp_path / "old.msgpack").open("wb") as f:  # the old writer: split "train" or "val"
        for i, s in enumerate(a):
            blob = pack({"kind": s.kind, "input_ids": s.input_ids.astype(np.int32), "labels": s.labels.astype(np.int32),
                         "split": "val" if i == 0 else "train", "trajectory": f"t/{i}"})
            f.write(_LEN.pack(len(blob)) + blob)
    assert [r.split for r in read_shard(tmp_path / "old.msgpack")] == ["val_ind"] + ["train"] * (len(a) - 1)
    (tmp_path / "index.json").write_text(json.dumps({"shards": [
        {"file": "old.msgpack", "task": "t", "num_action": len(a), "num_world": 0, "num_val": 1}]}))
    assert read_index(tmp_path) == [ShardEntry("old.msgpack", "t", len(a), 0, 1, 0)]
    assert len(load_samples(tmp_path, "val_ind")[0]) == 1


def test_truncated_shard_and_missing_index_are_named(tmp_path, tokens):
    a, _ = episode_samples(tokens, random_codes(tokens, 6, 1), random_actions(6, 1), "x")
    path = tmp_path / "t.msgpack"
    write_shard(path, [ShardRecord(s, "train", "x") for s in a])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WorldVLAError, match="truncated record"):
        list(read_shard(path))
    with pytest.raises(WorldVLAError, match="run jobs/prepare_data.py first"):
        load_samples(tmp_path / "nowhere")
