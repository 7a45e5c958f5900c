"""A demo file -> tokenised action and world samples, tagged with the deterministic 90/10 split."""

from __future__ import annotations

from pathlib import Path

import torch

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.libero_hdf5 import DemoFile, is_validation, trajectory_key
from worldvla_dist.data.token_shards import ShardRecord
from worldvla_dist.sequences.token_space import TokenSpace


def tokenize_demo_file(tokens: TokenSpace, path: str | Path, history_frames: int = 2,
                       chunk: int = 5, batch_size: int = 32) -> list[ShardRecord]:
    """Every demo of the file: agentview frames (model orientation) -> VQ codes -> samples."""
    records = []
    with DemoFile(path) as f:
        for name in f.names:
            demo = f[name]
            frames = demo.model_images()
            codes = torch.cat([tokens.images.encode(frames[i:i + batch_size]) for i in range(0, len(frames), batch_size)])
            action_samples, world_samples = episode_samples(tokens, codes, demo.actions, f.info.language_instruction,
                                                            history_frames, chunk)
            trajectory = trajectory_key(path, name)
            split = "val" if is_validation(trajectory) else "train"
            records += [ShardRecord(s, split, trajectory) for s in action_samples + world_samples]
    return records
