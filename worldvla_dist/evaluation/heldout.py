"""What a trained model learned, on held-out demo trajectories: action-token accuracy against the
majority bin of the training trajectories, and next-frame prediction against copying the last frame
(PSNR and VQ-code accuracy); per held-out split (val_ind, val_ood) when the split rule gives both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from worldvla_dist.data.libero_hdf5 import DemoFile
from worldvla_dist.data.split import HELD_OUT, TRAIN, assign_splits
from worldvla_dist.evaluation.ablation import decode_chunks
from worldvla_dist.evaluation.action_errors import ActionErrorBreakdown, action_error_breakdown
from worldvla_dist.evaluation.offline import action_token_accuracy, next_frame_quality
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace


@dataclass
class _Pool:
    """The action prompts and next-frame pairs of some trajectories."""

    prompts: list = field(default_factory=list)
    targets: list = field(default_factory=list)  # (K, 7) action-bin ids per prompt
    frames: list = field(default_factory=list)  # (n, H, W, 3) per trajectory
    actions: list = field(default_factory=list)
    next_frames: list = field(default_factory=list)

    def __iadd__(self, other: "_Pool") -> "_Pool":
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))
        return self


def heldout_report(model: WorldVLA, tokens: TokenSpace, demos: str | Path, chunk: int = 5, history: int = 2,
                   max_frames: int = 64, max_prompts: int = 64, seed: int = 0, split_rule: str = "stable") -> dict:
    """Reads every *_demo.hdf5 under `demos` and splits its trajectories by `split_rule` (data/split.py);
    samples at most `max_frames` next-frame pairs and `max_prompts` action prompts (seeded) from the
    held-out trajectories. -> {"on": "held-out", "action_token_accuracy", "next_frame"} over all of
    them, plus "by_split": {"val_ind": {...}, "val_ood": {...}} when both held-out splits have
    trajectories. With no held-out trajectory, it measures on the training ones and says so (`"on": "train"`)."""
    paths = sorted(Path(demos).rglob("*_demo.hdf5"))
    splits = assign_splits(paths, split_rule)
    pools: dict[str, _Pool] = {}
    train_targets = []
    for path, name, pool in _pools(tokens, paths, chunk, history, lambda path, name: splits[path][name] != TRAIN):
        split = splits[path][name]
        if split == TRAIN:
            train_targets += pool.targets
        else:
            pools.setdefault(split, _Pool())
            pools[split] += pool
    if not train_targets:
        raise ValueError(f"{demos}: no training demonstration with a full chunk of {chunk} actions")
    held_out = [s for s in HELD_OUT if s in pools and pools[s].prompts]
    if not held_out:  # too few demos to hold any out: measure on the training ones, and say so
        train = _Pool()
        for _, _, pool in _pools(tokens, paths, chunk, history, lambda path, name: splits[path][name] == TRAIN):
            train += pool
        return {"on": "train", **_figures(model, tokens, train, train_targets, max_frames, max_prompts, seed)}
    everything = _Pool()
    for s in held_out:
        everything += pools[s]
    report = {"on": "held-out", **_figures(model, tokens, everything, train_targets, max_frames, max_prompts, seed)}
    if len(held_out) > 1:
        report["by_split"] = {s: _figures(model, tokens, pools[s], train_targets, max_frames, max_prompts, seed)
                              for s in held_out}
    return report


def _pools(tokens: TokenSpace, paths: list[Path], chunk: int, history: int, with_frames):
    """(path, demo name, pool) for every trajectory; images are read and encoded only where
    `with_frames(path, name)`, the rest get their action targets alone."""
    for path in paths:
        with DemoFile(path) as f:
            for name in f.names:
                demo = f[name]
                yield path, name, _trajectory_pool(tokens, demo, f.info.language_instruction, chunk, history,
                                                   with_frames(path, name))


def _trajectory_pool(tokens: TokenSpace, demo, instruction: str, chunk: int, history: int, with_frames: bool) -> _Pool:
    """T frames and T actions -> action targets (and prompts) for t = 0..T-K, next-frame pairs for t = 0..T-2."""
    steps = len(demo.actions) - chunk + 1
    pool = _Pool(targets=[tokens.actions.encode(demo.actions[t:t + chunk]) for t in range(max(0, steps))])
    if not pool.targets or not with_frames:
        return pool
    images = demo.model_images()
    codes = tokens.images.encode(images)
    pool.prompts = [tokens.samples.action_prompt(instruction, list(codes[max(0, t - history + 1):t + 1]))
                    for t in range(steps)]
    n = min(len(images) - 1, len(demo.actions))
    pool.frames, pool.actions, pool.next_frames = [images[:n]], [demo.actions[:n]], [images[1:n + 1]]
    return pool


def _figures(model, tokens, pool: _Pool, train_targets, max_frames: int, max_prompts: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(pool.prompts))[:max_prompts]
    accuracy = action_token_accuracy(model, [pool.prompts[i] for i in pick], np.stack([pool.targets[i] for i in pick]),
                                     np.stack(train_targets))
    frames, actions, next_frames = (np.concatenate(x) for x in (pool.frames, pool.actions, pool.next_frames))
    pick = np.sort(rng.permutation(len(frames))[:max_frames])
    with torch.no_grad():
        quality = next_frame_quality(model, tokens, frames[pick], actions[pick], next_frames[pick])
    return {"action_token_accuracy": asdict(accuracy), "next_frame": asdict(quality)}


def demo_action_errors(model: WorldVLA, tokens: TokenSpace, demos: str | Path, train_demos: str | Path, chunk: int = 5,
                       history: int = 2, max_prompts: int = 256, seed: int = 0,
                       attention_mask: str = "action") -> ActionErrorBreakdown:
    """Open-loop action errors per dimension and per chunk position on every trajectory under `demos`
    (e.g. demos from init states no training demo started from, make_demos --first-trial), against the
    majority bin of the trajectories under `train_demos`; at most `max_prompts` chunks (seeded)."""
    held, train = _Pool(), _Pool()
    for _, _, pool in _pools(tokens, sorted(Path(demos).rglob("*_demo.hdf5")), chunk, history, lambda p, n: True):
        held += pool
    for _, _, pool in _pools(tokens, sorted(Path(train_demos).rglob("*_demo.hdf5")), chunk, history, lambda p, n: False):
        train += pool
    if not held.prompts or not train.targets:
        raise ValueError(f"demo_action_errors: no trajectory with a full chunk of {chunk} actions under "
                         f"{demos if not held.prompts else train_demos}")
    pick = np.sort(np.random.default_rng(seed).permutation(len(held.prompts))[:max_prompts])
    with torch.no_grad():
        predicted = decode_chunks(model, [held.prompts[i] for i in pick], chunk, attention_mask)
    return action_error_breakdown(predicted, np.stack([held.targets[i] for i in pick]), np.stack(train.targets))
