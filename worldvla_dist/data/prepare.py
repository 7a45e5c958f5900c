"""A demo file -> tokenised action and world samples, each tagged with its trajectory's split."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.libero_hdf5 import DemoFile, LiberoDataError, require_regenerated
from worldvla_dist.data.split import trajectory_key
from worldvla_dist.data.token_shards import ShardRecord
from worldvla_dist.sequences.token_space import TokenSpace


def tokenize_demo_file(tokens: TokenSpace, path: str | Path, splits: Mapping[str, str], history_frames: int = 2,
                       chunk: int = 5, batch_size: int = 32) -> list[ShardRecord]:
    """Every demo of the file: agentview frames (model orientation) -> VQ codes -> samples. `splits`:
    demo name -> "train" / "val_ind" / "val_ood", this file's part of `split.assign_splits`. A raw
    official LIBERO file (frames after their actions, no-ops in) is refused with the command that
    regenerates it."""
    records = []
    with DemoFile(path) as f:
        require_regenerated(f)
        missing = [name for name in f.names if name not in splits]
        if missing:
            raise LiberoDataError(f"tokenize_demo_file {path}: no split given for {missing}")
        for name in f.names:
            demo = f[name]
            frames = demo.model_images()
            codes = torch.cat([tokens.images.encode(frames[i:i + batch_size]) for i in range(0, len(frames), batch_size)])
            action_samples, world_samples = episode_samples(tokens, codes, demo.actions, f.info.language_instruction,
                                                            history_frames, chunk)
            records += [ShardRecord(s, splits[name], trajectory_key(path, name)) for s in action_samples + world_samples]
    return records
