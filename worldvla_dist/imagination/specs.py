"""What one imagined rollout is (a spec on the queue) and what comes back (a result, written once).

A spec names a recorded trajectory (demo file + demo), the real start frame and the horizon; the
worker reads the recorded frames and actions itself, so a message stays a few hundred bytes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from worldvla_dist.data.libero_hdf5 import DemoFile, LiberoDataError
from worldvla_dist.data.split import TRAIN, assign_splits, trajectory_key
from worldvla_dist.errors import WorldVLAError

MODES = ("replay", "dream")
SPEC_FIELDS = ("source", "demo", "start", "horizon", "mode")


class InvalidRollout(WorldVLAError, ValueError):
    """A rollout spec that names no usable trajectory window."""


@dataclass(frozen=True)
class RolloutSpec:
    source: str  # a LIBERO *_demo.hdf5 file, visible to every worker (shared or copied folder)
    demo: str  # "demo_3"
    start: int  # index of the real start frame
    horizon: int  # frames to imagine
    mode: str = "replay"
    video: bool = False  # write a real | imagined strip and keep contact-sheet frames

    @property
    def key(self) -> str:
        return f"{self.mode}/{trajectory_key(self.source, self.demo)}/{self.start}/{self.horizon}"

    def to_payload(self) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, p: dict) -> "RolloutSpec":
        try:
            spec = cls(**{k: p[k] for k in (*SPEC_FIELDS, "video") if k in p})
        except TypeError as e:
            raise InvalidRollout(f"rollout spec {p}: {e}") from e
        if spec.mode not in MODES:
            raise InvalidRollout(f"rollout spec: mode {spec.mode!r}, expected one of {MODES}")
        if not (isinstance(spec.start, int) and isinstance(spec.horizon, int)) or spec.start < 0 or spec.horizon < 1:
            raise InvalidRollout(f"rollout spec: start >= 0 and horizon >= 1 (ints), got {spec.start}, {spec.horizon}")
        if not isinstance(spec.source, str) or not isinstance(spec.demo, str):
            raise InvalidRollout(f"rollout spec: source and demo must be strings, got {spec.source!r}, {spec.demo!r}")
        return spec


@dataclass
class Window:
    """The recorded part of a trajectory one rollout is measured against."""

    instruction: str
    frames: np.ndarray  # (H + 1, h, w, 3) uint8 model-oriented: the start frame, then the H real next frames
    actions: np.ndarray  # (H, 7) recorded actions


def read_window(spec: RolloutSpec) -> Window:
    path = Path(spec.source)
    if not path.is_file():
        raise InvalidRollout(f"rollout {spec.key}: demo file {path} does not exist on this worker")
    try:
        with DemoFile(path) as f:
            if spec.demo not in f.names:
                raise InvalidRollout(f"rollout {spec.key}: {path} has no {spec.demo!r}")
            end, length = spec.start + spec.horizon, f.length(spec.demo)
            if end >= length:
                raise InvalidRollout(f"rollout {spec.key}: {spec.demo} has {length} frames, the window needs {end + 1}")
            frames, actions = f.window(spec.demo, spec.start, end + 1)
            return Window(f.info.language_instruction, frames, np.asarray(actions[:-1], np.float64))
    except LiberoDataError as e:  # unreadable or corrupted file: this spec's fault, not the worker's
        raise InvalidRollout(f"rollout {spec.key}: {e}") from e


def plan_rollouts(demos: str | Path, count: int, horizon: int, mode: str = "replay", videos: int = 0,
                  split: str = "validation") -> tuple[list[RolloutSpec], str]:
    """Up to `count` windows of `horizon` frames from the demo files under `demos`, spread round-robin over
    the held-out trajectories of our stable split (data/split.py, `split="validation"`), each
    trajectory's starts spaced along it. Falls back to every trajectory when no validation trajectory
    is long enough, and says so in the second value ("validation" or "all")."""
    if mode not in MODES or split not in ("validation", "all"):
        raise InvalidRollout(f"plan_rollouts: mode {mode!r} (one of {MODES}), split {split!r} (validation / all)")
    files = sorted(Path(demos).rglob("*_demo.hdf5"))
    if not files:
        raise InvalidRollout(f"plan_rollouts: no *_demo.hdf5 files under {demos}")
    lengths: dict[tuple[str, str], int] = {}
    held_out: set[tuple[str, str]] = set()
    splits = assign_splits(files, "stable")
    for path in files:
        with DemoFile(path) as f:
            for name in f.names:
                lengths[(str(path.resolve()), name)] = f.length(name)
                if splits[path][name] != TRAIN:
                    held_out.add((str(path.resolve()), name))
    usable = {k: n for k, n in lengths.items() if n > horizon}
    used = split
    chosen = {k: n for k, n in usable.items() if k in held_out} if split == "validation" else usable
    if not chosen:
        chosen, used = usable, "all"
    if not chosen:
        raise InvalidRollout(f"plan_rollouts: no trajectory under {demos} has more than {horizon} steps "
                             f"(longest: {max(lengths.values(), default=0)})")
    trajectories = sorted(chosen)
    per_trajectory = -(-count // len(trajectories))
    specs = []
    for i in range(count):
        source, demo = trajectories[i % len(trajectories)]
        slot = i // len(trajectories)
        last_start = chosen[(source, demo)] - horizon - 1
        start = (slot * last_start) // max(1, per_trajectory - 1) if per_trajectory > 1 else 0
        specs.append(RolloutSpec(source, demo, start, horizon, mode, video=i < videos))
    unique: dict[str, RolloutSpec] = {}  # short trajectories repeat starts: one spec per result key
    for spec in specs:
        unique.setdefault(spec.key, spec)
    return list(unique.values()), used


@dataclass
class RolloutResult:
    """Per-frame scores of the model and of the copy-the-last-frame baseline against the real frames;
    I3D features of the real / imagined / copied clips per clip length (for FVD, computed over all
    rollouts by the driver); the imagined VQ codes and the actions that produced them."""

    key: str
    mode: str
    horizon: int
    weight_version: int
    error: str | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # "model/psnr", "copy/ssim", ... -> (H,)
    features: dict[str, np.ndarray] = field(default_factory=dict)  # "real/10", "model/10", "copy/10" -> (D,)
    codes: np.ndarray | None = None  # (H, rows, cols) int32
    actions: np.ndarray | None = None  # (H, 7) float32
    sheet: dict[str, np.ndarray] = field(default_factory=dict)  # "steps", "real", "model" for contact sheets
    video: str | None = None
    seconds: float = 0.0
    worker: str = ""

    def to_payload(self) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, p: dict) -> "RolloutResult":
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k in p})
