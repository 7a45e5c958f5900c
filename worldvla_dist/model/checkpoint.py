"""Model folders: the reference's (HF safetensors of its Chameleon subclass + Chameleon's tokenizer
folder) and ours (the same files plus `worldvla_dist.json` and a `tokenizer/` copy, so one folder
is enough for the PolicyServer).

    ours:      config.json  model.safetensors  worldvla_dist.json  tokenizer/{text_tokenizer.json, vqgan.yaml, vqgan.ckpt}
    reference: config.json  model.safetensors | model.safetensors.index.json + shards   (tokenizer folder given apart)
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import torch
from transformers import ChameleonForConditionalGeneration

from worldvla_dist.config import from_dict
from worldvla_dist.errors import CheckpointError
from worldvla_dist.model.presets import MODEL_PRESETS, ModelPreset
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.tokenizers.vocabulary import Vocabulary

log = logging.getLogger(__name__)

CONFIG_JSON = "config.json"
SIDECAR_JSON = "worldvla_dist.json"
SINGLE_WEIGHTS = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
TOKENIZER_SUBDIR = "tokenizer"
FORMAT_VERSION = 1


def check_model_files(path: str | Path) -> None:
    """A clear error naming what a checkpoint folder lacks (jobs call it before starting any actor)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder {path} does not exist")
    names = sorted(p.name for p in path.iterdir())
    present = names[:12] + [f"... {len(names) - 12} more"] if len(names) > 12 else names
    if not (path / CONFIG_JSON).is_file():
        raise CheckpointError(f"checkpoint folder {path}: expected {CONFIG_JSON}, found {present}")
    if (path / SHARD_INDEX).is_file():
        shards = set(json.loads((path / SHARD_INDEX).read_text())["weight_map"].values())
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            raise CheckpointError(f"checkpoint folder {path}: {SHARD_INDEX} lists shards {missing} "
                                  f"that are missing; found {present}")
    elif not (path / SINGLE_WEIGHTS).is_file():
        raise CheckpointError(f"checkpoint folder {path}: expected {SINGLE_WEIGHTS} or {SHARD_INDEX}, "
                              f"found {present}")


def save_checkpoint(model: WorldVLA, tokens: TokenSpace, path: str | Path) -> Path:
    """Writes our model folder. config.json carries the reference's `z_loss_weight` too."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.chameleon.config.z_loss_weight = model.preset.loss.z_loss_weight
    model.chameleon.save_pretrained(path)
    sidecar = {"format_version": FORMAT_VERSION, "preset": asdict(model.preset),
               "vocabulary": tokens.vocab.to_dict(), "image_size_px": tokens.images.geometry.height_px}
    (path / SIDECAR_JSON).write_text(json.dumps(sidecar))
    tokens.save(path / TOKENIZER_SUBDIR)
    return path


def _load_chameleon(path: Path, dtype: torch.dtype) -> ChameleonForConditionalGeneration:
    model, info = ChameleonForConditionalGeneration.from_pretrained(
        path, dtype=dtype, output_loading_info=True, local_files_only=True, attn_implementation="sdpa")
    # model.vqmodel is unused here (we tokenise with our own VQGAN); older exports may lack it.
    missing = [k for k in info["missing_keys"] if ".vqmodel." not in k and not k.startswith("vqmodel.")]
    unexpected = list(info["unexpected_keys"])
    if missing or unexpected or info.get("mismatched_keys"):
        raise CheckpointError(f"checkpoint {path}: weights do not match {CONFIG_JSON}: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}, mismatched {list(info.get('mismatched_keys', []))[:5]}")
    return model


def load_checkpoint(path: str | Path, tokenizer_dir: str | Path | None = None, preset: str | None = None,
                    dtype: torch.dtype = torch.float32) -> tuple[WorldVLA, TokenSpace]:
    """Loads our folder, or a reference WorldVLA folder given `tokenizer_dir` (Chameleon's tokenizer/)
    and `preset` ("worldvla-256" / "worldvla-512", which fixes the image size)."""
    path = Path(path)
    check_model_files(path)
    if (path / SIDECAR_JSON).is_file():
        sidecar = json.loads((path / SIDECAR_JSON).read_text())
        if sidecar.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path / SIDECAR_JSON}: format_version {sidecar.get('format_version')}, "
                                  f"this code reads {FORMAT_VERSION}")
        model_preset = from_dict(ModelPreset, sidecar["preset"], where=str(path / SIDECAR_JSON))
        vocab = Vocabulary.from_dict(sidecar["vocabulary"])
        tokens = TokenSpace.from_tokenizer_dir(tokenizer_dir or path / TOKENIZER_SUBDIR, sidecar["image_size_px"], vocab)
    else:
        if tokenizer_dir is None or preset is None:
            raise CheckpointError(f"{path} has no {SIDECAR_JSON}, so it is read as a reference WorldVLA "
                                  "checkpoint: pass tokenizer_dir (Chameleon's tokenizer/ folder) and preset "
                                  f"(one of {MODEL_PRESETS.names()})")
        base = MODEL_PRESETS.get(preset)
        config = json.loads((path / CONFIG_JSON).read_text())
        z_loss_weight = float(config.get("z_loss_weight", base.loss.z_loss_weight))
        model_preset = replace(base, loss=replace(base.loss, z_loss_weight=z_loss_weight))
        tokens = TokenSpace.from_tokenizer_dir(tokenizer_dir, base.image_size_px)
    chameleon = _load_chameleon(path, dtype)
    if chameleon.config.vocab_size != tokens.vocab.size:
        raise CheckpointError(f"{path}: model vocabulary has {chameleon.config.vocab_size} ids, "
                              f"the tokenizer's {tokens.vocab.size}")
    return WorldVLA(chameleon, tokens.vocab, model_preset), tokens


def load_for_inference(path: str | Path, tokenizer_dir: str | Path | None = None,
                       preset: str | None = None) -> tuple[WorldVLA, TokenSpace]:
    """`load_checkpoint` placed for serving: bf16 on the GPU with the VQGAN beside it when one is
    visible, else fp32 on the CPU (bf16 matmuls are slow there)."""
    gpu = torch.cuda.is_available()
    model, tokens = load_checkpoint(path, tokenizer_dir, preset, dtype=torch.bfloat16 if gpu else torch.float32)
    if gpu:
        model, tokens.images.vqgan = model.cuda(), tokens.images.vqgan.cuda()
    return model, tokens
