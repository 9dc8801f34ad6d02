"""LMCodecFeatureExtractor: batching, padding to whole frames, mono mixing, dtypes and clear errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import lmcodec

HOP = 320


@pytest.fixture
def extractor():
    return lmcodec.LMCodecFeatureExtractor()


def test_single_clip_is_padded_to_whole_frames(extractor):
    batch = extractor(np.ones(1000, dtype=np.float32), sampling_rate=16000)
    assert batch["input_values"].shape == (1, 1, 1280)
    assert batch["padding_mask"].shape == (1, 1280)
    assert batch["padding_mask"].sum().item() == 1000
    assert batch["input_values"][0, 0, 1000:].abs().sum().item() == 0.0
    assert batch["input_values"].dtype == torch.float32


def test_batch_of_different_lengths(extractor):
    batch = extractor([np.ones(700), np.ones(HOP)], sampling_rate=16000)
    assert batch["input_values"].shape == (2, 1, 960)
    assert batch["padding_mask"].sum(-1).tolist() == [700, HOP]


def test_float64_tensor_and_list_inputs(extractor):
    from_tensor = extractor(torch.ones(400, dtype=torch.float64), sampling_rate=16000)
    from_list = extractor([0.5] * 400, sampling_rate=16000)
    assert from_tensor["input_values"].dtype == torch.float32
    assert from_list["input_values"].shape == (1, 1, 640)


def test_channels_first_audio_is_mixed_to_mono(extractor):
    stereo = np.stack([np.ones(640), -np.ones(640) * 0.5])
    batch = extractor(stereo, sampling_rate=16000)
    np.testing.assert_allclose(batch["input_values"][0, 0].numpy(), 0.25)


def test_numpy_output(extractor):
    batch = extractor(np.zeros(10), sampling_rate=16000, return_tensors="np")
    assert isinstance(batch["input_values"], np.ndarray)


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros(0), "empty"),
        ([], "no audio given"),
        (np.zeros((16000, 2)), "looks like \\[samples, channels\\]; pass channels first"),
        (np.zeros((1, 2, 3)), "pass \\[samples\\] or \\[channels, samples\\]"),
        (np.array([0.0, np.nan]), "NaN or infinite"),
        (np.array(["a", "b"]), "numeric samples"),
    ],
)
def test_bad_input_raises_a_clear_error(extractor, audio, message):
    with pytest.raises(lmcodec.LMCodecError, match=message):
        extractor(audio, sampling_rate=16000)


def test_wrong_sampling_rate_says_how_to_resample(extractor):
    with pytest.raises(lmcodec.LMCodecError, match=r"44100 Hz but the model expects 16000 Hz; resample first"):
        extractor(np.zeros(100), sampling_rate=44100)


def test_missing_sampling_rate_warns(extractor, caplog):
    from transformers.utils import logging as hf_logging

    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            extractor(np.zeros(100))
    finally:
        hf_logging.disable_propagation()
    assert "sampling_rate" in caplog.text


def test_save_and_load(extractor, tmp_path):
    extractor.save_pretrained(tmp_path)
    loaded = lmcodec.LMCodecFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.hop_length == HOP and loaded.sampling_rate == 16000
