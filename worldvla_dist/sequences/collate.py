"""Mixed batches of action and world samples: right padding, labels, positions and the 4D action mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from worldvla_dist.sequences.attention_mask import sequence_attention_mask
from worldvla_dist.sequences.samples import IGNORE_INDEX, TokenSample
from worldvla_dist.tokenizers.vocabulary import Vocabulary


@dataclass
class Batch:
    """input_ids / labels / position_ids: (B, L) int64; attention_mask: (B, 1, L, L) float additive;
    is_world: (B,) bool (False = action sample)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    is_world: torch.Tensor

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(*(getattr(self, f).to(device) for f in ("input_ids", "labels", "position_ids",
                                                             "attention_mask", "is_world")))


def collate(samples: Sequence[TokenSample], vocab: Vocabulary, dtype: torch.dtype = torch.float32,
            pad_to_multiple: int = 1, attention_mask: str = "action") -> Batch:
    """Pads to the longest sample (rounded up to `pad_to_multiple`) and builds the action mask (or, with
    `attention_mask="causal"`, the plain causal mask of the paper's ablation)."""
    if not samples:
        raise ValueError("collate: got an empty list of samples")
    length = max(len(s.input_ids) for s in samples)
    length = -(-length // pad_to_multiple) * pad_to_multiple
    ids = torch.full((len(samples), length), vocab.pad_id, dtype=torch.long)
    labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
    valid = torch.zeros((len(samples), length), dtype=torch.bool)
    for i, s in enumerate(samples):
        n = len(s.input_ids)
        ids[i, :n] = torch.as_tensor(s.input_ids)
        labels[i, :n] = torch.as_tensor(s.labels)
        valid[i, :n] = True
    positions = torch.arange(length).expand(len(samples), -1).clone()
    mask = sequence_attention_mask(ids, vocab, valid, attention_mask, dtype)
    is_world = torch.tensor([s.kind == "world" for s in samples])
    return Batch(ids, labels, positions, mask, is_world)
