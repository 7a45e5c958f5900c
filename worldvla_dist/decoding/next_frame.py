"""Next-frame generation for the world model: KV-cached, batched over B rollouts, constrained to the
image layout (grid, newline and EOI tokens are placed, only image codes are chosen). Forced tokens
ride along with the code before them, so a frame costs one model step per code."""

from __future__ import annotations

from typing import Sequence

import torch

from worldvla_dist.decoding.sampling import GREEDY, SamplingConfig, choose_tokens
from worldvla_dist.decoding.state import encode_prompts
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.tokenizers.image_layout import ImageLayout


@torch.no_grad()
def generate_next_frames(model: WorldVLA, layout: ImageLayout, prompts: Sequence[Sequence[int]],
                         sampling: SamplingConfig = GREEDY, generator: torch.Generator | None = None) -> torch.Tensor:
    """B world prompts (image_t + action_t) -> (B, rows, cols) VQ codes of image_{t+1}."""
    state = encode_prompts(model, prompts)
    device = state.prompt_ids.device
    b = len(prompts)
    template = layout.template.to(device)
    code_slots = torch.nonzero(template < 0).flatten().tolist()
    answer = template.expand(b, -1).clone()
    allowed = model.vocab.image_code_mask
    start = 0  # template index of the first token not yet fed
    for i, slot in enumerate(code_slots):
        # feed everything up to this code slot (the chosen code before it and the forced tokens after that)
        if slot > start:
            chunk = answer[:, start:slot]
            n = chunk.shape[1]
            positions = state.next_position[:, None] + torch.arange(start, slot, device=device)
            zeros = torch.zeros((b, n), dtype=torch.long, device=device)
            logits = state.feed(chunk, positions, zeros, zeros.bool())[:, -1]
            start = slot
        answer[:, slot] = choose_tokens(logits, allowed, sampling, generator)
    return layout.tokens_to_codes(answer.cpu())
