"""Action and world samples as token ids + labels, in the reference layout (WORLDVLA.md).

A sample is two turns: `[BOS] question <images/action> [EOT]` then `answer [EOT]`. Only the answer
turn (and its end-of-turn token) is labelled; the prompt is -100.
- action sample: question(instruction) + M images -> K actions, each `[BOA] 7 bins [EOA]`;
- world sample: fixed question + image_t + action_t -> image_{t+1} (N = 1 history pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.tokenizers.action_tokenizer import ActionTokenizer
from worldvla_dist.tokenizers.image_layout import ImageLayout
from worldvla_dist.tokenizers.text_tokenizer import TextTokenizer

ACTION_QUESTION = "What action should the robot take to {instruction}?"
WORLD_QUESTION = ("Generate the next image based on the provided sequence of historical images and "
                  "corresponding actions.")
IGNORE_INDEX = -100
SampleKind = Literal["action", "world"]


@dataclass
class TokenSample:
    """One training record: `input_ids` and `labels` are (L,) int64; `kind` says which loss it feeds."""

    input_ids: np.ndarray
    labels: np.ndarray
    kind: SampleKind

    @property
    def prompt_length(self) -> int:
        return int(np.argmax(self.labels != IGNORE_INDEX))


class SampleBuilder:
    """Builds prompts and labelled samples from VQ codes, instructions and actions."""

    def __init__(self, text: TextTokenizer, actions: ActionTokenizer, layout: ImageLayout):
        self.text, self.actions, self.layout = text, actions, layout
        self.vocab = layout.vocab
        self._world_question = text.encode(WORLD_QUESTION)

    def _image_tokens(self, codes: Sequence[torch.Tensor] | torch.Tensor) -> list[int]:
        stacked = torch.stack([torch.as_tensor(c) for c in codes]) if isinstance(codes, (list, tuple)) \
            else torch.as_tensor(codes)
        if stacked.ndim == 2:
            stacked = stacked[None]
        return self.layout.codes_to_tokens(stacked).flatten().tolist()

    def action_prompt(self, instruction: str, history_codes: Sequence[torch.Tensor]) -> list[int]:
        """`[BOS] question image_1..image_M [EOT]`; history_codes are M (rows, cols) code grids, oldest first."""
        if len(history_codes) == 0:
            raise TokenizationError("SampleBuilder.action_prompt: needs at least one image")
        question = self.text.encode(ACTION_QUESTION.format(instruction=instruction))
        return [self.vocab.bos_id, *question, *self._image_tokens(list(history_codes)), self.vocab.end_of_turn_id]

    def action_answer(self, actions: np.ndarray) -> list[int]:
        """(K, 7) actions -> K blocks `[BOA] 7 bins [EOA]` then `[EOT]`."""
        actions = np.asarray(actions)
        if actions.ndim != 2:
            raise TokenizationError(f"SampleBuilder.action_answer: expected actions (K, 7), got {actions.shape}")
        return [*self.actions.encode_blocks(actions).flatten().tolist(), self.vocab.end_of_turn_id]

    def world_prompt(self, codes: torch.Tensor, action: np.ndarray) -> list[int]:
        """`[BOS] question image_t [BOA] a_t [EOA] [EOT]`."""
        action = np.asarray(action)
        if action.shape != (7,):
            raise TokenizationError(f"SampleBuilder.world_prompt: expected one action (7,), got {action.shape}")
        return [self.vocab.bos_id, *self._world_question, *self._image_tokens(codes),
                *self.actions.encode_blocks(action[None]).flatten().tolist(), self.vocab.end_of_turn_id]

    def world_answer(self, next_codes: torch.Tensor) -> list[int]:
        return [*self._image_tokens(next_codes), self.vocab.end_of_turn_id]

    def action_sample(self, instruction: str, history_codes: Sequence[torch.Tensor], actions: np.ndarray) -> TokenSample:
        return _labelled(self.action_prompt(instruction, history_codes), self.action_answer(actions), "action")

    def world_sample(self, codes: torch.Tensor, action: np.ndarray, next_codes: torch.Tensor) -> TokenSample:
        return _labelled(self.world_prompt(codes, action), self.world_answer(next_codes), "world")


def _labelled(prompt: list[int], answer: list[int], kind: SampleKind) -> TokenSample:
    ids = np.asarray(prompt + answer, dtype=np.int64)
    labels = np.asarray([IGNORE_INDEX] * len(prompt) + answer, dtype=np.int64)
    return TokenSample(ids, labels, kind)
