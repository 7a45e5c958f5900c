"""Endless minibatches mixing action and world samples in a fixed ratio."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from worldvla_dist.errors import ConfigError
from worldvla_dist.sequences.samples import TokenSample


def mixed_batches(action_samples: Sequence[TokenSample], world_samples: Sequence[TokenSample], batch_size: int,
                  world_fraction: float, seed: int = 0, start: int = 0) -> Iterator[list[TokenSample]]:
    """Each batch holds round(batch_size * world_fraction) world samples, the rest action samples,
    drawn with replacement. `start` skips that many batches: a resumed learner passes the number it
    had consumed and continues with exactly the batches it would have seen."""
    if not 0.0 <= world_fraction <= 1.0:
        raise ConfigError(f"mixed_batches: world_fraction must be in [0, 1], got {world_fraction}")
    num_world = round(batch_size * world_fraction)
    if (num_world and not world_samples) or (batch_size - num_world and not action_samples):
        raise ConfigError(f"mixed_batches: need {batch_size - num_world} action and {num_world} world samples per "
                          f"batch, have {len(action_samples)} and {len(world_samples)} to draw from")
    rng = np.random.default_rng(seed)
    for _ in range(start):
        rng.integers(0, len(action_samples), batch_size - num_world)
        if num_world:
            rng.integers(0, len(world_samples), num_world)
    while True:
        batch = [action_samples[i] for i in rng.integers(0, len(action_samples), batch_size - num_world)]
        batch += [world_samples[i] for i in rng.integers(0, len(world_samples), num_world)] if num_world else []
        yield batch
