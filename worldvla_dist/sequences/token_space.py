"""Everything that turns observations into tokens and back, built together so the pieces agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from worldvla_dist.errors import CheckpointError, ConfigError
from worldvla_dist.model.presets import ModelPreset
from worldvla_dist.sequences.samples import SampleBuilder
from worldvla_dist.tokenizers.action_tokenizer import ActionTokenizer
from worldvla_dist.tokenizers.image_layout import ImageLayout
from worldvla_dist.tokenizers.image_tokenizer import VQGAN_CKPT, VQGAN_YAML, ImageTokenizer
from worldvla_dist.tokenizers.text_tokenizer import CHAMELEON_TEXT_TOKENIZER, TextTokenizer
from worldvla_dist.tokenizers.vocabulary import Vocabulary

TOKENIZER_FILES = (CHAMELEON_TEXT_TOKENIZER, VQGAN_YAML, VQGAN_CKPT)
VOCABULARY_JSON = "vocabulary.json"  # written for non-Chameleon id maps (the tiny preset)


@dataclass
class TokenSpace:
    vocab: Vocabulary
    text: TextTokenizer
    actions: ActionTokenizer
    images: ImageTokenizer
    layout: ImageLayout
    samples: SampleBuilder

    @classmethod
    def assemble(cls, vocab: Vocabulary, text: TextTokenizer, images: ImageTokenizer) -> "TokenSpace":
        if images.vqgan.cfg.n_embed != vocab.num_image_codes:
            raise ConfigError(f"TokenSpace: the VQGAN has {images.vqgan.cfg.n_embed} codes, "
                              f"vocabulary {vocab.name} has {vocab.num_image_codes} image tokens")
        actions = ActionTokenizer(vocab)
        layout = ImageLayout(vocab, images.geometry)
        return cls(vocab, text, actions, images, layout, SampleBuilder(text, actions, layout))

    @classmethod
    def for_preset(cls, preset: ModelPreset) -> "TokenSpace":
        """A fresh (untrained image tokenizer) token space for a `tiny` preset: for tests and new runs."""
        if preset.vocabulary != "tiny":
            raise ConfigError(f"TokenSpace.for_preset: {preset.name} needs Chameleon's tokenizer files; "
                              "use TokenSpace.from_tokenizer_dir")
        images = ImageTokenizer.from_preset(preset.vqgan, preset.image_size_px)
        vocab = Vocabulary.tiny(num_image_codes=images.vqgan.cfg.n_embed)
        return cls.assemble(vocab, TextTokenizer.tiny(vocab), images)

    @classmethod
    def from_tokenizer_dir(cls, path: str | Path, image_size_px: int, vocab: Vocabulary | None = None) -> "TokenSpace":
        """Chameleon's `tokenizer/` folder (text_tokenizer.json, vqgan.yaml, vqgan.ckpt) or ours. Without
        `vocab`, the ids come from the folder's vocabulary.json, else they are Chameleon's, read from
        text_tokenizer.json."""
        path = Path(path)
        missing = [n for n in TOKENIZER_FILES if not (path / n).is_file()]
        if missing:
            present = sorted(p.name for p in path.iterdir()) if path.is_dir() else "no such folder"
            raise CheckpointError(f"tokenizer folder {path}: expected {list(TOKENIZER_FILES)}, missing {missing}; "
                                  f"found {present}")
        if vocab is None and (path / VOCABULARY_JSON).is_file():
            vocab = Vocabulary.from_dict(json.loads((path / VOCABULARY_JSON).read_text()))
        vocab = vocab or Vocabulary.from_chameleon_tokenizer_file(path / CHAMELEON_TEXT_TOKENIZER)
        text = TextTokenizer.from_file(path / CHAMELEON_TEXT_TOKENIZER, vocab)
        return cls.assemble(vocab, text, ImageTokenizer.from_dir(path, image_size_px))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.text.tokenizer.save(str(path / CHAMELEON_TEXT_TOKENIZER))
        self.images.save(path)
        (path / VOCABULARY_JSON).write_text(json.dumps(self.vocab.to_dict()))
