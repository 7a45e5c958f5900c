import json
from importlib import resources

from worldvla_dist.sequences.samples import ACTION_QUESTION
from worldvla_dist.tokenizers.text_tokenizer import TextTokenizer
from worldvla_dist.tokenizers.vocabulary import Vocabulary

from tests.conftest import CHAMELEON_TEXT_OFFSET


def libero_instructions() -> list[str]:
    tasks = json.loads((resources.files("worldvla_dist") / "assets" / "libero_tasks.json").read_text())
    return [t["language"] for t in tasks]


def test_tiny_tokenizer_covers_every_libero_instruction():
    vocab = Vocabulary.tiny()
    text = TextTokenizer.tiny(vocab)
    instructions = libero_instructions()
    assert len(instructions) == 130
    lo, hi = vocab.text_id_range()
    for instruction in instructions:
        prompt = ACTION_QUESTION.format(instruction=instruction)
        ids = text.encode(prompt)
        assert all(lo <= i < hi for i in ids)
        assert text.decode(ids) == prompt
    assert len(text.encode(ACTION_QUESTION.format(instruction=instructions[0]))) < 40  # BPE merged, not bytes


def test_chameleon_format_tokenizer_gives_global_ids(chameleon_tokenizer_dir):
    path = chameleon_tokenizer_dir / "text_tokenizer.json"
    vocab = Vocabulary.from_chameleon_tokenizer_file(path)
    text = TextTokenizer.from_file(path, vocab)
    ids = text.encode("open the top drawer")
    assert min(ids) >= CHAMELEON_TEXT_OFFSET
    assert text.decode(ids) == "open the top drawer"
