"""The bitstream container: header, packets, varints, checksums, raw code packing, fingerprints, damage handling."""

from __future__ import annotations

import ast
import dataclasses
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcodec import bitstream
from lmcodec.bitstream import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    CorruptStreamError,
    Packet,
    PacketReader,
    StreamHeader,
    TruncatedStreamError,
    UnsupportedStreamError,
    crc16,
    crc16_codes,
    decode_varint,
    encode_packet,
    encode_varint,
    fingerprint as model_fingerprint,
    pack_codes,
    packed_size,
    packet_overhead,
    split_stream,
    unpack_codes,
)
from lmcodec.errors import LMCodecError

HEADER_VALUES = dict(
    entropy_coded=True,
    model_sampling_rate=16000,
    original_sampling_rate=44100,
    num_samples=14940,  # 47 frames of 320 samples (the last one part padding): packets of 25 and 22 frames
    hop_length=320,
    num_coarse_quantizers=2,
    num_quantizers=12,
    codebook_size=1024,
    sync_period_frames=250,
    packet_length_frames=25,
    model_fingerprint=b"12345678",
)

# The bytes FORMAT_VERSION 3 writes for HEADER_VALUES followed by a regular packet (b"abc", CRC 0x1234) and a short
# last packet of 22 frames (b"\xff", CRC 0xBEEF). Versions 1 and 2 have the same container layout; the version byte,
# the flags (version 3 sets bit 1, the integer entropy model) and so the header CRC differ.
# If this test fails, the layout changed: bump FORMAT_VERSION, update docs/bitstream.md, then this constant.
GOLDEN_STREAM = bytes.fromhex(
    "4c4d4364" "03" "03" "803e0000" "44ac0000" "5c3a000000000000" "4001" "02" "0c" "0a" "fa00" "1900"
    "3132333435363738" "e2cf"
    "03" "616263" "3412"
    "00" "16" "01" "ff" "efbe"
)
GOLDEN_STREAM_V2 = bytes.fromhex(
    "4c4d4364" "02" "01" "803e0000" "44ac0000" "5c3a000000000000" "4001" "02" "0c" "0a" "fa00" "1900"
    "3132333435363738" "bc80"
    "03" "616263" "3412"
    "00" "16" "01" "ff" "efbe"
)
GOLDEN_STREAM_V1 = bytes.fromhex(
    "4c4d4364" "01" "01" "803e0000" "44ac0000" "5c3a000000000000" "4001" "02" "0c" "0a" "fa00" "1900"
    "3132333435363738" "e329"
    "03" "616263" "3412"
    "00" "16" "01" "ff" "efbe"
)


def make_header(**overrides) -> StreamHeader:
    return StreamHeader(**{**HEADER_VALUES, **overrides})


PAYLOADS = (b"abc", b"\x00", bytes(range(200)), b"\x00" * 300)


def make_stream(payloads=PAYLOADS, header=None) -> bytes:
    """A header announcing len(payloads) packets followed by them; the last one is short (22 of 25 frames)."""
    header = header or make_header(num_samples=(len(payloads) * 25 - 3) * 320 - 100)
    packets = [encode_packet(p, (i * 4099) & 0xFFFF) for i, p in enumerate(payloads[:-1])]
    packets.append(encode_packet(payloads[-1], ((len(payloads) - 1) * 4099) & 0xFFFF, frames=22))
    return header.to_bytes() + b"".join(packets)


def with_valid_crc(fields: bytes) -> bytes:
    """Header field bytes (without CRC) → a header whose checksum matches, to reach the field validation."""
    return fields + struct.pack("<H", crc16(fields))


def header_fields(**overrides) -> bytes:
    """Header field bytes in the version-1 layout, with raw values overridable."""
    values = dict(
        magic=MAGIC, version=FORMAT_VERSION, flags=3, model_rate=16000, original_rate=44100, num_samples=14940,
        hop=320, nc=2, nq=12, code_bits=10, sync=250, packet=25, fingerprint=b"12345678",
    )
    values.update(overrides)
    return struct.pack("<4sBBIIQHBBBHH8s", *values.values())


# ---------------------------------------------------------------------------------------------------------- header


