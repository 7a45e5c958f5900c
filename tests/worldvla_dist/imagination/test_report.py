"""The paper-layout table from per-rollout scores: averages over the first L frames of rollouts at
least L long, errors left out, FVD from the stored features, SSIM / LPIPS x100."""

import numpy as np
import pytest
from PIL import Image

from worldvla_dist.imagination import report
from worldvla_dist.imagination.specs import InvalidRollout, RolloutResult, RolloutSpec
from worldvla_dist.metrics.video_quality import frechet_distance, gaussian_of


def result(i, horizon, rng, features=True):
    scores = {f"{m}/{k}": rng.uniform(0, 1, horizon).astype(np.float32) for m in ("model", "copy")
              for k in ("psnr", "ssim", "lpips")}
    feats = {f"{m}/10": rng.normal(size=4).astype(np.float32) for m in ("real", "model", "copy")} if features else {}
    return RolloutResult(f"replay/s/t/demo_{i}/0/{horizon}", "replay", horizon, 0, None, scores, feats)


def test_rows_average_the_first_frames_and_compute_fvd_from_features():
    rng = np.random.default_rng(0)
    long = [result(i, 50, rng) for i in range(6)]
    short = [result(10 + i, 20, rng) for i in range(3)]
    failed = RolloutResult("replay/s/t/demo_99/0/50", "replay", 50, -1, error="dead-lettered: boom")
    rows = {(r.method, r.length): r for r in report.table_rows(long + short + [failed], (10, 50))}
    model10, copy50 = rows[(report.METHODS["model"], 10)], rows[(report.METHODS["copy"], 50)]
    assert model10.rollouts == 9 and copy50.rollouts == 6
    assert model10.psnr == pytest.approx(np.mean([r.scores["model/psnr"][:10] for r in long + short]), rel=1e-6)
    assert copy50.ssim == pytest.approx(100 * np.mean([r.scores["copy/ssim"] for r in long]), rel=1e-6)
    real = np.stack([r.features["real/10"] for r in long + short])
    fake = np.stack([r.features["model/10"] for r in long + short])
    assert model10.fvd == pytest.approx(frechet_distance(*gaussian_of(real), *gaussian_of(fake)))
    assert copy50.fvd is None  # no 50-frame features were stored
    table = report.markdown(list(rows.values()))
    assert table.startswith("| method | FVD ↓ @10 | PSNR ↑ @10") and "n/a" in table


def test_contact_sheet_has_a_real_and_an_imagined_row_per_kept_rollout(tmp_path):
    rng = np.random.default_rng(1)
    kept = result(0, 5, rng)
    kept.sheet = {"steps": np.array([1, 3, 5]), "real": rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8),
                  "model": rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)}
    path = report.contact_sheet([kept, result(1, 5, rng)], tmp_path / "sheet.png", cell_px=32)
    assert Image.open(path).size == (3 * 32, 2 * 32 + 14)
    assert report.contact_sheet([result(2, 5, rng)], tmp_path / "none.png") is None


def test_spec_payloads_round_trip_and_bad_ones_say_why():
    spec = RolloutSpec("/d/libero_object/x_demo.hdf5", "demo_1", 4, 10, "dream", video=True)
    assert RolloutSpec.from_payload(spec.to_payload()) == spec and spec.key == "dream/libero_object/x/demo_1/4/10"
    for bad, why in (({"mode": "nightmare"}, "mode"), ({"horizon": 0}, "horizon"), ({"start": "3"}, "start")):
        with pytest.raises(InvalidRollout, match=why):
            RolloutSpec.from_payload({**spec.to_payload(), **bad})
