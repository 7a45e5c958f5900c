"""Training the VQGAN image tokenizer on uint8 frames (the tiny preset trains on the CPU)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from worldvla_dist.metrics.image_quality import mean_psnr
from worldvla_dist.tokenizers.image_tokenizer import ImageTokenizer
from worldvla_dist.tokenizers.vqgan import vqgan_training_loss


def train_vqgan(tokenizer: ImageTokenizer, frames: np.ndarray, steps: int, batch_size: int = 8, lr: float = 1e-3,
                seed: int = 0, on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Adam on random minibatches of (N, H, W, 3) uint8 frames; returns the per-step losses."""
    rng = np.random.default_rng(seed)
    model = tokenizer.vqgan.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.9))
    history = []
    for step in range(steps):
        pixels = tokenizer.to_pixels(frames[rng.integers(0, len(frames), batch_size)])
        losses = vqgan_training_loss(model, pixels)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
        if on_step:
            on_step(step, history[-1])
    model.eval()
    return history


def reconstruction_psnr(tokenizer: ImageTokenizer, frames: np.ndarray, batch_size: int = 16) -> float:
    """Mean PSNR (dB) of encode -> decode over (N, H, W, 3) uint8 frames."""
    decoded = np.concatenate([tokenizer.decode(tokenizer.encode(frames[i:i + batch_size]))
                              for i in range(0, len(frames), batch_size)])
    return mean_psnr(decoded, frames)