@pytest.mark.parametrize("version, golden", [(3, GOLDEN_STREAM), (2, GOLDEN_STREAM_V2), (1, GOLDEN_STREAM_V1)])
def test_golden_stream_guards_the_layout(version, golden):
    header = make_header(format_version=version)
    stream = header.to_bytes() + encode_packet(b"abc", 0x1234) + encode_packet(b"\xff", 0xBEEF, frames=22)
    assert stream == golden
    parsed, packets = split_stream(golden)
    assert parsed == header and parsed.format_version == version
    assert packets == [Packet(0, b"abc", 0x1234), Packet(1, b"\xff", 0xBEEF, frames=22)]


def test_headers_are_written_in_the_current_version():
    assert bitstream.FORMAT_VERSION == 3 and make_header().to_bytes()[4] == 3
    with pytest.raises(LMCodecError, match="format_version must be one of"):
        make_header(format_version=4)


@pytest.mark.parametrize("version, entropy_coded, flags, kind", [
    (3, True, 3, "integer"), (3, False, 0, "none"), (2, True, 1, "float"), (2, False, 0, "none"), (1, True, 1, "float"),
])
def test_the_header_names_the_entropy_model(version, entropy_coded, flags, kind):
    header = make_header(format_version=version, entropy_coded=entropy_coded)
    assert header.entropy_model == kind and header.to_bytes()[5] == flags
    assert StreamHeader.from_bytes(header.to_bytes())[0] == header


@pytest.mark.parametrize("version, flags, message", [
    (3, 1, "header flags 0x01 name no entropy model a version 3 stream can use"),
    (3, 2, "header flags 0x02 name no entropy model a version 3 stream can use"),
    (2, 3, "header sets unknown flag bits 0x02"),
    (3, 4, "header sets unknown flag bits 0x04"),
])
def test_flags_that_name_no_usable_entropy_model_are_rejected(version, flags, message):
    with pytest.raises(CorruptStreamError, match=message):
        StreamHeader.from_bytes(with_valid_crc(header_fields(version=version, flags=flags)))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(entropy_coded=False),
        dict(num_samples=None),
        dict(num_samples=0),
        dict(num_samples=2**64 - 2, original_sampling_rate=2**32 - 1, model_sampling_rate=1),
        dict(num_coarse_quantizers=1, num_quantizers=1, codebook_size=2, sync_period_frames=1, packet_length_frames=1,
             hop_length=1),
        dict(num_coarse_quantizers=255, num_quantizers=255, codebook_size=65536, sync_period_frames=65535,
             packet_length_frames=65535, hop_length=65535),
        dict(num_coarse_quantizers=np.int64(3), codebook_size=np.int32(1024), model_fingerprint=bytearray(8)),
    ],
)
def test_header_round_trip(overrides):
    header = make_header(**overrides)
    data = header.to_bytes()
    assert len(data) == HEADER_SIZE == 41
    parsed, consumed = StreamHeader.from_bytes(data + b"trailing packets")
    assert consumed == HEADER_SIZE
    assert parsed == header
    assert type(parsed.num_coarse_quantizers) is int and type(parsed.model_fingerprint) is bytes


