"""Training the VQGAN image tokenizer on uint8 frames (the tiny preset trains on the CPU)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from worldvla_dist.metrics.image_quality import mean_psnr
from worldvla_dist.tokenizers.image_tokenizer import ImageTokenizer
from worldvla_dist.tokenizers.vqgan import vqgan_training_loss


@torch.no_grad()
def _encoder_vectors(model, pixels: torch.Tensor) -> torch.Tensor:
    """(N, D) pre-quantisation latents of a batch."""
    z = model.quant_conv(model.encoder(pixels))
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


@torch.no_grad()
def _restart_codes(model, codes: torch.Tensor, vectors: torch.Tensor, generator: torch.Generator) -> int:
    """Moves every code in `codes` onto a random current encoder latent; returns how many moved."""
    if len(codes):
        picks = torch.randint(0, len(vectors), (len(codes),), generator=generator)
        model.quantize.embedding.weight[codes] = vectors[picks]
    return len(codes)


def train_vqgan(tokenizer: ImageTokenizer, frames: np.ndarray, steps: int, batch_size: int = 8, lr: float = 1e-3,
                seed: int = 0, restart_every: int = 10,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Adam on random minibatches of (N, H, W, 3) uint8 frames; returns the per-step losses.

    A freshly initialised codebook collapses (a few codes win every latent and the decoder learns
    one blurry mean image), so the codebook starts on encoder latents and, every `restart_every`
    steps, codes unused since the last check are moved onto current latents."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    model = tokenizer.vqgan.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.9))
    batch = lambda: tokenizer.to_pixels(frames[rng.integers(0, len(frames), batch_size)])  # noqa: E731
    num_codes = model.quantize.embedding.num_embeddings
    _restart_codes(model, torch.arange(num_codes), _encoder_vectors(model, batch()), generator)
    used = torch.zeros(num_codes, dtype=torch.bool)
    history = []
    for step in range(steps):
        pixels = batch()
        losses = vqgan_training_loss(model, pixels)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        used[losses.pop("codes").flatten().cpu()] = True
        logs = {k: v.item() for k, v in losses.items()}
        if restart_every and (step + 1) % restart_every == 0 and step + 1 < steps:
            logs["codes_used"] = int(used.sum())
            _restart_codes(model, torch.nonzero(~used).flatten(), _encoder_vectors(model, pixels), generator)
            used.zero_()
        history.append(logs)
        if on_step:
            on_step(step, history[-1])
    model.eval()
    return history


def reconstruction_psnr(tokenizer: ImageTokenizer, frames: np.ndarray, batch_size: int = 16) -> float:
    """Mean PSNR (dB) of encode -> decode over (N, H, W, 3) uint8 frames."""
    decoded = np.concatenate([tokenizer.decode(tokenizer.encode(frames[i:i + batch_size]))
                              for i in range(0, len(frames), batch_size)])
    return mean_psnr(decoded, frames)
