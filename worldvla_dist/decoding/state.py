"""The KV-cached decoding state shared by every decoder: prompts encoded once (left padding, positions,
action mask), then new tokens fed at chosen positions with their block membership."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from worldvla_dist.decoding.kv_cache import GrowingKVCache
from worldvla_dist.errors import TokenizationError
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.attention_mask import action_attention_mask, action_blocks, attention_mask_from_blocks


@dataclass
class DecodingState:
    """`cache` holds one key per entry of `key_valid` / `key_block` (B, Lk), in the order fed.
    `prompt_ids` (B, Lp) are the left-padded prompts; `next_position` (B,) is each row's first answer
    position; `last_logits` (B, V) predict the first answer token."""

    model: WorldVLA
    cache: GrowingKVCache
    prompt_ids: torch.Tensor
    key_valid: torch.Tensor
    key_block: torch.Tensor
    next_position: torch.Tensor
    last_logits: torch.Tensor

    @property
    def num_keys(self) -> int:
        return self.key_valid.shape[1]

    @torch.no_grad()
    def feed(self, tokens: torch.Tensor, positions: torch.Tensor, blocks: torch.Tensor,
             restricted: torch.Tensor) -> torch.Tensor:
        """Appends (B, n) tokens at (B, n) positions to the cache -> (B, n, V) logits. `blocks` (B, n) are
        their action-block numbers (0 = none); `restricted` (B, n) marks blocks under the action-mask rule."""
        b, n = tokens.shape
        query_index = (self.num_keys + torch.arange(n, device=tokens.device)).expand(b, n)
        self.key_block = torch.cat([self.key_block, blocks], dim=1)
        self.key_valid = torch.cat([self.key_valid, torch.ones_like(blocks, dtype=torch.bool)], dim=1)
        mask = attention_mask_from_blocks(self.key_block, self.key_valid, blocks, restricted, query_index,
                                          self.model.dtype)
        logits, self.cache = self.model.logits(tokens, mask, positions, self.cache)
        return logits


@torch.no_grad()
def encode_prompts(model: WorldVLA, prompts: Sequence[Sequence[int]]) -> DecodingState:
    if not prompts or any(len(p) == 0 for p in prompts):
        raise TokenizationError("encode_prompts: every prompt needs at least one token")
    device = model.device
    length = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), length), model.vocab.pad_id, dtype=torch.long)
    valid = torch.zeros((len(prompts), length), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, length - len(p):] = torch.as_tensor(list(p))
        valid[i, length - len(p):] = True
    ids, valid = ids.to(device), valid.to(device)
    positions = (torch.cumsum(valid.long(), dim=1) - 1).clamp_min(0)
    mask = action_attention_mask(ids, model.vocab, valid, model.dtype)
    cache = GrowingKVCache(model.chameleon.config.num_hidden_layers)
    hidden, cache = model.hidden_states(ids, mask, positions, cache)
    last_logits = model.chameleon.lm_head(hidden[:, -1])  # only the last position predicts anything we use
    return DecodingState(model=model, cache=cache, prompt_ids=ids, key_valid=valid,
                         key_block=action_blocks(ids, model.vocab, valid).block,
                         next_position=valid.sum(dim=1), last_logits=last_logits)