def test_header_is_frozen_and_derives_code_bits_and_sync_packets():
    header = make_header()
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.num_samples = 3
    assert header.bits_per_code == 10
    assert header.packets_per_sync_period == 10
    assert [header.starts_sync_period(i) for i in (0, 1, 9, 10, 20)] == [True, False, False, True, True]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(entropy_coded=1), "entropy_coded must be True or False"),
        (dict(model_sampling_rate=0), "model_sampling_rate must be between 1 and"),
        (dict(model_sampling_rate=2**32), "model_sampling_rate must be between 1 and"),
        (dict(model_sampling_rate=16000.0), "model_sampling_rate must be an integer"),
        (dict(original_sampling_rate=-8000), "original_sampling_rate must be between 1 and"),
        (dict(original_sampling_rate=True), "original_sampling_rate must be an integer"),
        (dict(num_samples=-1), "num_samples must be between 0 and"),
        (dict(num_samples=2**64 - 1), "num_samples must be between 0 and"),
        (dict(num_samples="16000"), "num_samples must be an integer"),
        (dict(hop_length=0), "hop_length must be between 1 and 65535"),
        (dict(hop_length=65536), "hop_length must be between 1 and 65535"),
        (dict(num_quantizers=0), "num_quantizers must be between 1 and 255"),
        (dict(num_quantizers=256), "num_quantizers must be between 1 and 255"),
        (dict(num_coarse_quantizers=0), "num_coarse_quantizers must be between 1 and 255"),
        (dict(num_coarse_quantizers=13), "num_coarse_quantizers must be between 1 and num_quantizers (12), got 13"),
        (dict(codebook_size=1), "codebook_size must be between 2 and 65536"),
        (dict(codebook_size=2**17), "codebook_size must be between 2 and 65536"),
        (dict(codebook_size=1000), "codebook_size must be a power of two"),
        (dict(packet_length_frames=0), "packet_length_frames must be between 1 and 65535"),
        (dict(packet_length_frames=65536), "packet_length_frames must be between 1 and 65535"),
        (dict(sync_period_frames=0), "sync_period_frames must be between 1 and 65535"),
        (dict(sync_period_frames=260), "sync_period_frames (260) must be a multiple of packet_length_frames (25)"),
        (dict(sync_period_frames=10), "must be a multiple of packet_length_frames"),
        (dict(model_fingerprint=b"1234567"), "model_fingerprint must be 8 bytes"),
        (dict(model_fingerprint="12345678"), "model_fingerprint must be 8 bytes"),
    ],
)
def test_header_validation_names_the_field(overrides, message):
    with pytest.raises(LMCodecError) as error:
        make_header(**overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(flags=0x81), "header sets unknown flag bits 0x80"),
        (dict(code_bits=0), "header gives 0 bits per code"),
        (dict(code_bits=17), "header gives 17 bits per code"),
        (dict(nc=13), "num_coarse_quantizers must be between 1 and num_quantizers (12), got 13"),
        (dict(nc=0), "num_coarse_quantizers must be between 1"),
        (dict(nq=0), "num_quantizers must be between 1"),
        (dict(packet=0), "packet_length_frames must be between 1"),
        (dict(sync=0), "sync_period_frames must be between 1"),
        (dict(sync=30), "must be a multiple of packet_length_frames"),
        (dict(model_rate=0), "model_sampling_rate must be between 1"),
        (dict(original_rate=0), "original_sampling_rate must be between 1"),
        (dict(hop=0), "hop_length must be between 1"),
    ],
)
def test_header_parse_rejects_impossible_values_even_with_a_valid_checksum(overrides, message):
    with pytest.raises(CorruptStreamError) as error:
        StreamHeader.from_bytes(with_valid_crc(header_fields(**overrides)))
    assert message in str(error.value)
    assert error.value.packet_index is None
    assert "\n" not in str(error.value)


def test_unknown_num_samples_is_the_all_ones_value():
    data = make_header(num_samples=None).to_bytes()
    assert data[14:22] == b"\xff" * 8
    assert StreamHeader.from_bytes(data)[0].num_samples is None


def test_wrong_magic_names_both_magics():
    data = b"RIFF" + make_header().to_bytes()[4:]
    with pytest.raises(UnsupportedStreamError) as error:
        StreamHeader.from_bytes(data)
    assert str(error.value) == (
        "not an LMCodec stream (magic b'RIFF' instead of b'LMCd'); pass a file written by `lmcodec encode`"
    )
    with pytest.raises(UnsupportedStreamError, match="not an LMCodec stream"):
        split_stream(b"X")


def test_newer_version_asks_for_an_upgrade_and_version_zero_is_rejected():
    data = bytearray(make_header().to_bytes())
    data[4] = 7
    with pytest.raises(UnsupportedStreamError) as error:
        StreamHeader.from_bytes(bytes(data))
    assert str(error.value) == "stream format version 7 is newer than this lmcodec reads (up to 3); upgrade lmcodec"
    # the version is judged before the length: a newer layout may have another size
    with pytest.raises(UnsupportedStreamError, match="version 7 is newer"):
        StreamHeader.from_bytes(bytes(data[:5]))
    data[4] = 0
    with pytest.raises(UnsupportedStreamError, match="version 0 is not one this lmcodec reads"):
        StreamHeader.from_bytes(bytes(data))


