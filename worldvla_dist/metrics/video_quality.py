"""World-model rollout metrics: SSIM per frame, and FVD: the Fréchet distance between
Gaussians fitted to I3D features of real and generated clips, the I3D network loaded from a local
TorchScript file (no download here). PSNR lives in image_quality.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from worldvla_dist.errors import CheckpointError


SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al.'s Gaussian window
SSIM_C1, SSIM_C2 = 0.01 ** 2, 0.03 ** 2  # (K * data range)^2, data range 1


def _to_float(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1] (float64 makes the Gaussian windows ~20x
    slower on the CPU for differences in the 6th decimal)."""
    return torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def _gaussian_blur_valid(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H - 10, W - 10): the 11-tap Gaussian as two 1-D passes, no padding."""
    x = torch.arange(SSIM_WINDOW, dtype=maps.dtype) - (SSIM_WINDOW - 1) / 2
    taps = torch.exp(-(x ** 2) / (2 * SSIM_SIGMA ** 2))
    taps = taps / taps.sum()
    c = maps.shape[1]
    rows = F.conv2d(maps, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(rows, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 pairs -> (...) SSIM per frame: Gaussian window 11, sigma 1.5, population
    statistics, the mean over channels and over the pixels the window fits in: scikit-image's
    `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`. Written
    out with a separable window, vectorised over frames: torchmetrics' 2-D window (which also reads
    up to ~0.005 off scikit-image) cost the imagination worker a third of its time outside the model."""
    if predicted.shape != target.shape:
        raise ValueError(f"ssim: shapes differ, {predicted.shape} vs {target.shape}")
    if min(predicted.shape[-3:-1]) < SSIM_WINDOW:
        raise ValueError(f"ssim: frames must be at least {SSIM_WINDOW} px on a side, got {predicted.shape[-3:-1]}")
    lead = predicted.shape[:-3]
    p = _to_float(predicted.reshape(-1, *predicted.shape[-3:]))
    t = _to_float(target.reshape(-1, *target.shape[-3:]))
    mu_p, mu_t, pp, tt, pt = _gaussian_blur_valid(torch.cat([p, t, p * p, t * t, p * t], dim=1)).chunk(5, dim=1)
    var_p, var_t, cov = pp - mu_p ** 2, tt - mu_t ** 2, pt - mu_p * mu_t
    index = ((2 * mu_p * mu_t + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_p ** 2 + mu_t ** 2 + SSIM_C1) * (var_p + var_t + SSIM_C2))
    return index.mean(dim=(1, 2, 3)).numpy().reshape(lead)


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
