"""The decoder's harmonic branch (`num_harmonics` > 0) and the YIN pitch targets it trains against."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec.harmonic_head import INITIAL_LOG_AMPLITUDE, LMCodecHarmonicHead
from lmcodec.pitch import yin_pitch
from tests.conftest import raises_config_error, speech_like, tiny_config

SR = 16000
HOP = 160


def harmonic_tone(f0: torch.Tensor) -> torch.Tensor:
    """A 1/k-weighted harmonic tone following the per-sample f0 `[T]`."""
    phase = 2 * math.pi * torch.cumsum(f0.double(), 0) / SR
    return (0.1 * sum(torch.sin(k * phase) / k for k in range(1, 9))).float()


@pytest.mark.parametrize("f0", [60.0, 110.0, 220.0, 440.0, 530.0])
def test_yin_finds_the_f0_of_harmonic_tones(f0):
    tone = harmonic_tone(torch.full((SR,), f0))
    centers = torch.arange(5, 95) * HOP
    estimate, voiced, reliable = yin_pitch(tone.unsqueeze(0), centers)
    assert voiced.all() and reliable.all()
    assert (estimate / f0 - 1).abs().max() < 0.005


def test_yin_follows_a_glide_and_leaves_noise_and_silence_unvoiced():
    times = torch.arange(SR) / SR
    glide = 100 + 100 * times
    centers = torch.arange(5, 95) * HOP
    estimate, voiced, _ = yin_pitch(harmonic_tone(glide).unsqueeze(0), centers)
    assert voiced.all() and (estimate[0] - glide[centers]).abs().max() < 2.0
    noise = torch.randn(1, SR, generator=torch.Generator().manual_seed(0)) * 0.1
    silence_after_tone = torch.cat([harmonic_tone(torch.full((SR // 2,), 150.0)), torch.zeros(SR // 2)])
    batch = torch.stack([noise[0], silence_after_tone])
    _, voiced, _ = yin_pitch(batch, centers)
    assert not voiced[0].any()
    assert voiced[1, :40].all() and not voiced[1, 55:].any()


def sine_head(f0_hz: float, amplitude: float, num_harmonics: int = 4) -> LMCodecHarmonicHead:
    """A head whose projection ignores its input: constant f0, full voicing, harmonic 1 at `amplitude` only."""
    head = LMCodecHarmonicHead(hidden_size=4, hop_length=HOP, num_harmonics=num_harmonics, sampling_rate=SR,
                               num_bins=161)
    with torch.no_grad():
        head.projection.weight.zero_()
        fraction = math.log(f0_hz / 50.0) / math.log(550.0 / 50.0)
        head.projection.bias[0] = math.log(fraction / (1 - fraction))  # sigmoid^-1
        head.projection.bias[1] = 30.0  # voiced
        envelope = torch.full((161,), -60.0)  # every other harmonic silent
        bin_of_f0 = f0_hz / 50.0
        envelope[int(bin_of_f0) - 1: int(bin_of_f0) + 2] = math.log(amplitude)
        head.projection.bias[2:] = envelope + 7.0  # undo INITIAL_LOG_AMPLITUDE
    return head


def test_constant_f0_gives_a_phase_continuous_sinusoid():
    head = sine_head(200.0, 0.5)
    samples, _ = head(torch.zeros(1, 50, 4))
    times = torch.arange(1, 50 * HOP + 1) / SR
    expected = 0.5 * torch.sin(2 * math.pi * 200.0 * times)
    expected[:HOP] *= torch.arange(1, HOP + 1) / HOP  # the first step fades in from silence
    assert (samples[0] - expected).abs().max() < 1e-3


def test_chunked_synthesis_equals_one_shot():
    torch.manual_seed(0)
    head = LMCodecHarmonicHead(hidden_size=8, hop_length=HOP, num_harmonics=16, sampling_rate=SR, num_bins=161)
    with torch.no_grad():
        head.projection.bias[2:] += 5.0  # audible harmonics
    hidden = torch.randn(2, 37, 8)
    one_shot, _ = head(hidden)
    rng = np.random.default_rng(0)
    pieces, state, position = [], None, 0
    while position < hidden.shape[1]:
        size = int(rng.integers(1, 6))
        piece, state = head(hidden[:, position: position + size], state)
        pieces.append(piece)
        position += size
    assert one_shot.abs().max() > 0.01
    assert (torch.cat(pieces, dim=1) - one_shot).abs().max() < 1e-4  # float32 rounding of k * phase


def test_harmonics_stay_below_the_nyquist_frequency():
    head = LMCodecHarmonicHead(hidden_size=4, hop_length=HOP, num_harmonics=40, sampling_rate=SR, num_bins=161)
    f0 = torch.full((1, 3), 400.0)
    amplitudes = head.harmonic_amplitudes(f0, torch.full((1, 3), 30.0), torch.zeros(1, 3, 161))
    audible = amplitudes[0, 0] > 0
    assert audible[:18].all() and not audible[18:].any()  # 19 * 400 = 7600 Hz = 0.95 * Nyquist is out


@pytest.fixture(scope="module")
def harmonic_model():
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config(num_harmonics=12)).eval()
    with torch.no_grad():
        model.decoder.harmonic_head.projection.bias[2:] += 6.0  # make the branch audible in these tests
    return model


def test_streaming_decoder_with_harmonics_matches_one_shot_and_is_causal(harmonic_model):
    codes = harmonic_model.encode(torch.from_numpy(speech_like(1.0)).view(1, 1, -1)).audio_codes
    one_shot = harmonic_model.decode(codes).audio_values[0, 0]
    decoder = harmonic_model.streaming_decoder()
    streamed = torch.cat([decoder.push(codes[0, :, f: f + 1]) for f in range(codes.shape[-1])])
    assert streamed.shape == one_shot.shape
    assert (streamed - one_shot).abs().max().item() <= 1e-5
    changed = codes.clone()
    changed[..., 30:] = (changed[..., 30:] + 7) % 64
    after = harmonic_model.decode(changed).audio_values[0, 0]
    frame = 2 * HOP
    assert torch.equal(one_shot[: 30 * frame], after[: 30 * frame])


def test_training_forward_reports_pitch_losses_and_learns_f0():
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config(num_harmonics=12, quantizer_dropout=0.0)).train()
    tone = harmonic_tone(torch.full((8000,), 180.0)).view(1, 1, -1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    pitch = []
    for _ in range(30):
        output = model(tone)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        pitch.append(output.pitch_loss.item())
    assert torch.isfinite(output.voicing_loss)
    assert pitch[-1] < 0.5 * pitch[0], pitch
    assert lmcodec.LMCodecModel(tiny_config()).train()(tone).pitch_loss is None


def test_save_load_keeps_the_harmonic_branch(harmonic_model, tmp_path):
    harmonic_model.save_pretrained(tmp_path)
    loaded = lmcodec.LMCodecModel.from_pretrained(tmp_path).eval()
    codes = harmonic_model.encode(torch.from_numpy(speech_like(0.5)).view(1, 1, -1)).audio_codes
    torch.testing.assert_close(loaded.decode(codes).audio_values, harmonic_model.decode(codes).audio_values)


def test_a_trained_checkpoint_grafted_with_a_harmonic_branch_starts_almost_unchanged(tiny_model, tmp_path):
    """Fine-tuning path: load an iSTFT-only checkpoint with `num_harmonics` set; the new branch starts near silent."""
    tiny_model.save_pretrained(tmp_path)
    config = lmcodec.LMCodecConfig.from_pretrained(tmp_path)
    grafted = lmcodec.LMCodecModel.from_pretrained(
        tmp_path, config=lmcodec.LMCodecConfig.from_dict({**config.to_dict(), "num_harmonics": 12})).eval()
    codes = tiny_model.encode(torch.from_numpy(speech_like(0.5)).view(1, 1, -1)).audio_codes
    before = tiny_model.decode(codes).audio_values
    after = grafted.decode(codes).audio_values
    assert not torch.equal(before, after)
    # each new harmonic starts at about exp(INITIAL_LOG_AMPLITUDE) (times the voicing, about 0.5)
    assert (before - after).abs().max() < 12 * math.exp(INITIAL_LOG_AMPLITUDE + 0.5)


def test_harmonic_plus_noise_decoder_streams_like_one_shot_and_repeats_itself():
    """decoder_phase="noise": the iSTFT head's phase comes from a fixed table indexed by the frame count, so decoding
    is deterministic and the streaming decoder (frame by frame) equals one-shot decoding."""
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config(num_harmonics=8, decoder_phase="noise")).eval()
    codes = model.encode(torch.from_numpy(speech_like(0.8)).view(1, 1, -1)).audio_codes
    one_shot = model.decode(codes).audio_values[0, 0]
    assert torch.equal(one_shot, model.decode(codes).audio_values[0, 0])
    decoder = model.streaming_decoder()
    streamed = torch.cat([decoder.push(codes[0, :, f: f + 1]) for f in range(codes.shape[-1])])
    assert (streamed - one_shot).abs().max().item() <= 1e-5
    predicted = lmcodec.LMCodecModel(tiny_config(num_harmonics=8))
    predicted.load_state_dict(model.state_dict())  # same weights, predicted phase: a different output
    assert not torch.allclose(predicted.eval().decode(codes).audio_values[0, 0], one_shot)
    with raises_config_error("LMCodecConfig.decoder_phase must be 'predicted' or 'noise', got 'random'."):
        lmcodec.LMCodecConfig(decoder_phase="random")
