"""The action attention mask (WorldVLA's key trick) as a float additive (B, 1, Lq, Lk) mask.

Causal, except: a token inside an action block that begins after the last image may not attend to
any other action block. A block runs from BOA to EOA inclusive (an unclosed block runs to the end,
so the rule is the same at every decoding step); end-of-turn tokens belong to no block. World
samples (their only action comes before the last image) are plainly causal under the same rule.

Everything is phrased over *cache order* (the order keys were fed), so the same function serves
training (queries = keys), one-token decoding and parallel chunk decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldvla_dist.errors import ConfigError
from worldvla_dist.tokenizers.vocabulary import Vocabulary

# which mask action samples train (and decode) under: "action", WorldVLA's; "causal", the plain causal
# mask the paper ablates it against (Table 4), under which each action of a chunk sees the earlier ones
ATTENTION_MASKS = ("action", "causal")


@dataclass
class BlockInfo:
    """Per-position action-block facts for (B, L) ids: `block` (0 = none, else 1-based block number),
    `restricted` (True if the position lies in a block that begins after the last image)."""

    block: torch.Tensor
    restricted: torch.Tensor


def action_blocks(input_ids: torch.Tensor, vocab: Vocabulary, valid: torch.Tensor | None = None) -> BlockInfo:
    """Finds action blocks in (B, L) ids laid out in order; `valid` (B, L) False marks padding."""
    ids = input_ids
    valid = torch.ones_like(ids, dtype=torch.bool) if valid is None else valid
    is_boa = (ids == vocab.boa_id) & valid
    is_eoa = (ids == vocab.eoa_id) & valid
    opened = torch.cumsum(is_boa.long(), dim=1)
    closed_before = torch.cumsum(is_eoa.long(), dim=1) - is_eoa.long()
    in_block = (opened > closed_before) & valid
    block = torch.where(in_block, opened, torch.zeros_like(opened))

    pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    neg = torch.full_like(pos, -1)
    block_start = torch.cummax(torch.where(is_boa, pos, neg), dim=1).values
    last_image_end = torch.where((ids == vocab.eoi_id) & valid, pos, neg).max(dim=1, keepdim=True).values
    restricted = in_block & (block_start > last_image_end)
    return BlockInfo(block=block, restricted=restricted)


def attention_mask_from_blocks(key_block: torch.Tensor, key_valid: torch.Tensor, query_block: torch.Tensor,
                               query_restricted: torch.Tensor, query_index: torch.Tensor,
                               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, Lq, Lk) additive mask: 0 where attention is allowed, finfo.min where it is not.

    key_*: (B, Lk) over the cache order; query_*: (B, Lq); `query_index` is each query's own index
    in the cache order (causality is "key index <= query index").
    """
    lk = key_block.shape[1]
    k_idx = torch.arange(lk, device=key_block.device)
    causal = k_idx[None, None, :] <= query_index[:, :, None]
    other_block = (key_block[:, None, :] > 0) & (key_block[:, None, :] != query_block[:, :, None])
    blocked = query_restricted[:, :, None] & other_block
    allowed = causal & key_valid[:, None, :] & ~blocked
    # a padded query row keeps itself so no row is empty (its output is never read)
    allowed |= (k_idx[None, None, :] == query_index[:, :, None]) & ~key_valid.gather(1, query_index)[:, :, None]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=key_block.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def action_attention_mask(input_ids: torch.Tensor, vocab: Vocabulary, valid: torch.Tensor | None = None,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Training / full-sequence mask for (B, L) ids -> (B, 1, L, L)."""
    valid = torch.ones_like(input_ids, dtype=torch.bool) if valid is None else valid
    info = action_blocks(input_ids, vocab, valid)
    index = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    return attention_mask_from_blocks(info.block, valid, info.block, info.restricted, index, dtype)


def causal_mask(valid: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Plain causal mask with padding for (B, L) validity -> (B, 1, L, L)."""
    zeros = torch.zeros(valid.shape, dtype=torch.long, device=valid.device)
    index = torch.arange(valid.shape[1], device=valid.device).expand_as(zeros)
    return attention_mask_from_blocks(zeros, valid, zeros, zeros.bool(), index, dtype)


def check_attention_mask(kind: str, where: str) -> str:
    if kind not in ATTENTION_MASKS:
        raise ConfigError(f"{where}: attention_mask must be one of {ATTENTION_MASKS}, got {kind!r}")
    return kind


def sequence_attention_mask(input_ids: torch.Tensor, vocab: Vocabulary, valid: torch.Tensor | None = None,
                            kind: str = "action", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, L) ids -> (B, 1, L, L) under the mask `kind` (one of ATTENTION_MASKS)."""
    check_attention_mask(kind, "sequence_attention_mask")
    if kind == "causal":
        return causal_mask(torch.ones_like(input_ids, dtype=torch.bool) if valid is None else valid, dtype)
    return action_attention_mask(input_ids, vocab, valid, dtype)
