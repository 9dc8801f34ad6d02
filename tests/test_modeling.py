"""Codec model tests in the style of transformers' model testers: tiny config, shapes and equivalences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec.frames import ENCODER_BLOCK_FRAMES
from tests.conftest import raises_config_error, random_codebooks, speech_like, tiny_config

HOP = 320


def as_input(signal: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(signal).view(1, 1, -1)


@pytest.mark.parametrize("length", [1, 319, 320, 321, 641, 16000, 16001])
def test_encode_frame_arithmetic_for_odd_lengths(tiny_model, length):
    audio = as_input(speech_like(length / 16000 + 1e-9)[:length])
    codes = tiny_model.encode(audio).audio_codes
    assert codes.shape == (1, 4, -(-length // HOP))
    assert codes.dtype == torch.long
    decoded = tiny_model.decode(codes).audio_values
    assert decoded.shape == (1, 1, codes.shape[-1] * HOP)
    trimmed = tiny_model.decode(codes, padding_mask=torch.ones(1, length)).audio_values
    assert trimmed.shape == (1, 1, length)


def test_num_quantizers_selects_leading_levels(tiny_model):
    audio = as_input(speech_like(0.5))
    all_levels = tiny_model.encode(audio).audio_codes
    two_levels = tiny_model.encode(audio, num_quantizers=2).audio_codes
    assert two_levels.shape[1] == 2
    assert torch.equal(two_levels, all_levels[:, :2])
    with pytest.raises(ValueError, match="num_quantizers must be between 1 and 4"):
        tiny_model.encode(audio, num_quantizers=5)


def test_encoder_is_causal(tiny_model):
    """Changing samples after frame f leaves the codes of frames before the block holding f unchanged."""
    audio = speech_like(1.0)
    changed = audio.copy()
    cut = 20 * HOP + 17
    changed[cut:] = np.random.default_rng(1).standard_normal(len(audio) - cut).astype(np.float32) * 0.3
    codes = tiny_model.encode(as_input(audio)).audio_codes
    codes_changed = tiny_model.encode(as_input(changed)).audio_codes
    first_affected_block = (cut // HOP) // ENCODER_BLOCK_FRAMES * ENCODER_BLOCK_FRAMES
    assert torch.equal(codes[..., :first_affected_block], codes_changed[..., :first_affected_block])
    assert not torch.equal(codes[..., first_affected_block:], codes_changed[..., first_affected_block:])


def test_decoder_is_causal(tiny_model):
    codes = tiny_model.encode(as_input(speech_like(1.0))).audio_codes
    changed = codes.clone()
    changed[..., 30:] = (changed[..., 30:] + 7) % 64
    before = tiny_model.decode(codes).audio_values
    after = tiny_model.decode(changed).audio_values
    torch.testing.assert_close(before[..., : 30 * HOP], after[..., : 30 * HOP], rtol=0, atol=0)
    assert not torch.allclose(before[..., 30 * HOP :], after[..., 30 * HOP :])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_encoder_equals_offline_for_random_chunks(tiny_model, seed):
    rng = np.random.default_rng(seed)
    audio = speech_like(1.37, seed=seed)
    offline = tiny_model.encode(as_input(audio)).audio_codes[0]
    encoder = tiny_model.streaming_encoder()
    pieces, position = [], 0
    while position < len(audio):
        size = int(rng.integers(1, 2000))
        pieces.append(encoder.push(audio[position : position + size]))
        position += size
    pieces.append(encoder.flush())
    streamed = torch.cat(pieces, dim=-1)
    assert torch.equal(streamed, offline)


def test_streaming_encoder_emits_frames_as_soon_as_their_block_is_complete(tiny_model):
    encoder = tiny_model.streaming_encoder(num_quantizers=2)
    block = ENCODER_BLOCK_FRAMES * HOP
    assert encoder.push(np.zeros(block - 1, dtype=np.float32)).shape == (2, 0)
    assert encoder.push(np.zeros(1, dtype=np.float32)).shape == (2, ENCODER_BLOCK_FRAMES)
    assert encoder.push(np.zeros(HOP // 2, dtype=np.float32)).shape == (2, 0)
    assert encoder.flush().shape == (2, 1)
    with pytest.raises(RuntimeError, match="flushed"):
        encoder.push(np.zeros(10, dtype=np.float32))


def test_streaming_decoder_matches_one_shot_decode(tiny_model):
    codes = tiny_model.encode(as_input(speech_like(1.0))).audio_codes
    one_shot = tiny_model.decode(codes).audio_values[0, 0]
    decoder = tiny_model.streaming_decoder()
    frames = [decoder.push(codes[0, :, f : f + 1]) for f in range(codes.shape[-1])]
    streamed = torch.cat(frames)
    assert streamed.shape == one_shot.shape
    assert (streamed - one_shot).abs().max().item() <= 1e-5


def test_four_times_overlap_head_reconstructs_exactly_and_streams_like_one_shot():
    """decoder_head_overlap=4: Hann-windowed segment spectra overlap-add back to the signal (weighted overlap-add),
    and the streaming decoder equals one-shot decoding."""
    from lmcodec.codec_blocks import LMCodecISTFTHead, periodic_hann

    head = LMCodecISTFTHead(8, 320, 160, overlap=4)
    assert head.projection.out_features == 2 * 2 * 161
    signal = torch.from_numpy(speech_like(0.5)).unsqueeze(0)
    padded = torch.nn.functional.pad(signal, (240, 320))  # frames start every 80 samples, the first 240 early
    spectra = torch.fft.rfft(padded.unfold(1, 320, 80) * periodic_hann(320), dim=-1)
    samples, _ = head.synthesize(spectra)
    length = signal.shape[1]
    assert (samples[0, 240 : 240 + length - 240] - signal[0, : length - 240]).abs().max().item() < 1e-5
    with raises_config_error("LMCodecConfig.decoder_head_overlap must be an even integer >= 2 dividing "
                             "stft_window_length (320), got 3."):
        lmcodec.LMCodecConfig(decoder_head_overlap=3)
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config(decoder_head_overlap=4)).eval()
    codes = model.encode(as_input(speech_like(0.6))).audio_codes
    one_shot = model.decode(codes).audio_values[0, 0]
    decoder = model.streaming_decoder()
    streamed = torch.cat([decoder.push(codes[0, :, f : f + 1]) for f in range(codes.shape[-1])])
    assert streamed.shape == one_shot.shape and (streamed - one_shot).abs().max().item() <= 1e-5


def test_long_synthesis_window_reconstructs_exactly_and_streams_with_its_delay():
    """decoder_window_length=640 (40 ms frames reaching 320 samples back): Hann-windowed spectra of the segments
    `[160 i - 320, 160 i + 320)` overlap-add back to the signal 320 samples late; offline decoding removes the delay,
    and the streaming decoder's pushes plus its flush equal it, for any chunking (also shorter than the delay)."""
    from lmcodec.codec_blocks import LMCodecISTFTHead, periodic_hann

    head = LMCodecISTFTHead(8, 320, 160, synthesis_window_length=640)
    assert (head.overlap, head.synthesis_hop, head.lookback, head.projection.out_features) == (4, 160, 320, 2 * 321)
    signal = torch.from_numpy(speech_like(0.5)).unsqueeze(0)
    padded = torch.nn.functional.pad(signal, (320, 640))  # frame i covers signal samples [160 i - 320, 160 i + 320)
    frames = (signal.shape[1] + 319) // 160
    spectra = torch.fft.rfft(padded.unfold(1, 640, 160)[:, :frames] * periodic_hann(640), dim=-1)
    samples, _ = head.synthesize(spectra)  # output sample t is signal sample t - 320
    length = signal.shape[1]
    assert (samples[0, 480 : length] - signal[0, 160 : length - 320]).abs().max().item() < 1e-5
    with raises_config_error("LMCodecConfig.decoder_window_length must be a multiple of the synthesis hop (160) and "
                             "at least stft_window_length (320), got 500."):
        lmcodec.LMCodecConfig(decoder_window_length=500)
    with raises_config_error("LMCodecConfig.decoder_window_length longer than stft_window_length cannot be combined "
                             "with num_harmonics > 0"):
        lmcodec.LMCodecConfig(decoder_window_length=640, num_harmonics=8)
    config = tiny_config(decoder_window_length=640)
    assert config.decoder_output_delay == 320 and config.algorithmic_latency_ms == 60.0
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(config).eval()
    codes = model.encode(as_input(speech_like(0.6))).audio_codes
    one_shot = model.decode(codes).audio_values[0, 0]
    assert one_shot.shape == (codes.shape[-1] * HOP,)
    for chunk in (1, 3, codes.shape[-1]):
        decoder = model.streaming_decoder()
        pushed = [decoder.push(codes[0, :, f : f + chunk]) for f in range(0, codes.shape[-1], chunk)]
        assert pushed[0].shape[0] == min(chunk, codes.shape[-1]) * HOP - 320
        streamed = torch.cat(pushed + [decoder.flush()])
        assert streamed.shape == one_shot.shape and (streamed - one_shot).abs().max().item() <= 1e-5
    decoder = model.streaming_decoder()
    short = torch.cat([decoder.push(codes[0, :, :1]), decoder.flush()])  # one frame: 320 samples, all pending
    assert torch.allclose(short, model.decode(codes[..., :1]).audio_values[0, 0], atol=1e-5)


