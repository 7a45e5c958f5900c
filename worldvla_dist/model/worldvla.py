"""The WorldVLA model: transformers' Chameleon, logits through `model.model` + `lm_head`, and its loss.

The stock `ChameleonForConditionalGeneration.forward` sets every image-token logit to -inf (so a
loss over image targets would be inf, and no image could be generated); we never call it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import ChameleonConfig, ChameleonForConditionalGeneration
from transformers.cache_utils import Cache

from worldvla_dist.model.loss import LossOutput, worldvla_loss
from worldvla_dist.model.presets import ModelPreset
from worldvla_dist.sequences.collate import Batch
from worldvla_dist.sequences.samples import IGNORE_INDEX
from worldvla_dist.tokenizers.vocabulary import Vocabulary
from worldvla_dist.tokenizers.vqgan import TAMING_NORM_GROUPS, VQGANConfig


def chameleon_config(preset: ModelPreset, vocab: Vocabulary, vqgan: VQGANConfig) -> ChameleonConfig:
    """A transformers ChameleonConfig of the preset's shape; `vq_config` mirrors our image tokenizer so
    the checkpoint's `model.vqmodel` can hold the same encoder and codebook. transformers normalises in
    32 groups only, so a narrower tokenizer (the tiny preset's 16 channels) gets a 32-channel mirror:
    nothing tokenises with `model.vqmodel` (our own VQGAN does), it only keeps the checkpoint layout."""
    base_channels = TAMING_NORM_GROUPS * math.ceil(vqgan.ch / TAMING_NORM_GROUPS)  # = ch where ch allows
    vq_config = dict(embed_dim=vqgan.embed_dim, num_embeddings=vqgan.n_embed, double_latent=vqgan.double_z,
                     latent_channels=vqgan.z_channels, resolution=vqgan.resolution, in_channels=vqgan.in_channels,
                     base_channels=base_channels, channel_multiplier=list(vqgan.ch_mult),
                     num_res_blocks=vqgan.num_res_blocks, attn_resolutions=list(vqgan.attn_resolutions) or None,
                     dropout=vqgan.dropout)
    return ChameleonConfig(
        vocab_size=vocab.size, hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers, num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads, max_position_embeddings=preset.max_position_embeddings,
        attention_dropout=preset.attention_dropout, rope_parameters={"rope_type": "default", "rope_theta": preset.rope_theta},
        bos_token_id=vocab.bos_id, pad_token_id=vocab.pad_id, eos_token_id=vocab.end_of_turn_id,
        vocabulary_map=vocab.chameleon_vocabulary_map(), vq_config=vq_config, attn_implementation="sdpa")


class WorldVLA(nn.Module):
    """One model, two jobs. `forward(batch)` returns the training loss; `logits(...)` serves decoding."""

    def __init__(self, chameleon: ChameleonForConditionalGeneration, vocab: Vocabulary, preset: ModelPreset):
        super().__init__()
        self.chameleon = chameleon
        self.vocab = vocab
        self.preset = preset
        # model.vqmodel is the HF encoder copy of the image tokenizer; tokenising happens outside.
        self.chameleon.model.vqmodel.requires_grad_(False)

    @classmethod
    def build(cls, preset: ModelPreset, vocab: Vocabulary, vqgan: VQGANConfig,
              dtype: torch.dtype = torch.float32) -> "WorldVLA":
        model = ChameleonForConditionalGeneration(chameleon_config(preset, vocab, vqgan))
        return cls(model.to(dtype), vocab, preset)

    @property
    def dtype(self) -> torch.dtype:
        return self.chameleon.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.chameleon.lm_head.weight.device

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                      cache: Cache | None = None) -> tuple[torch.Tensor, Cache | None]:
        """(B, n) ids, (B, 1, n, cached + n) float mask, (B, n) positions -> (B, n, H) and the cache."""
        out = self.chameleon.model(input_ids=input_ids, attention_mask=attention_mask.to(self.dtype),
                                   position_ids=position_ids, cache=cache, use_cache=cache is not None)
        return out.last_hidden_state, out.cache

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
               cache: Cache | None = None) -> tuple[torch.Tensor, Cache | None]:
        hidden, cache = self.hidden_states(input_ids, attention_mask, position_ids, cache)
        return self.chameleon.lm_head(hidden), cache

    def forward(self, batch: Batch) -> LossOutput:
        hidden, _ = self.hidden_states(batch.input_ids, batch.attention_mask, batch.position_ids)
        targets = batch.labels[:, 1:]
        labelled = targets != IGNORE_INDEX
        # the LM head only at labelled positions: (N, V) instead of (B, L, V)
        logits = self.chameleon.lm_head(hidden[:, :-1][labelled])
        is_world = batch.is_world[:, None].expand_as(targets)[labelled]
        return worldvla_loss(logits, targets[labelled], is_world, self.vocab, self.preset.loss)
