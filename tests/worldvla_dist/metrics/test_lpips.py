"""LPIPS: weight files written in the real key layouts (torchvision AlexNet state dict, lpips
`v0.1/alex.pth`) with seeded random weights; distance properties, a first-layer value computed by
hand with torch.nn.functional, leading dims, and errors for missing files and keys."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from worldvla_dist.errors import CheckpointError
from worldvla_dist.metrics.lpips import LPIPS

ALEX_CONVS = {"features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5), "features.6": (384, 192, 3, 3),
              "features.8": (256, 384, 3, 3), "features.10": (256, 256, 3, 3)}
WIDTHS = (64, 192, 384, 256, 256)


def backbone_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for prefix, shape in ALEX_CONVS.items():
        fan_in = shape[1] * shape[2] * shape[3]
        state[f"{prefix}.weight"] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        state[f"{prefix}.bias"] = torch.randn(shape[0], generator=g) * 0.1
    # the classifier is in torchvision's file but LPIPS ignores it (small here, 4096 x 9216 there)
    state["classifier.1.weight"] = torch.randn(8, 4, generator=g)
    state["classifier.1.bias"] = torch.randn(8, generator=g)
    return state


def linear_state(seed=1):
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) / c for i, c in enumerate(WIDTHS)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lpips")
    torch.save(backbone_state(), root / "alexnet-owt-7be5be79.pth")
    torch.save(linear_state(), root / "alex.pth")
    return root / "alexnet-owt-7be5be79.pth", root / "alex.pth"


def frames(n, seed, size=64):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_zero_for_identical_frames_symmetric_and_growing_with_noise(files):
    metric = LPIPS(*files)
    a = frames(4, 0)
    assert np.abs(metric(a, a)).max() < 1e-6
    noise = np.random.default_rng(1).integers(-1, 2, a.shape)
    noisy = [np.clip(a.astype(int) + k * noise, 0, 255).astype(np.uint8) for k in (5, 30, 120)]
    d = [metric(a, b) for b in noisy]
    assert all(v.shape == (4,) for v in d)
    np.testing.assert_allclose(metric(noisy[1], a), d[1], rtol=1e-6)
    means = [v.mean() for v in d]
    assert 0 < means[0] < means[1] < means[2]


def test_first_layer_value_matches_a_hand_computation(tmp_path):
    backbone = backbone_state()
    torch.save(backbone, tmp_path / "alexnet.pth")
    lin = {f"lin{i}.model.1.weight": torch.zeros(1, c, 1, 1) for i, c in enumerate(WIDTHS)}
    lin["lin0.model.1.weight"] = torch.ones(1, 64, 1, 1) / 64
    torch.save(lin, tmp_path / "alex.pth")
    a, b = frames(2, 3), frames(2, 4)

    def relu1(x):
        x = torch.as_tensor(x).double().permute(0, 3, 1, 2) / 127.5 - 1.0
        shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
        x = (x - shift) / scale
        w, bias = backbone["features.0.weight"].double(), backbone["features.0.bias"].double()
        f = F.relu(F.conv2d(x, w, bias, stride=4, padding=2))
        return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)

    expected = ((relu1(a) - relu1(b)) ** 2).sum(dim=1).div(64).mean(dim=(1, 2)).numpy()
    got = LPIPS(tmp_path / "alexnet.pth", tmp_path / "alex.pth")(a, b)
    assert expected.min() > 1e-3  # the comparison is not between two near-zero numbers
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_any_leading_shape_matches_the_flat_computation(files):
    metric = LPIPS(*files)
    a = frames(6, 5).reshape(2, 3, 64, 64, 3)
    b = frames(6, 6).reshape(2, 3, 64, 64, 3)
    flat = metric(a.reshape(6, 64, 64, 3), b.reshape(6, 64, 64, 3))
    nested = metric(a, b, batch_size=4)  # batches of 4 and 2: crosses the leading dims
    assert nested.shape == (2, 3)
    np.testing.assert_allclose(nested.reshape(6), flat, rtol=1e-5)
    assert metric(a[0, 0], b[0, 0]).shape == ()
    with pytest.raises(ValueError, match="shapes differ"):
        metric(a, b[:1])


def test_missing_file_key_or_wrong_shape_is_a_checkpoint_error(files, tmp_path):
    backbone, linear = files
    with pytest.raises(CheckpointError, match="nowhere.pth"):
        LPIPS(tmp_path / "nowhere.pth", linear)
    lin = linear_state()
    del lin["lin3.model.1.weight"]
    torch.save(lin, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="lin3.model.1.weight"):
        LPIPS(backbone, tmp_path / "partial.pth")
    state = backbone_state()
    state["features.6.weight"] = torch.zeros(384, 192, 5, 5)
    torch.save(state, tmp_path / "reshaped.pth")
    with pytest.raises(CheckpointError, match="features.6.weight"):
        LPIPS(tmp_path / "reshaped.pth", linear)
