import pytest
import torch
from transformers import ChameleonForConditionalGeneration

from worldvla_dist.errors import ConfigError
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import chameleon_config
from worldvla_dist.tokenizers.image_tokenizer import VQGAN_PRESETS
from worldvla_dist.tokenizers.vocabulary import Vocabulary


@pytest.mark.parametrize("name", ["worldvla-256", "worldvla-512"])
def test_7b_presets_have_chameleon_7b_shapes(name, chameleon_tokenizer_dir):
    preset = MODEL_PRESETS.get(name)
    vocab = Vocabulary.from_chameleon_tokenizer_file(chameleon_tokenizer_dir / "text_tokenizer.json")
    with torch.device("meta"):
        model = ChameleonForConditionalGeneration(chameleon_config(preset, vocab, VQGAN_PRESETS.get(preset.vqgan)))
    transformer = sum(p.numel() for n, p in model.named_parameters() if ".vqmodel." not in n)
    assert 7.0e9 < transformer < 7.1e9, transformer
    assert model.config.vocab_size == 65536


def test_tiny_preset_is_small(tokens, tiny_preset):
    from worldvla_dist.model.worldvla import WorldVLA
    model = WorldVLA.build(tiny_preset, tokens.vocab, tokens.images.vqgan.cfg)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) < 6e6


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown model preset 'tiny'; valid names are \['micro-cpu', 'tiny-cpu', 'worldvla-256', 'worldvla-512'\]"):
        MODEL_PRESETS.get("tiny")
