"""Datagram mode (format version 4): the stream description, the packets, and damage that ends by design.

After any loss, every received packet from the next reset point on decodes exactly as without the loss, and the
received audio that cannot be decoded never exceeds the bound R - P frames — whether the receiver finds the gap from
the packets' sequence fields, is told by the transport (`push(None)`, `lost(count)`, a sequence number), or the gap
is longer than the sequence field can tell."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec import bitstream
from lmcodec.bitstream import (
    CorruptStreamError,
    DatagramDescription,
    StreamHeader,
    TruncatedStreamError,
    UnsupportedStreamError,
    datagram_check,
    uniform_frequencies,
)
from lmcodec.datagram import DatagramDecoder, DatagramEncoder
from lmcodec.integer_entropy_model import mix_with_uniform
from tests.conftest import speech_like
from tests.golden import GOLDEN_DIR

HOP = 320
CONFIGURATIONS = [(1, 11), (2, 12), (3, 12)]  # (P, R): 20, 40 and 60 ms packets, damage at most 200 / 200 / 180 ms


@pytest.fixture(scope="module")
def model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


@pytest.fixture(scope="module")
def codes(model) -> np.ndarray:
    """Coarse codes `[Nc, F]` of 6 s of a speech-like signal (300 frames)."""
    signal = torch.from_numpy(speech_like(6.0, seed=31))[None, None]
    return model.encode(signal, num_quantizers=2).audio_codes[0].numpy()


def encode(model, codes, packet_frames=2, sync_frames=12, **options) -> tuple[bytes, list[bytes]]:
    encoder = DatagramEncoder(model, packet_frames, sync_frames, **options)
    packets = encoder.push_codes(codes) + encoder.flush()
    return encoder.description(), packets


@pytest.fixture(scope="module")
def streams(model, codes):
    """(P, R) → (description, packets, codes of each packet without loss)."""
    out = {}
    for packet_frames, sync_frames in CONFIGURATIONS:
        description, packets = encode(model, codes, packet_frames, sync_frames)
        decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
        clean = [decoder.receive(packet).codes for packet in packets]
        out[packet_frames, sync_frames] = description, packets, clean
    return out


# ---------------------------------------------------------------------------------------------------- description
def make_description(**overrides) -> DatagramDescription:
    values = dict(model_sampling_rate=16000, original_sampling_rate=48000, hop_length=320, num_coarse_quantizers=3,
                  num_quantizers=12, codebook_size=1024, sync_period_frames=12, packet_length_frames=2,
                  sequence_modulus=6, check_bits=0, start_mix=(216, 152, 120), model_fingerprint=b"\x01" * 8)
    values.update(overrides)
    return DatagramDescription(**values)


def test_description_bytes_are_pinned():
    """If this fails, the description's layout changed: bump DATAGRAM_FORMAT_VERSION and update docs/bitstream.md."""
    data = make_description().to_bytes()
    # magic, version 4, flags 3, 16000, 48000, hop 320, Nc 3, Nq 12, log2 K 10, R 12, P 2, M 6, k 0, fingerprint,
    # shares 216 152 120, CRC
    assert data.hex() == ("4c4d4364" "04" "03" "803e0000" "80bb0000" "4001" "03" "0c" "0a" "0c00" "02" "0600" "00"
                          "0101010101010101" "d89878" "fc7c")
    assert len(data) == bitstream.DATAGRAM_DESCRIPTION_BASE_SIZE + 3 == 38
    assert DatagramDescription.from_bytes(data) == make_description()


