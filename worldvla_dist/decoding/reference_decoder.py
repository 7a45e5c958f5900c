"""The oracle: one token at a time under the action mask, KV-cached, rebuilding the mask from the
whole sequence at every step as the reference implementation does. 9K - 2 one-token model steps.
Under `attention_mask="causal"` (the paper's ablation, Table 4) each action sees the ones it generated
before, so an early error propagates to the rest of the chunk."""

from __future__ import annotations

from typing import Sequence

import torch

from worldvla_dist.decoding.sampling import GREEDY, SamplingConfig, choose_tokens
from worldvla_dist.decoding.state import encode_prompts
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.attention_mask import action_blocks, attention_mask_from_blocks, check_attention_mask
from worldvla_dist.tokenizers.action_tokenizer import ACTION_BLOCK_LEN, ACTION_DIM


@torch.no_grad()
def reference_decode_actions(model: WorldVLA, prompts: Sequence[Sequence[int]], num_actions: int,
                             sampling: SamplingConfig = GREEDY, generator: torch.Generator | None = None,
                             attention_mask: str = "action") -> torch.Tensor:
    """B action prompts -> (B, K, 7) action-bin token ids. BOA / EOA are placed by the layout."""
    action_rule = check_attention_mask(attention_mask, "reference_decode_actions") == "action"
    vocab = model.vocab
    state = encode_prompts(model, prompts)
    ids, valid = state.prompt_ids, state.key_valid
    position = state.next_position.clone()
    logits = state.last_logits
    bins: list[torch.Tensor] = []
    last_bin_slot = num_actions * ACTION_BLOCK_LEN - 2
    for slot in range(last_bin_slot + 1):
        offset = slot % ACTION_BLOCK_LEN
        if offset == 0:
            token = torch.full_like(position, vocab.boa_id)
        elif offset == ACTION_BLOCK_LEN - 1:
            token = torch.full_like(position, vocab.eoa_id)
        else:
            token = choose_tokens(logits, vocab.action_bin_mask, sampling, generator)
            bins.append(token)
        if slot == last_bin_slot:
            break  # EOA and end-of-turn are forced: no model step needed
        ids = torch.cat([ids, token[:, None]], dim=1)
        valid = torch.cat([valid, torch.ones_like(token[:, None], dtype=torch.bool)], dim=1)
        info = action_blocks(ids, vocab, valid)  # the whole sequence again, as the reference does
        query = torch.full_like(token[:, None], ids.shape[1] - 1)
        restricted = info.restricted[:, -1:] & action_rule  # causal: no block is restricted
        mask = attention_mask_from_blocks(info.block, valid, info.block[:, -1:], restricted, query, model.dtype)
        step_logits, state.cache = model.logits(token[:, None], mask, position[:, None], state.cache)
        logits = step_logits[:, -1]
        position += 1
    return torch.stack(bins, dim=1).reshape(len(prompts), num_actions, ACTION_DIM)
