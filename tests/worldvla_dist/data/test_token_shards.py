import numpy as np
import pytest

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.token_shards import ShardEntry, ShardRecord, load_samples, read_shard, write_index, write_shard
from worldvla_dist.errors import WorldVLAError

from tests.conftest import random_actions, random_codes


def test_shard_round_trip(tmp_path, tokens):
    a, w = episode_samples(tokens, random_codes(tokens, 8, 0), random_actions(8, 0), "open the drawer")
    records = [ShardRecord(s, "val" if i % 3 == 0 else "train", f"t/{i}") for i, s in enumerate(a + w)]
    counts = write_shard(tmp_path / "s" / "task.msgpack", records)
    assert counts == (len(a), len(w), sum(r.split == "val" for r in records))
    back = list(read_shard(tmp_path / "s" / "task.msgpack"))
    assert len(back) == len(records)
    for r, b in zip(records, back):
        assert np.array_equal(r.sample.input_ids, b.sample.input_ids) and np.array_equal(r.sample.labels, b.sample.labels)
        assert (r.sample.kind, r.split, r.trajectory) == (b.sample.kind, b.split, b.trajectory)
    write_index(tmp_path / "s", [ShardEntry("task.msgpack", "t", *counts)])
    train_a, train_w = load_samples(tmp_path / "s", "train")
    assert len(train_a) + len(train_w) == sum(r.split == "train" for r in records)


def test_truncated_shard_and_missing_index_are_named(tmp_path, tokens):
    a, _ = episode_samples(tokens, random_codes(tokens, 6, 1), random_actions(6, 1), "x")
    path = tmp_path / "t.msgpack"
    write_shard(path, [ShardRecord(s, "train", "x") for s in a])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WorldVLAError, match="truncated record"):
        list(read_shard(path))
    with pytest.raises(WorldVLAError, match="run jobs/prepare_data.py first"):
        load_samples(tmp_path / "nowhere")
