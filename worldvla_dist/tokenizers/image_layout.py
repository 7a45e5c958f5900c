"""An image's place in the token sequence: `[BOI] [h-grid] [w-grid] (codes of a row, newline) x rows [EOI]`.

Grid tokens encode pixel size / 32, height first (8 at 256 px, 16 at 512 px); every row of codes,
the last included, ends with a newline token. 256 px with downsampling 16 is 276 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.tokenizers.vocabulary import Vocabulary

GRID_PATCH_PX = 32  # Chameleon's grid tokens count 32-pixel patches


@dataclass(frozen=True)
class ImageGeometry:
    """Pixel size of the model's images and the VQGAN's downsampling factor."""

    height_px: int
    width_px: int
    downsample: int

    def __post_init__(self) -> None:
        for side in (self.height_px, self.width_px):
            if side % GRID_PATCH_PX or side % self.downsample:
                raise TokenizationError(f"ImageGeometry: sides must be multiples of {GRID_PATCH_PX} and of "
                                        f"the downsampling {self.downsample}, got {self.height_px}x{self.width_px}")

    @property
    def code_rows(self) -> int:
        return self.height_px // self.downsample

    @property
    def code_cols(self) -> int:
        return self.width_px // self.downsample


class ImageLayout:
    """Vectorised conversion between code grids (B, rows, cols) and image token blocks (B, num_tokens)."""

    def __init__(self, vocab: Vocabulary, geometry: ImageGeometry):
        self.vocab = vocab
        self.geometry = geometry
        self.rows, self.cols = geometry.code_rows, geometry.code_cols
        self.h_grid = geometry.height_px // GRID_PATCH_PX
        self.w_grid = geometry.width_px // GRID_PATCH_PX
        self.template = self._template()

    @property
    def num_tokens(self) -> int:
        return 3 + self.rows * (self.cols + 1) + 1

    def _template(self) -> torch.Tensor:
        """(num_tokens,) ids with structural tokens in place and -1 where a code goes."""
        v = self.vocab
        grid = torch.full((self.rows, self.cols + 1), -1, dtype=torch.long)
        grid[:, -1] = v.newline_id
        head = torch.tensor([v.boi_id, v.grid_id(self.h_grid), v.grid_id(self.w_grid)])
        return torch.cat([head, grid.flatten(), torch.tensor([v.eoi_id])])

    @property
    def code_slots(self) -> torch.Tensor:
        """(num_tokens,) bool: True where the layout expects an image code."""
        return self.template < 0

    def codes_to_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, rows, cols) VQ code indices -> (B, num_tokens) token ids."""
        codes = torch.as_tensor(codes)
        if codes.ndim != 3 or tuple(codes.shape[1:]) != (self.rows, self.cols):
            raise TokenizationError(f"ImageLayout.codes_to_tokens: expected codes (B, {self.rows}, {self.cols}), "
                                    f"got {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= self.vocab.num_image_codes:
            raise TokenizationError(f"ImageLayout.codes_to_tokens: codes must be in [0, {self.vocab.num_image_codes}), "
                                    f"got [{int(codes.min())}, {int(codes.max())}]")
        out = self.template.repeat(codes.shape[0], 1)
        out[:, self.code_slots] = self.vocab.code_to_token[codes.long().reshape(codes.shape[0], -1)]
        return out

    def tokens_to_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, num_tokens) token ids -> (B, rows, cols) VQ code indices; malformed blocks are an error."""
        tokens = torch.as_tensor(tokens).long()
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[1] != self.num_tokens:
            raise TokenizationError(f"ImageLayout.tokens_to_codes: expected (B, {self.num_tokens}) tokens, "
                                    f"got {tuple(tokens.shape)}")
        structural = ~self.code_slots
        wrong = tokens[:, structural] != self.template[structural]
        if wrong.any():
            b, j = (int(x) for x in torch.nonzero(wrong)[0])
            pos = int(torch.nonzero(structural)[j])
            raise TokenizationError(f"ImageLayout.tokens_to_codes: row {b} position {pos} should be "
                                    f"{int(self.template[pos])}, got {int(tokens[b, pos])}")
        codes = self.vocab.token_to_code[tokens[:, self.code_slots]]
        if (codes < 0).any():
            b, j = (int(x) for x in torch.nonzero(codes < 0)[0])
            raise TokenizationError(f"ImageLayout.tokens_to_codes: row {b} code slot {j} holds a non-image token")
        return codes.reshape(tokens.shape[0], self.rows, self.cols)