def test_corrupted_header_is_detected_by_its_checksum():
    data = make_header().to_bytes()
    for position in range(5, HEADER_SIZE):  # magic and version have their own messages
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            with pytest.raises(CorruptStreamError, match=r"header is corrupted \(checksum mismatch\)"):
                StreamHeader.from_bytes(bytes(damaged))


def test_short_or_empty_header_is_truncation():
    data = make_header().to_bytes()
    with pytest.raises(TruncatedStreamError, match="stream is empty"):
        StreamHeader.from_bytes(b"")
    for cut in range(1, HEADER_SIZE):
        with pytest.raises(TruncatedStreamError) as error:
            StreamHeader.from_bytes(data[:cut])
        if cut >= 5:
            assert f"the header needs 41 bytes, {cut} remain" in str(error.value)
        assert error.value.packet_index is None


# ---------------------------------------------------------------------------------------------------------- varints


@pytest.mark.parametrize(
    "value, size",
    [(0, 1), (1, 1), (127, 1), (128, 2), (255, 2), (16383, 2), (16384, 3), (2**21 - 1, 3), (2**21, 4),
     (2**28 - 1, 4), (2**28, 5), (2**32 - 1, 5)],
)
def test_varint_round_trip_at_the_edges(value, size):
    encoded = encode_varint(value)
    assert len(encoded) == size
    assert decode_varint(encoded) == (value, size)
    assert decode_varint(b"\x07" + encoded + b"\x99", 1) == (value, size + 1)
    assert encode_varint(np.uint16(value & 0xFFFF)) == encode_varint(value & 0xFFFF)


def test_varint_known_bytes():
    assert encode_varint(300) == b"\xac\x02"
    assert encode_varint(2**32 - 1) == b"\xff\xff\xff\xff\x0f"


@pytest.mark.parametrize("value", [-1, 2**32, 1.0, "5", None])
def test_varint_encode_rejects_values_outside_uint32(value):
    with pytest.raises(LMCodecError, match="varint value must be"):
        encode_varint(value)


@pytest.mark.parametrize(
    "data, error, message",
    [
        (b"", TruncatedStreamError, "cut off after 0 bytes"),
        (b"\x80", TruncatedStreamError, "cut off after 1 bytes"),
        (b"\xff\xff\xff\xff", TruncatedStreamError, "cut off after 4 bytes"),
        (b"\x80\x80\x80\x80\x80\x00", CorruptStreamError, "longer than 5 bytes"),
        (b"\xff\xff\xff\xff\x1f", CorruptStreamError, "exceeds 4294967295"),
        (b"\x80\x00", CorruptStreamError, "non-minimal"),
        (b"\xff\x80\x00", CorruptStreamError, "non-minimal"),
    ],
)
def test_varint_decode_rejects_truncated_and_over_long(data, error, message):
    with pytest.raises(error, match=message):
        decode_varint(data)


def test_varint_decode_rejects_an_offset_outside_the_data():
    with pytest.raises(LMCodecError, match="outside the data"):
        decode_varint(b"\x01", 2)
    with pytest.raises(LMCodecError, match="outside the data"):
        decode_varint(b"\x01", -1)


# ---------------------------------------------------------------------------------------------------------- CRCs


def test_crc16_check_value():
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert crc16(b"") == 0xFFFF
    assert crc16(b"6789", crc16(b"12345")) == 0x29B1


def test_crc16_codes_hashes_little_endian_uint16_frame_major():
    codes = np.array([[1, 2, 3], [1023, 0, 65535]])
    expected = crc16(struct.pack("<6H", 1, 2, 3, 1023, 0, 65535))
    assert crc16_codes(codes) == expected
    assert crc16_codes(codes.astype(np.uint16)) == expected
    assert crc16_codes(torch.tensor(codes)) == expected
    assert crc16_codes(np.asfortranarray(codes)) == expected
    assert crc16_codes(codes.T.copy()) != expected  # order matters
    assert crc16_codes(np.zeros((0, 3), dtype=np.int64)) == 0xFFFF


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.array([[-1]]), "codes must lie in 0..65535"),
        (np.array([[65536]]), "codes must lie in 0..65535"),
        (np.array([1, 2]), "codes must have shape [frames, levels]"),
        (np.array([[1.0]]), "codes must be an integer array"),
    ],
)
def test_crc16_codes_rejects_bad_codes(codes, message):
    with pytest.raises(LMCodecError) as error:
        crc16_codes(codes)
    assert message in str(error.value)


