"""Rollout metrics: SSIM's known values, the Fréchet distance against the closed form and a direct
scipy computation, and FVD through a TorchScript feature network written in the real format."""

import numpy as np
import pytest
import scipy.linalg
import torch

from worldvla_dist.errors import CheckpointError
from worldvla_dist.metrics.video_quality import I3DFeatures, frechet_distance, fvd, gaussian_of, ssim


def frames(n, seed, size=32):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_ssim_is_one_for_identical_frames_and_drops_with_noise():
    a = frames(3, 0)
    assert np.allclose(ssim(a, a), 1.0)
    noise = np.random.default_rng(1).integers(-1, 2, a.shape)
    levels = [ssim(a, np.clip(a.astype(int) + k * noise, 0, 255).astype(np.uint8)) for k in (10, 40, 120)]
    assert all(s.shape == (3,) for s in levels)
    assert (levels[0] < 0.999).all() and (levels[0] > levels[1]).all() and (levels[1] > levels[2]).all()
    assert ssim(a[None].repeat(2, 0), a[None].repeat(2, 0)).shape == (2, 3)  # any leading shape
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(a, a[:2])


def test_ssim_matches_scikit_image():
    """Our separable-window SSIM against scikit-image's (Wang et al.'s settings), on related frames."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    target = frames(4, 3, size=48)
    smooth = (target.astype(float) + np.roll(target, 1, axis=1) + np.roll(target, 1, axis=2)) / 3
    predicted = np.clip(smooth + rng.normal(0, 20, target.shape), 0, 255).astype(np.uint8)
    ours = ssim(predicted, target)
    skimage_values = [structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=255, channel_axis=-1) for p, t in zip(predicted, target)]
    assert 0.05 < ours.min() and ours.max() < 0.9  # a range where a wrong constant or window would show
    np.testing.assert_allclose(ours, skimage_values, atol=2e-5)
    with pytest.raises(ValueError, match="at least 11 px"):
        ssim(target[:, :8, :8], target[:, :8, :8])


def test_frechet_distance_matches_the_closed_form_and_scipy():
    rng = np.random.default_rng(0)
    # diagonal covariances: the distance is |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    s1, s2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed, rel=1e-9)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    c1, c2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    direct = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(direct, rel=1e-9)
    assert frechet_distance(m1, c1, m1, c1) == pytest.approx(0.0, abs=1e-6)


class TinyVideoNet(torch.nn.Module):
    """Stands in for I3D's weights, not its format: a TorchScript module (N, 3, T, H, W) -> (N, 8)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))


def test_fvd_from_a_torchscript_feature_network(tmp_path):
    torch.manual_seed(0)
    torch.jit.script(TinyVideoNet()).save(str(tmp_path / "i3d.pt"))
    extractor = I3DFeatures(tmp_path / "i3d.pt", size=16)
    real = np.stack([frames(4, s) for s in range(6)])
    assert extractor(real).shape == (6, 8)
    same = fvd(extractor, real, real)
    dark = fvd(extractor, real, (real // 4).astype(np.uint8))
    assert same == pytest.approx(0.0, abs=1e-6) and dark > 1e-3
    with pytest.raises(CheckpointError, match="does not exist"):
        I3DFeatures(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_of(np.zeros((1, 8)))
