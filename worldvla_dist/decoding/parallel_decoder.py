"""Parallel chunk decoding: with the action mask, each of the K actions of a chunk sees only the
prompt and itself, so the K blocks are decoded side by side, each at its own positions, over one
prompt KV cache: 7 model steps per chunk instead of 9K - 2. Greedy outputs equal the reference
decoder's (tests/worldvla_dist/decoding)."""

from __future__ import annotations

from typing import Sequence

import torch

from worldvla_dist.decoding.sampling import GREEDY, SamplingConfig, choose_tokens
from worldvla_dist.decoding.state import encode_prompts
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.tokenizers.action_tokenizer import ACTION_BLOCK_LEN, ACTION_DIM


@torch.no_grad()
def parallel_decode_actions(model: WorldVLA, prompts: Sequence[Sequence[int]], num_actions: int,
                            sampling: SamplingConfig = GREEDY, generator: torch.Generator | None = None) -> torch.Tensor:
    """B action prompts -> (B, K, 7) action-bin token ids."""
    vocab = model.vocab
    state = encode_prompts(model, prompts)
    b, k = len(prompts), num_actions
    device = state.prompt_ids.device
    block_offsets = ACTION_BLOCK_LEN * torch.arange(k, device=device)
    # fresh block numbers, distinct from any block in the prompts
    blocks = (state.key_block.max() + 1 + torch.arange(k, device=device)).expand(b, k)
    restricted = torch.ones((b, k), dtype=torch.bool, device=device)  # they all begin after the last image
    tokens = torch.full((b, k), vocab.boa_id, dtype=torch.long, device=device)
    bins = []
    for step in range(ACTION_DIM):
        positions = state.next_position[:, None] + block_offsets[None, :] + step
        logits = state.feed(tokens, positions, blocks, restricted)
        tokens = choose_tokens(logits, vocab.action_bin_mask, sampling, generator)
        bins.append(tokens)
    return torch.stack(bins, dim=-1)