def test_packet_check_codes():
    codes = np.array([[5, 6], [7, 8]])
    packet = Packet(3, b"xx", crc16_codes(codes))
    packet.check_codes(codes)
    with pytest.raises(CorruptStreamError, match="packet 3 decoded to codes whose checksum") as error:
        packet.check_codes(codes[::-1])
    assert error.value.packet_index == 3


# ---------------------------------------------------------------------------------------------------------- packets


def test_packet_bytes_and_overhead():
    assert encode_packet(b"abc", 0x1234) == b"\x03abc\x34\x12"
    assert encode_packet(bytearray(b"abc"), 0x1234, frames=300) == b"\x00\xac\x02\x03abc\x34\x12"
    assert len(encode_packet(bytes(200), 1)) == 200 + packet_overhead(200) == 200 + 4
    assert packet_overhead(1) == packet_overhead(127) == 3
    assert packet_overhead(128) == packet_overhead(16383) == 4
    assert packet_overhead(60, frames=22) == 5
    with pytest.raises(LMCodecError, match="codes_crc must be between 0 and 65535"):
        encode_packet(b"a", 0x10000)
    with pytest.raises(LMCodecError, match="packet payload must be bytes"):
        encode_packet("abc", 0)
    with pytest.raises(LMCodecError, match="packet payload is empty"):
        encode_packet(b"", 0)
    with pytest.raises(LMCodecError, match="frames must be between 1 and 65535"):
        encode_packet(b"a", 0, frames=0)


def test_split_stream_returns_header_and_packets_in_order():
    header, packets = split_stream(make_stream())
    assert header == make_header(num_samples=(4 * 25 - 3) * 320 - 100)
    assert header.num_frames == 97 and header.num_packets == 4
    assert [p.index for p in packets] == [0, 1, 2, 3]
    assert [p.payload for p in packets] == list(PAYLOADS)
    assert [p.crc for p in packets] == [(i * 4099) & 0xFFFF for i in range(4)]
    assert [p.frames for p in packets] == [None, None, None, 22]
    assert [header.frames_in(p) for p in packets] == [25, 25, 25, 22]
    assert split_stream(make_header(num_samples=0).to_bytes()) == (make_header(num_samples=0), [])
    assert split_stream(make_header(num_samples=None).to_bytes()) == (make_header(num_samples=None), [])


@pytest.mark.parametrize(
    "num_samples, frames, packets",
    [(0, 0, 0), (1, 1, 1), (320, 1, 1), (321, 2, 1), (8000, 25, 1), (8001, 26, 2), (16000, 50, 2), (None, None, None)],
)
def test_header_derives_frame_and_packet_counts(num_samples, frames, packets):
    header = make_header(num_samples=num_samples)
    assert (header.num_frames, header.num_packets) == (frames, packets)


def test_frames_in_rejects_a_short_count_that_is_not_short():
    header = make_header()
    assert header.frames_in(Packet(0, b"a", 0)) == 25
    assert header.frames_in(Packet(0, b"a", 0, frames=24)) == 24
    with pytest.raises(CorruptStreamError, match="packet 2 is marked short with 25 frames, but packets hold") as error:
        header.frames_in(Packet(2, b"a", 0, frames=25))
    assert error.value.packet_index == 2


