"""The world-model table in the paper's layout (FVD / PSNR / SSIM / LPIPS at 10 and 50 frames, SSIM
and LPIPS x100 as the paper prints them), the model next to copying the last real frame, and a
PNG contact sheet of real | imagined frames."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from worldvla_dist.imagination.specs import RolloutResult
from worldvla_dist.metrics.video_quality import frechet_distance, gaussian_of

METRICS = ("fvd", "psnr", "ssim", "lpips")
METHODS = {"model": "WorldVLA (this checkpoint)", "copy": "copy last frame"}


@dataclass
class TableRow:
    method: str
    length: int  # frames into the rollout the scores average over
    rollouts: int
    fvd: float | None
    psnr: float | None
    ssim: float | None  # x100
    lpips: float | None  # x100


def table_rows(results: list[RolloutResult], lengths: tuple[int, ...]) -> list[TableRow]:
    """Per (method, length): per-frame scores averaged over the first `length` frames of every rollout
    at least that long; FVD between real and method clips of that length (when features exist and
    there are at least two rollouts)."""
    ok = [r for r in results if not r.error]
    rows = []
    for length in lengths:
        long_enough = [r for r in ok if r.horizon >= length]
        for method, label in METHODS.items():
            values: dict[str, float | None] = {}
            for metric, scale in (("psnr", 1.0), ("ssim", 100.0), ("lpips", 100.0)):
                key = f"{method}/{metric}"
                per_frame = [r.scores[key][:length] for r in long_enough if key in r.scores]
                values[metric] = float(np.mean(np.concatenate(per_frame))) * scale if per_frame else None
            values["fvd"] = _fvd(long_enough, method, length)
            rows.append(TableRow(label, length, len(long_enough), **values))
    return rows


def _fvd(results: list[RolloutResult], method: str, length: int) -> float | None:
    real = [r.features[f"real/{length}"] for r in results if f"real/{length}" in r.features]
    fake = [r.features[f"{method}/{length}"] for r in results if f"{method}/{length}" in r.features]
    if len(real) < 2 or len(fake) != len(real):
        return None
    return frechet_distance(*gaussian_of(np.stack(real)), *gaussian_of(np.stack(fake)))


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def markdown(rows: list[TableRow]) -> str:
    lengths = sorted({r.length for r in rows})
    head = "| method | " + " | ".join(f"{m.upper()} {'↓' if m in ('fvd', 'lpips') else '↑'} @{n}"
                                       for n in lengths for m in METRICS) + " |"
    lines = [head, "|" + "---|" * (1 + len(lengths) * len(METRICS))]
    for label in METHODS.values():
        by_length = {r.length: r for r in rows if r.method == label}
        cells = [_fmt(getattr(by_length[n], m), 1 if m == "fvd" else 2) for n in lengths for m in METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{n} frames: {next(r.rollouts for r in rows if r.length == n)} rollouts" for n in lengths)
    return "\n".join(lines) + f"\n\n({counts}; SSIM and LPIPS x100 as in the paper; n/a: no weights given or too few rollouts)"


def to_csv(rows: list[TableRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(TableRow.__dataclass_fields__))
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    return out.getvalue()


def to_json(rows: list[TableRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1)


def contact_sheet(results: list[RolloutResult], path: str | Path, cell_px: int = 96) -> Path | None:
    """One row pair per rollout with kept frames: real frames on top, imagined below, step numbers."""
    kept = [r for r in results if r.sheet]
    if not kept:
        return None
    columns = max(len(r.sheet["steps"]) for r in kept)
    label_px = 14
    sheet = Image.new("RGB", (columns * cell_px, len(kept) * (2 * cell_px + label_px)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, r in enumerate(kept):
        top = row * (2 * cell_px + label_px)
        draw.text((2, top), f"{r.key}  (top: real, bottom: imagined)", fill="black")
        for col, step in enumerate(r.sheet["steps"]):
            for k, name in enumerate(("real", "model")):
                cell = Image.fromarray(np.asarray(r.sheet[name][col], dtype=np.uint8)).resize((cell_px, cell_px))
                sheet.paste(cell, (col * cell_px, top + label_px + k * cell_px))
            draw.text((col * cell_px + 2, top + label_px + 2), f"t+{int(step)}", fill="yellow")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
