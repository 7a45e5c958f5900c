"""The model as a policy: (instruction, history frames) -> K continuous actions, for a whole batch of
requests at once (images tokenised together, chunks decoded side by side by the parallel decoder)."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.serving.protocol import PolicyRequest


class ChunkPolicy:
    def __init__(self, model: WorldVLA, tokens: TokenSpace, history: int = 2):
        self.model, self.tokens, self.history = model.eval(), tokens, history

    @property
    def image_size_px(self) -> int:
        return self.tokens.images.geometry.height_px

    @torch.no_grad()
    def predict(self, requests: Sequence[PolicyRequest]) -> list[np.ndarray]:
        """-> one (K, 7) float32 array per request, in order. Requests may ask for different K."""
        frames = [r.frames[-self.history:] for r in requests]
        codes = self.tokens.images.encode(np.stack([f for fs in frames for f in fs]))
        prompts, start = [], 0
        for request, fs in zip(requests, frames):
            prompts.append(self.tokens.samples.action_prompt(request.instruction, list(codes[start:start + len(fs)])))
            start += len(fs)
        by_k: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            by_k[r.num_actions].append(i)
        out: list[np.ndarray | None] = [None] * len(requests)
        for k, rows in by_k.items():
            bins = parallel_decode_actions(self.model, [prompts[i] for i in rows], k).cpu().numpy()
            for i, chunk in zip(rows, self.tokens.actions.decode(bins).astype(np.float32)):
                out[i] = chunk
        return out
