"""One tokenised episode -> its action samples (M history frames -> K actions) and world samples
(frame_t + action_t -> frame_{t+1}), as the reference builds them."""

from __future__ import annotations

import numpy as np
import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.sequences.samples import TokenSample
from worldvla_dist.sequences.token_space import TokenSpace


def episode_samples(tokens: TokenSpace, frames: torch.Tensor, actions: np.ndarray, instruction: str,
                    history_frames: int = 2, chunk: int = 5) -> tuple[list[TokenSample], list[TokenSample]]:
    """frames (T, rows, cols) VQ codes and actions (T, 7) of one episode, frame t observed before
    action t (the recorded layout). Action samples for t = 0..T-K: frames t-M+1..t (one frame at t = 0,
    fewer than M before t = M-1) -> actions t..t+K-1. World samples for t = 0..T-2: frame t + action t
    -> frame t+1 (the last action's resulting frame is not recorded)."""
    if len(frames) != len(actions):
        raise TokenizationError(f"episode_samples: expected one frame per action (frame t before action t), got "
                                f"{len(frames)} frames and {len(actions)} actions")
    steps = len(actions)
    action_samples = [
        tokens.samples.action_sample(instruction, list(frames[max(0, t - history_frames + 1): t + 1]),
                                     actions[t:t + chunk])
        for t in range(steps - chunk + 1)]
    world_samples = [tokens.samples.world_sample(frames[t], actions[t], frames[t + 1]) for t in range(steps - 1)]
    return action_samples, world_samples
