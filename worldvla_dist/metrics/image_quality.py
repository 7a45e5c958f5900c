"""Per-image PSNR over uint8 frames, vectorised over any leading shape."""

from __future__ import annotations

import numpy as np


def psnr(predicted: np.ndarray, target: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """(..., H, W, C) uint8 pairs -> (...) PSNR in dB (inf where identical)."""
    if predicted.shape != target.shape:
        raise ValueError(f"psnr: shapes differ, {predicted.shape} vs {target.shape}")
    err = (predicted.astype(np.float64) - target.astype(np.float64)) ** 2
    mse = err.reshape(*err.shape[:-3], -1).mean(axis=-1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value ** 2 / mse)


PSNR_CAP_DB = 100.0  # identical frames score this instead of inf, so a mean stays finite


def mean_psnr(predicted: np.ndarray, target: np.ndarray, cap_db: float = PSNR_CAP_DB) -> float:
    """Mean over frames of per-frame PSNR, each capped at `cap_db`."""
    return float(np.minimum(psnr(predicted, target), cap_db).mean())
