"""One id map for the whole token space: text, image codes, action bins and the special tokens.

The real presets use Chameleon's ids exactly (built from its `text_tokenizer.json`); the tiny CPU
preset uses a small vocabulary with the same structure, so every other module is written once.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldvla_dist.errors import ConfigError, TokenizationError

NUM_ACTION_BINS = 256

# Chameleon's vocabulary: reserved token <reservedNNNNN> has id NNNNN + 4 (WORLDVLA.md).
CHAMELEON_SPECIAL_NAMES = {
    "bos_id": "<s>",
    "pad_id": "<pad>",
    "eoi_id": "<eoss>",
    "boi_id": "<racm3:break>",
    "end_of_turn_id": "<reserved08706>",
    "newline_id": "<reserved08799>",
    "grid_base_id": "<reserved08800>",  # grid value n -> <reserved{8800+n}>
    "boa_id": "<reserved10000>",
    "eoa_id": "<reserved15000>",
}
CHAMELEON_IDS = {
    "eoi_id": 8196,
    "boi_id": 8197,
    "end_of_turn_id": 8710,
    "newline_id": 8803,
    "grid_base_id": 8804,
    "boa_id": 10004,
    "eoa_id": 15004,
}
CHAMELEON_VOCAB_SIZE = 65536
_IMAGE_NAME_PREFIX = "IMGIMG"


def chameleon_image_code_index(name: str) -> int:
    """`IMGIMG` + digits written as letters A..J + one closing letter -> the VQ code index."""
    digits = name[len(_IMAGE_NAME_PREFIX) : -1]
    return int("".join(str(ord(c) - ord("A")) for c in digits))


def chameleon_image_token_name(code: int) -> str:
    """Inverse of `chameleon_image_code_index` (the closing letter is `Z`, as in Chameleon's map)."""
    return _IMAGE_NAME_PREFIX + "".join(chr(ord("A") + int(d)) for d in str(code)) + "Z"


@dataclass(frozen=True)
class Vocabulary:
    """Where each kind of token lives in the model's vocabulary.

    `image_code_ids[c]` is the token id of VQ code `c`. Action bin `b` (0..255) is token
    `action_first_id + b`. Text tokens come from a BPE tokenizer whose raw id `r` is token
    `text_id_offset + r`.
    """

    name: str
    size: int
    bos_id: int
    pad_id: int
    end_of_turn_id: int
    boi_id: int
    eoi_id: int
    newline_id: int
    grid_base_id: int
    max_grid: int
    boa_id: int
    eoa_id: int
    action_first_id: int
    image_code_ids: tuple[int, ...]
    text_id_offset: int
    text_vocab_size: int
    num_action_bins: int = NUM_ACTION_BINS

    def __post_init__(self) -> None:
        ids = [self.bos_id, self.pad_id, self.end_of_turn_id, self.boi_id, self.eoi_id, self.newline_id,
               self.boa_id, self.eoa_id, self.action_first_id + self.num_action_bins - 1,
               self.grid_base_id + self.max_grid, max(self.image_code_ids)]
        if max(ids) >= self.size or min(ids) < 0:
            raise ConfigError(f"Vocabulary {self.name}: ids must lie in [0, {self.size}), got max {max(ids)}")
        if len(set(self.image_code_ids)) != len(self.image_code_ids):
            raise ConfigError(f"Vocabulary {self.name}: image code ids are not unique")
        overlap = set(self.image_code_ids) & set(self.action_ids.tolist())
        if overlap:
            raise ConfigError(f"Vocabulary {self.name}: image and action ids overlap at {sorted(overlap)[:5]}")

    # ---- derived lookups (cached; the dataclass stays frozen) ----
    @property
    def num_image_codes(self) -> int:
        return len(self.image_code_ids)

    @cached_property
    def action_ids(self) -> np.ndarray:
        return np.arange(self.action_first_id, self.action_first_id + self.num_action_bins)

    @cached_property
    def code_to_token(self) -> torch.Tensor:
        """(num_codes,) int64: VQ code index -> token id."""
        return torch.tensor(self.image_code_ids, dtype=torch.long)

    @cached_property
    def token_to_code(self) -> torch.Tensor:
        """(size,) int64: token id -> VQ code index, -1 for tokens that are not image codes."""
        table = torch.full((self.size,), -1, dtype=torch.long)
        table[self.code_to_token] = torch.arange(self.num_image_codes)
        return table

    @cached_property
    def image_code_mask(self) -> torch.Tensor:
        """(size,) bool: True at image-code token ids."""
        return self.token_to_code >= 0

    @cached_property
    def action_bin_mask(self) -> torch.Tensor:
        """(size,) bool: True at action-bin token ids."""
        mask = torch.zeros(self.size, dtype=torch.bool)
        mask[self.action_first_id : self.action_first_id + self.num_action_bins] = True
        return mask

    def grid_id(self, n: int) -> int:
        if not 0 <= n <= self.max_grid:
            raise TokenizationError(f"Vocabulary {self.name}: grid value must be in [0, {self.max_grid}], got {n}")
        return self.grid_base_id + n

    def text_id_range(self) -> tuple[int, int]:
        """[start, stop) of the ids the text tokenizer may produce (for the tiny vocabulary)."""
        return self.text_id_offset, self.text_id_offset + self.text_vocab_size

    # ---- serialisation (checkpoint sidecar) ----
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["image_code_ids"] = list(self.image_code_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Vocabulary":
        d = dict(d)
        d["image_code_ids"] = tuple(int(x) for x in d["image_code_ids"])
        return cls(**d)

    # ---- constructors ----
    @classmethod
    def tiny(cls, num_image_codes: int = 256, text_vocab_size: int = 512, max_grid: int = 32) -> "Vocabulary":
        """Small vocabulary for the CPU preset, laid out like Chameleon's (specials, codes, actions, text)."""
        first_code = 4  # 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, as in Chameleon
        codes = tuple(range(first_code, first_code + num_image_codes))
        nxt = first_code + num_image_codes
        eoi, boi, eot, newline = nxt, nxt + 1, nxt + 2, nxt + 3
        grid_base = nxt + 4
        boa = grid_base + max_grid + 1
        eoa = boa + 1
        action_first = eoa + 1
        text_offset = action_first + NUM_ACTION_BINS
        size = text_offset + text_vocab_size
        size = (size + 63) // 64 * 64  # embedding rows in multiples of 64
        return cls(name="tiny", size=size, bos_id=0, pad_id=1, end_of_turn_id=eot, boi_id=boi, eoi_id=eoi,
                   newline_id=newline, grid_base_id=grid_base, max_grid=max_grid, boa_id=boa, eoa_id=eoa,
                   action_first_id=action_first, image_code_ids=codes, text_id_offset=text_offset,
                   text_vocab_size=text_vocab_size)

    @classmethod
    def chameleon(cls, token_to_id: dict[str, int], source: str = "vocabulary map") -> "Vocabulary":
        """Chameleon's ids, read from its BPE vocabulary (`text_tokenizer.json` -> model.vocab) and checked
        against the ids the reference checkpoints were trained with."""
        found = {}
        for field, token in CHAMELEON_SPECIAL_NAMES.items():
            if token not in token_to_id:
                raise ConfigError(f"{source}: token {token!r} ({field}) is missing; is this Chameleon's tokenizer?")
            found[field] = token_to_id[token]
        for field, expected in CHAMELEON_IDS.items():
            if found[field] != expected:
                raise ConfigError(f"{source}: {CHAMELEON_SPECIAL_NAMES[field]} has id {found[field]}, "
                                  f"the reference checkpoints use {expected}")
        image = {chameleon_image_code_index(n): i for n, i in token_to_id.items() if n.startswith(_IMAGE_NAME_PREFIX)}
        if sorted(image) != list(range(len(image))) or not image:
            raise ConfigError(f"{source}: image tokens do not cover codes 0..N-1 (found {len(image)})")
        codes = tuple(image[c] for c in range(len(image)))
        size = max(CHAMELEON_VOCAB_SIZE, max(token_to_id.values()) + 1)
        return cls(name="chameleon", size=size, bos_id=found["bos_id"], pad_id=found["pad_id"],
                   end_of_turn_id=found["end_of_turn_id"], boi_id=found["boi_id"], eoi_id=found["eoi_id"],
                   newline_id=found["newline_id"], grid_base_id=found["grid_base_id"], max_grid=64,
                   boa_id=found["boa_id"], eoa_id=found["eoa_id"], action_first_id=found["boa_id"] + 2,
                   image_code_ids=codes, text_id_offset=0, text_vocab_size=size)

    @classmethod
    def from_chameleon_tokenizer_file(cls, path: str | Path) -> "Vocabulary":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Chameleon text tokenizer {path} does not exist")
        with path.open(encoding="utf8") as f:
            vocab = json.load(f)["model"]["vocab"]
        return cls.chameleon(vocab, source=str(path))

    def chameleon_vocabulary_map(self) -> dict[str, int]:
        """A `vocabulary_map` for transformers' ChameleonConfig naming our image tokens Chameleon's way."""
        vm = {chameleon_image_token_name(c): t for c, t in enumerate(self.image_code_ids)}
        vm["<image>"] = self.pad_id  # only used by the stock pixel_values path, which we never take
        return vm
