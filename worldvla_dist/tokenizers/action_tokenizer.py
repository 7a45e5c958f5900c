"""7-D robot actions <-> action-bin token ids, with the reference bounds and binning.

The reference normalises each dimension to [-1, 1] with fixed bounds, then takes
`np.digitize(x, linspace(-1, 1, 256))` (values 1..256) and adds BOA + 1. Decoding maps a bin to the
centre of its interval (the 256th value, x == 1 exactly, shares the last centre). Both directions
are vectorised over any leading shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.tokenizers.vocabulary import Vocabulary

ACTION_DIM = 7
ACTION_BLOCK_LEN = ACTION_DIM + 2  # [BOA] 7 bins [EOA]


@dataclass(frozen=True)
class ActionBounds:
    """Per-dimension clip bounds: 3 delta position, 3 delta rotation, 1 absolute gripper."""

    low: tuple[float, ...]
    high: tuple[float, ...]


REFERENCE_BOUNDS = ActionBounds(
    low=(-0.9375, -0.9375, -0.9375, -0.32571429, -0.375, -0.375, -1.0),
    high=(0.9375, 0.9375, 0.9375, 0.375, 0.375, 0.375, 1.0),
)
_EPS = 1e-8  # the reference adds it to (high - low); kept so our bins equal theirs


def _as_float_actions(actions: np.ndarray | torch.Tensor, where: str) -> np.ndarray:
    if isinstance(actions, torch.Tensor):
        actions = actions.detach().cpu().numpy()
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim == 0 or actions.shape[-1] != ACTION_DIM:
        raise TokenizationError(f"{where}: expected actions of shape (..., {ACTION_DIM}), got {actions.shape}")
    bad = ~np.isfinite(actions)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise TokenizationError(f"{where}: actions must be finite, got {actions[first]} at index {first}")
    return actions


class ActionTokenizer:
    """Encodes (..., 7) float actions to (..., 7) bin token ids and back."""

    def __init__(self, vocab: Vocabulary, bounds: ActionBounds = REFERENCE_BOUNDS):
        self.vocab = vocab
        self.low = np.asarray(bounds.low, dtype=np.float64)
        self.high = np.asarray(bounds.high, dtype=np.float64)
        if self.low.shape != (ACTION_DIM,) or self.high.shape != (ACTION_DIM,) or (self.high <= self.low).any():
            raise TokenizationError(f"ActionTokenizer: bounds must be 7 pairs with low < high, got {bounds}")
        n = vocab.num_action_bins
        self.edges = np.linspace(-1.0, 1.0, n)
        self.centers = (self.edges[:-1] + self.edges[1:]) / 2.0

    @property
    def bin_width(self) -> np.ndarray:
        """(7,) width of one bin in action units: round-trip error is at most half of it."""
        return (self.high - self.low + _EPS) / (len(self.edges) - 1)

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        norm = 2.0 * (actions - self.low) / (self.high - self.low + _EPS) - 1.0
        return np.clip(norm, -1.0, 1.0)

    def denormalize(self, norm: np.ndarray) -> np.ndarray:
        return (norm + 1.0) / 2.0 * (self.high - self.low + _EPS) + self.low

    def encode(self, actions: np.ndarray | torch.Tensor) -> np.ndarray:
        """(..., 7) float -> (..., 7) int64 token ids in the action-bin range."""
        actions = _as_float_actions(actions, "ActionTokenizer.encode")
        bins = np.digitize(self.normalize(actions), self.edges) - 1  # 0..255
        return (bins + self.vocab.action_first_id).astype(np.int64)

    def decode(self, token_ids: np.ndarray | torch.Tensor) -> np.ndarray:
        """(..., 7) action-bin token ids -> (..., 7) float32 actions at bin centres."""
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.detach().cpu().numpy()
        token_ids = np.asarray(token_ids)
        if token_ids.ndim == 0 or token_ids.shape[-1] != ACTION_DIM:
            raise TokenizationError(f"ActionTokenizer.decode: expected ids of shape (..., {ACTION_DIM}), "
                                    f"got {token_ids.shape}")
        bins = token_ids.astype(np.int64) - self.vocab.action_first_id
        outside = (bins < 0) | (bins >= self.vocab.num_action_bins)
        if outside.any():
            first = tuple(int(i) for i in np.argwhere(outside)[0])
            raise TokenizationError(
                f"ActionTokenizer.decode: id {int(token_ids[first])} at {first} is not an action bin "
                f"(expected {self.vocab.action_first_id}..{self.vocab.action_first_id + self.vocab.num_action_bins - 1})")
        norm = self.centers[np.clip(bins, 0, len(self.centers) - 1)]
        return self.denormalize(norm).astype(np.float32)

    def quantize(self, actions: np.ndarray | torch.Tensor) -> np.ndarray:
        """(..., 7) float -> (..., 7) float64: the bin centres the model can output for them,
        decode(encode(x)). An expert that executes these records demos that replay the same once
        tokenized (the reference bounds clip at +-0.9375 where the expert commands up to 1.0)."""
        return self.decode(self.encode(actions)).astype(np.float64)

    def encode_blocks(self, actions: np.ndarray | torch.Tensor) -> np.ndarray:
        """(..., K, 7) actions -> (..., K, 9) ids, each action wrapped as [BOA] 7 bins [EOA]."""
        ids = self.encode(actions)
        shape = ids.shape[:-1] + (1,)
        boa = np.full(shape, self.vocab.boa_id, dtype=np.int64)
        eoa = np.full(shape, self.vocab.eoa_id, dtype=np.int64)
        return np.concatenate([boa, ids, eoa], axis=-1)
