"""Text -> token ids through a `tokenizers` BPE file: Chameleon's `text_tokenizer.json` for the real
presets, or the tiny tokenizer shipped in `worldvla_dist/assets/` for the CPU preset."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from worldvla_dist.errors import CheckpointError, TokenizationError
from worldvla_dist.tokenizers.vocabulary import Vocabulary

TINY_TEXT_TOKENIZER = "tiny_text_tokenizer.json"
CHAMELEON_TEXT_TOKENIZER = "text_tokenizer.json"


def tiny_text_tokenizer_path() -> Path:
    return Path(str(resources.files("worldvla_dist") / "assets" / TINY_TEXT_TOKENIZER))


class TextTokenizer:
    """Maps text to global token ids (raw BPE id + the vocabulary's text offset) and back."""

    def __init__(self, tokenizer: Tokenizer, vocab: Vocabulary, source: str):
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.source = source
        raw_size = tokenizer.get_vocab_size(with_added_tokens=True)
        if raw_size > vocab.text_vocab_size:
            raise TokenizationError(f"{source}: tokenizer has {raw_size} ids, vocabulary {vocab.name} "
                                    f"reserves {vocab.text_vocab_size} for text")

    @classmethod
    def from_file(cls, path: str | Path, vocab: Vocabulary) -> "TextTokenizer":
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"text tokenizer {path} does not exist")
        return cls(Tokenizer.from_file(str(path)), vocab, str(path))

    @classmethod
    def tiny(cls, vocab: Vocabulary) -> "TextTokenizer":
        return cls.from_file(tiny_text_tokenizer_path(), vocab)

    def encode(self, text: str) -> list[int]:
        """Text -> global ids, without BOS or any other special token."""
        raw = self.tokenizer.encode(text, add_special_tokens=False).ids
        return [r + self.vocab.text_id_offset for r in raw]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([i - self.vocab.text_id_offset for i in ids])
