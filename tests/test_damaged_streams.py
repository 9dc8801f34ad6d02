"""Damaged streams: clear errors by default; with partial decoding, silence only until the next sync point."""

from __future__ import annotations

import re

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


# ---------------------------------------------------------------------------------------------------- length fields
@pytest.fixture(scope="module")
def long_stream(model):
    """30 s: 150 packets of 10 frames (0.2 s), sync points every 40 frames (0.8 s)."""
    return model.compress(speech_like(30.0, seed=12))


@pytest.mark.parametrize("target, flip", [(70, 0x80), (70, 0x01), (71, 0x5A), (72, 0x20), (10, 0xC0), (140, 0x04)])
def test_a_damaged_length_field_costs_only_the_span_to_the_next_sync_point(model, long_stream, target, flip):
    """A flipped bit on a packet's length field misframes everything after it; partial decoding scans for the next
    packet that decodes as a sync period's start and resumes there, in place (the length is known from the header,
    so the packets after the damage are placed by counting back from the end)."""
    clean, _ = model.decompress(long_stream)
    start, _ = packet_spans(long_stream)[target]
    damaged = corrupt_bits(long_stream, start, flip)
    with pytest.raises(lmcodec.LMCodecError):
        model.decompress(damaged)
    audio, _, losses = model.decompress(damaged, partial=True, return_losses=True)
    first, resumed = target * 10, (target * 10 // 40 + 1) * 40  # frames: the damaged packet, the next sync point
    assert audio.shape == clean.shape
    np.testing.assert_array_equal(audio[: first * HOP - delay(model)], clean[: first * HOP - delay(model)])
    assert not audio[first * HOP : resumed * HOP].any()
    np.testing.assert_allclose(audio[(resumed + 10) * HOP :], clean[(resumed + 10) * HOP :], atol=1e-5)
    lost = (resumed - first) / 50
    assert losses == (f"lost {lost:.2f} s of audio: {first / 50:.2f}-{resumed / 50:.2f} s (packet {target} "
                      f"unreadable, resynchronised at the sync point at {resumed / 50:.2f} s)")


def corrupt_bits(data: bytes, position: int, flip: int) -> bytes:
    return data[:position] + bytes([data[position] ^ flip]) + data[position + 1 :]


def test_info_tells_damage_from_truncation(model, long_stream, tmp_path, capsys):
    from lmcodec.cli import main

    start, _ = packet_spans(long_stream)[70]
    cut_at, _ = packet_spans(long_stream)[61]
    files = {"complete": long_stream, "damaged": corrupt_bits(long_stream, start, 0x80),
             "truncated": long_stream[: cut_at + 5]}
    status = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.lmc"
        path.write_bytes(data)
        assert main(["info", str(path)]) == 0
        status[name] = capsys.readouterr().out.splitlines()[-1]
    assert status["complete"] == "status   complete"
    assert status["truncated"] == "status   truncated after 12.20 s"
    assert status["damaged"] == ("status   damaged: packet 70 unreadable (resynchronised at 14.20 s; audio resumes "
                                 "at the sync point at 14.40 s)")
    checkpoint = tmp_path / "checkpoint"
    lmcodec.save_checkpoint(model, checkpoint)
    assert main(["decode", "--partial", str(tmp_path / "damaged.lmc"), str(tmp_path / "out.wav"), "--backend",
                 "torch", "--model", str(checkpoint)]) == 0
    assert ("lost 0.40 s of audio: 14.00-14.40 s (packet 70 unreadable, resynchronised at the sync point at "
            "14.40 s)") in capsys.readouterr().err


def test_info_never_calls_a_cut_file_damaged_nor_a_damaged_length_truncated(long_stream):
    header, packets = bitstream.split_stream(long_stream)
    body = long_stream[bitstream.HEADER_SIZE :]
    spans = [(start - bitstream.HEADER_SIZE, end - bitstream.HEADER_SIZE) for start, end in packet_spans(long_stream)]
    for cut in range(spans[60][0], spans[62][1]):
        status, _ = bitstream.StreamFraming(header, body[:cut]).describe_damage()
        assert status.startswith("truncated after"), (cut, status)
    rng = np.random.default_rng(1)
    exact = 0
    for target in range(5, 140, 5):
        flip = int(rng.integers(1, 256))
        damaged = body[: spans[target][0]] + bytes([body[spans[target][0]] ^ flip]) + body[spans[target][0] + 1 :]
        status, _ = bitstream.StreamFraming(header, damaged).describe_damage()
        assert status.startswith("damaged: "), (target, flip, status)
        resynchronised = float(re.search(r"resynchronised at ([0-9.]+) s", status).group(1))
        assert abs(resynchronised - (target + 1) * 0.2) <= 0.2 + 1e-9, (target, flip, status)
        exact += abs(resynchronised - (target + 1) * 0.2) < 1e-9
    assert exact >= 15  # of 27: without the model the damaged packet is known to within one
