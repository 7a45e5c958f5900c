"""A plain PyTorch training loop over the joint loss (the DeepSpeed learner's baseline and the demo's trainer)."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.collate import collate
from worldvla_dist.sequences.samples import TokenSample


def train_steps(model: WorldVLA, batches: Iterator[Sequence[TokenSample]], steps: int, lr: float,
                weight_decay: float = 0.1, grad_clip: float = 4.0,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """AdamW (0.9, 0.95) with gradient clipping, the reference's optimiser settings; returns per-step logs."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    history = []
    for step in range(steps):
        batch = collate(next(batches), model.vocab, dtype=model.dtype).to(model.device)
        out = model(batch)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        history.append({"loss": out.total.item(), "action_ce": out.action_ce.item(), "world_ce": out.world_ce.item(),
                        "grad_norm": grad_norm.item()})
        if on_step:
            on_step(step, history[-1])
    model.eval()
    return history
