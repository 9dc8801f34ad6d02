"""LMCodecConfig: defaults, derived properties, validation naming the field, save/load."""

from __future__ import annotations

import pytest

import lmcodec
from tests.conftest import raises_config_error


def test_defaults_describe_the_paper_operating_points():
    config = lmcodec.LMCodecConfig()
    assert config.model_type == "lmcodec"
    assert config.sampling_rate == 16000
    assert config.hop_length == 320
    assert config.frame_rate == 50.0
    assert config.num_quantizers == 12 and config.codebook_size == 1024
    assert config.bits_per_code == 10
    assert config.coarse_bitrate(2) == 1000.0
    assert config.coarse_bitrate() == 1500.0
    assert config.algorithmic_latency_ms == 40.0  # one 2-frame encoder block


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("codebook_size", 1000, "LMCodecConfig.codebook_size must be a power of two >= 2, got 1000."),
        ("num_coarse_quantizers", 13,
         "LMCodecConfig.num_coarse_quantizers must be between 1 and num_quantizers (12), got 13."),
        ("num_coarse_quantizers", 0, "LMCodecConfig.num_coarse_quantizers must be a positive integer, got 0."),
        ("stft_window_length", 400, "LMCodecConfig.stft_window_length must be twice stft_hop_length (320), got 400"),
        ("hidden_size", 0, "LMCodecConfig.hidden_size must be a positive integer, got 0."),
        ("quantizer_dropout", 1.5, "LMCodecConfig.quantizer_dropout must be in [0, 1], got 1.5."),
        ("quantizer_dropout_operating_point_prob", -0.1,
         "LMCodecConfig.quantizer_dropout_operating_point_prob must be in [0, 1], got -0.1."),
        ("codebook_ema_decay", 1.0, "LMCodecConfig.codebook_ema_decay must be in (0, 1), got 1.0."),
        ("num_decoder_stft_layers", -1, "LMCodecConfig.num_decoder_stft_layers must be >= 0, got -1."),
        ("mel_loss_weight", -1.0, "LMCodecConfig.mel_loss_weight must be >= 0, got -1.0."),
    ],
)
def test_invalid_values_raise_an_error_naming_the_field(field, value, message):
    with raises_config_error(message):
        lmcodec.LMCodecConfig(**{field: value})


def test_wrong_types_are_rejected():
    with raises_config_error("LMCodecConfig.hidden_size must be an integer, got 'wide' (str)."):
        lmcodec.LMCodecConfig(hidden_size="wide")


def test_coarse_bitrate_rejects_impossible_levels():
    with pytest.raises(ValueError, match="between 1 and 12"):
        lmcodec.LMCodecConfig().coarse_bitrate(13)


def test_save_and_load_round_trip(tmp_path):
    config = lmcodec.LMCodecConfig(hidden_size=64, num_coarse_quantizers=2)
    config.save_pretrained(tmp_path)
    loaded = lmcodec.LMCodecConfig.from_pretrained(tmp_path)
    assert loaded.hidden_size == 64 and loaded.num_coarse_quantizers == 2
    assert loaded.to_dict() == config.to_dict()


def test_auto_config_knows_the_model_type():
    from transformers import AutoConfig

    assert isinstance(AutoConfig.for_model("lmcodec"), lmcodec.LMCodecConfig)


def test_fine_decoding_is_checked():
    assert lmcodec.LMCodecConfig().fine_decoding == "coarse-only"
    assert lmcodec.LMCodecConfig(fine_decoding="sample").fine_decoding == "sample"
    with raises_config_error(
            "LMCodecConfig.fine_decoding must be one of sample, greedy, expected, coarse-only, got 'beam'."):
        lmcodec.LMCodecConfig(fine_decoding="beam")