def test_packets_must_hold_the_frames_the_header_announces():
    header = make_header()  # 47 frames: 25 + 22
    full, short = Packet(0, b"a", 0), Packet(1, b"a", 0, frames=22)
    header.check_packets([full, short])
    make_header(num_samples=None).check_packets([full, full, short])
    make_header(num_samples=None).check_packets([])
    with pytest.raises(TruncatedStreamError) as error:
        header.check_packets([full])
    assert str(error.value) == (
        "stream is truncated: its packets hold 25 of the 47 frames its header announces; "
        "the file was cut short — re-send it or decode with --partial"
    )
    assert error.value.packet_index == 1
    with pytest.raises(CorruptStreamError, match="packets hold 50 frames but its header announces 47"):
        header.check_packets([full, Packet(1, b"a", 0)])
    with pytest.raises(CorruptStreamError, match="packet 0 is short but not the last one"):
        make_header(num_samples=None).check_packets([Packet(0, b"a", 0, frames=3), Packet(1, b"a", 0)])
    with pytest.raises(CorruptStreamError, match="data follows the short packet 1"):
        split_stream(GOLDEN_STREAM + encode_packet(b"x", 0))


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
def test_packet_reader_in_chunks_equals_one_shot_split(chunk):
    stream = make_stream()
    _, expected = split_stream(stream)
    body = stream[HEADER_SIZE:]
    reader = PacketReader()
    packets = []
    for start in range(0, len(body), chunk):
        packets += reader.feed(body[start : start + chunk])
    reader.close()
    assert packets == expected
    assert reader.packets_read == len(expected) and reader.buffered_bytes == 0


def test_packet_reader_returns_packets_as_soon_as_they_complete():
    reader = PacketReader(first_index=5)
    packet = encode_packet(b"hello", 7)
    assert reader.feed(packet[:-1]) == []
    assert reader.buffered_bytes == len(packet) - 1
    assert reader.feed(packet[-1:] + packet[:2]) == [Packet(5, b"hello", 7)]
    with pytest.raises(TruncatedStreamError) as error:
        reader.close()
    assert str(error.value) == (
        "stream is truncated: packet 6 needs 7 bytes after its length field, 1 remain; "
        "the file was cut short — re-send it or decode with --partial"
    )
    assert error.value.packet_index == 6


@pytest.mark.parametrize(
    "data, error, message",
    [
        (b"\x01a\x00\x00\x80", TruncatedStreamError, "packet 1's length field is cut off after 1 bytes"),
        (b"\x00", TruncatedStreamError, "packet 0's frame count is cut off"),
        (b"\x00\x05", TruncatedStreamError, "packet 0's length field is cut off after 2 bytes"),
        (b"\x00\x05\x02a", TruncatedStreamError, "packet 0 needs 4 bytes after its length field, 1 remain"),
        (b"\x80\x80\x80\x80\x80", CorruptStreamError, "packet 0 has a malformed length field"),
        (b"\x00\xff\xff\xff\xff\x7f", CorruptStreamError, "packet 0 has a malformed frame count"),
        (b"\x01a\x00\x00\x00\x00", CorruptStreamError, "packet 1 is marked short with 0 frames"),
        (b"\x00\x05\x00", CorruptStreamError, "packet 0 has an empty payload"),
        (b"\x00\x05\x01a\x00\x00\x01", CorruptStreamError, "data follows the short packet 0"),
    ],
)
def test_packet_reader_names_what_is_cut_or_malformed(data, error, message):
    with pytest.raises(error, match=message) as raised:
        reader = PacketReader()
        reader.feed(data)
        reader.close()
    assert raised.value.packet_index is not None
    assert "\n" not in str(raised.value)


def test_packet_reader_rejects_non_bytes():
    with pytest.raises(LMCodecError, match="PacketReader.feed takes bytes"):
        PacketReader().feed("abc")


def test_stream_cut_at_every_position_is_truncation():
    stream = make_stream()
    for cut in range(len(stream)):
        with pytest.raises(TruncatedStreamError) as error:
            split_stream(stream[:cut])
        assert "\n" not in str(error.value)
        if cut > HEADER_SIZE:
            assert error.value.packet_index is not None