def test_padded_batch_equals_each_item_alone(tiny_model):
    extractor = lmcodec.LMCodecFeatureExtractor()
    clips = [speech_like(0.71, seed=3), speech_like(0.33, seed=4)]
    batch = extractor(clips, sampling_rate=16000)
    batched = tiny_model.encode(batch["input_values"], batch["padding_mask"])
    decoded = tiny_model.decode(batched.audio_codes, batch["padding_mask"]).audio_values
    for row, clip in enumerate(clips):
        single = extractor(clip, sampling_rate=16000)
        alone = tiny_model.encode(single["input_values"], single["padding_mask"])
        frames = alone.audio_codes.shape[-1]
        assert torch.equal(batched.audio_codes[row, :, :frames], alone.audio_codes[0])
        assert batched.audio_codes_mask[row].sum().item() == frames
        alone_audio = tiny_model.decode(alone.audio_codes, single["padding_mask"]).audio_values[0, 0]
        torch.testing.assert_close(decoded[row, 0, : len(clip)], alone_audio[: len(clip)], rtol=0, atol=1e-5)
        assert decoded[row, 0, len(clip) :].abs().max().item() == 0.0


def test_decode_clips_to_unit_range(tiny_model):
    with torch.no_grad():
        tiny_model.decoder.head.projection.bias.fill_(3.0)
    codes = torch.zeros(1, 4, 5, dtype=torch.long)
    audio = tiny_model.decode(codes).audio_values
    assert audio.abs().max().item() <= 1.0


