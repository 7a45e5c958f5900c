import numpy as np
import pytest
import torch
from transformers import ChameleonVQVAE, ChameleonVQVAEConfig

from worldvla_dist.errors import CheckpointError, ConfigError, TokenizationError
from worldvla_dist.tokenizers.image_tokenizer import ImageTokenizer, vqgan_config_to_yaml
from worldvla_dist.tokenizers.vqgan import VQGANConfig, VQModel, vqgan_training_loss
from worldvla_dist.tokenizers.vqgan_training import train_vqgan

from tests.conftest import REFERENCE_VQGAN, write_chameleon_vqgan


def test_chameleon_layout_checkpoint_loads_encodes_and_decodes(tmp_path):
    source = write_chameleon_vqgan(tmp_path, REFERENCE_VQGAN, seed=5)
    tok = ImageTokenizer.from_dir(tmp_path, image_size_px=256)
    images = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    codes = tok.encode(images)
    assert codes.shape == (2, 16, 16) and codes.dtype == torch.int64
    with torch.no_grad():
        expected = source.encode(tok.to_pixels(images)).codes
    assert torch.equal(codes, expected)
    decoded = tok.decode(codes)
    assert decoded.shape == (2, 256, 256, 3) and decoded.dtype == np.uint8
    with torch.no_grad():
        np.testing.assert_array_equal(decoded, tok.to_uint8(source.decode_codes(codes)))


def test_parameter_names_match_transformers_chameleon_vqvae():
    """Our encoder + quantizer weights load strictly into transformers' ChameleonVQVAE (built from
    Chameleon's checkpoint layout) and give the same codes."""
    cfg = VQGANConfig(n_embed=64, embed_dim=8, z_channels=32, resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1)
    ours = VQModel(cfg).eval()
    hf = ChameleonVQVAE(ChameleonVQVAEConfig(embed_dim=8, num_embeddings=64, latent_channels=32, resolution=64,
                                             base_channels=32, channel_multiplier=[1, 2, 2], num_res_blocks=1)).eval()
    encoder_side = {k: v for k, v in ours.state_dict().items() if not k.startswith("decoder.")}
    result = hf.load_state_dict(encoder_side, strict=False)
    assert result.unexpected_keys == [] and result.missing_keys == []
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        hf_codes = hf.encode(pixels).image_tokens
        assert torch.equal(ours.encode(pixels).codes.flatten(), hf_codes.flatten())


def test_tiny_preset_trains():
    """Reconstruction + codebook + commitment losses fall on a handful of frames."""
    torch.manual_seed(0)
    tok = ImageTokenizer.from_preset("tiny", 128)
    frames = np.zeros((2, 128, 128, 3), dtype=np.uint8)
    for i in range(2):
        frames[i, 40 * i:40 * i + 40, 30:90] = (200, 100 * i, 90)
    loss = vqgan_training_loss(tok.vqgan, tok.to_pixels(frames))
    assert set(loss) == {"total", "reconstruction", "codebook", "commitment", "codes"}
    history = train_vqgan(tok, frames, steps=20, batch_size=2, lr=3e-3, restart_every=8)
    assert history[-1]["reconstruction"] < 0.5 * history[0]["reconstruction"], history
    # the codebook starts on encoder latents and unused codes are restarted: many codes stay in play
    assert all(h["codes_used"] > 1 for h in history if "codes_used" in h)
    assert sum("codes_used" in h for h in history) == 2


def test_save_and_reload(tmp_path):
    tok = ImageTokenizer.from_preset("tiny", 128)
    tok.save(tmp_path)
    again = ImageTokenizer.from_dir(tmp_path, 128)
    assert again.vqgan.cfg == tok.vqgan.cfg and tok.vqgan.cfg.norm_groups == 16  # not taming's default 32
    images = np.random.default_rng(1).integers(0, 256, (1, 128, 128, 3), dtype=np.uint8)
    assert torch.equal(tok.encode(images), again.encode(images))


def test_taming_yaml_keeps_its_keys_and_norm_groups_are_checked():
    """Chameleon-shaped configs write the taming ddconfig unchanged (taming rejects unknown keys)."""
    assert "norm_groups" not in vqgan_config_to_yaml(REFERENCE_VQGAN)
    assert "norm_groups: 16" in vqgan_config_to_yaml(ImageTokenizer.from_preset("tiny", 128).vqgan.cfg)
    with pytest.raises(ConfigError, match="multiples of norm_groups=32"):
        VQGANConfig(ch=16)


def test_bad_input_is_refused(tmp_path):
    tok = ImageTokenizer.from_preset("tiny", 128)
    with pytest.raises(TokenizationError, match=r"expected uint8 images \(B, 128, 128, 3\), got \(1, 64, 64, 3\)"):
        tok.encode(np.zeros((1, 64, 64, 3), dtype=np.uint8))
    with pytest.raises(TokenizationError, match="dtype uint8"):
        tok.encode(np.zeros((1, 128, 128, 3), dtype=np.float32))
    with pytest.raises(TokenizationError, match=r"expected codes \(B, 8, 8\)"):
        tok.decode(torch.zeros(1, 4, 4, dtype=torch.long))
    tok.save(tmp_path)
    (tmp_path / "vqgan.ckpt").unlink()
    with pytest.raises(CheckpointError, match=r"missing \['vqgan.ckpt'\]; found \['vqgan.yaml'\]"):
        ImageTokenizer.from_dir(tmp_path, 128)
