"""Long-horizon imagined rollouts, batched over B rollouts.

The world model conditions on the current image and one action only (N = 1): each frame is a fresh
world prompt built from the previous *imagined* codes, so the context, the KV cache and the time
per frame do not grow with the horizon (tests/worldvla_dist/imagination checks the context length
at every frame; bench/imagine.py times it). Frames stay as VQ codes between steps: the model reads
codes, so decoding to pixels and re-encoding would only add VQGAN error and cost.

- replay: recorded actions drive the world model from a real start frame.
- dream: the policy gives a chunk of K actions from the last M imagined frames, the world model
  plays them one frame per action, then the policy is asked again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from worldvla_dist.decoding.next_frame import generate_next_frames
from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.decoding.sampling import GREEDY, SamplingConfig
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace

OnFrame = Callable[[int], None]  # called with the number of frames imagined so far (the worker touches its queue entry)


@dataclass
class Imagined:
    codes: torch.Tensor  # (B, H, rows, cols) VQ codes of frames 1..H
    actions: np.ndarray  # (B, H, 7) the action that led to each frame (recorded, or the policy's in dream mode)


def _world_step(model: WorldVLA, tokens: TokenSpace, codes: torch.Tensor, actions: np.ndarray,
                sampling: SamplingConfig, generator: torch.Generator | None) -> torch.Tensor:
    prompts = [tokens.samples.world_prompt(c, a) for c, a in zip(codes, actions)]
    return generate_next_frames(model, tokens.layout, prompts, sampling, generator)


def replay_steps(model: WorldVLA, tokens: TokenSpace, start_codes: torch.Tensor, actions: np.ndarray,
                 sampling: SamplingConfig = GREEDY, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """start_codes (B, rows, cols), actions (B, H, 7) -> each imagined frame's codes (B, rows, cols) in
    turn, so that a caller can step several rollouts alternately (bench/imagine.py times horizons so)."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 3 or actions.shape[0] != len(start_codes) or actions.shape[2] != 7:
        raise ValueError(f"replay: expected actions (B={len(start_codes)}, H, 7), got {actions.shape}")
    current = start_codes
    for h in range(actions.shape[1]):
        with torch.no_grad():
            current = _world_step(model, tokens, current, actions[:, h], sampling, generator)
        yield current


def replay(model: WorldVLA, tokens: TokenSpace, start_codes: torch.Tensor, actions: np.ndarray,
           sampling: SamplingConfig = GREEDY, generator: torch.Generator | None = None,
           on_frame: OnFrame | None = None) -> Imagined:
    """start_codes (B, rows, cols), actions (B, H, 7) -> H imagined frames per rollout."""
    frames = []
    for current in replay_steps(model, tokens, start_codes, actions, sampling, generator):
        frames.append(current)
        if on_frame:
            on_frame(len(frames))
    return Imagined(torch.stack(frames, dim=1), np.asarray(actions, dtype=np.float64))


@torch.no_grad()
def dream(model: WorldVLA, tokens: TokenSpace, instructions: Sequence[str], start_codes: torch.Tensor, horizon: int,
          chunk: int, history: int = 2, sampling: SamplingConfig = GREEDY, generator: torch.Generator | None = None,
          on_frame: OnFrame | None = None) -> Imagined:
    """Policy and world model in turn for `horizon` frames from real start frames (B, rows, cols)."""
    if len(instructions) != len(start_codes) or horizon < 1 or chunk < 1:
        raise ValueError(f"dream: {len(instructions)} instructions for {len(start_codes)} start frames, "
                         f"horizon {horizon}, chunk {chunk}")
    # the policy reads the frames of the last `history` steps, as in evaluation (episodes.py)
    seen = [start_codes]
    frames, actions = [], []
    while len(frames) < horizon:
        prompts = [tokens.samples.action_prompt(text, [s[i] for s in seen[-history:]])
                   for i, text in enumerate(instructions)]
        bins = parallel_decode_actions(model, prompts, chunk, sampling, generator).cpu().numpy()
        planned = tokens.actions.decode(bins)  # (B, K, 7)
        current = seen[-1]
        for k in range(min(chunk, horizon - len(frames))):
            current = _world_step(model, tokens, current, planned[:, k], sampling, generator)
            frames.append(current)
            seen = (seen + [current])[-history:]
            actions.append(planned[:, k])
            if on_frame:
                on_frame(len(frames))
    return Imagined(torch.stack(frames, dim=1), np.stack(actions, axis=1))
