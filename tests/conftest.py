"""Shared fixtures: tiny configs (like transformers' model testers), signals made in code, the real-speech folder."""

from __future__ import annotations

import contextlib
import math
import os
import re
from pathlib import Path

# Offline first: nothing in the suite may reach for the Hub (without this, huggingface_hub waits ~24 s to fail).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")

import numpy as np
import pytest
import torch

import lmcodec

REPO = Path(__file__).resolve().parents[1]
# Real speech: the data root's base collection (training/data_sources.md) if this clone has one, else the shared speech
# folder beside the repository (where CI keeps it).
SPEECH_DIR = next((folder for folder in (REPO / "data" / "speech", REPO.parent / "shared" / "data" / "speech")
                   if folder.is_dir()), REPO.parent / "shared" / "data" / "speech")


@contextlib.contextmanager
def raises_config_error(message: str):
    """An invalid `LMCodecConfig`: its validator's ValueError, which huggingface_hub's strict dataclass re-raises as
    `StrictDataclassClassValidationError` (the ValueError as its cause); `message` is matched literally."""
    from huggingface_hub.errors import StrictDataclassClassValidationError

    with pytest.raises(StrictDataclassClassValidationError, match=re.escape(message)) as raised:
        yield raised
    assert isinstance(raised.value.__cause__, ValueError), repr(raised.value.__cause__)
    assert message in str(raised.value.__cause__)


def tiny_config(**overrides) -> lmcodec.LMCodecConfig:
    """A codec small enough for fast tests: width 32, 4 levels of 64 codes."""
    values = dict(
        hidden_size=32,
        intermediate_size=64,
        kernel_size=5,
        num_encoder_stft_layers=1,
        num_encoder_frame_layers=1,
        num_decoder_frame_layers=1,
        num_decoder_stft_layers=1,
        codebook_dim=8,
        num_quantizers=4,
        codebook_size=64,
        num_coarse_quantizers=2,
        sync_frames=40,
        packet_frames=10,
        fine_lm_config={"n_embd": 32, "n_layer": 1, "n_head": 2},
        entropy_lm_config={"n_embd": 32, "n_layer": 1, "n_head": 2},
    )
    values.update(overrides)
    return lmcodec.LMCodecConfig(**values)


def random_codebooks(model: lmcodec.LMCodecModel, seed: int = 0, integer_entropy_model: bool = True
                     ) -> lmcodec.LMCodecModel:
    """Give an untrained model distinct codebooks (fresh ones are all zeros until training initialises them) and,
    unless told not to, its integer entropy model (entropy coding needs it), calibrated on its own codes."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        books = model.quantizer.codebooks
        books.copy_(torch.randn(books.shape, generator=generator) * 0.5)
        model.quantizer.initialized.fill_(True)
    if integer_entropy_model:
        export_integer_entropy_model(model, seed)
    return model


def calibration_codes(model: lmcodec.LMCodecModel, seed: int = 0, segments: int = 2) -> torch.Tensor:
    """Codes `[segments, Nq, sync_frames]` of a speech-like signal, to calibrate an integer entropy model on."""
    frames = model.config.sync_frames
    signal = speech_like(segments * frames * model.config.hop_length / model.config.sampling_rate, seed=seed)
    codes = model.encode(torch.from_numpy(signal)[None, None]).audio_codes[0]  # [Nq, F]
    return codes[:, : segments * frames].reshape(codes.shape[0], segments, frames).transpose(0, 1).contiguous()


def export_integer_entropy_model(model: lmcodec.LMCodecModel, seed: int = 0) -> lmcodec.LMCodecModel:
    was_training = model.training
    model.eval()
    model.export_integer_entropy_model(calibration_codes(model, seed))
    model.train(was_training)
    return model


def speech_like(seconds: float, sampling_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated harmonic signal with noise: deterministic, speech-like enough for codec tests."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    pitch = 120 + 30 * np.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / sampling_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * math.pi * 3 * t) ** 2
    signal = 0.15 * envelope * voiced + 0.01 * rng.standard_normal(t.shape)
    return signal.astype(np.float32)


@pytest.fixture
def tiny_model() -> lmcodec.LMCodecModel:
    torch.manual_seed(0)
    return random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval())


def speech_files(subfolder: str, limit: int) -> list[Path]:
    """Up to `limit` real recordings from SPEECH_DIR/<subfolder>, or skip the test with the reason."""
    folder = SPEECH_DIR / subfolder
    if not folder.is_dir():
        pytest.skip(f"real speech folder {folder} is absent (data/speech in the repository, or ../shared/data/speech)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".flac", ".wav"})[:limit]
    if not files:
        pytest.skip(f"no audio files in {folder}")
    return files
