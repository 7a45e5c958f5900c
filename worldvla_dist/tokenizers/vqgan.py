"""A taming-style VQGAN (encoder, quantizer and decoder) whose module and parameter names match
Chameleon's `vqgan.ckpt`, so the real tokenizer loads into it unchanged.

transformers' ChameleonVQVAE has the encoder and quantizer only; images cannot be decoded with it,
and the world model must decode. Layout of the blocks follows taming-transformers' `Encoder` /
`Decoder` (ResNet blocks, optional attention, conv down/upsampling), which Chameleon uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from worldvla_dist.errors import ConfigError


# taming's (and so Chameleon's and transformers') GroupNorm group count, fixed in their code
TAMING_NORM_GROUPS = 32


@dataclass(frozen=True)
class VQGANConfig:
    """The `model.params` block of a taming `vqgan.yaml` (ddconfig flattened in)."""

    n_embed: int = 8192
    embed_dim: int = 256
    z_channels: int = 256
    resolution: int = 512
    in_channels: int = 3
    out_ch: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = ()
    dropout: float = 0.0
    double_z: bool = False
    beta: float = 0.25  # commitment weight
    # fewer groups than taming's let a narrow CPU tokenizer (ch=16) exist
    norm_groups: int = TAMING_NORM_GROUPS

    def __post_init__(self) -> None:
        for c in {self.ch * m for m in self.ch_mult}:
            if self.norm_groups < 1 or c % self.norm_groups:
                raise ConfigError(f"VQGANConfig: channel counts must be multiples of norm_groups="
                                  f"{self.norm_groups} (GroupNorm), got {c}")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dropout: float, groups: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = _norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hn = self.norm(x)
        q, k, v = (t.reshape(b, c, h * w).transpose(1, 2) for t in (self.q(hn), self.k(hn), self.v(hn)))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, hw, C)
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric padding, as taming


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _mid(channels: int, cfg: VQGANConfig) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels, cfg.dropout, cfg.norm_groups)
    mid.attn_1 = AttnBlock(channels, cfg.norm_groups)
    mid.block_2 = ResnetBlock(channels, channels, cfg.dropout, cfg.norm_groups)
    return mid


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        in_mult = (1,) + tuple(cfg.ch_mult)
        res = cfg.resolution
        self.down = nn.ModuleList()
        for level, mult in enumerate(cfg.ch_mult):
            block_in, block_out = cfg.ch * in_mult[level], cfg.ch * mult
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                stage.block.append(ResnetBlock(block_in, block_out, cfg.dropout, cfg.norm_groups))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(block_in, cfg.norm_groups))
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(block_in)
                res //= 2
            self.down.append(stage)
        self.mid = _mid(block_in, cfg)
        self.norm_out = _norm(block_in, cfg.norm_groups)
        self.conv_out = nn.Conv2d(block_in, 2 * cfg.z_channels if cfg.double_z else cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level, stage in enumerate(self.down):
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        levels = len(cfg.ch_mult)
        block_in = cfg.ch * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = _mid(block_in, cfg)
        up_stages = []
        for level in reversed(range(levels)):
            block_out = cfg.ch * cfg.ch_mult[level]
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(ResnetBlock(block_in, block_out, cfg.dropout, cfg.norm_groups))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(block_in, cfg.norm_groups))
            if level != 0:
                stage.upsample = Upsample(block_in)
                res *= 2
            up_stages.insert(0, stage)  # up[0] is the highest resolution, as in the checkpoint
        self.up = nn.ModuleList(up_stages)
        self.norm_out = _norm(block_in, cfg.norm_groups)
        self.conv_out = nn.Conv2d(block_in, cfg.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for stage in reversed(self.up):
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # (B, D, h, w), straight-through gradient to the encoder
    codes: torch.Tensor  # (B, h, w) int64
    codebook_loss: torch.Tensor  # ||sg(z) - e||^2: moves the codebook
    commitment_loss: torch.Tensor  # ||z - sg(e)||^2: keeps the encoder near the codebook


class VectorQuantizer(nn.Module):
    def __init__(self, n_embed: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        self.embedding.weight.data.uniform_(-1.0 / n_embed, 1.0 / n_embed)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        weight = self.embedding.weight
        dist = flat.pow(2).sum(1, keepdim=True) + weight.pow(2).sum(1) - 2 * flat @ weight.t()
        codes = dist.argmin(1)
        zq = self.embedding(codes).view(b, h, w, d).permute(0, 3, 1, 2)
        codebook_loss = F.mse_loss(zq, z.detach())
        commitment_loss = F.mse_loss(z, zq.detach())
        zq = z + (zq - z).detach()
        return QuantizerOutput(zq, codes.view(b, h, w), codebook_loss, commitment_loss)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w) codes -> (B, D, h, w) embeddings."""
        return self.embedding(codes).permute(0, 3, 1, 2)


class VQModel(nn.Module):
    """Chameleon's VQGAN: `encoder`, `quant_conv`, `quantize`, `post_quant_conv`, `decoder`."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = VectorQuantizer(cfg.n_embed, cfg.embed_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    def encode(self, pixels: torch.Tensor) -> QuantizerOutput:
        """(B, 3, H, W) in [-1, 1] -> quantized latents and codes (B, H/f, W/f)."""
        return self.quantize(self.quant_conv(self.encoder(pixels)))

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w) codes -> (B, 3, H, W) in roughly [-1, 1]."""
        return self.decode_latents(self.quantize.lookup(codes))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        q = self.encode(pixels)
        return self.decode_latents(q.quantized), q


def vqgan_training_loss(model: VQModel, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reconstruction (L1 + MSE) + codebook + beta * commitment, the VQ-VAE objective without the GAN
    and perceptual terms (which need pretrained networks we cannot download)."""
    recon, q = model(pixels)
    reconstruction = F.l1_loss(recon, pixels) + F.mse_loss(recon, pixels)
    total = reconstruction + q.codebook_loss + model.cfg.beta * q.commitment_loss
    return {"total": total, "reconstruction": reconstruction, "codebook": q.codebook_loss,
            "commitment": q.commitment_loss, "codes": q.codes.detach()}
