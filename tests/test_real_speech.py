"""Real recorded speech from data/speech in the repository or ../shared/data/speech beside it (skipped with the reason
when neither is there)."""

from __future__ import annotations

import numpy as np
import torch

import lmcodec
from tests.conftest import random_codebooks, speech_files, tiny_config


def test_every_format_and_rate_in_the_folder_loads():
    for subfolder in ("librispeech-test-other", "ljspeech", "cmu-arctic"):
        for path in speech_files(subfolder, 2):
            audio, rate = lmcodec.load_audio(path)
            assert rate == 16000 and audio.ndim == 1 and len(audio) > 16000 // 2
            assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


def test_streaming_equals_offline_on_real_speech():
    torch.manual_seed(0)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval())
    audio, _ = lmcodec.load_audio(speech_files("librispeech-test-other", 1)[0])
    audio = audio[: 16000 * 4]
    offline = model.encode(torch.from_numpy(audio).view(1, 1, -1)).audio_codes[0]
    encoder = model.streaming_encoder()
    rng = np.random.default_rng(0)
    chunks, position = [], 0
    while position < len(audio):
        size = int(rng.integers(100, 5000))
        chunks.append(encoder.push(audio[position : position + size]))
        position += size
    chunks.append(encoder.flush())
    assert torch.equal(torch.cat(chunks, dim=-1), offline)


def test_demo_command_on_a_real_recording(tmp_path, capsys):
    from lmcodec.cli import main

    path = speech_files("librispeech-test-other", 1)[0]
    output = tmp_path / "demo.wav"
    assert main(["demo", str(path), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "kbps" in printed and "real-time factor" in printed and "default checkpoint" in printed
    decoded, rate = lmcodec.load_audio(output)
    original, _ = lmcodec.load_audio(path)
    assert rate == 16000 and len(decoded) == len(original)