def test_live_stream_cut_at_every_position_is_truncation_or_a_packet_prefix():
    stream = make_stream(header=make_header(num_samples=None))
    _, packets = split_stream(stream)
    boundaries = {HEADER_SIZE}
    end = HEADER_SIZE
    for packet in packets:
        end += len(encode_packet(packet.payload, packet.crc, packet.frames))
        boundaries.add(end)
    for cut in range(len(stream)):
        if cut in boundaries:
            _, prefix = split_stream(stream[:cut])
            assert prefix == packets[: sorted(boundaries).index(cut)]
        else:
            with pytest.raises(TruncatedStreamError) as error:
                split_stream(stream[:cut])
            assert "\n" not in str(error.value)
            if cut > HEADER_SIZE:
                assert error.value.packet_index is not None


# ---------------------------------------------------------------------------------------------------------- raw codes


def test_pack_codes_is_msb_first_frame_major():
    assert pack_codes(np.array([[1, 0, 1]]), 1) == bytes([0b10100000])
    assert pack_codes(np.array([[5], [3]]), 3) == bytes([0b10101100])
    assert pack_codes(np.array([[0x3FF, 0x001]]), 10) == bytes([0xFF, 0xC0, 0x10])
    assert pack_codes(np.zeros((0, 3), dtype=np.int64), 10) == b""


@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_unpack_round_trip(bits):
    rng = np.random.default_rng(bits)
    for _ in range(5):
        frames, levels = int(rng.integers(0, 40)), int(rng.integers(1, 13))
        codes = rng.integers(0, 2**bits, size=(frames, levels))
        data = pack_codes(codes, bits)
        assert len(data) == packed_size(frames, levels, bits) == (frames * levels * bits + 7) // 8
        unpacked = unpack_codes(data, bits, frames, levels)
        assert unpacked.dtype == np.int64 and unpacked.shape == (frames, levels)
        np.testing.assert_array_equal(unpacked, codes)


