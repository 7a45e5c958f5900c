"""Token shards of random episodes in the real on-disk format, plus the tokenizer folder they belong
to: for benchmarks and tests of the learner, where what is learned does not matter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from worldvla_dist.data.token_shards import ShardEntry, ShardRecord, write_index, write_shard
from worldvla_dist.sequences.token_space import TokenSpace


def write_random_shards(tokens: TokenSpace, folder: str | Path, frames: int = 12, chunk: int = 5,
                        seed: int = 0) -> tuple[Path, Path]:
    """-> (tokenizer folder, shard folder) under `folder`: one shard with `frames - chunk - 1` action
    samples (M = 2) and as many world samples."""
    folder = Path(folder)
    tokens.save(folder / "tokenizer")
    rng = np.random.default_rng(seed)
    g = tokens.layout
    codes = torch.as_tensor(rng.integers(0, tokens.vocab.num_image_codes, (frames, g.rows, g.cols)))
    actions = rng.uniform(-0.5, 0.5, (frames, 7))
    n = frames - chunk - 1
    records = [ShardRecord(tokens.samples.action_sample("pick up the bowl", [codes[i], codes[i + 1]],
                                                        actions[i + 1:i + 1 + chunk]), "train", "demo_0") for i in range(n)]
    records += [ShardRecord(tokens.samples.world_sample(codes[i], actions[i], codes[i + 1]), "train", "demo_0")
                for i in range(n)]
    counts = write_shard(folder / "shards" / "random.msgpack", records)
    write_index(folder / "shards", [ShardEntry("random.msgpack", "random", *counts)])
    return folder / "tokenizer", folder / "shards"
