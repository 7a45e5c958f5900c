"""Shared fixtures: the tiny token space and models, and writers of files in Chameleon's real formats."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import ChameleonConfig, ChameleonForConditionalGeneration

from worldvla_dist.model.presets import MODEL_PRESETS, ModelPreset
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.tokenizers.image_tokenizer import vqgan_config_to_yaml
from worldvla_dist.tokenizers.text_tokenizer import tiny_text_tokenizer_path
from worldvla_dist.tokenizers.vocabulary import chameleon_image_token_name
from worldvla_dist.tokenizers.vqgan import VQGANConfig, VQModel

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_preset() -> ModelPreset:
    return MODEL_PRESETS.get("tiny-cpu")


@pytest.fixture(scope="session")
def tokens(tiny_preset) -> TokenSpace:
    torch.manual_seed(0)
    return TokenSpace.for_preset(tiny_preset)


def make_tiny_model(tokens: TokenSpace, preset: ModelPreset, seed: int, dtype=torch.float64) -> WorldVLA:
    torch.manual_seed(seed)
    return WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg, dtype=dtype).eval()


@pytest.fixture(scope="session")
def tiny_model64(tokens, tiny_preset) -> WorldVLA:
    """A random tiny model in float64, where two equal decoding orders agree to the last bit that matters."""
    return make_tiny_model(tokens, tiny_preset, seed=1)


def random_codes(tokens: TokenSpace, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, tokens.vocab.num_image_codes, (n, tokens.layout.rows, tokens.layout.cols), generator=g)


def random_actions(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.3, 0.3, (n, 7))


# ---------------- Chameleon's real file formats, at toy size ----------------

CHAMELEON_TEXT_OFFSET = 16388  # text BPE pieces start after the reserved range in our fake map


def write_chameleon_text_tokenizer(path: Path, num_image_codes: int = 8192) -> dict[str, int]:
    """A `text_tokenizer.json` laid out like Chameleon's: <s> <pad> </s> <unk>, IMGIMG tokens at 4..,
    <eoss> 8196, <racm3:break> 8197, <reservedNNNNN> at NNNNN + 4, then BPE text pieces."""
    doc = json.loads(tiny_text_tokenizer_path().read_text())
    vocab: dict[str, int] = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    # Chameleon's image tokens are not in code order in the BPE map: list them sorted by name
    names = sorted(chameleon_image_token_name(c) for c in range(num_image_codes))
    vocab.update({name: 4 + i for i, name in enumerate(names)})
    vocab["<eoss>"], vocab["<racm3:break>"] = 8196, 8197
    vocab.update({f"<reserved{n:05d}>": n + 4 for n in range(8194, CHAMELEON_TEXT_OFFSET - 4)})
    vocab.update({piece: CHAMELEON_TEXT_OFFSET + i for piece, i in doc["model"]["vocab"].items()})
    doc["model"]["vocab"] = vocab
    path.write_text(json.dumps(doc))
    return vocab


def write_chameleon_vqgan(folder: Path, cfg: VQGANConfig, seed: int = 0) -> VQModel:
    """`vqgan.yaml` + a Lightning-style `vqgan.ckpt` (state_dict with loss weights, hyper-parameters object)."""
    torch.manual_seed(seed)
    model = VQModel(cfg).eval()
    (folder / "vqgan.yaml").write_text(vqgan_config_to_yaml(cfg))
    state = dict(model.state_dict())
    state["loss.discriminator.main.0.weight"] = torch.zeros(4, 3, 4, 4)
    torch.save({"state_dict": state, "global_step": 7, "hyper_parameters": argparse.Namespace(lr=4.5e-6)},
               folder / "vqgan.ckpt")
    return model


REFERENCE_VQGAN = VQGANConfig(n_embed=8192, embed_dim=8, z_channels=32, resolution=256, ch=32,
                              ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1)


@pytest.fixture(scope="session")
def chameleon_tokenizer_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("chameleon_tokenizer")
    write_chameleon_text_tokenizer(folder / "text_tokenizer.json")
    write_chameleon_vqgan(folder, REFERENCE_VQGAN)
    return folder


@pytest.fixture(scope="session")
def reference_checkpoint_dir(tmp_path_factory, chameleon_tokenizer_dir) -> Path:
    """A WorldVLA checkpoint as the reference writes it: transformers-4.x config of its Chameleon
    subclass (architectures, z_loss_weight, rope_theta) and bf16 weights in two safetensors shards."""
    folder = tmp_path_factory.mktemp("worldvla_reference")
    vocab_map = json.loads((chameleon_tokenizer_dir / "text_tokenizer.json").read_text())["model"]["vocab"]
    vq = REFERENCE_VQGAN
    vq_config = {"embed_dim": vq.embed_dim, "num_embeddings": vq.n_embed, "double_latent": False,
                 "latent_channels": vq.z_channels, "resolution": vq.resolution, "in_channels": 3,
                 "base_channels": vq.ch, "channel_multiplier": list(vq.ch_mult), "num_res_blocks": vq.num_res_blocks,
                 "attn_resolutions": None, "dropout": 0.0, "attn_type": "vanilla", "model_type": "chameleon_vqgan"}
    config = {"architectures": ["ChameleonXLLMXForConditionalGeneration"], "model_type": "chameleon",
              "vocab_size": 65536, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 4096,
              "rope_theta": 10000.0, "rope_scaling": None, "rms_norm_eps": 1e-5, "hidden_act": "silu",
              "attention_bias": False, "attention_dropout": 0.05, "model_parallel_size": 1, "swin_norm": False,
              "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16", "transformers_version": "4.44.0", "z_loss_weight": 1e-5,
              "action_dim": 7, "time_horizon": 5, "vq_config": vq_config, "vocabulary_map": vocab_map}
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(3)
    model = ChameleonForConditionalGeneration(ChameleonConfig.from_dict(config))
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    weight_map = {}
    for shard, shard_keys in shards.items():
        save_file({k: state[k] for k in shard_keys}, str(folder / shard), metadata={"format": "pt"})
        weight_map.update({k: shard for k in shard_keys})
    total = sum(v.numel() * v.element_size() for v in state.values())
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total},
                                                                     "weight_map": weight_map}))
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_preset) -> Path:
    """A random tiny-cpu model saved as our model folder (what jobs and actors load)."""
    from worldvla_dist.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    tokens = TokenSpace.for_preset(tiny_preset)
    return save_checkpoint(WorldVLA.build(tiny_preset, tokens.vocab, tokens.images.vqgan.cfg), tokens,
                           tmp_path_factory.mktemp("ckpt") / "checkpoint")
