import json
import shutil

import numpy as np
import pytest
import torch

from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.errors import CheckpointError
from worldvla_dist.model.checkpoint import load_checkpoint, save_checkpoint
from worldvla_dist.sequences.attention_mask import action_attention_mask

from tests.conftest import make_tiny_model, random_actions, random_codes


def logits_of(model, ids):
    ids = torch.as_tensor(ids)[None]
    mask = action_attention_mask(ids, model.vocab, dtype=model.dtype)
    return model.logits(ids, mask, torch.arange(ids.shape[1])[None])[0]


def test_our_folder_round_trips(tmp_path, tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=4, dtype=torch.float32)
    save_checkpoint(model, tokens, tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["z_loss_weight"] == 1e-5
    loaded, space = load_checkpoint(tmp_path / "ckpt")
    assert space.vocab == tokens.vocab and loaded.preset == tiny_preset
    codes = random_codes(tokens, 2, seed=4)
    sample = tokens.samples.action_sample("open", [codes[0], codes[1]], random_actions(5, 4))
    assert torch.equal(logits_of(model, sample.input_ids), logits_of(loaded, sample.input_ids))
    images = np.random.default_rng(0).integers(0, 256, (1, 128, 128, 3), dtype=np.uint8)
    assert torch.equal(space.images.encode(images), tokens.images.encode(images))


def test_reference_checkpoint_loads_and_decodes(reference_checkpoint_dir, chameleon_tokenizer_dir):
    model, space = load_checkpoint(reference_checkpoint_dir, tokenizer_dir=chameleon_tokenizer_dir,
                                   preset="worldvla-256")
    assert model.chameleon.config.hidden_size == 64 and model.preset.loss.z_loss_weight == 1e-5
    assert space.layout.num_tokens == 276 and space.vocab.boa_id == 10004
    images = np.random.default_rng(1).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    codes = space.images.encode(images)
    prompt = space.samples.action_prompt("put the bowl on the plate", [codes[0], codes[1]])
    actions = parallel_decode_actions(model, [prompt], num_actions=5)
    assert actions.shape == (1, 5, 7)
    assert ((actions >= 10006) & (actions <= 10261)).all()
    assert np.abs(space.actions.decode(actions)).max() <= 1.0
    # the bf16 weights came through exactly
    from safetensors.torch import load_file
    index = json.loads((reference_checkpoint_dir / "model.safetensors.index.json").read_text())["weight_map"]
    key = "model.layers.1.mlp.down_proj.weight"
    stored = load_file(str(reference_checkpoint_dir / index[key]))[key]
    assert torch.equal(model.chameleon.state_dict()[key], stored.float())


def copy_without(src, dst, name):
    shutil.copytree(src, dst)
    target = dst / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return dst


def test_missing_files_are_named(tmp_path, tokens, tiny_preset, reference_checkpoint_dir, chameleon_tokenizer_dir):
    model = make_tiny_model(tokens, tiny_preset, seed=4, dtype=torch.float32)
    ours = save_checkpoint(model, tokens, tmp_path / "ours")
    with pytest.raises(CheckpointError, match=r"expected model.safetensors or model.safetensors.index.json, found \["):
        load_checkpoint(copy_without(ours, tmp_path / "a", "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"expected config.json"):
        load_checkpoint(copy_without(ours, tmp_path / "b", "config.json"))
    with pytest.raises(CheckpointError, match=r"missing \['vqgan.ckpt'\]"):
        load_checkpoint(copy_without(ours, tmp_path / "c", "tokenizer/vqgan.ckpt"))
    with pytest.raises(CheckpointError, match=r"lists shards \['model-00002-of-00002.safetensors'\]"):
        load_checkpoint(copy_without(reference_checkpoint_dir, tmp_path / "d", "model-00002-of-00002.safetensors"),
                        tokenizer_dir=chameleon_tokenizer_dir, preset="worldvla-256")
    with pytest.raises(CheckpointError, match="pass tokenizer_dir"):
        load_checkpoint(reference_checkpoint_dir)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
