"""uint8 images <-> VQ codes, through a VQGAN stored the way Chameleon ships it (`vqgan.yaml` + `vqgan.ckpt`)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
import yaml

from worldvla_dist.config import Registry
from worldvla_dist.errors import CheckpointError, TokenizationError
from worldvla_dist.tokenizers.image_layout import ImageGeometry
from worldvla_dist.tokenizers.vqgan import TAMING_NORM_GROUPS, VQGANConfig, VQModel

log = logging.getLogger(__name__)

VQGAN_YAML, VQGAN_CKPT = "vqgan.yaml", "vqgan.ckpt"
_VQGAN_PREFIXES = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")

VQGAN_PRESETS: Registry[VQGANConfig] = Registry("VQGAN preset")
# Chameleon's tokenizer: 512 px native, downsampling 16, 8192 codes.
VQGAN_PRESETS.register("chameleon", VQGANConfig())
# CPU preset: 128 px -> 8x8 codes (downsampling 16, as Chameleon), 256 codes, ~0.9M parameters.
# 16 base channels in 16 norm groups: a third of the 32-channel cost (encode ~19 vs ~59 ms, decode ~43 vs
# ~135 ms per frame on one core) and no worse held-out PSNR after the demo's 150 steps (21.1 vs 20.0 dB).
VQGAN_PRESETS.register("tiny", VQGANConfig(n_embed=256, embed_dim=32, z_channels=64, resolution=128, ch=16,
                                           ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, norm_groups=16))


def vqgan_config_from_yaml(path: Path) -> VQGANConfig:
    """Read the taming-format `vqgan.yaml` (model.params with a ddconfig block)."""
    try:
        params = yaml.safe_load(path.read_text())["model"]["params"]
        dd = params["ddconfig"]
        return VQGANConfig(
            n_embed=int(params["n_embed"]), embed_dim=int(params["embed_dim"]), z_channels=int(dd["z_channels"]),
            resolution=int(dd["resolution"]), in_channels=int(dd["in_channels"]), out_ch=int(dd["out_ch"]),
            ch=int(dd["ch"]), ch_mult=tuple(int(m) for m in dd["ch_mult"]),
            num_res_blocks=int(dd["num_res_blocks"]),
            attn_resolutions=tuple(int(r) for r in dd.get("attn_resolutions") or ()),
            dropout=float(dd.get("dropout", 0.0)), double_z=bool(dd.get("double_z", False)),
            norm_groups=int(dd.get("norm_groups", TAMING_NORM_GROUPS)))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a taming vqgan.yaml, missing key {e}") from e


def vqgan_config_to_yaml(cfg: VQGANConfig) -> str:
    ddconfig = {"double_z": cfg.double_z, "z_channels": cfg.z_channels, "resolution": cfg.resolution,
                "in_channels": cfg.in_channels, "out_ch": cfg.out_ch, "ch": cfg.ch, "ch_mult": list(cfg.ch_mult),
                "num_res_blocks": cfg.num_res_blocks, "attn_resolutions": list(cfg.attn_resolutions),
                "dropout": cfg.dropout}
    if cfg.norm_groups != TAMING_NORM_GROUPS:  # taming's ddconfig has no such key: written only where it differs
        ddconfig["norm_groups"] = cfg.norm_groups
    doc = {"model": {"target": "taming.models.vqgan.VQModel",
                     "params": {"embed_dim": cfg.embed_dim, "n_embed": cfg.n_embed, "ddconfig": ddconfig}}}
    return yaml.safe_dump(doc, sort_keys=False)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Lightning checkpoints (Chameleon's among them) also pickle callbacks and hyper-parameters,
        # which the safe loader refuses. The file is one the user pointed us to on local disk.
        log.warning("%s holds more than tensors; loading it with the full unpickler", path)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict', got {type(ckpt).__name__}")
    return {k: v for k, v in state.items() if k.startswith(_VQGAN_PREFIXES)}  # drop loss / discriminator


class ImageTokenizer:
    """Encodes (B, H, W, 3) uint8 images to (B, H/f, W/f) codes and decodes codes back to uint8 images."""

    def __init__(self, vqgan: VQModel, geometry: ImageGeometry):
        if geometry.downsample != vqgan.cfg.downsample:
            raise TokenizationError(f"ImageTokenizer: geometry downsamples by {geometry.downsample}, "
                                    f"the VQGAN by {vqgan.cfg.downsample}")
        self.vqgan = vqgan.eval()
        self.geometry = geometry

    @classmethod
    def from_preset(cls, name: str, image_size_px: int) -> "ImageTokenizer":
        cfg = VQGAN_PRESETS.get(name)
        return cls(VQModel(cfg), ImageGeometry(image_size_px, image_size_px, cfg.downsample))

    @classmethod
    def from_dir(cls, path: str | Path, image_size_px: int) -> "ImageTokenizer":
        """Load `vqgan.yaml` + `vqgan.ckpt` from a local folder (Chameleon's `tokenizer/` or ours)."""
        path = Path(path)
        missing = [n for n in (VQGAN_YAML, VQGAN_CKPT) if not (path / n).is_file()]
        if missing:
            present = sorted(p.name for p in path.iterdir()) if path.is_dir() else "no such folder"
            raise CheckpointError(f"image tokenizer folder {path}: expected {VQGAN_YAML} and {VQGAN_CKPT}, "
                                  f"missing {missing}; found {present}")
        cfg = vqgan_config_from_yaml(path / VQGAN_YAML)
        model = VQModel(cfg)
        state = _load_state_dict(path / VQGAN_CKPT)
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(f"{path / VQGAN_CKPT}: does not match {path / VQGAN_YAML}: "
                                  f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
        return cls(model, ImageGeometry(image_size_px, image_size_px, cfg.downsample))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / VQGAN_YAML).write_text(vqgan_config_to_yaml(self.vqgan.cfg))
        torch.save({"state_dict": self.vqgan.state_dict()}, path / VQGAN_CKPT)

    @property
    def device(self) -> torch.device:
        return next(self.vqgan.parameters()).device

    def to_pixels(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [-1, 1], checking the size."""
        images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        g = self.geometry
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or tuple(images.shape[1:]) != (g.height_px, g.width_px, 3):
            raise TokenizationError(f"ImageTokenizer: expected uint8 images (B, {g.height_px}, {g.width_px}, 3), "
                                    f"got {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            raise TokenizationError(f"ImageTokenizer: expected dtype uint8, got {images.dtype}")
        dtype = next(self.vqgan.parameters()).dtype
        return (images.to(self.device, dtype).permute(0, 3, 1, 2) / 127.5 - 1.0).contiguous()

    @staticmethod
    def to_uint8(pixels: torch.Tensor) -> np.ndarray:
        """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
        x = ((pixels.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return x.permute(0, 2, 3, 1).cpu().numpy()

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, H/f, W/f) int64 codes."""
        return self.vqgan.encode(self.to_pixels(images)).codes.cpu()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """(B, h, w) codes -> (B, H, W, 3) uint8 images."""
        codes = torch.as_tensor(codes).long().to(self.device)
        g = self.geometry
        if codes.ndim != 3 or tuple(codes.shape[1:]) != (g.code_rows, g.code_cols):
            raise TokenizationError(f"ImageTokenizer.decode: expected codes (B, {g.code_rows}, {g.code_cols}), "
                                    f"got {tuple(codes.shape)}")
        return self.to_uint8(self.vqgan.decode_codes(codes))
