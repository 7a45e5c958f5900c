"""jobs/prepare_data.py resumes only onto shards tagged with the split this run would give."""

import pytest

from jobs.prepare_data import counts_of
from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.token_shards import ShardRecord, write_shard

from tests.conftest import random_actions, random_codes


def test_an_existing_shard_is_counted_or_refused_when_its_split_differs(tmp_path, tokens):
    a, w = episode_samples(tokens, random_codes(tokens, 7, 0), random_actions(7, 0), "x")
    path = tmp_path / "t.msgpack"
    write_shard(path, [ShardRecord(s, "val_ind", "libero_goal/t/demo_1") for s in a + w])
    assert counts_of(path, {"libero_goal/t/demo_1": "val_ind"}) == (len(a), len(w), len(a) + len(w), 0)
    with pytest.raises(SystemExit, match="tagged 'val_ind', this run gives it 'val_ood'"):
        counts_of(path, {"libero_goal/t/demo_1": "val_ood"})
