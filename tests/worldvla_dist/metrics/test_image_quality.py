import numpy as np
import pytest

from worldvla_dist.metrics.image_quality import PSNR_CAP_DB, mean_psnr, psnr


def test_psnr_matches_the_definition():
    a = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[0] = 10  # mse 100 -> 10 log10(255^2 / 100)
    values = psnr(b, a)
    assert values.shape == (2,)
    assert values[0] == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert np.isinf(values[1])
    assert mean_psnr(b, a) == pytest.approx((values[0] + PSNR_CAP_DB) / 2)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, a[:1])
