import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.tokenizers.vocabulary import (Vocabulary, chameleon_image_code_index,
                                                 chameleon_image_token_name)


def test_tiny_vocabulary_has_disjoint_ranges():
    v = Vocabulary.tiny()
    specials = {v.bos_id, v.pad_id, v.end_of_turn_id, v.boi_id, v.eoi_id, v.newline_id, v.boa_id, v.eoa_id}
    grid = set(range(v.grid_base_id, v.grid_base_id + v.max_grid + 1))
    codes, actions = set(v.image_code_ids), set(v.action_ids.tolist())
    text = set(range(*v.text_id_range()))
    groups = [specials, grid, codes, actions, text]
    assert sum(len(g) for g in groups) == len(set().union(*groups))
    assert max(set().union(*groups)) < v.size and v.size % 64 == 0
    assert v.image_code_mask.sum() == 256 and v.action_bin_mask.sum() == 256


def test_chameleon_ids_match_the_reference(chameleon_tokenizer_dir):
    v = Vocabulary.from_chameleon_tokenizer_file(chameleon_tokenizer_dir / "text_tokenizer.json")
    assert (v.boi_id, v.eoi_id, v.boa_id, v.eoa_id, v.end_of_turn_id, v.newline_id) == (8197, 8196, 10004, 15004, 8710, 8803)
    assert v.grid_id(8) == 8812 and v.grid_id(16) == 8820
    assert v.action_ids[0] == 10006 and v.action_ids[-1] == 10261
    assert v.size == 65536 and v.num_image_codes == 8192
    # the image tokens occupy ids 4..8195, in the permuted order of the name map
    assert sorted(v.image_code_ids) == list(range(4, 8196))
    assert list(v.image_code_ids) != list(range(4, 8196))
    assert int(v.token_to_code[v.image_code_ids[1234]]) == 1234


def test_chameleon_vocabulary_rejects_a_wrong_map():
    vocab = {"<s>": 0, "<pad>": 1, "<eoss>": 8196, "<racm3:break>": 9999}
    with pytest.raises(ConfigError, match="missing"):
        Vocabulary.chameleon(vocab)
    full = {**vocab, **{f"<reserved{n:05d}>": n + 4 for n in (8706, 8799, 8800, 10000, 15000)}}
    with pytest.raises(ConfigError, match=r"<racm3:break> has id 9999, the reference checkpoints use 8197"):
        Vocabulary.chameleon(full)


def test_image_token_names_round_trip():
    for code in (0, 7, 10, 123, 8191):
        assert chameleon_image_code_index(chameleon_image_token_name(code)) == code


def test_vocabulary_serialises():
    v = Vocabulary.tiny()
    assert Vocabulary.from_dict(v.to_dict()) == v