def test_pack_unpack_round_trips_an_hour_of_codes_in_the_documented_bit_layout():
    """An hour and a frame of 3 levels (540 003 codes) packs to exactly the documented layout (10 bits per code,
    MSB first, frame-major: code k occupies bits 10k .. 10k + 9), checked against a plain bit-by-bit reading at the
    start, across byte boundaries in the middle and at the padded end, and unpacks to the same codes."""
    bits = 10
    codes = np.random.default_rng(0).integers(0, 2**bits, size=(50 * 3600 + 1, 3))
    codes[-1, -1] = 2**bits - 1  # the last code all ones: the zero padding after it must stay zero
    data = pack_codes(codes, bits)
    assert len(data) == packed_size(*codes.shape, bits) == 675_004  # 5 400 030 bits and 2 bits of padding
    flat = codes.reshape(-1)

    def read_code(k: int) -> int:  # bit by bit from the bytes, MSB first
        value = 0
        for position in range(k * bits, (k + 1) * bits):
            value = (value << 1) | ((data[position // 8] >> (7 - position % 8)) & 1)
        return value

    for k in [*range(16), *range(flat.size // 2 - 8, flat.size // 2 + 8), *range(flat.size - 16, flat.size)]:
        assert read_code(k) == flat[k], k
    assert data[-1] & 0b11 == 0 and data[-1] >> 2 & 0b11 == 0b11  # padding zero, after the last code's last bits
    np.testing.assert_array_equal(unpack_codes(data, bits, *codes.shape), codes)


def test_unpack_rejects_wrong_lengths():
    data = pack_codes(np.ones((4, 2), dtype=np.int64), 10)
    with pytest.raises(TruncatedStreamError, match="raw packet holds 9 bytes but 4 frames × 2 levels × 10 bits"):
        unpack_codes(data[:-1], 10, 4, 2)
    with pytest.raises(CorruptStreamError, match="raw packet holds 11 bytes"):
        unpack_codes(data + b"\x00", 10, 4, 2)


@pytest.mark.parametrize(
    "codes, bits, message",
    [
        (np.array([[4]]), 2, "codes must lie in 0..3 to pack with 2 bits"),
        (np.array([[-1]]), 2, "codes must lie in 0..3"),
        (np.array([1, 2]), 2, "codes must have shape [frames, levels]"),
        (np.array([[1]]), 0, "bits_per_code must be between 1 and 16"),
        (np.array([[1]]), 17, "bits_per_code must be between 1 and 16"),
        (np.array([[0.5]]), 2, "codes must be an integer array"),
    ],
)
def test_pack_codes_rejects_bad_input(codes, bits, message):
    with pytest.raises(LMCodecError) as error:
        pack_codes(codes, bits)
    assert message in str(error.value)


# ---------------------------------------------------------------------------------------------------------- fingerprint


def fingerprint_inputs():
    tensors = {"b.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a.flag": torch.tensor([True])}
    return tensors, {"num_quantizers": 12, "codebook_size": 1024}


def test_model_fingerprint_is_stable_and_sensitive():
    tensors, config = fingerprint_inputs()
    fingerprint = model_fingerprint(tensors, config)
    assert len(fingerprint) == 8
    # golden value: the fingerprint must not change between processes, machines or releases for the same weights
    assert fingerprint.hex() == GOLDEN_FINGERPRINT
    assert model_fingerprint(dict(reversed(tensors.items())), dict(reversed(config.items()))) == fingerprint
    assert model_fingerprint({k: v.clone() for k, v in tensors.items()}, config) == fingerprint
    changed_weight = {**tensors, "b.weight": tensors["b.weight"] + 1e-6}
    assert model_fingerprint(changed_weight, config) != fingerprint
    assert model_fingerprint({**tensors, "b.weight": tensors["b.weight"].reshape(3, 2)}, config) != fingerprint
    assert model_fingerprint({**tensors, "b.weight": tensors["b.weight"].double()}, config) != fingerprint
    assert model_fingerprint(tensors, {**config, "num_quantizers": 8}) != fingerprint
    assert model_fingerprint({"c": tensors["b.weight"].t()}, {}) == model_fingerprint(
        {"c": tensors["b.weight"].t().contiguous()}, {}
    )


def test_model_fingerprint_rejects_non_tensors_and_non_json_config():
    with pytest.raises(LMCodecError, match="is a list, not a tensor"):
        model_fingerprint({"w": [1.0]}, {})
    with pytest.raises(LMCodecError, match="not JSON-serialisable"):
        model_fingerprint({}, {"x": object()})


GOLDEN_FINGERPRINT = "56e84ff643605699"


# ---------------------------------------------------------------------------------------------------------- remote code


def test_bitstream_imports_only_what_remote_code_may():
    source = Path(bitstream.__file__).read_text()
    allowed = set(sys.stdlib_module_names) | {"numpy", "torch"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            assert {alias.name.split(".")[0] for alias in node.names} <= allowed
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # siblings that are themselves standard library only
                assert (node.module, [a.name for a in node.names]) in (("errors", ["LMCodecError"]),
                                                                      ("frames", ["num_frames"]))
            else:
                assert node.module.split(".")[0] in allowed


# ---------------------------------------------------------------------------------------------------------- fuzzing


def parse_everything(data: bytes) -> None:
    """Run every parser on ``data``; only LMCodecError may escape, always with a one-line message."""
    parsers = [
        split_stream,
        lambda d: StreamHeader.from_bytes(d),
        lambda d: decode_varint(d, 0),
        lambda d: PacketReader().feed(d),
        lambda d: unpack_codes(d, 10, 3, 2),
    ]
    for parse in parsers:
        try:
            parse(data)
        except LMCodecError as error:
            assert "\n" not in str(error)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_lmcodec_errors(data):
    parse_everything(data)
    parse_everything(MAGIC + data)
    parse_everything(make_header().to_bytes() + data)


VALID_STREAM = make_stream()


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(0, len(VALID_STREAM) - 1),
    value=st.integers(0, 255),
    cut=st.integers(0, len(VALID_STREAM)),
)
def test_mutated_or_truncated_streams_only_raise_lmcodec_errors(position, value, cut):
    mutated = bytearray(VALID_STREAM)
    mutated[position] = value
    parse_everything(bytes(mutated))
    parse_everything(bytes(mutated[:cut]))
    parse_everything(VALID_STREAM[:cut])
    try:
        header, packets = split_stream(bytes(mutated))
    except LMCodecError:
        return
    if position < HEADER_SIZE:  # a header that still parses after a one-byte change is the unchanged header
        assert header.to_bytes() == VALID_STREAM[:HEADER_SIZE]
