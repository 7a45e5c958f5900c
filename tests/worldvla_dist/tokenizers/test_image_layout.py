import pytest
import torch

from worldvla_dist.errors import TokenizationError
from worldvla_dist.tokenizers.image_layout import ImageGeometry, ImageLayout
from worldvla_dist.tokenizers.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def chameleon_vocab(chameleon_tokenizer_dir):
    return Vocabulary.from_chameleon_tokenizer_file(chameleon_tokenizer_dir / "text_tokenizer.json")


@pytest.mark.parametrize("px, expected", [(256, 276), (512, 1060)])
def test_token_counts_match_worldvla(chameleon_vocab, px, expected):
    layout = ImageLayout(chameleon_vocab, ImageGeometry(px, px, 16))
    assert layout.num_tokens == expected


def test_reference_layout_at_256px(chameleon_vocab):
    layout = ImageLayout(chameleon_vocab, ImageGeometry(256, 256, 16))
    codes = torch.randint(0, 8192, (2, 16, 16))
    tokens = layout.codes_to_tokens(codes)
    row = tokens[0]
    assert row[:3].tolist() == [8197, 8812, 8812] and row[-1] == 8196
    body = row[3:-1].reshape(16, 17)
    assert (body[:, -1] == 8803).all()  # a newline after every row, the last included
    assert int(body[0, 0]) == chameleon_vocab.image_code_ids[int(codes[0, 0, 0])]
    assert torch.equal(layout.tokens_to_codes(tokens), codes)


def test_round_trip_tiny_non_square():
    v = Vocabulary.tiny()
    layout = ImageLayout(v, ImageGeometry(128, 64, 16))
    codes = torch.randint(0, v.num_image_codes, (5, 8, 4))
    tokens = layout.codes_to_tokens(codes)
    assert tokens[0, 1] == v.grid_id(4) and tokens[0, 2] == v.grid_id(2)  # height first
    assert torch.equal(layout.tokens_to_codes(tokens), codes)


def test_malformed_blocks_are_refused():
    v = Vocabulary.tiny()
    layout = ImageLayout(v, ImageGeometry(128, 128, 16))
    tokens = layout.codes_to_tokens(torch.zeros(1, 8, 8, dtype=torch.long))
    broken = tokens.clone()
    broken[0, 3 + 8] = v.image_code_ids[0]  # a code where the first newline belongs
    with pytest.raises(TokenizationError, match="position 11 should be"):
        layout.tokens_to_codes(broken)
    broken = tokens.clone()
    broken[0, 3] = v.boa_id  # a non-image token in a code slot
    with pytest.raises(TokenizationError, match="non-image token"):
        layout.tokens_to_codes(broken)
    with pytest.raises(TokenizationError, match=r"expected \(B, 76\)"):
        layout.tokens_to_codes(tokens[:, :-1])
    with pytest.raises(TokenizationError, match=r"expected codes \(B, 8, 8\)"):
        layout.codes_to_tokens(torch.zeros(1, 8, 7, dtype=torch.long))
    with pytest.raises(TokenizationError, match="multiples"):
        ImageGeometry(100, 100, 16)
