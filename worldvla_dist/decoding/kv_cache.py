"""A KV cache that writes new keys into spare room instead of re-allocating the whole cache each step.

transformers' DynamicLayer appends with `torch.cat`, which copies every cached key and value on every
decoding step: for B rollouts of a 64-code frame that copy grows with B and with the frame, and it was a
sixth of the world model's time at B = 8 on the CPU. Here each layer keeps a buffer with room to spare
(doubling when full) and hands the attention a view of its filled part: the same keys, no copy."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

INITIAL_ROOM = 256  # key slots beyond the first update; a prompt plus one frame of the tiny preset fits


class GrowingKVLayer(DynamicLayer):
    """`keys` / `values` are views (B, heads, n, d) of buffers with room for more."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer = self._value_buffer = None
        self._filled = 0

    def _make_room(self, key_states: torch.Tensor, value_states: torch.Tensor, needed: int) -> None:
        capacity = max(needed + INITIAL_ROOM, 2 * (0 if self._key_buffer is None else self._key_buffer.shape[-2]))
        keys = key_states.new_empty((*key_states.shape[:-2], capacity, key_states.shape[-1]))
        values = value_states.new_empty((*value_states.shape[:-2], capacity, value_states.shape[-1]))
        if self._filled:
            keys[..., :self._filled, :] = self._key_buffer[..., :self._filled, :]
            values[..., :self._filled, :] = self._value_buffer[..., :self._filled, :]
        self._key_buffer, self._value_buffer = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._filled + key_states.shape[-2]
        if self._key_buffer is None or end > self._key_buffer.shape[-2]:
            self._make_room(key_states, value_states, end)
        self._key_buffer[..., self._filled:end, :] = key_states
        self._value_buffer[..., self._filled:end, :] = value_states
        self._filled = end
        self.keys, self.values = self._key_buffer[..., :end, :], self._value_buffer[..., :end, :]
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.is_initialized:
            self._filled = self.keys.shape[-2]


class GrowingKVCache(DynamicCache):
    """A DynamicCache of GrowingKVLayers, one per decoder layer."""

    def __init__(self, num_layers: int):
        super(DynamicCache, self).__init__(layers=[GrowingKVLayer() for _ in range(num_layers)])
