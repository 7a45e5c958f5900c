"""Held-out figures for a trained model: action-token accuracy against a majority-bin baseline, and
next-frame PSNR against copying the last frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from worldvla_dist.decoding.next_frame import generate_next_frames
from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.metrics.image_quality import mean_psnr
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace


@dataclass
class ActionAccuracy:
    model: float  # fraction of action-bin tokens decoded exactly (greedy, parallel decoder)
    majority: float  # the same for always predicting each dimension's most frequent training bin
    num_tokens: int


@dataclass
class NextFrameQuality:
    model_psnr: float  # dB (frames capped at PSNR_CAP_DB), decoded prediction vs the real next frame
    copy_last_psnr: float  # dB, the current frame as the prediction
    tokenizer_ceiling_psnr: float  # dB, the real next frame through encode -> decode
    model_code_accuracy: float  # fraction of predicted VQ codes equal to the real next frame's codes
    copy_last_code_accuracy: float  # the same for the current frame's codes
    num_frames: int


def action_token_accuracy(model: WorldVLA, prompts: Sequence[list[int]], targets: np.ndarray,
                          train_targets: np.ndarray, batch_size: int = 8) -> ActionAccuracy:
    """prompts: action prompts; targets (N, K, 7) and train_targets (M, K, 7) action-bin token ids."""
    predicted = np.concatenate([
        parallel_decode_actions(model, prompts[i:i + batch_size], targets.shape[1]).cpu().numpy()
        for i in range(0, len(prompts), batch_size)])
    majority = np.array([np.bincount(train_targets[..., d].ravel()).argmax() for d in range(targets.shape[-1])])
    return ActionAccuracy(model=float((predicted == targets).mean()), majority=float((majority == targets).mean()),
                          num_tokens=int(targets.size))


def next_frame_quality(model: WorldVLA, tokens: TokenSpace, frames: np.ndarray, actions: np.ndarray,
                       next_frames: np.ndarray, batch_size: int = 8) -> NextFrameQuality:
    """frames / next_frames (N, H, W, 3) uint8 and actions (N, 7): greedy next-frame prediction."""
    encode = lambda x: torch.cat([tokens.images.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])  # noqa: E731
    codes, next_codes = encode(frames), encode(next_frames)
    predicted = torch.cat([
        generate_next_frames(model, tokens.layout, [tokens.samples.world_prompt(c, a) for c, a in
                                                    zip(codes[i:i + batch_size], actions[i:i + batch_size])])
        for i in range(0, len(frames), batch_size)])
    return NextFrameQuality(
        model_psnr=mean_psnr(tokens.images.decode(predicted), next_frames),
        copy_last_psnr=mean_psnr(frames, next_frames),
        tokenizer_ceiling_psnr=mean_psnr(tokens.images.decode(next_codes), next_frames),
        model_code_accuracy=float((predicted == next_codes).float().mean()),
        copy_last_code_accuracy=float((codes == next_codes).float().mean()), num_frames=len(frames))
