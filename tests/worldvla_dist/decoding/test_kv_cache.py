"""The growing KV cache: the same keys, values and logits as transformers' DynamicCache, also after
it has had to grow (and copy) past its first buffer."""

import torch
from transformers.cache_utils import DynamicCache

from worldvla_dist.decoding.kv_cache import INITIAL_ROOM, GrowingKVCache
from worldvla_dist.sequences.attention_mask import action_attention_mask

from tests.conftest import random_codes


def test_layers_hold_what_concatenation_would_across_growth():
    cache, reference = GrowingKVCache(num_layers=2), DynamicCache()
    g = torch.Generator().manual_seed(0)
    lengths = [INITIAL_ROOM // 2, 1, INITIAL_ROOM, 3, 2 * INITIAL_ROOM, 1]  # crosses the first and second buffer
    for n in lengths:
        for layer in range(2):
            k, v = torch.randn(2, 4, n, 8, generator=g), torch.randn(2, 4, n, 8, generator=g)
            keys, values = cache.update(k, v, layer)
            want_k, want_v = reference.update(k, v, layer)
            assert torch.equal(keys, want_k) and torch.equal(values, want_v)
    assert cache.get_seq_length() == sum(lengths) == reference.get_seq_length()


def test_model_logits_equal_dynamic_cache_when_fed_in_pieces(tokens, tiny_model64):
    model = tiny_model64
    codes = random_codes(tokens, 3, seed=4)
    ids = torch.tensor([tokens.samples.action_prompt("pick up the bowl", list(codes))])
    ids = torch.cat([ids] * 3, dim=1)[:, :INITIAL_ROOM + 200]  # longer than the first buffer
    mask = action_attention_mask(ids, model.vocab, dtype=model.dtype)
    positions = torch.arange(ids.shape[1])[None]
    cuts = [0, 150, 151, INITIAL_ROOM + 10, ids.shape[1]]
    outputs = {}
    for name, cache in (("growing", GrowingKVCache(model.chameleon.config.num_hidden_layers)), ("dynamic", DynamicCache())):
        pieces = []
        for a, b in zip(cuts, cuts[1:]):
            logits, cache = model.logits(ids[:, a:b], mask[:, :, a:b, :b], positions[:, a:b], cache)
            pieces.append(logits)
        outputs[name] = torch.cat(pieces, dim=1)
    assert torch.equal(outputs["growing"], outputs["dynamic"])
