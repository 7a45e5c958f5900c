"""Trains the tiny CPU preset's byte-level BPE on the 130 LIBERO instructions and the two prompt
templates, and writes worldvla_dist/assets/tiny_text_tokenizer.json (committed; rerun only to change it).

    python scripts/build_tiny_text_tokenizer.py
"""

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from worldvla_dist.sequences.samples import ACTION_QUESTION, WORLD_QUESTION

ASSETS = Path(__file__).resolve().parents[1] / "worldvla_dist" / "assets"
VOCAB_SIZE = 512  # = Vocabulary.tiny().text_vocab_size


def main() -> None:
    tasks = json.loads((ASSETS / "libero_tasks.json").read_text())
    corpus = [ACTION_QUESTION.format(instruction=t["language"]) for t in tasks] + [WORLD_QUESTION] * 20
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.save(str(ASSETS / "tiny_text_tokenizer.json"))
    print(f"wrote {ASSETS / 'tiny_text_tokenizer.json'} with {tokenizer.get_vocab_size()} ids")


if __name__ == "__main__":
    main()
