"""One tokenised episode -> its action samples (M history frames -> K actions) and world samples
(frame_t + action_t -> frame_{t+1}), as the reference builds them."""

from __future__ import annotations

import numpy as np
import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.sequences.samples import TokenSample
from worldvla_dist.sequences.token_space import TokenSpace


def episode_samples(tokens: TokenSpace, codes: torch.Tensor, actions: np.ndarray, instruction: str,
                    history_frames: int = 2, chunk: int = 5) -> tuple[list[TokenSample], list[TokenSample]]:
    """codes (T+1, rows, cols) of frames 0..T, actions (T, 7). Action samples exist for every t with a
    full chunk t..t+K-1 ahead; at t < M-1 the history is shorter (one frame at t = 0)."""
    if len(codes) != len(actions) + 1:
        raise TokenizationError(f"episode_samples: expected T+1 frames for T actions, got {len(codes)} frames "
                                f"and {len(actions)} actions")
    action_samples = [
        tokens.samples.action_sample(instruction, list(codes[max(0, t - history_frames + 1): t + 1]),
                                     actions[t:t + chunk])
        for t in range(len(actions) - chunk + 1)]
    world_samples = [tokens.samples.world_sample(codes[t], actions[t], codes[t + 1]) for t in range(len(actions))]
    return action_samples, world_samples
