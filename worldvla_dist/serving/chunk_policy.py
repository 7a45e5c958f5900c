"""The model as a policy: (instruction, history frames) -> K continuous actions, for a whole batch of
requests at once (images tokenised together, chunks decoded side by side by the parallel decoder).

Each request carries the previous query frame too, which the last request of the same episode
already tokenised: codes are kept in a small cache keyed by the frame's digest, which halves the
VQGAN work per request (the image tokenizer never changes with the weights, so entries stay valid).

A model trained under the plain causal mask (the paper's ablation) is served with
`attention_mask="causal"`: one token at a time by the reference decoder, each action seeing the ones
generated before it, as that model was trained."""

from __future__ import annotations

import hashlib
from collections import OrderedDict, defaultdict
from typing import Sequence

import numpy as np
import torch

from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.decoding.reference_decoder import reference_decode_actions
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.attention_mask import check_attention_mask
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.serving.protocol import PolicyRequest


class ChunkPolicy:
    def __init__(self, model: WorldVLA, tokens: TokenSpace, history: int = 2, code_cache_size: int = 1024,
                 attention_mask: str = "action"):
        self.model, self.tokens, self.history = model.eval(), tokens, history
        self.attention_mask = check_attention_mask(attention_mask, "ChunkPolicy")
        self.code_cache_size = code_cache_size
        self._codes: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.encoded_frames = 0  # frames that went through the VQGAN (cache misses)

    def encode_frames(self, frames: list[np.ndarray]) -> list[torch.Tensor]:
        """(H, W, 3) uint8 frames -> code grids, through the digest cache."""
        keys = [hashlib.blake2b(f.tobytes(), digest_size=16).digest() for f in frames]
        missing = list(dict.fromkeys(k for k in keys if k not in self._codes))
        if missing:
            first = {k: f for k, f in zip(keys, frames)}
            for k, codes in zip(missing, self.tokens.images.encode(np.stack([first[k] for k in missing]))):
                self._codes[k] = codes
            self.encoded_frames += len(missing)
        out = []
        for k in keys:
            self._codes.move_to_end(k)
            out.append(self._codes[k])
        while len(self._codes) > self.code_cache_size:
            self._codes.popitem(last=False)
        return out

    @property
    def image_size_px(self) -> int:
        return self.tokens.images.geometry.height_px

    @torch.no_grad()
    def predict(self, requests: Sequence[PolicyRequest]) -> list[np.ndarray]:
        """-> one (K, 7) float32 array per request, in order. Requests may ask for different K."""
        frames = [r.frames[-self.history:] for r in requests]
        codes = self.encode_frames([f for fs in frames for f in fs])
        prompts, start = [], 0
        for request, fs in zip(requests, frames):
            prompts.append(self.tokens.samples.action_prompt(request.instruction, codes[start:start + len(fs)]))
            start += len(fs)
        by_k: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            by_k[r.num_actions].append(i)
        out: list[np.ndarray | None] = [None] * len(requests)
        for k, rows in by_k.items():
            bins = self.decode([prompts[i] for i in rows], k).cpu().numpy()
            for i, chunk in zip(rows, self.tokens.actions.decode(bins).astype(np.float32)):
                out[i] = chunk
        return out

    def decode(self, prompts: list[list[int]], num_actions: int) -> torch.Tensor:
        """B action prompts -> (B, K, 7) action-bin ids, by the decoder that matches the training mask."""
        if self.attention_mask == "causal":
            return reference_decode_actions(self.model, prompts, num_actions, attention_mask="causal")
        return parallel_decode_actions(self.model, prompts, num_actions)
