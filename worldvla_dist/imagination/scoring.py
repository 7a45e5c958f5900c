"""Per-rollout scores, computed by the worker that made the frames (so the driver never decodes a
frame): PSNR and SSIM per frame, LPIPS per frame when its weights are given, and I3D features of
the real, imagined and copied clips for FVD when the I3D file is given. The baseline copies the
last real frame (the start frame) for the whole horizon."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldvla_dist.metrics.image_quality import PSNR_CAP_DB, psnr
from worldvla_dist.metrics.lpips import LPIPS
from worldvla_dist.metrics.video_quality import I3DFeatures, ssim

CLIP_LENGTHS = (10, 50)  # the paper's table: 10-frame and 50-frame rollouts


@dataclass(frozen=True)
class ScoringConfig:
    lpips_backbone: str | None = None  # torchvision AlexNet state dict (alexnet-owt-7be5be79.pth)
    lpips_linear: str | None = None  # the lpips package's weights/v0.1/alex.pth
    i3d: str | None = None  # I3D TorchScript file for FVD
    i3d_size: int = 224
    clip_lengths: tuple[int, ...] = CLIP_LENGTHS


class RolloutScorer:
    def __init__(self, config: ScoringConfig = ScoringConfig()):
        self.config = config
        self.lpips = None
        if config.lpips_backbone or config.lpips_linear:
            self.lpips = LPIPS(Path(config.lpips_backbone or ""), Path(config.lpips_linear or ""))
        self.i3d = I3DFeatures(config.i3d, size=config.i3d_size) if config.i3d else None

    def score(self, real: np.ndarray, imagined: np.ndarray) -> tuple[list[dict], list[dict]]:
        """real (B, H + 1, h, w, 3) with the start frame first, imagined (B, H, h, w, 3), uint8 ->
        per rollout: ({"model/psnr": (H,), ...}, {"real/10": (D,), ...})."""
        target = real[:, 1:]
        copied = np.broadcast_to(real[:, :1], target.shape)
        scores: dict[str, np.ndarray] = {}
        for name, predicted in (("model", imagined), ("copy", copied)):
            scores[f"{name}/psnr"] = np.minimum(psnr(predicted, target), PSNR_CAP_DB)
            scores[f"{name}/ssim"] = ssim(predicted, target)
            if self.lpips is not None:
                scores[f"{name}/lpips"] = self.lpips(predicted, target)
        features: dict[str, np.ndarray] = {}
        if self.i3d is not None:
            for length in self.config.clip_lengths:
                if length <= target.shape[1]:
                    for name, clips in (("real", target), ("model", imagined), ("copy", copied)):
                        features[f"{name}/{length}"] = self.i3d(np.ascontiguousarray(clips[:, :length]))
        b = len(real)
        per_scores = [{k: v[i].astype(np.float32) for k, v in scores.items()} for i in range(b)]
        per_features = [{k: v[i].astype(np.float32) for k, v in features.items()} for i in range(b)]
        return per_scores, per_features
