"""Model presets: the tiny CPU model and the two 7B WorldVLA shapes (Chameleon-7B, 256 or 512 px)."""

from __future__ import annotations

from dataclasses import dataclass

from worldvla_dist.config import Registry
from worldvla_dist.errors import ConfigError


@dataclass(frozen=True)
class LossConfig:
    """loss = weighted-mean CE (weight `image_weight` on image-code targets) + z_loss_weight * mean(lse^2)."""

    image_weight: float = 0.04  # alpha of the paper: L_action + alpha * L_world
    z_loss_weight: float = 1e-5

    def __post_init__(self) -> None:
        if self.image_weight <= 0 or self.z_loss_weight < 0:
            raise ConfigError(f"LossConfig: image_weight must be > 0 and z_loss_weight >= 0, got {self}")


@dataclass(frozen=True)
class ModelPreset:
    """Transformer shape, vocabulary kind and image geometry of one model family."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position_embeddings: int
    image_size_px: int
    vocabulary: str  # "tiny" (Vocabulary.tiny) or "chameleon" (from text_tokenizer.json)
    vqgan: str  # VQGAN preset name
    attention_dropout: float = 0.0
    rope_theta: float = 10000.0
    loss: LossConfig = LossConfig()

    def __post_init__(self) -> None:
        if self.vocabulary not in ("tiny", "chameleon"):
            raise ConfigError(f"ModelPreset {self.name}: vocabulary must be 'tiny' or 'chameleon', got {self.vocabulary!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"ModelPreset {self.name}: hidden_size {self.hidden_size} is not divisible by "
                              f"num_heads {self.num_heads}")


MODEL_PRESETS: Registry[ModelPreset] = Registry("model preset")
MODEL_PRESETS.register("tiny-cpu", ModelPreset(
    name="tiny-cpu", hidden_size=256, intermediate_size=704, num_layers=4, num_heads=8, num_kv_heads=8,
    max_position_embeddings=1024, image_size_px=128, vocabulary="tiny", vqgan="tiny"))
# A quarter-width, two-layer tiny model (~1 M parameters, ~8x less compute per token than tiny-cpu):
# what the closed-loop memorization test trains on 2 cores within minutes (issue 18).
MODEL_PRESETS.register("micro-cpu", ModelPreset(
    name="micro-cpu", hidden_size=128, intermediate_size=352, num_layers=2, num_heads=4, num_kv_heads=4,
    max_position_embeddings=1024, image_size_px=128, vocabulary="tiny", vqgan="tiny"))
# Chameleon-7B shapes; the reference trains with dropout 0.05.
_CHAMELEON_7B = dict(hidden_size=4096, intermediate_size=11008, num_layers=32, num_heads=32, num_kv_heads=32,
                     max_position_embeddings=4096, vocabulary="chameleon", vqgan="chameleon", attention_dropout=0.05)
MODEL_PRESETS.register("worldvla-256", ModelPreset(name="worldvla-256", image_size_px=256, **_CHAMELEON_7B))
MODEL_PRESETS.register("worldvla-512", ModelPreset(name="worldvla-512", image_size_px=512, **_CHAMELEON_7B))