@pytest.mark.parametrize("overrides, message", [
    (dict(sync_period_frames=13), "must be a multiple of packet_length_frames"),
    (dict(sequence_modulus=4), "must be a multiple of the packets per reset segment (6)"),
    (dict(sequence_modulus=1, sync_period_frames=2), "sequence_modulus must be between 2 and 65535"),
    (dict(check_bits=17), "check_bits must be between 0 and 16"),
    (dict(packet_length_frames=0), "packet_length_frames must be between 1 and 255"),
    (dict(start_mix=(1, 2)), "one share per coarse level (3)"),
    (dict(start_mix=(1, 2, 256)), "start_mix share must be between 0 and 255"),
    (dict(codebook_size=1000), "codebook_size must be a power of two"),
    (dict(num_coarse_quantizers=13), "num_coarse_quantizers must be between 1 and num_quantizers (12)"),
    (dict(model_fingerprint=b"x"), "model_fingerprint must be 8 bytes"),
    (dict(format_version=3), "format_version of a datagram stream must be 4"),
])
def test_description_validation_names_the_field(overrides, message):
    with pytest.raises(lmcodec.LMCodecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_description(**overrides)


def test_description_damage_and_confusion_with_file_streams_are_clear_errors():
    data = make_description().to_bytes()
    for position in range(5, len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises((CorruptStreamError, TruncatedStreamError)):
            DatagramDescription.from_bytes(bytes(damaged))
    with pytest.raises(TruncatedStreamError, match="truncated"):
        DatagramDescription.from_bytes(data[:-1])
    with pytest.raises(CorruptStreamError, match="followed by 1 more bytes"):
        DatagramDescription.from_bytes(data + b"\x00")
    with pytest.raises(UnsupportedStreamError, match="not a file stream; decode its packets with a DatagramDecoder"):
        StreamHeader.from_bytes(data)
    header = StreamHeader(True, 16000, 16000, None, 320, 3, 12, 1024, 300, 50, b"\x01" * 8).to_bytes()
    with pytest.raises(UnsupportedStreamError, match="header of a file stream .format version 3"):
        DatagramDescription.from_bytes(header)
    with pytest.raises(UnsupportedStreamError, match="version 9 is not one this lmcodec reads .4.; upgrade"):
        DatagramDescription.from_bytes(data[:4] + b"\x09" + data[5:])


def test_integer_tables_of_the_fields_and_the_start_mix():
    for size in (2, 3, 6, 11, 1024):
        table = uniform_frequencies(size)
        assert table.sum() == 2**20 and table.max() - table.min() <= 1 and table.dtype == np.int64
    rng = np.random.default_rng(0)
    weights = rng.random((3, 64)) ** 6
    tables = 1 + np.floor(weights * (2**20 - 64) / weights.sum(axis=1, keepdims=True)).astype(np.int64)
    tables[np.arange(3), weights.argmax(axis=1)] += 2**20 - tables.sum(axis=1)
    mixed = mix_with_uniform(tables, [0, 128, 255], 20)
    assert (mixed.sum(axis=1) == 2**20).all() and mixed.min() >= 1
    np.testing.assert_array_equal(mixed[0], tables[0])  # share 0: the model's table
    expected = (128 * tables[1] + 128 * 16384) >> 8
    assert np.abs(mixed[1] - expected).max() < 64  # the floor's leftover goes to one code
    assert datagram_check(np.array([[1, 2]]), 5, 16) == bitstream.crc16(bytes([1, 0, 2, 0, 5, 0]))
    assert datagram_check(np.array([[1, 2]]), 5, 3) == bitstream.crc16(bytes([1, 0, 2, 0, 5, 0])) & 7


# ---------------------------------------------------------------------------------------------------- coding
@pytest.mark.parametrize("options", [{}, {"check_bits": 2}, {"sequence_modulus": 12}, {"start_mix": (0, 255)}])
def test_packets_decode_exactly_and_carry_only_their_payload(model, codes, options):
    description, packets = encode(model, codes, **options)
    decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
    decoded = np.concatenate([decoder.receive(packet).codes for packet in packets])
    np.testing.assert_array_equal(decoded.T, codes)  # 300 frames: whole packets
    info = DatagramDescription.from_bytes(description)
    assert info.sequence_modulus == options.get("sequence_modulus", 6) and len(packets) == 150
    assert all(packet and packet[-1] != 0 for packet in packets)  # shortest payloads: never a trailing zero
    report = decoder.report
    assert (report.packets_received, report.packets_decoded, report.frames_decoded) == (150, 150, 300)


def test_field_costs_are_what_the_description_says(model, codes):
    """The sequence field costs log2(M) bits of information, a check k bits, and nothing is byte-aligned."""
    plain = DatagramEncoder(model, 2, 12)
    plain.push_codes(codes)
    checked = DatagramEncoder(model, 2, 12, sequence_modulus=12, check_bits=3)
    checked.push_codes(codes)
    assert plain.report.information_bits == checked.report.information_bits
    assert plain.report.extra["field_bits"] == pytest.approx(150 * np.log2(6), abs=1e-3)
    assert checked.report.extra["field_bits"] == pytest.approx(150 * (np.log2(12) + 3), abs=1e-3)


def test_audio_in_audio_out_with_resampling(model):
    encoder = DatagramEncoder(model, 2, 12, sampling_rate=22050)
    audio = speech_like(1.0, 22050, seed=4)
    packets = [packet for start in range(0, len(audio), 441) for packet in encoder.push(audio[start : start + 441])]
    packets += encoder.flush()
    assert len(packets) == 25  # 1 s = 50 frames, the last packet completed with silence
    info = DatagramDescription.from_bytes(encoder.description())
    assert info.original_sampling_rate == 22050 and info.model_sampling_rate == 16000
    decoder = DatagramDecoder(model, encoder.description())
    out = np.concatenate([decoder.push(packet) for packet in packets] + [decoder.finish()])
    assert out.dtype == np.float32 and len(out) == 25 * 2 * HOP and np.abs(out).max() <= 1.0
    with pytest.raises(lmcodec.LMCodecError, match="was flushed"):
        encoder.push(audio)


def test_api_on_the_model_and_clear_errors(model, codes):
    encoder = model.datagram_encoder(packet_frames=3, sync_frames=12)
    packets = encoder.push_codes(codes[:, :30])
    decoder = model.datagram_decoder(encoder.description(), fine_decoding="coarse-only")
    assert [decoder.receive(packet).status for packet in packets] == ["decoded"] * 10
    with pytest.raises(lmcodec.LMCodecError, match="sync_frames must be at most 40"):
        model.datagram_encoder(2, 42)
    with pytest.raises(lmcodec.LMCodecError, match="not an operating point"):
        model.datagram_encoder(num_coarse_quantizers=4)
    with pytest.raises(lmcodec.LMCodecError, match="pass None for a lost one"):
        decoder.push("abc")
    with pytest.raises(lmcodec.LMCodecError, match="count must be a non-negative integer"):
        decoder.lost(-1)
    other = DatagramDescription.from_bytes(encoder.description())
    wrong = DatagramDescription(**{**other.__dict__, "model_fingerprint": b"\x00" * 8})
    with pytest.raises(lmcodec.LMCodecError, match="different model .fingerprint mismatch"):
        model.datagram_decoder(wrong.to_bytes())


# ---------------------------------------------------------------------------------------------------- loss
def loss_patterns(packets: int, per_segment: int, rng: np.random.Generator) -> list[set[int]]:
    """Single losses and bursts, at random and at reset boundaries, and random loss at 10 and 30 %."""
    patterns = [{int(i)} for i in rng.choice(packets, 3, replace=False)]
    starts = list(range(per_segment, packets, per_segment))
    patterns += [{starts[1]}, {starts[2] - 1}]  # a segment's first packet; a segment's last packet
    for length in (2, per_segment - 1, per_segment, 2 * per_segment + 1):
        first = int(rng.integers(0, packets - length))
        patterns.append(set(range(first, first + length)))  # a burst at random
        boundary = per_segment * int(rng.integers(3, packets // per_segment - 3))
        patterns.append(set(range(boundary, boundary + length)))  # a burst from a reset point
        patterns.append(set(range(boundary - length, boundary)))  # a burst up to a reset point
    for rate in (0.1, 0.3):
        patterns.append({i for i in range(packets) if rng.random() < rate})
    return patterns


def expected_decodable(dropped: set[int], packets: int, per_segment: int) -> list[bool]:
    """A received packet decodes iff no packet of its segment before it was lost."""
    out, broken = [], False
    for number in range(packets):
        if number % per_segment == 0:
            broken = False
        out.append(not broken and number not in dropped)
        broken = broken or number in dropped
    return out


def check_recovery(decoder, results, dropped, clean, info, told: bool):
    """Every received packet decodes exactly as without loss iff its segment lost nothing before it, and the
    received-but-undecodable run after a loss never exceeds R - P frames."""
    per_segment, total = info.packets_per_segment, len(clean)
    decodable = expected_decodable(dropped, total, per_segment)
    received = [number for number in range(total) if number not in dropped]
    assert [result.sequence_number for result in results] == received
    for result in results:
        number = result.sequence_number
        assert (result.status == "decoded") == decodable[number], (number, result.status)
        if result.status == "decoded":
            np.testing.assert_array_equal(result.codes, clean[number])
        else:
            assert result.status == "undecodable"
    report = decoder.report
    lost_at_end = 0 if told else len([number for number in dropped if number > received[-1]])
    assert report.packets_lost == len(dropped) - lost_at_end
    assert report.packets_decoded == sum(decodable) and report.packets_damaged == 0
    assert report.longest_undecodable_frames <= info.damage_bound_frames
    assert report.frames_undecodable == (len(received) - sum(decodable)) * info.packet_length_frames


@pytest.mark.parametrize("packet_frames, sync_frames", CONFIGURATIONS)
def test_damage_ends_at_the_next_reset_whatever_is_lost(model, streams, packet_frames, sync_frames):
    """Gaps found from the sequence fields (bursts shorter than the modulus) and gaps the transport reports (any
    length, by sequence number or by `push(None)`) give the same, exact recovery."""
    description, packets, clean = streams[packet_frames, sync_frames]
    packets, clean = packets[: 120 // packet_frames], clean[: 120 // packet_frames]  # 2.4 s, 10-11 segments
    info = DatagramDescription.from_bytes(description)
    rng = np.random.default_rng(packet_frames)
    worst = 0
    for index, dropped in enumerate(loss_patterns(len(packets), info.packets_per_segment, rng)):
        ways = ["sequence number"]
        if index % 3 == 0:
            ways.append("push(None)")
        if index % 3 == 1 and not any(set(range(i, i + info.sequence_modulus - 1)) <= dropped for i in dropped):
            ways.append("sequence field")  # every gap is shorter than the field can tell
        for way in ways:
            decoder = DatagramDecoder(model, description, fine_decoding="coarse-only", reorder_window=0)
            results = []
            for number, packet in enumerate(packets):
                if number in dropped:
                    if way == "push(None)":
                        decoder.lost(1)
                    continue
                given = number if way == "sequence number" else None
                results.append(decoder.receive(packet, sequence_number=given))
            check_recovery(decoder, results, dropped, clean, info, told=way == "push(None)")
            worst = max(worst, decoder.report.longest_undecodable_frames)
    assert worst == info.damage_bound_frames  # the bound is reached (a segment's first packet lost) and kept


@pytest.mark.parametrize("burst_segments", [1, 2])
def test_a_gap_the_sequence_field_cannot_see_still_ends_at_the_next_reset(model, streams, burst_segments):
    """A burst of exactly M (or 2M) packets looks like no gap at all: the receiver decodes with a context that is
    not the sender's, and the canonical check catches most of that; from the next reset on, decoding is exact."""
    description, packets, clean = streams[2, 12]
    info = DatagramDescription.from_bytes(description)
    modulus = info.sequence_modulus
    for start in range(8, 8 + modulus):  # every phase
        dropped = set(range(start, start + burst_segments * modulus))
        decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
        results = [decoder.receive(packet) for number, packet in enumerate(packets) if number not in dropped]
        first_reset = -(-(start + len(dropped)) // modulus) * modulus
        after = [r for r, number in zip(results, [n for n in range(len(packets)) if n not in dropped])
                 if number >= first_reset]
        assert after and all(r.status == "decoded" for r in after)
        received = [n for n in range(len(packets)) if n not in dropped]
        for result, number in zip(results, received):
            if number >= first_reset:
                np.testing.assert_array_equal(result.codes, clean[number])
        assert decoder.report.packets_lost == 0  # it could not know


def test_late_and_duplicate_packets_are_dropped_and_reported(model, codes, streams):
    description, packets, clean = streams[2, 12]
    decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")  # M = 6: reorder window 1
    assert [decoder.receive(packets[n]).status for n in (0, 1, 1, 2)] == ["decoded", "decoded", "duplicate", "decoded"]
    assert decoder.report.packets_duplicate == 1 and decoder.sequence_field(packets[9]) == 3
    # A sequence field of twice the segment (M = 12, one more bit) tells reordering up to 3 packets from loss.
    description, packets = encode(model, codes[:, :40], sequence_modulus=12)
    decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
    order = [0, 1, 3, 2, 4, 5, 5, 6, 7]  # 2 and 3 swapped, 5 duplicated
    statuses = [decoder.receive(packets[number]).status for number in order]
    assert statuses == ["decoded", "decoded", "undecodable", "late", "undecodable", "undecodable", "duplicate",
                        "decoded", "decoded"]
    report = decoder.report
    assert (report.packets_late, report.packets_duplicate, report.packets_lost) == (1, 1, 1)
    assert report.longest_undecodable_frames == 6  # packets 3-5, after losing 2 (it came too late)
    np.testing.assert_array_equal(decoder.last.codes, clean[7])
    # With the transport's sequence numbers, a late packet is known for what it is whatever the window.
    decoder = DatagramDecoder(model, description, fine_decoding="coarse-only", reorder_window=0)
    assert [decoder.receive(packets[n], sequence_number=n).status for n in (0, 2, 1, 1)] == [
        "decoded", "undecodable", "late", "late"]


def test_damaged_packets_fail_their_checks_and_damage_ends_at_the_next_reset(model, codes):
    for options in ({}, {"check_bits": 4}):
        description, packets = encode(model, codes, **options)
        decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
        clean = [decoder.receive(packet).codes for packet in packets]
        caught = 0
        for target in range(13, 13 + 30):  # 30 packets, one damaged at a time, one byte flipped
            damaged = bytearray(packets[target])
            damaged[len(damaged) // 2] ^= 0x24
            decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
            arrivals = packets[:target] + [bytes(damaged)] + packets[target + 1 :]
            results = [decoder.receive(packet, sequence_number=number) for number, packet in enumerate(arrivals)]
            caught += results[target].status == "damaged"
            next_reset = (target // 6 + 1) * 6
            for number in range(next_reset, len(packets)):
                assert results[number].status == "decoded"
                np.testing.assert_array_equal(results[number].codes, clean[number])
        assert caught >= (15 if not options else 25), (options, caught)  # ~60 % / ~97 % expected


def test_any_bytes_are_a_status_never_an_exception(model, streams):
    description, packets, _ = streams[2, 12]
    decoder = DatagramDecoder(model, description)
    rng = np.random.default_rng(7)
    for size in [0, 1, 2, 3, 5, 8, 40, 300] * 5:
        samples = decoder.push(rng.bytes(size))
        assert samples.dtype == np.float32 and len(samples) % (2 * HOP) == 0
    statuses = {"decoded", "undecodable", "damaged", "late", "duplicate"}
    assert decoder.last.status in statuses


def test_audio_keeps_time_across_losses_and_resumes_at_the_reset(model, streams):
    """Lost and undecodable packets become silence of their length; after the reset the synthesis restarts and
    settles onto the audio of a loss-free decode."""
    description, packets, _ = streams[2, 12]
    clean_decoder = DatagramDecoder(model, description, fine_decoding="coarse-only")
    clean = np.concatenate([clean_decoder.push(packet) for packet in packets])
    decoder = DatagramDecoder(model, description, fine_decoding="coarse-only", concealment="silence")
    pieces = []
    for number, packet in enumerate(packets):
        pieces.append(decoder.push(None) if number in (20, 21) else decoder.push(packet))
    audio = np.concatenate(pieces + [decoder.finish()])
    assert audio.shape == clean.shape
    frame = 2 * HOP
    np.testing.assert_array_equal(audio[: 20 * frame], clean[: 20 * frame])
    assert not audio[20 * frame : 24 * frame].any()  # 20-21 lost, 22-23 undecodable (same segment)
    np.testing.assert_allclose(audio[29 * frame :], clean[29 * frame :], atol=1e-5)
    assert decoder.report.frames_lost == 4 and decoder.report.frames_undecodable == 4
    assert "lost (0.08 s)" in decoder.report.describe()
