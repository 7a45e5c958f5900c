"""World-model rollout metrics: SSIM per frame (torchmetrics), and FVD: the Fréchet distance between
Gaussians fitted to I3D features of real and generated clips, the I3D network loaded from a local
TorchScript file (no download here). PSNR lives in image_quality.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from worldvla_dist.errors import CheckpointError


def _to_float(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1] (float64 makes the Gaussian windows ~20x
    slower on the CPU for differences in the 6th decimal)."""
    return torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def ssim(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 pairs -> (...) SSIM per frame (Gaussian window 11, sigma 1.5, as Wang et al.)."""
    if predicted.shape != target.shape:
        raise ValueError(f"ssim: shapes differ, {predicted.shape} vs {target.shape}")
    lead = predicted.shape[:-3]
    p = _to_float(predicted.reshape(-1, *predicted.shape[-3:]))
    t = _to_float(target.reshape(-1, *target.shape[-3:]))
    values = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none")
    return values.numpy().reshape(lead)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the FID/FVD references do
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def gaussian_of(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"gaussian_of: need (N >= 2, D) features, got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


class I3DFeatures:
    """An I3D feature extractor saved as TorchScript (the one the FVD reference uses, exported to a
    local file): (N, T, H, W, 3) uint8 clips -> (N, D) features. Clips are resized to `size` and
    scaled to [-1, 1], the network's input convention, laid out (N, 3, T, H, W)."""

    def __init__(self, path: str | Path, size: int = 224, device: str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"I3D TorchScript file {path} does not exist (FVD needs it; nothing is downloaded)")
        self.net = torch.jit.load(str(path), map_location=device).eval()
        self.size, self.device = size, device

    @torch.no_grad()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(clips), device=self.device).float()  # (N, T, H, W, 3)
        n, t = x.shape[:2]
        x = x.reshape(n * t, *x.shape[2:]).permute(0, 3, 1, 2)
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x / 127.5 - 1.0).reshape(n, t, 3, self.size, self.size).permute(0, 2, 1, 3, 4)
        return self.net(x).reshape(n, -1).double().cpu().numpy()


def fvd(extractor: I3DFeatures, real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet video distance between two sets of (N, T, H, W, 3) uint8 clips."""
    return frechet_distance(*gaussian_of(extractor(real)), *gaussian_of(extractor(generated)))
