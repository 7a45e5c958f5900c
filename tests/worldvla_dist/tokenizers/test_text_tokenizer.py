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


UNSEEN = ["zyxqvbnm the flibbertigibbet", "Grab THE Xylophone!!", "pick up the ünïcödé bowl 🤖",
          "place it 3.5 cm left; then\tstop\n", "a" * 300, "ᚠᛇᚻ 漢字 \x00\x7f"]


def test_unseen_words_encode_byte_by_byte_and_round_trip():
    """The tiny tokenizer is byte-level BPE: every byte has a token, so no word is unknown (issue 20
    §4): paraphrases and arbitrary text encode into the text id range and decode back exactly."""
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = Vocabulary.tiny()
    text = TextTokenizer.tiny(vocab)
    pieces = text.tokenizer.get_vocab()
    assert all(byte in pieces for byte in ByteLevel.alphabet())  # the 256 byte symbols: the fallback
    lo, hi = vocab.text_id_range()
    for instruction in UNSEEN:
        ids = text.encode(ACTION_QUESTION.format(instruction=instruction))
        assert ids and all(lo <= i < hi for i in ids), instruction
        assert text.decode(ids) == ACTION_QUESTION.format(instruction=instruction)


def test_every_libero_pro_instruction_encodes():
    """The perturbed suites' instructions (LIBERO-PRO `_lan` paraphrases, `_task` goals) were never seen
    when the tiny tokenizer was trained; they encode and round-trip like the rest."""
    rows = json.loads((resources.files("worldvla_dist") / "assets" / "libero_pro_tasks.json").read_text())
    vocab = Vocabulary.tiny()
    text = TextTokenizer.tiny(vocab)
    lo, hi = vocab.text_id_range()
    assert len(rows) == 160
    for row in rows:
        ids = text.encode(row["language"])
        assert all(lo <= i < hi for i in ids) and text.decode(ids) == row["language"]


def test_the_policy_answers_an_instruction_of_unseen_words(tokens, tiny_preset):
    """What a SimWorker's request reaches: the PolicyServer's ChunkPolicy, prompting the tiny model."""
    import numpy as np
    import torch

    from tests.conftest import make_tiny_model
    from worldvla_dist.serving.chunk_policy import ChunkPolicy
    from worldvla_dist.serving.protocol import PolicyRequest

    policy = ChunkPolicy(make_tiny_model(tokens, tiny_preset, seed=5, dtype=torch.float32), tokens)
    frames = list(np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8))
    chunks = policy.predict([PolicyRequest(u, frames, 5, "x") for u in UNSEEN[:3]])
    assert [c.shape for c in chunks] == [(5, 7)] * 3 and all(np.isfinite(c).all() for c in chunks)