def test_decode_rejects_bad_codes(tiny_model):
    with pytest.raises(ValueError, match=r"\[batch, levels, frames\]"):
        tiny_model.decode(torch.zeros(4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="1 to 4 levels"):
        tiny_model.decode(torch.zeros(1, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        tiny_model.decode(torch.full((1, 2, 3), 64, dtype=torch.long))


def test_encode_rejects_bad_input(tiny_model):
    with pytest.raises(ValueError, match=r"\[batch, 1, samples\]"):
        tiny_model.encode(torch.zeros(1, 2, 320))
    with pytest.raises(ValueError, match="padding_mask must have shape"):
        tiny_model.encode(torch.zeros(1, 1, 320), padding_mask=torch.ones(1, 100))


def test_save_and_load_give_identical_outputs(tiny_model, tmp_path):
    lmcodec.save_checkpoint(tiny_model, tmp_path)
    loaded = lmcodec.LMCodecModel.from_pretrained(tmp_path).eval()
    audio = as_input(speech_like(0.8))
    codes = tiny_model.encode(audio).audio_codes
    assert torch.equal(loaded.encode(audio).audio_codes, codes)
    assert torch.equal(loaded.decode(codes).audio_values, tiny_model.decode(codes).audio_values)
    for name, tensor in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_forward_returns_losses_and_trains(tiny_model):
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config()).train()
    audio = as_input(speech_like(0.5))
    output = model(audio)
    assert output.audio_values.shape == audio.shape
    assert output.audio_codes.shape == (1, 4, 25)
    for name in ("loss", "reconstruction_loss", "commitment_loss", "mel_loss", "stft_loss", "phase_loss"):
        value = getattr(output, name)
        assert value.dim() == 0 and torch.isfinite(value), name
    output.loss.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.quantizer.initialized.all()
    assert isinstance(model(audio, return_dict=False), tuple)


def test_overfitting_one_clip_lowers_the_loss():
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config(quantizer_dropout=0.0)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    audio = as_input(speech_like(0.5))
    losses = []
    for _ in range(40):
        loss = model(audio).reconstruction_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses


def test_padding_mask_excludes_padding_from_the_loss():
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config(quantizer_dropout=0.0)).eval()
    random_codebooks(model)
    audio = as_input(speech_like(0.5))
    mask = torch.ones(1, audio.shape[-1], dtype=torch.long)
    mask[:, 4000:] = 0
    noisy = audio.clone()
    noisy[..., 4000:] = torch.randn(audio.shape[-1] - 4000)
    clean = model(audio, padding_mask=mask).loss
    with_noise_in_padding = model(noisy, padding_mask=mask).loss
    torch.testing.assert_close(clean, with_noise_in_padding)


def test_frozen_codebooks_stay_fixed_in_training_mode(tiny_model):
    tiny_model.train()
    tiny_model.quantizer.update_codebooks = False
    before = tiny_model.quantizer.codebooks.clone()
    tiny_model(as_input(speech_like(0.5)))
    assert torch.equal(tiny_model.quantizer.codebooks, before)
    tiny_model.quantizer.update_codebooks = True
    tiny_model(as_input(speech_like(0.5)))
    assert not torch.equal(tiny_model.quantizer.codebooks, before)


def test_training_forward_under_bfloat16_autocast():
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config()).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(as_input(speech_like(0.5)))
    assert torch.isfinite(output.loss) and model.quantizer.codebooks.dtype == torch.float32
    assert model.quantizer.initialized.all()


@pytest.mark.parametrize("operating_point_prob", [0.0, 0.5, 1.0])
def test_quantizer_dropout_favours_the_operating_points_as_configured(operating_point_prob):
    config = tiny_config(quantizer_dropout_operating_point_prob=operating_point_prob)
    quantizer = lmcodec.LMCodecModel(config).quantizer
    torch.manual_seed(0)
    levels = quantizer.dropout_levels(20000, torch.device("cpu"))
    assert levels.min() >= 1 and levels.max() <= config.num_quantizers
    at_points = torch.isin(levels, torch.tensor(config.operating_points)).float().mean().item()
    uniform_share = len(config.operating_points) / config.num_quantizers
    expected = operating_point_prob + (1 - operating_point_prob) * uniform_share
    assert abs(at_points - expected) < 0.015, (at_points, expected)
    for point in config.operating_points:  # the operating points share their draws evenly
        share = (levels == point).float().mean().item()
        assert abs(share - expected / len(config.operating_points)) < 0.015


def test_a_saved_checkpoint_gets_the_mode_the_umask_gives(tiny_model, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        lmcodec.save_checkpoint(tiny_model, tmp_path)
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir() if path.is_file()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes
