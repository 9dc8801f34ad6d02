"""Damaged streams: clear errors by default; with partial decoding, silence only until the next sync point."""

from __future__ import annotations

import numpy as np
import torch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmcodec
from lmcodec import bitstream
from tests.conftest import random_codebooks, speech_like, tiny_config

HOP = 320


@pytest.fixture(scope="module", params=[None, 640], ids=["default-head", "40ms-window"])
def model(request):
    """The default decoder, and one with a 40 ms synthesis window whose output trails its frames by 320 samples
    (the samples it holds back when damage starts are flushed before the silence; they lack the frames that
    would have followed, so they match the clean decode only up to `delay(model)` samples before the damage)."""
    torch.manual_seed(0)
    return random_codebooks(lmcodec.LMCodecModel(tiny_config(decoder_window_length=request.param)).eval())


def delay(model) -> int:
    return model.config.decoder_output_delay


@pytest.fixture(scope="module")
def stream(model):
    """3 s: 150 frames in 15 packets of 10 frames; sync points every 40 frames (packets 0, 4, 8, 12)."""
    return model.compress(speech_like(3.0, seed=11))


def packet_spans(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of each packet in a stream."""
    header, packets = bitstream.split_stream(data)
    spans, position = [], bitstream.HEADER_SIZE
    for packet in packets:
        size = len(bitstream.encode_packet(packet.payload, packet.crc, frames=packet.frames))
        spans.append((position, position + size))
        position += size
    return spans


def corrupt(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x5A]) + data[position + 1 :]


def test_corrupted_payload_raises_a_clear_error(model, stream):
    start, end = packet_spans(stream)[5]
    with pytest.raises(lmcodec.LMCodecError, match="packet 5|range decoder"):
        model.decompress(corrupt(stream, (start + end) // 2))


def test_partial_decoding_loses_audio_only_until_the_next_sync_point(model, stream):
    clean, _ = model.decompress(stream)
    start, end = packet_spans(stream)[5]
    damaged, _, losses = model.decompress(corrupt(stream, (start + end) // 2), partial=True, return_losses=True)
    assert damaged.shape == clean.shape
    assert np.abs(damaged[50 * HOP - 320 : 50 * HOP]).max() > 0  # the audio held back at the damage is not lost
    np.testing.assert_array_equal(damaged[: 50 * HOP - delay(model)], clean[: 50 * HOP - delay(model)])  # before the damaged packet
    assert np.abs(damaged[50 * HOP : 80 * HOP]).max() == 0.0  # packets 5-7 are silent
    # From the sync point at frame 80 the fine LM restarts in both; the decoder's state settles within a few frames.
    np.testing.assert_allclose(damaged[90 * HOP :], clean[90 * HOP :], atol=1e-5)
    assert "lost 0.60 s" in losses and "1.00-1.60 s" in losses


def test_dropped_packet_is_recovered_at_the_next_sync_point_in_place(model, stream):
    clean, _ = model.decompress(stream)
    start, end = packet_spans(stream)[6]
    dropped = stream[:start] + stream[end:]
    with pytest.raises(lmcodec.LMCodecError):
        model.decompress(dropped)
    audio, _, losses = model.decompress(dropped, partial=True, return_losses=True)
    assert audio.shape == clean.shape
    np.testing.assert_array_equal(audio[: 60 * HOP - delay(model)], clean[: 60 * HOP - delay(model)])
    assert np.abs(audio[60 * HOP : 80 * HOP]).max() == 0.0
    np.testing.assert_allclose(audio[90 * HOP :], clean[90 * HOP :], atol=1e-5)
    assert losses.startswith("lost 0.40 s")


def test_truncated_file(model, stream):
    start, _ = packet_spans(stream)[9]
    cut = stream[: start + 7]
    with pytest.raises(lmcodec.LMCodecError, match="truncated"):
        model.decompress(cut)
    clean, _ = model.decompress(stream)
    audio, _, losses = model.decompress(cut, partial=True, return_losses=True)
    np.testing.assert_array_equal(audio[: 90 * HOP - delay(model)], clean[: 90 * HOP - delay(model)])
    assert np.abs(audio[90 * HOP :]).max() == 0.0 and "truncated" in losses


def test_live_decompressor_partial_mode(model, stream):
    start, end = packet_spans(stream)[2]
    damaged = corrupt(stream, start + 3)
    decompressor = model.stream_decompressor(damaged[: bitstream.HEADER_SIZE], partial=True)
    audio = np.concatenate([decompressor.push(damaged[bitstream.HEADER_SIZE :]), decompressor.finish()])
    assert len(audio) == 3 * 16000
    assert decompressor.lost and decompressor.lost[0][0] == 20


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_only_raise_the_documented_error(model, data):
    try:
        model.decompress(data)
    except lmcodec.LMCodecError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0, max_value=10_000), value=st.integers(min_value=0, max_value=255),
       cut=st.booleans())
def test_mutated_streams_only_raise_the_documented_error(model, stream, position, value, cut):
    position %= len(stream)
    mutated = stream[:position] if cut else stream[:position] + bytes([value]) + stream[position + 1 :]
    for partial in (False, True):
        try:
            model.decompress(mutated, partial=partial)
        except lmcodec.LMCodecError:
            assert not partial or position < bitstream.HEADER_SIZE


def test_sampled_fine_codes_restart_at_each_sync_point(tiny_model):
    """Sampling is reseeded per sync period, so generating from a later sync point equals the tail of a whole run."""
    torch.manual_seed(0)
    sync = tiny_model.config.sync_frames
    coarse = torch.randint(0, tiny_model.config.codebook_size, (1, 2, 2 * sync + 7))
    whole = tiny_model.generate_fine_codes(coarse, do_sample=True, seed=5)
    later = tiny_model.fine_code_generator(2, do_sample=True, seed=5, start_frame=sync).push(coarse[:, :, sync:])
    assert torch.equal(later, whole[:, :, sync:])
    assert not torch.equal(whole, tiny_model.generate_fine_codes(coarse, do_sample=True, seed=6))
