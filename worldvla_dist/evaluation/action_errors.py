"""Where a policy's action tokens go wrong, open loop: accuracy per action dimension and per position in
the chunk, beside the majority bin of the training data, and how far the misses are (in bins).

A closed-loop failure says that an episode failed; this says which of x, y, z, roll, pitch, yaw and
the gripper the model gets wrong, whether later positions of a chunk are worse than the first (the
paper's claim for the causal mask), and whether misses are near (one bin off: a slightly slower arm)
or far (a wrong direction, a gripper closing early)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ACTION_DIM_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")


@dataclass
class ActionErrorBreakdown:
    accuracy: list[list[float]]  # [position][dimension]: fraction of chunks whose bin is exactly right
    majority_accuracy: list[float]  # per dimension: always its most frequent training bin, all positions
    within_one_bin: list[float]  # per dimension: |predicted - target| <= 1 bin, all positions
    mean_bin_error: list[float]  # per dimension: mean |predicted - target| in bins
    num_chunks: int

    @property
    def by_position(self) -> list[float]:
        return np.asarray(self.accuracy).mean(axis=1).tolist()

    @property
    def by_dimension(self) -> list[float]:
        return np.asarray(self.accuracy).mean(axis=0).tolist()

    def to_payload(self) -> dict:
        return {**asdict(self), "by_position": self.by_position, "by_dimension": self.by_dimension,
                "dimensions": list(ACTION_DIM_NAMES)}


def action_error_breakdown(predicted: np.ndarray, targets: np.ndarray, train_targets: np.ndarray) -> ActionErrorBreakdown:
    """(N, K, 7) predicted and target bin ids (contiguous ids: their difference is a distance in bins) and
    (M, K', 7) training targets (for the majority baseline) -> the breakdown."""
    predicted, targets, train_targets = (np.asarray(x, dtype=np.int64) for x in (predicted, targets, train_targets))
    if predicted.shape != targets.shape or predicted.ndim != 3 or predicted.shape[-1] != len(ACTION_DIM_NAMES) \
            or not len(predicted):
        raise ValueError(f"action_error_breakdown: expected two equal (N, K, 7) arrays with N > 0, got "
                         f"{predicted.shape} and {targets.shape}")
    if train_targets.ndim != 3 or train_targets.shape[-1] != len(ACTION_DIM_NAMES) or not len(train_targets):
        raise ValueError(f"action_error_breakdown: expected (M, K, 7) training targets, got {train_targets.shape}")
    distance = np.abs(predicted - targets)
    majority = np.array([np.bincount(train_targets[..., d].ravel()).argmax() for d in range(targets.shape[-1])])
    return ActionErrorBreakdown(
        accuracy=(distance == 0).mean(axis=0).tolist(),
        majority_accuracy=(targets == majority).mean(axis=(0, 1)).tolist(),
        within_one_bin=(distance <= 1).mean(axis=(0, 1)).tolist(),
        mean_bin_error=distance.mean(axis=(0, 1)).tolist(),
        num_chunks=len(predicted))


def markdown(breakdown: ActionErrorBreakdown) -> str:
    """One row per dimension: exact accuracy at positions 1..K and over all, the majority baseline,
    near misses and the mean distance; a last row per position over all dimensions."""
    acc = np.asarray(breakdown.accuracy)
    k = acc.shape[0]
    head = ["dimension"] + [f"acc@{j}" for j in range(1, k + 1)] + ["acc (all)", "majority bin", "within 1 bin",
                                                                   "mean bin error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d, name in enumerate(ACTION_DIM_NAMES):
        lines.append("| " + " | ".join([name, *(f"{acc[j, d]:.3f}" for j in range(k)), f"{acc[:, d].mean():.3f}",
                                        f"{breakdown.majority_accuracy[d]:.3f}", f"{breakdown.within_one_bin[d]:.3f}",
                                        f"{breakdown.mean_bin_error[d]:.2f}"]) + " |")
    lines.append("| " + " | ".join(["all", *(f"{x:.3f}" for x in breakdown.by_position), f"{acc.mean():.3f}",
                                    f"{np.mean(breakdown.majority_accuracy):.3f}",
                                    f"{np.mean(breakdown.within_one_bin):.3f}",
                                    f"{np.mean(breakdown.mean_bin_error):.2f}"]) + " |")
    return "\n".join(lines)


def write_report(breakdown: ActionErrorBreakdown, out: str | Path, header: str, **about) -> tuple[str, dict]:
    """action_errors.md (header and table) and action_errors.json (`about`, then the breakdown) in
    `out` -> (the markdown, the payload)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = header + "\n\n" + markdown(breakdown)
    payload = {**about, **breakdown.to_payload()}
    (out / "action_errors.md").write_text(text + "\n")
    (out / "action_errors.json").write_text(json.dumps(payload, indent=1))
    return text, payload
