"""Choosing the next token among the ids a layout slot allows: greedy, or temperature / top-k sampling."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldvla_dist.errors import ConfigError


@dataclass(frozen=True)
class SamplingConfig:
    """temperature 0 is greedy (argmax); top_k 0 keeps every allowed id."""

    temperature: float = 0.0
    top_k: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0 or self.top_k < 0:
            raise ConfigError(f"SamplingConfig: temperature and top_k must be >= 0, got {self}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


GREEDY = SamplingConfig()


def choose_tokens(logits: torch.Tensor, allowed: torch.Tensor, sampling: SamplingConfig = GREEDY,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (..., V), allowed (V,) bool -> (...) int64 ids, always within `allowed`."""
    scores = logits.float().masked_fill(~allowed.to(logits.device), float("-inf"))
    if sampling.greedy:
        return scores.argmax(dim=-1)
    scores = scores / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(scores, min(sampling.top_k, int(allowed.sum())), dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    return flat.reshape(probs.shape[:-1])
