"""LPIPS v0.1 with the AlexNet backbone (Zhang et al. 2018), the perceptual distance between rollout
frames and ground truth. Written in plain torch because neither torchvision nor the `lpips` package
imports here; the weights come from local files in their real formats (torchvision's AlexNet state
dict, the lpips package's `weights/v0.1/alex.pth`), so the published weights drop in unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from worldvla_dist.errors import CheckpointError

# torchvision AlexNet's `features` convs that LPIPS taps (relu1..relu5): key prefix, weight shape,
# stride, padding, and whether a MaxPool2d(3, 2) precedes it (the lpips package's slices 1..5).
_CONVS = (
    ("features.0", (64, 3, 11, 11), 4, 2, False),
    ("features.3", (192, 64, 5, 5), 1, 2, True),
    ("features.6", (384, 192, 3, 3), 1, 1, True),
    ("features.8", (256, 384, 3, 3), 1, 1, False),
    ("features.10", (256, 256, 3, 3), 1, 1, False),
)
_SHIFT = (-0.030, -0.088, -0.188)  # lpips ScalingLayer, for inputs in [-1, 1]
_SCALE = (0.458, 0.448, 0.450)


def _load(path: Path, what: str, expected: dict[str, tuple[int, ...]], device: str) -> dict[str, torch.Tensor]:
    """The tensors named in `expected` from the state dict at `path`, checked for presence and shape."""
    if not path.is_file():
        raise CheckpointError(f"LPIPS {what} file {path} does not exist (nothing is downloaded)")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"LPIPS {what} file {path} holds a {type(state).__name__}, not a state dict")
    missing = [key for key in expected if key not in state]
    if missing:
        raise CheckpointError(f"LPIPS {what} file {path} lacks keys {missing}")
    wrong = [key for key, shape in expected.items() if tuple(state[key].shape) != shape]
    if wrong:
        found = {key: tuple(state[key].shape) for key in wrong}
        raise CheckpointError(
            f"LPIPS {what} file {path} has wrong shapes {found}, expected {({key: expected[key] for key in wrong})}"
        )
    return {key: state[key].float() for key in expected}


class LPIPS:
    """lpips.LPIPS(net='alex', version='0.1') on (..., H, W, 3) uint8 frames, in eval mode (the
    linear layers' dropout is then the identity, so only their 1x1 conv weights matter)."""

    def __init__(self, backbone_path: str | Path, linear_path: str | Path, device: str = "cpu"):
        backbone_shapes: dict[str, tuple[int, ...]] = {}
        for prefix, shape, *_ in _CONVS:
            backbone_shapes[f"{prefix}.weight"] = shape
            backbone_shapes[f"{prefix}.bias"] = shape[:1]
        linear_shapes = {f"lin{i}.model.1.weight": (1, shape[0], 1, 1) for i, (_, shape, *_) in enumerate(_CONVS)}
        self.backbone = _load(Path(backbone_path), "AlexNet backbone", backbone_shapes, device)
        self.linear = _load(Path(linear_path), "linear-layer", linear_shapes, device)
        self.shift = torch.tensor(_SHIFT, device=device).view(1, 3, 1, 1)
        self.scale = torch.tensor(_SCALE, device=device).view(1, 3, 1, 1)
        self.device = device

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) scaled input -> relu1..relu5, each normalised to unit length over channels."""
        features = []
        for prefix, _, stride, padding, pool in _CONVS:
            if pool:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(F.conv2d(x, self.backbone[f"{prefix}.weight"], self.backbone[f"{prefix}.bias"], stride, padding))
            features.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return features

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1], through the ScalingLayer."""
        x = torch.as_tensor(np.ascontiguousarray(frames), device=self.device).permute(0, 3, 1, 2).float()
        return (x / 127.5 - 1.0 - self.shift) / self.scale

    @torch.no_grad()
    def __call__(self, predicted: np.ndarray, target: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(..., H, W, 3) uint8 pairs -> (...) LPIPS per frame (lower is closer)."""
        if predicted.shape != target.shape:
            raise ValueError(f"lpips: shapes differ, {predicted.shape} vs {target.shape}")
        if predicted.ndim < 3 or predicted.shape[-1] != 3:
            raise ValueError(f"lpips: need (..., H, W, 3) frames, got {predicted.shape}")
        lead = predicted.shape[:-3]
        p = predicted.reshape(-1, *predicted.shape[-3:])
        t = target.reshape(-1, *target.shape[-3:])
        out = np.empty(len(p), dtype=np.float64)
        for start in range(0, len(p), batch_size):
            fp = self._features(self._prepare(p[start : start + batch_size]))
            ft = self._features(self._prepare(t[start : start + batch_size]))
            dist = sum(
                F.conv2d((a - b) ** 2, self.linear[f"lin{i}.model.1.weight"]).mean(dim=(1, 2, 3))
                for i, (a, b) in enumerate(zip(fp, ft))
            )
            out[start : start + batch_size] = dist.double().cpu().numpy()
        return out.reshape(lead)
