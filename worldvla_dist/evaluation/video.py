"""Episode videos as H.264 mp4 through imageio-ffmpeg's bundled ffmpeg (no system ffmpeg needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import imageio_ffmpeg
import numpy as np


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: int = 20) -> Path:
    """(H, W, 3) uint8 frames -> mp4; written under a temporary name, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.mp4")
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
    writer.close()
    tmp.replace(path)
    return path
