"""What a trained model learned, on the held-out 10% of demo trajectories: action-token accuracy
against the majority bin of the training trajectories, and next-frame prediction against copying
the last frame (PSNR and VQ-code accuracy)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from worldvla_dist.data.libero_hdf5 import DemoFile, is_validation, trajectory_key
from worldvla_dist.evaluation.offline import action_token_accuracy, next_frame_quality
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace


def heldout_report(model: WorldVLA, tokens: TokenSpace, demos: str | Path, chunk: int = 5, history: int = 2,
                   max_frames: int = 64, max_prompts: int = 64, seed: int = 0) -> dict:
    """Reads every *_demo.hdf5 under `demos`; samples at most `max_frames` next-frame pairs and
    `max_prompts` action prompts from held-out trajectories (seeded). With too few demos for a
    held-out trajectory, it measures on the training ones and says so (`"on": "train"`)."""
    report = _report(model, tokens, demos, chunk, history, max_frames, max_prompts, seed, held_out_only=True)
    return report or _report(model, tokens, demos, chunk, history, max_frames, max_prompts, seed, held_out_only=False)


def _report(model, tokens, demos, chunk, history, max_frames, max_prompts, seed, held_out_only: bool) -> dict | None:
    prompts, targets, train_targets, frames, acts, next_frames = [], [], [], [], [], []
    for path in sorted(Path(demos).rglob("*_demo.hdf5")):
        with DemoFile(path) as f:
            for name in f.names:
                demo = f[name]
                held_out = is_validation(trajectory_key(path, name))
                steps = len(demo.actions) - chunk + 1
                bins = [tokens.actions.encode(demo.actions[t:t + chunk]) for t in range(max(0, steps))]
                if not held_out:
                    train_targets += bins
                    if held_out_only:
                        continue
                images = demo.model_images()
                codes = tokens.images.encode(images)
                for t in range(max(0, steps)):
                    history_codes = list(codes[max(0, t - history + 1):t + 1])
                    prompts.append(tokens.samples.action_prompt(f.info.language_instruction, history_codes))
                    targets.append(bins[t])
                n = min(len(images) - 1, len(demo.actions))
                frames.append(images[:n])
                acts.append(demo.actions[:n])
                next_frames.append(images[1:n + 1])
    if not prompts or not train_targets:
        if held_out_only:
            return None
        raise ValueError(f"{demos}: no demonstrations with a full chunk of actions")
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(prompts))[:max_prompts]
    accuracy = action_token_accuracy(model, [prompts[i] for i in pick], np.stack([targets[i] for i in pick]),
                                     np.stack(train_targets))
    frames, acts, next_frames = np.concatenate(frames), np.concatenate(acts), np.concatenate(next_frames)
    pick = np.sort(rng.permutation(len(frames))[:max_frames])
    with torch.no_grad():
        quality = next_frame_quality(model, tokens, frames[pick], acts[pick], next_frames[pick])
    return {"on": "held-out" if held_out_only else "train", "action_token_accuracy": asdict(accuracy),
            "next_frame": asdict(quality)}
