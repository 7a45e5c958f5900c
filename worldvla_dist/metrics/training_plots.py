"""PNG plots of a training run: loss curves, and success per task per evaluation round."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def plot_losses(history: list[dict], path: str | Path) -> Path:
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "total"), ("action_ce", "L_action"), ("world_ce", "L_world")):
        ax.plot(steps, [h[key] for h in history], label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross entropy")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_success_rounds(rounds: dict[int, dict[str, float | None]], path: str | Path) -> Path:
    """rounds: weight version -> {task label: success rate or None}."""
    versions = sorted(rounds)
    labels = sorted({t for r in rounds.values() for t in r})
    fig, ax = plt.subplots(figsize=(7, 4))
    for label in labels:
        ax.plot(versions, [100 * r if (r := rounds[v].get(label)) is not None else float("nan") for v in versions],
                marker="o", label=label)
    ax.set_xlabel("weight version (learner step)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    if len(labels) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
