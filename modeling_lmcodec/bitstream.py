"""The LMCodec bitstream container, defined once: header, packets, checksums, raw code packing.

A stream is a fixed 41-byte header followed by packets until the end of the data::

    stream = header (41 bytes) · packet · packet · ... · packet
    packet = payload length (LEB128 varint) · payload · CRC-16 of the packet's decoded codes (uint16, little-endian)
    short packet (only the last one, fewer frames than the packet length) = 0x00 · frame count (varint) · packet

The payload is either range-coded with the entropy LM (header flag ``entropy_coded``) or the coarse codes bit-packed
with :func:`pack_codes`. The packet CRC is taken over the *decoded codes*, not the payload, so the receiver catches
any mismatch between the sender's and its own entropy decoding, not just damaged bytes. The byte layout is
documented in ``docs/bitstream.md``; any change to it bumps :data:`FORMAT_VERSION`.

This file is shipped as Hugging Face remote code and used by the torch-free runtime: it imports only the standard
library and numpy (torch tensors are accepted where arrays are, duck-typed).
Every parsing failure raises :class:`~.errors.LMCodecError` (mostly the subclasses below) with a one-line message.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import operator
import struct
from dataclasses import dataclass

import numpy as np

from .errors import LMCodecError
from .frames import num_frames

MAGIC = b"LMCd"
"""First four bytes of every stream."""

FORMAT_VERSION = 3
"""Version of the byte layout written by this file; readers reject versions not in READABLE_FORMAT_VERSIONS."""

READABLE_FORMAT_VERSIONS = (1, 2, 3)
"""Versions this file reads. They share the header and packet layout. Versions 1 and 2 differ in how an
entropy-coded payload spells the range coder's 32-bit words (see :func:`range_coder_word_order`); both take their
probabilities from the float entropy LM, so they decode only where the float arithmetic matches the sender's.
Version 3 spells payloads as version 2 does and takes its probabilities from the integer entropy model (header flag
``FLAG_INTEGER_ENTROPY_MODEL``), so it decodes bit-exactly on any machine."""


DATAGRAM_FORMAT_VERSION = 4
"""Version of the datagram mode (:class:`DatagramDescription` and its packets): packets for transports that frame
them themselves (UDP, RTP). Version numbers form one sequence over both modes; files are still written as version
:data:`FORMAT_VERSION`."""


def range_coder_word_order(format_version: int) -> str:
    """numpy dtype of the range coder's words in an entropy-coded payload of ``format_version``.

    Version 1: little-endian words with trailing zero bytes dropped. Versions 2-4: big-endian words, cut to the
    shortest prefix that still decodes (the receiver pads with zero bytes), which saves ~13 bits per packet (measured:
    the flush beyond the information fell from ~16 to ~2.5 bits per packet).
    """
    if format_version not in (*READABLE_FORMAT_VERSIONS, DATAGRAM_FORMAT_VERSION):
        raise UnsupportedStreamError(f"stream format version {format_version} is not one this lmcodec reads")
    return "<u4" if format_version == 1 else ">u4"


FLAG_ENTROPY_CODED = 0x01
"""Header flag bit 0: payloads are range-coded with the entropy LM (clear: raw codes packed by :func:`pack_codes`)."""

FLAG_INTEGER_ENTROPY_MODEL = 0x02
"""Header flag bit 1 (version 3 on): the range coder's probabilities come from the integer entropy model. In version 3
it is set exactly when bit 0 is; versions 1 and 2 never set it (their entropy model is the float LM)."""

FIRST_INTEGER_MODEL_VERSION = 3

ENTROPY_MODEL_KINDS = ("none", "float", "integer")
"""What produced the range coder's probabilities: nothing (raw codes), the float entropy LM (versions 1-2) or the
integer entropy model (version 3)."""

KNOWN_FLAGS = FLAG_ENTROPY_CODED | FLAG_INTEGER_ENTROPY_MODEL

UNKNOWN_NUM_SAMPLES = 0xFFFF_FFFF_FFFF_FFFF
"""``num_samples`` value written for a live stream whose length is not known when the header is sent."""

FINGERPRINT_SIZE = 8
MAX_CODE_BITS = 16
"""Codes are at most 16 bits: the packet CRC hashes them as uint16."""

MAX_PAYLOAD_LENGTH = 0xFFFF_FFFF
MAX_VARINT_BYTES = 5
PACKET_CRC_SIZE = 2

# magic, version, flags, model rate, original rate, num_samples, hop length, Nc, Nq, log2(codebook size),
# sync period, packet length, fingerprint — then the header CRC (uint16) over these bytes.
_HEADER_FIELDS = struct.Struct("<4sBBIIQHBBBHH8s")
_UINT16 = struct.Struct("<H")  # the header CRC and each packet's codes CRC
HEADER_SIZE = _HEADER_FIELDS.size + _UINT16.size
"""Size of the stream header in bytes (41)."""

_PARTIAL_HINT = "the file was cut short — re-send it or decode with --partial"


# ----------------------------------------------------------------------------------------------------------------
# errors


class BitstreamError(LMCodecError):
    """A stream that cannot be parsed. ``packet_index`` is the damaged packet, or None when the header is affected."""

    def __init__(self, message: str, packet_index: int | None = None):
        super().__init__(message)
        self.packet_index = packet_index


class UnsupportedStreamError(BitstreamError):
    """Not an LMCodec stream at all (wrong magic) or a format version this code does not read."""


class TruncatedStreamError(BitstreamError):
    """The data ends before the header or a packet is complete."""


class CorruptStreamError(BitstreamError):
    """Bytes are present but wrong: checksum mismatch, malformed length field, impossible header values."""


# ----------------------------------------------------------------------------------------------------------------
# checksums


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) of ``data``; check value 0x29B1.

    Pass a previous result as ``crc`` to continue over more bytes. Runs in C (``binascii.crc_hqx``).
    """
    return binascii.crc_hqx(bytes(data), crc)


def as_numpy(value):
    """A torch tensor (duck-typed: it has `.detach`) → numpy array on the CPU; anything else unchanged."""
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def _as_code_array(codes, name: str = "codes") -> np.ndarray:
    """``codes`` (array-like or CPU tensor) → integer numpy array, or LMCodecError."""
    array = np.asarray(as_numpy(codes))
    if array.dtype.kind not in "iub":
        raise LMCodecError(f"{name} must be an integer array, got dtype {array.dtype}; pass the codec's integer codes")
    return array


def crc16_codes(codes) -> int:
    """CRC-16/CCITT-FALSE of a packet's codes.

    Args:
        codes: integer array ``[frames, levels]`` with values in 0..65535.
    Returns:
        The checksum (0..65535) of the codes written as little-endian uint16 in frame-major order
        (frame 0 level 0, frame 0 level 1, ..., frame 1 level 0, ...).
    """
    array = _as_code_array(codes)
    if array.ndim != 2:
        raise LMCodecError(f"codes must have shape [frames, levels], got shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 0xFFFF):
        raise LMCodecError(
            f"codes must lie in 0..65535 to be checksummed, got {array.min()}..{array.max()}; pass the codec's codes"
        )
    return crc16(np.ascontiguousarray(array, dtype="<u2").tobytes())


# ----------------------------------------------------------------------------------------------------------------
# varints


def encode_varint(n: int) -> bytes:
    """Unsigned LEB128 of ``n`` (0 ≤ n < 2**32): 7 bits per byte, low bits first, high bit set on all but the last."""
    try:
        value = operator.index(n)
    except TypeError:
        raise LMCodecError(f"varint value must be an integer, got {type(n).__name__}") from None
    if not 0 <= value <= MAX_PAYLOAD_LENGTH:
        raise LMCodecError(f"varint value must be between 0 and {MAX_PAYLOAD_LENGTH}, got {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _scan_varint(data, offset: int) -> tuple[int, int] | None:
    """Read a varint at ``data[offset:]``: ``(value, new_offset)``, or None when the data ends inside it.

    Raises CorruptStreamError (without a packet index) for encodings longer than 5 bytes, values beyond uint32,
    and non-minimal encodings (a final byte of zero after a continuation byte): a stream has exactly one spelling.
    """
    value = 0
    for position in range(MAX_VARINT_BYTES):
        if offset + position >= len(data):
            return None
        byte = data[offset + position]
        value |= (byte & 0x7F) << (7 * position)
        if not byte & 0x80:
            if byte == 0 and position > 0:
                raise CorruptStreamError("length field has a redundant zero byte (non-minimal varint)")
            if value > MAX_PAYLOAD_LENGTH:
                raise CorruptStreamError(f"length field value {value} exceeds {MAX_PAYLOAD_LENGTH}")
            return value, offset + position + 1
    raise CorruptStreamError(f"length field is longer than {MAX_VARINT_BYTES} bytes")


def decode_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Read an unsigned LEB128 varint from ``data`` at ``offset``: returns ``(value, offset just past it)``.

    Raises TruncatedStreamError if the data ends inside it, CorruptStreamError if it is over-long (> 5 bytes or
    above 2**32 - 1) or not minimally encoded.
    """
    if not 0 <= offset <= len(data):
        raise LMCodecError(f"varint offset {offset} is outside the data (length {len(data)})")
    try:
        result = _scan_varint(data, offset)
    except CorruptStreamError as error:
        raise CorruptStreamError(f"malformed varint at offset {offset}: {error}; the data is damaged") from None
    if result is None:
        cut_after = len(data) - offset
        raise TruncatedStreamError(f"varint at offset {offset} is cut off after {cut_after} bytes; {_PARTIAL_HINT}")
    return result


# ----------------------------------------------------------------------------------------------------------------
# header


def _check_int(name: str, value, low: int, high: int) -> int:
    """``value`` as an int in ``low..high`` (inclusive), else LMCodecError naming the field."""
    if isinstance(value, bool):
        raise LMCodecError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise LMCodecError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not low <= value <= high:
        raise LMCodecError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class StreamHeader:
    """Everything a receiver needs before the first packet. Values are validated on construction.

    Attributes:
        entropy_coded: payloads are range-coded with the entropy LM (False: raw codes packed by ``pack_codes``).
        model_sampling_rate: the codec's sampling rate in Hz (16000).
        original_sampling_rate: the sampling rate of the user's file, so decoding can resample back to it.
        num_samples: length in samples at the model rate, or None for a live stream of unknown length.
        hop_length: samples per code frame at the model rate (320), so frame and packet counts follow from the header.
        num_coarse_quantizers: Nc, the levels sent per frame (1..Nq).
        num_quantizers: Nq, the levels the model decodes (1..255).
        codebook_size: codes per level, a power of two from 2 to 65536 (written as its log2).
        sync_period_frames: the LM context resets every this many frames; a positive multiple of the packet length.
        packet_length_frames: frames per packet, 1..65535 (the last packet may be short and says so itself).
        model_fingerprint: 8 opaque bytes identifying the model weights (see ``fingerprint`` and ``compression.model_fingerprint``).
        format_version: the layout version (:data:`FORMAT_VERSION` when writing; a parsed header keeps its own).
    """

    entropy_coded: bool
    model_sampling_rate: int
    original_sampling_rate: int
    num_samples: int | None
    hop_length: int
    num_coarse_quantizers: int
    num_quantizers: int
    codebook_size: int
    sync_period_frames: int
    packet_length_frames: int
    model_fingerprint: bytes
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.format_version not in READABLE_FORMAT_VERSIONS:
            raise LMCodecError(f"format_version must be one of {READABLE_FORMAT_VERSIONS}, got {self.format_version!r}")
        if not isinstance(self.entropy_coded, (bool, np.bool_)):
            raise LMCodecError(f"entropy_coded must be True or False, got {self.entropy_coded!r}")
        fields = {
            "model_sampling_rate": _check_int("model_sampling_rate", self.model_sampling_rate, 1, 0xFFFF_FFFF),
            "original_sampling_rate": _check_int("original_sampling_rate", self.original_sampling_rate, 1, 0xFFFF_FFFF),
            "hop_length": _check_int("hop_length", self.hop_length, 1, 0xFFFF),
            "num_quantizers": _check_int("num_quantizers", self.num_quantizers, 1, 255),
            "codebook_size": _check_int("codebook_size", self.codebook_size, 2, 1 << MAX_CODE_BITS),
            "packet_length_frames": _check_int("packet_length_frames", self.packet_length_frames, 1, 0xFFFF),
            "sync_period_frames": _check_int("sync_period_frames", self.sync_period_frames, 1, 0xFFFF),
        }
        num_coarse = _check_int("num_coarse_quantizers", self.num_coarse_quantizers, 1, 255)
        if num_coarse > fields["num_quantizers"]:
            raise LMCodecError(
                f"num_coarse_quantizers must be between 1 and num_quantizers ({fields['num_quantizers']}), "
                f"got {num_coarse}"
            )
        fields["num_coarse_quantizers"] = num_coarse
        if self.num_samples is not None:
            fields["num_samples"] = _check_int("num_samples", self.num_samples, 0, UNKNOWN_NUM_SAMPLES - 1)
        if fields["codebook_size"] & (fields["codebook_size"] - 1):
            raise LMCodecError(f"codebook_size must be a power of two, got {fields['codebook_size']}")
        if fields["sync_period_frames"] % fields["packet_length_frames"]:
            raise LMCodecError(
                f"sync_period_frames ({fields['sync_period_frames']}) must be a multiple of packet_length_frames "
                f"({fields['packet_length_frames']}) so that packets never straddle a sync point"
            )
        fingerprint = self.model_fingerprint
        if not isinstance(fingerprint, (bytes, bytearray)) or len(fingerprint) != FINGERPRINT_SIZE:
            raise LMCodecError(f"model_fingerprint must be {FINGERPRINT_SIZE} bytes, got {self.model_fingerprint!r}")
        # Store plain Python values (numpy integers or a bytearray would make equality and hashing surprising).
        fields["entropy_coded"] = bool(self.entropy_coded)
        fields["model_fingerprint"] = bytes(self.model_fingerprint)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def entropy_model(self) -> str:
        """The entropy model kind of the payloads: "none" (raw codes), "float" (versions 1-2) or "integer"."""
        if not self.entropy_coded:
            return "none"
        return "integer" if self.format_version >= FIRST_INTEGER_MODEL_VERSION else "float"

    @property
    def flags(self) -> int:
        """The header's flag byte."""
        integer = FLAG_INTEGER_ENTROPY_MODEL if self.entropy_model == "integer" else 0
        return (FLAG_ENTROPY_CODED if self.entropy_coded else 0) | integer

    @property
    def bits_per_code(self) -> int:
        """Bits of one raw code: log2(codebook_size)."""
        return self.codebook_size.bit_length() - 1

    @property
    def packets_per_sync_period(self) -> int:
        """Packets between two sync points."""
        return self.sync_period_frames // self.packet_length_frames

    def starts_sync_period(self, packet_index: int) -> bool:
        """True when packet ``packet_index`` (0-based) begins at a sync point, where the LM context resets."""
        return packet_index % self.packets_per_sync_period == 0

    @property
    def num_frames(self) -> int | None:
        """Code frames in the stream: ceil(num_samples / hop_length); None for a live stream."""
        return None if self.num_samples is None else num_frames(self.num_samples, self.hop_length)

    @property
    def num_packets(self) -> int | None:
        """Packets in the stream: ceil(num_frames / packet_length_frames); None for a live stream."""
        frames = self.num_frames
        return None if frames is None else num_frames(frames, self.packet_length_frames)  # whole packets

    def frames_in(self, packet: "Packet") -> int:
        """Frames coded in ``packet``: its own count when it is marked short, else ``packet_length_frames``."""
        if packet.frames is None:
            return self.packet_length_frames
        if not 1 <= packet.frames < self.packet_length_frames:
            raise CorruptStreamError(
                f"packet {packet.index} is marked short with {packet.frames} frames, but packets hold "
                f"{self.packet_length_frames}; the stream is damaged — re-send it or decode with --partial",
                packet_index=packet.index,
            )
        return packet.frames

    def check_packets(self, packets: list["Packet"]) -> None:
        """Raise unless ``packets`` form a complete stream for this header.

        Only the last packet may be short, and when the length is known the packets must hold exactly
        ``num_frames`` frames — this catches a file cut exactly between two packets, which the framing cannot see.
        """
        total = 0
        for position, packet in enumerate(packets):
            total += self.frames_in(packet)
            if packet.frames is not None and position != len(packets) - 1:
                raise CorruptStreamError(
                    f"packet {packet.index} is short but not the last one; the stream is damaged — re-send it or "
                    "decode with --partial",
                    packet_index=packet.index,
                )
        expected = self.num_frames
        if expected is None or total == expected:
            return
        next_index = packets[-1].index + 1 if packets else 0
        if total < expected:
            raise TruncatedStreamError(
                f"stream is truncated: its packets hold {total} of the {expected} frames its header announces; "
                f"{_PARTIAL_HINT}",
                packet_index=next_index,
            )
        raise CorruptStreamError(
            f"stream's packets hold {total} frames but its header announces {expected}; the stream is damaged or "
            "two streams were joined — re-encode it",
            packet_index=next_index - 1,
        )

    def to_bytes(self) -> bytes:
        """The header as :data:`HEADER_SIZE` bytes (layout in docs/bitstream.md), ending with its CRC-16."""
        fields = _HEADER_FIELDS.pack(
            MAGIC,
            self.format_version,
            self.flags,
            self.model_sampling_rate,
            self.original_sampling_rate,
            UNKNOWN_NUM_SAMPLES if self.num_samples is None else self.num_samples,
            self.hop_length,
            self.num_coarse_quantizers,
            self.num_quantizers,
            self.bits_per_code,
            self.sync_period_frames,
            self.packet_length_frames,
            self.model_fingerprint,
        )
        return fields + _UINT16.pack(crc16(fields))

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple["StreamHeader", int]:
        """Parse the header at the start of ``data`` (which may hold the whole stream).

        Returns:
            ``(header, bytes_consumed)`` — ``bytes_consumed`` is :data:`HEADER_SIZE`.
        Raises:
            UnsupportedStreamError: wrong magic or unknown format version.
            TruncatedStreamError: fewer than HEADER_SIZE bytes.
            CorruptStreamError: checksum mismatch, unknown flag bits or impossible field values.
        """
        data = bytes(data[:HEADER_SIZE])
        if not data:
            raise TruncatedStreamError("stream is empty; pass a file written by `lmcodec encode`")
        if data[:4] != MAGIC[: len(data)]:
            raise UnsupportedStreamError(
                f"not an LMCodec stream (magic {data[:4]!r} instead of {MAGIC!r}); "
                "pass a file written by `lmcodec encode`"
            )
        if len(data) > 4 and data[4] not in READABLE_FORMAT_VERSIONS:
            version = data[4]
            if version == DATAGRAM_FORMAT_VERSION:
                raise UnsupportedStreamError(
                    f"this is the stream description of a datagram stream (format version {version}), not a file "
                    "stream; decode its packets with a DatagramDecoder (model.datagram_decoder(description))"
                )
            if version > FORMAT_VERSION:
                raise UnsupportedStreamError(
                    f"stream format version {version} is newer than this lmcodec reads (up to {FORMAT_VERSION}); "
                    "upgrade lmcodec"
                )
            raise UnsupportedStreamError(
                f"stream format version {version} is not one this lmcodec reads "
                f"({', '.join(map(str, READABLE_FORMAT_VERSIONS))}); the header is damaged or was not written by lmcodec"
            )
        if len(data) < HEADER_SIZE:
            raise TruncatedStreamError(
                f"stream is truncated: the header needs {HEADER_SIZE} bytes, {len(data)} remain; "
                "the file was cut short — re-send it"
            )
        fields, (stored_crc,) = data[: _HEADER_FIELDS.size], _UINT16.unpack(data[_HEADER_FIELDS.size :])
        if crc16(fields) != stored_crc:
            raise CorruptStreamError("header is corrupted (checksum mismatch); re-send or re-encode the file")
        (_, version, flags, model_rate, original_rate, num_samples, hop, nc, nq, code_bits, sync, packet, fingerprint) = (
            _HEADER_FIELDS.unpack(fields)
        )
        known = KNOWN_FLAGS if version >= FIRST_INTEGER_MODEL_VERSION else FLAG_ENTROPY_CODED
        if flags & ~known:
            raise CorruptStreamError(
                f"header sets unknown flag bits 0x{flags & ~known:02x}; the file was not written by a "
                "compatible lmcodec — re-encode it"
            )
        if version >= FIRST_INTEGER_MODEL_VERSION and bool(flags & FLAG_ENTROPY_CODED) != bool(
            flags & FLAG_INTEGER_ENTROPY_MODEL
        ):
            raise CorruptStreamError(
                f"header flags 0x{flags:02x} name no entropy model a version {version} stream can use; the file was "
                "not written by a compatible lmcodec — re-encode it"
            )
        if not 1 <= code_bits <= MAX_CODE_BITS:
            raise CorruptStreamError(
                f"header gives {code_bits} bits per code (allowed 1..{MAX_CODE_BITS}); the file was not written by "
                "a compatible lmcodec — re-encode it"
            )
        try:
            header = cls(
                entropy_coded=bool(flags & FLAG_ENTROPY_CODED),
                model_sampling_rate=model_rate,
                original_sampling_rate=original_rate,
                num_samples=None if num_samples == UNKNOWN_NUM_SAMPLES else num_samples,
                hop_length=hop,
                num_coarse_quantizers=nc,
                num_quantizers=nq,
                codebook_size=1 << code_bits,
                sync_period_frames=sync,
                packet_length_frames=packet,
                model_fingerprint=fingerprint,
                format_version=version,
            )
        except LMCodecError as error:
            raise CorruptStreamError(
                f"header is invalid ({error}); the file was not written by a compatible lmcodec — re-encode it"
            ) from None
        return header, HEADER_SIZE


# ----------------------------------------------------------------------------------------------------------------
# packets


SHORT_PACKET_MARKER = 0x00
"""A length field of 0 marks a short packet: its frame count and then its real length field follow."""


@dataclass(frozen=True)
class Packet:
    """One parsed packet.

    Attributes:
        index: position in the stream, 0 for the first packet after the header.
        payload: the coded bytes (range-coded or raw-packed codes), never empty.
        crc: CRC-16 of the codes the payload must decode to (see ``crc16_codes``).
        frames: the frame count of a short packet (only the last packet of a stream may be short), or None for a
            packet of the header's ``packet_length_frames`` — use ``StreamHeader.frames_in(packet)``.
    """

    index: int
    payload: bytes
    crc: int
    frames: int | None = None

    def check_codes(self, codes) -> None:
        """Raise CorruptStreamError unless ``codes [frames, levels]`` (the decoded payload) match the packet CRC."""
        actual = crc16_codes(codes)
        if actual != self.crc:
            raise CorruptStreamError(
                f"packet {self.index} decoded to codes whose checksum 0x{actual:04x} differs from the stored "
                f"0x{self.crc:04x}: the packet is damaged or this decoder (model, torch version or CPU) differs "
                "from the encoder's — decode with the encoder's setup or with --partial",
                packet_index=self.index,
            )


def packet_overhead(payload_length: int, frames: int | None = None) -> int:
    """Container bytes a packet adds to its payload: length field and 2-byte CRC, plus marker and count if short."""
    short_prefix = 0 if frames is None else 1 + len(encode_varint(frames))
    return short_prefix + len(encode_varint(payload_length)) + PACKET_CRC_SIZE


def encode_packet(payload: bytes, codes_crc: int, frames: int | None = None) -> bytes:
    """One packet's bytes.

    Regular packet (``frames=None``): ``varint(len(payload)) · payload · codes_crc`` (uint16 little-endian).
    Short packet (the last one of a stream, holding ``frames`` < packet length frames):
    ``0x00 · varint(frames) · varint(len(payload)) · payload · codes_crc``.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise LMCodecError(f"packet payload must be bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    if not payload:
        raise LMCodecError("packet payload is empty; a packet carries at least one frame's coded bytes")
    crc = _check_int("codes_crc", codes_crc, 0, 0xFFFF)
    prefix = b""
    if frames is not None:
        prefix = bytes([SHORT_PACKET_MARKER]) + encode_varint(_check_int("frames", frames, 1, 0xFFFF))
    return prefix + encode_varint(len(payload)) + payload + _UINT16.pack(crc)


def _read_field(data, offset: int, index: int, field: str) -> tuple[int, int] | None:
    """A varint of packet ``index`` (None when the data ends inside it); malformed ones raise with the packet index."""
    try:
        return _scan_varint(data, offset)
    except CorruptStreamError as error:
        raise CorruptStreamError(
            f"packet {index} has a malformed {field} ({error}); the stream is damaged from here on — re-send it or "
            "decode with --partial",
            packet_index=index,
        ) from None


def _parse_packet(data, start: int, index: int) -> tuple[Packet, int] | str:
    """Parse packet ``index`` at ``data[start:]``: ``(packet, end offset)``, or what is missing when the data ends."""
    field = _read_field(data, start, index, "length field")
    if field is None:
        return f"packet {index}'s length field is cut off after {len(data) - start} bytes"
    length, position = field
    frames = None
    if length == SHORT_PACKET_MARKER:
        field = _read_field(data, position, index, "frame count")
        if field is None:
            return f"packet {index}'s frame count is cut off"
        frames, position = field
        if frames == 0:
            raise CorruptStreamError(
                f"packet {index} is marked short with 0 frames; the stream is damaged from here on — re-send it "
                "or decode with --partial",
                packet_index=index,
            )
        field = _read_field(data, position, index, "length field")
        if field is None:
            return f"packet {index}'s length field is cut off after {len(data) - start} bytes"
        length, position = field
        if length == 0:
            raise CorruptStreamError(
                f"packet {index} has an empty payload; the stream is damaged from here on — re-send it or decode "
                "with --partial",
                packet_index=index,
            )
    end = position + length + PACKET_CRC_SIZE
    if end > len(data):
        return (
            f"packet {index} needs {length + PACKET_CRC_SIZE} bytes after its length field, "
            f"{len(data) - position} remain"
        )
    (crc,) = _UINT16.unpack_from(data, end - PACKET_CRC_SIZE)
    return Packet(index, bytes(data[position : end - PACKET_CRC_SIZE]), crc, frames), end


class PacketReader:
    """Incremental packet parser for the bytes after the header.

    ``feed`` accepts data in chunks of any size (down to single bytes), buffers incomplete input and returns the
    packets completed so far; ``close`` declares the end of the stream. A packet after a short packet is rejected
    (only the last packet may be short). After an error the reader must not be reused.
    """

    def __init__(self, first_index: int = 0):
        self._buffer = bytearray()
        self._next_index = first_index
        self._short_packet_index: int | None = None

    @property
    def packets_read(self) -> int:
        """Index the next complete packet will get."""
        return self._next_index

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """Append ``data`` and return every packet it completes (possibly none)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LMCodecError(f"PacketReader.feed takes bytes, got {type(data).__name__}")
        self._buffer += data
        packets: list[Packet] = []
        position = 0
        while position < len(self._buffer):
            if self._short_packet_index is not None:
                raise CorruptStreamError(
                    f"data follows the short packet {self._short_packet_index}, which must be the last one; the "
                    "stream is damaged or two streams were joined — decode with --partial",
                    packet_index=self._next_index,
                )
            parsed = _parse_packet(self._buffer, position, self._next_index)
            if isinstance(parsed, str):
                break
            packet, position = parsed
            packets.append(packet)
            if packet.frames is not None:
                self._short_packet_index = packet.index
            self._next_index += 1
        del self._buffer[:position]
        return packets

    def close(self) -> None:
        """End of data: raise TruncatedStreamError if an incomplete packet is left in the buffer."""
        if not self._buffer:
            return
        missing = _parse_packet(self._buffer, 0, self._next_index)  # a str: feed() stopped inside this packet
        raise TruncatedStreamError(f"stream is truncated: {missing}; {_PARTIAL_HINT}", packet_index=self._next_index)


def split_stream(data: bytes) -> tuple[StreamHeader, list[Packet]]:
    """Parse a whole stream at once: ``(header, packets)``, checking the packets' frame counts against the header.

    Raises a BitstreamError subclass on any damage (payloads are checked later, against each packet's codes CRC).
    """
    header, offset = StreamHeader.from_bytes(data)
    reader = PacketReader()
    packets = reader.feed(memoryview(data)[offset:])
    reader.close()
    header.check_packets(packets)
    return header, packets


class StreamFraming:
    """The packet structure of a stream body that may be damaged, for resynchronisation after damage.

    A damaged length field misframes everything after it, so a reader cannot simply go on. This finds where the
    packets resume: for every byte offset, whether the packets parsed from there frame the rest of the body exactly
    (regular packets, only the last one short) — the *chain to the end* — and, when the header knows the stream's
    length, which frame the packet there must start with (counted back from the end). True packet boundaries after
    the last damage all have such a chain; a random offset almost never does, and when the length is known its frame
    must also be a whole number of packets. Decoding then confirms a candidate by its codes CRC.
    """

    def __init__(self, header: StreamHeader, body: bytes):
        self.header = header
        self.body = bytes(body)
        self._chain: list | None = None  # offset → (frames to end, packets to end) or None
        self._filled_from = len(self.body)

    def packet_at(self, offset: int, index: int = 0) -> tuple[Packet, int, int] | None:
        """``(packet, end offset, frames)`` of a packet that parses at ``offset`` (a short one only if it ends the
        body), or None when none does (malformed fields, an impossible frame count, or the body ends inside it)."""
        if not 0 <= offset < len(self.body):
            return None
        try:
            parsed = _parse_packet(self.body, offset, index)
            if isinstance(parsed, str):
                return None
            packet, end = parsed
            frames = self.header.frames_in(packet)
        except CorruptStreamError:
            return None
        if packet.frames is not None and end != len(self.body):
            return None
        return packet, end, frames

    def _extent(self, offset: int) -> tuple[int, int] | None:
        """``(end offset, frames)`` of the packet at ``offset`` as ``packet_at`` judges it, without copying it."""
        body, packet_frames = self.body, self.header.packet_length_frames
        try:
            field = _scan_varint(body, offset)
            if field is None:
                return None
            length, position = field
            frames = packet_frames
            if length == SHORT_PACKET_MARKER:
                field = _scan_varint(body, position)
                if field is None or not 1 <= field[0] < packet_frames:
                    return None
                frames, position = field
                field = _scan_varint(body, position)
                if field is None or field[0] == 0:
                    return None
                length, position = field
        except CorruptStreamError:
            return None
        end = position + length + PACKET_CRC_SIZE
        if end > len(body) or (frames != packet_frames and end != len(body)):
            return None
        return end, frames

    def _fill(self, offset: int) -> None:
        if self._chain is None:
            self._chain = [None] * (len(self.body) + 1)
        chain, size = self._chain, len(self.body)
        for start in range(self._filled_from - 1, offset - 1, -1):
            extent = self._extent(start)
            if extent is None:
                continue
            end, frames = extent
            rest = (0, 0) if end == size else chain[end]
            if rest is not None:
                chain[start] = (rest[0] + frames, rest[1] + 1)
        self._filled_from = min(self._filled_from, offset)

    def chain(self, offset: int) -> tuple[int, int] | None:
        """``(frames, packets)`` from ``offset`` to the end if the packets from there frame the rest exactly."""
        if not 0 <= offset < len(self.body):
            return None
        self._fill(offset)
        return self._chain[offset]

    def first_frame(self, offset: int) -> int | None:
        """The frame the packet at ``offset`` starts with, counted back from the end: known when the header knows
        the stream's length and the chain from ``offset`` frames the rest into a whole number of packets."""
        chain, total = self.chain(offset), self.header.num_frames
        if chain is None or total is None:
            return None
        first = total - chain[0]
        return first if first >= 0 and first % self.header.packet_length_frames == 0 else None

    def plausible(self, offset: int, following: int = 2) -> bool:
        """A packet parses at ``offset`` and so do the next ``following`` ones (or the body ends before)."""
        for _ in range(following + 1):
            parsed = self.packet_at(offset)
            if parsed is None:
                return False
            offset = parsed[1]
            if offset == len(self.body):
                return True
        return True

    def candidates(self, start: int, min_frame: int, sync_only: bool = True):
        """Offsets from ``start`` on where packets may resume, in order, as ``(offset, packet, end, frames, first
        frame or None)``: first every offset whose chain to the end places it at a frame ≥ ``min_frame`` (at a sync
        point when ``sync_only``); where the length is unknown or no such chain exists, also offsets where a few
        packets parse in a row (their frame unknown)."""
        header = self.header
        for offset in range(start, len(self.body)):
            parsed = self.packet_at(offset)
            if parsed is None:
                continue
            first = self.first_frame(offset)
            if first is not None:
                if first >= min_frame and (not sync_only or first % header.sync_period_frames == 0):
                    yield (offset, *parsed, first)
            elif self.plausible(offset):
                yield (offset, *parsed, None)

    def describe_damage(self) -> tuple[str, float]:
        """What the framing alone says (no model): ``(status line, seconds readable before the damage)``.

        "complete"; "truncated after 12.30 s"; or "damaged: packets 14-19 unreadable (resynchronised at 20.00 s;
        audio resumes at the sync point at 24.00 s)". Without the model only the framing is checked: damage inside a
        payload shows when decoding (the codes CRC), and so does a packet removed whole (the framing stays intact:
        the packets then hold fewer frames than announced, which reads as a cut). The first unreadable packet is the
        last one the framing reaches before the resynchronisation point.

        A resynchronisation point must be confirmed by its chain to the end: at least 3 packets, at a whole number of
        packets from the end, not claiming more frames than its bytes can hold (at a tenth of a typical packet's bytes
        per frame; the tail of a cut file, less than a packet long, almost never passes), and no more packets after
        the last one the forward parse reached before it than the bytes between them hold (at a third of a typical
        packet each). The damaged packet is known to within one: an offset inside it can chain into the packets
        after it by chance."""
        header, body = self.header, self.body
        rate = header.model_sampling_rate / header.hop_length
        packet_frames, sync = header.packet_length_frames, header.sync_period_frames
        offset, frames, index, reached = 0, 0, 0, []  # the forward parse: (offset, first frame) of each packet
        ended = "end"
        while offset < len(body):
            try:
                parsed = _parse_packet(body, offset, index)
                if isinstance(parsed, str):
                    ended = "truncated"
                    break
                packet, end = parsed
                count = header.frames_in(packet)
            except CorruptStreamError:
                ended = "corrupt"
                break
            if packet.frames is not None and end != len(body):
                ended = "corrupt"
                break
            reached.append((offset, frames))
            offset, frames, index = end, frames + count, index + 1
        expected = header.num_frames
        if ended == "end" and (expected is None or frames == expected):
            return "complete", frames / rate
        if ended == "end" and frames > expected:
            return (f"damaged: the packets hold {frames} frames but the header announces {expected}; the header or a "
                    "length field is damaged, or two streams were joined"), 0.0
        sizes = sorted(end - start for (start, _), (end, _) in zip(reached, reached[1:] + [(offset, frames)]))
        typical = max(sizes[len(sizes) // 2], 4) if sizes else 4  # median packet: garbage parses are few
        if ended != "end":
            reached.append((offset, frames))  # where the forward parse stopped: a packet it could not read
        resync = None
        for candidate in range(1, len(body)):
            first, chain = self.first_frame(candidate), self.chain(candidate)
            if first is None or chain[1] < 3 or (len(body) - candidate) * 10 * packet_frames < typical * chain[0]:
                continue
            # The packet before it in the forward parse: the candidate must follow it by as many packets as the
            # bytes between them can hold (a random offset before the damage may chain over it into the packets
            # after it, but then claims more frames than its place allows).
            for position in range(len(reached) - 1, -1, -1):
                start, frame = reached[position]
                if start >= candidate or frame >= first:
                    continue
                if first - frame <= packet_frames * -(-(candidate - start) * 3 // typical):
                    resync = candidate, position, frame, first
                break
            if resync is not None:
                break
        if resync is None:
            if ended != "corrupt":
                return f"truncated after {frames / rate:.2f} s", frames / rate
            first = reached[-1][1] if reached else 0
            return (f"damaged: unreadable from packet {max(len(reached) - 1, 0)} ({first / rate:.2f} s) to the "
                    "end"), first / rate
        _, damaged, damaged_frame, resumed = resync
        audio = -(-resumed // sync) * sync
        last = resumed // packet_frames - 1
        span = f"packet {damaged}" if last <= damaged else f"packets {damaged}-{last}"
        return (f"damaged: {span} unreadable (resynchronised at {resumed / rate:.2f} s; audio resumes at the sync "
                f"point at {audio / rate:.2f} s)"), damaged_frame / rate


# ----------------------------------------------------------------------------------------------------------------
# datagram mode (format version 4): a stream description sent out of band, then self-contained packets


DATAGRAM_FLAGS = FLAG_ENTROPY_CODED | FLAG_INTEGER_ENTROPY_MODEL
"""The flag byte of every datagram stream description: range-coded with the integer entropy model (0x03)."""

# magic, version, flags, model rate, original rate, hop length, Nc, Nq, log2(codebook size), sync period,
# packet length, sequence modulus, check bits, fingerprint — then Nc start-mix shares (uint8 each) and the CRC.
_DESCRIPTION_FIELDS = struct.Struct("<4sBBIIHBBBHBHB8s")
DATAGRAM_DESCRIPTION_BASE_SIZE = _DESCRIPTION_FIELDS.size + _UINT16.size
"""Size of a datagram stream description without its start-mix shares (35 bytes); the whole is 35 + Nc bytes."""

MAX_CHECK_BITS = 16
"""The in-packet check is the low bits of a CRC-16."""


@dataclass(frozen=True)
class DatagramDescription:
    """What a datagram receiver needs before the first packet, sent once out of band (in the call setup, e.g. an
    SDP attribute, or as the first reliable message). Values are validated on construction and on parsing.

    Attributes:
        model_sampling_rate, original_sampling_rate, hop_length, num_coarse_quantizers, num_quantizers,
            codebook_size, model_fingerprint: as in :class:`StreamHeader`.
        sync_period_frames: R, the entropy LM's context resets every R frames (a multiple of the packet length).
            Damage from a lost packet ends at the next reset: the bound is R - P frames of received audio.
        packet_length_frames: P, frames per packet (1..255; 1-3 for real time: 20-60 ms).
        sequence_modulus: M, the packet's sequence number is coded modulo M (a multiple of R / P, at least 2), so
            it also tells where each reset segment starts.
        check_bits: k, bits of an in-packet check (0..16): the low k bits of a CRC-16 of the packet's codes, coded
            as the packet's last symbol. 0: only the canonical check (the receiver re-encodes what it decoded).
        start_mix: Nc shares s_l (0..255): the first frame of each segment codes level l with the entropy model's
            table mixed with the uniform one, f' = ((256 - s_l) f + s_l 2^20 / K) >> 8 (see
            ``integer_entropy_model.mix_with_uniform``): at a reset the model has no context and is overconfident.
        format_version: :data:`DATAGRAM_FORMAT_VERSION`.
    """

    model_sampling_rate: int
    original_sampling_rate: int
    hop_length: int
    num_coarse_quantizers: int
    num_quantizers: int
    codebook_size: int
    sync_period_frames: int
    packet_length_frames: int
    sequence_modulus: int
    check_bits: int
    start_mix: tuple[int, ...]
    model_fingerprint: bytes
    format_version: int = DATAGRAM_FORMAT_VERSION

    def __post_init__(self):
        if self.format_version != DATAGRAM_FORMAT_VERSION:
            raise LMCodecError(f"format_version of a datagram stream must be {DATAGRAM_FORMAT_VERSION}, "
                               f"got {self.format_version!r}")
        fields = {
            "model_sampling_rate": _check_int("model_sampling_rate", self.model_sampling_rate, 1, 0xFFFF_FFFF),
            "original_sampling_rate": _check_int("original_sampling_rate", self.original_sampling_rate, 1, 0xFFFF_FFFF),
            "hop_length": _check_int("hop_length", self.hop_length, 1, 0xFFFF),
            "num_quantizers": _check_int("num_quantizers", self.num_quantizers, 1, 255),
            "codebook_size": _check_int("codebook_size", self.codebook_size, 2, 1 << MAX_CODE_BITS),
            "packet_length_frames": _check_int("packet_length_frames", self.packet_length_frames, 1, 255),
            "sync_period_frames": _check_int("sync_period_frames", self.sync_period_frames, 1, 0xFFFF),
            "sequence_modulus": _check_int("sequence_modulus", self.sequence_modulus, 2, 0xFFFF),
            "check_bits": _check_int("check_bits", self.check_bits, 0, MAX_CHECK_BITS),
        }
        num_coarse = _check_int("num_coarse_quantizers", self.num_coarse_quantizers, 1, 255)
        if num_coarse > fields["num_quantizers"]:
            raise LMCodecError(
                f"num_coarse_quantizers must be between 1 and num_quantizers ({fields['num_quantizers']}), "
                f"got {num_coarse}"
            )
        fields["num_coarse_quantizers"] = num_coarse
        if fields["codebook_size"] & (fields["codebook_size"] - 1):
            raise LMCodecError(f"codebook_size must be a power of two, got {fields['codebook_size']}")
        sync, packet = fields["sync_period_frames"], fields["packet_length_frames"]
        if sync % packet:
            raise LMCodecError(f"sync_period_frames ({sync}) must be a multiple of packet_length_frames ({packet}) "
                               "so that packets never straddle a reset")
        if fields["sequence_modulus"] % (sync // packet):
            raise LMCodecError(
                f"sequence_modulus ({fields['sequence_modulus']}) must be a multiple of the packets per reset "
                f"segment ({sync // packet}) so that the sequence number tells where each segment starts"
            )
        try:
            shares = tuple(self.start_mix)
        except TypeError:
            raise LMCodecError(f"start_mix must be a sequence of integers, got {self.start_mix!r}") from None
        if len(shares) != num_coarse:
            raise LMCodecError(f"start_mix must give one share per coarse level ({num_coarse}), got {len(shares)}")
        fields["start_mix"] = tuple(_check_int("start_mix share", share, 0, 255) for share in shares)
        fingerprint = self.model_fingerprint
        if not isinstance(fingerprint, (bytes, bytearray)) or len(fingerprint) != FINGERPRINT_SIZE:
            raise LMCodecError(f"model_fingerprint must be {FINGERPRINT_SIZE} bytes, got {self.model_fingerprint!r}")
        fields["model_fingerprint"] = bytes(fingerprint)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def bits_per_code(self) -> int:
        return self.codebook_size.bit_length() - 1

    @property
    def packets_per_segment(self) -> int:
        """Packets between two context resets (R / P)."""
        return self.sync_period_frames // self.packet_length_frames

    def starts_segment(self, sequence_number: int) -> bool:
        """True when packet ``sequence_number`` (or its sequence field) begins a reset segment."""
        return sequence_number % self.packets_per_segment == 0

    @property
    def damage_bound_frames(self) -> int:
        """The most frames of *received* audio that a loss can leave undecodable after it ends: R - P."""
        return self.sync_period_frames - self.packet_length_frames

    @property
    def size(self) -> int:
        return DATAGRAM_DESCRIPTION_BASE_SIZE + self.num_coarse_quantizers

    def to_bytes(self) -> bytes:
        """The description as ``35 + Nc`` bytes (layout in docs/bitstream.md), ending with its CRC-16."""
        fields = _DESCRIPTION_FIELDS.pack(
            MAGIC, self.format_version, DATAGRAM_FLAGS, self.model_sampling_rate, self.original_sampling_rate,
            self.hop_length, self.num_coarse_quantizers, self.num_quantizers, self.bits_per_code,
            self.sync_period_frames, self.packet_length_frames, self.sequence_modulus, self.check_bits,
            self.model_fingerprint,
        ) + bytes(self.start_mix)
        return fields + _UINT16.pack(crc16(fields))

    @classmethod
    def from_bytes(cls, data: bytes) -> "DatagramDescription":
        """Parse a whole description (nothing may follow it). Raises UnsupportedStreamError (wrong magic, a file
        stream's header, unknown version), TruncatedStreamError or CorruptStreamError (checksum, values)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LMCodecError(f"a datagram stream description is bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data:
            raise TruncatedStreamError("datagram stream description is empty; pass the bytes of "
                                       "DatagramEncoder.description()")
        if data[:4] != MAGIC[: len(data)]:
            raise UnsupportedStreamError(f"not an LMCodec stream description (magic {data[:4]!r} instead of "
                                         f"{MAGIC!r}); pass the bytes of DatagramEncoder.description()")
        if len(data) > 4 and data[4] != DATAGRAM_FORMAT_VERSION:
            if data[4] in READABLE_FORMAT_VERSIONS:
                raise UnsupportedStreamError(
                    f"this is the header of a file stream (format version {data[4]}), not a datagram stream "
                    "description; decode it with decompress or a stream decompressor"
                )
            raise UnsupportedStreamError(
                f"datagram stream format version {data[4]} is not one this lmcodec reads ({DATAGRAM_FORMAT_VERSION}); "
                + ("upgrade lmcodec" if data[4] > DATAGRAM_FORMAT_VERSION else "the description is damaged")
            )
        if len(data) < DATAGRAM_DESCRIPTION_BASE_SIZE:
            raise TruncatedStreamError(f"datagram stream description is truncated: {len(data)} bytes, at least "
                                       f"{DATAGRAM_DESCRIPTION_BASE_SIZE} needed; re-send it")
        nc = data[16]
        size = DATAGRAM_DESCRIPTION_BASE_SIZE + nc
        if len(data) < size:
            raise TruncatedStreamError(f"datagram stream description is truncated: {len(data)} bytes, {size} expected "
                                       f"for {nc} coarse levels; re-send it")
        if len(data) > size:
            raise CorruptStreamError(f"datagram stream description is followed by {len(data) - size} more bytes; "
                                     "pass the description alone")
        fields, (stored_crc,) = data[:-2], _UINT16.unpack(data[-2:])
        if crc16(fields) != stored_crc:
            raise CorruptStreamError("datagram stream description is corrupted (checksum mismatch); re-send it")
        (_, version, flags, model_rate, original_rate, hop, nc, nq, code_bits, sync, packet, modulus, check,
         fingerprint) = _DESCRIPTION_FIELDS.unpack(fields[: _DESCRIPTION_FIELDS.size])
        if flags != DATAGRAM_FLAGS:
            raise CorruptStreamError(f"datagram stream description has flags 0x{flags:02x}, not 0x{DATAGRAM_FLAGS:02x}; "
                                     "it was not written by a compatible lmcodec")
        if not 1 <= code_bits <= MAX_CODE_BITS:
            raise CorruptStreamError(f"datagram stream description gives {code_bits} bits per code (allowed "
                                     f"1..{MAX_CODE_BITS}); it was not written by a compatible lmcodec")
        try:
            return cls(model_rate, original_rate, hop, nc, nq, 1 << code_bits, sync, packet, modulus, check,
                       tuple(fields[_DESCRIPTION_FIELDS.size :]), fingerprint, version)
        except LMCodecError as error:
            raise CorruptStreamError(f"datagram stream description is invalid ({error}); it was not written by a "
                                     "compatible lmcodec") from None


def uniform_frequencies(size: int, total_bits: int = 20) -> np.ndarray:
    """The integer frequency table of ``size`` equally likely values, summing to 2^total_bits: floor(2^bits / size)
    each, plus 1 for the first (2^bits mod size) values. int64 ``[1, size]``."""
    size = _check_int("size", size, 1, 1 << total_bits)
    base, extra = divmod(1 << total_bits, size)
    table = np.full((1, size), base, dtype=np.int64)
    table[0, :extra] += 1
    return table


def datagram_check(codes, sequence_field: int, check_bits: int) -> int:
    """The in-packet check value: the low ``check_bits`` bits of the CRC-16/CCITT-FALSE of the packet's codes
    ``[frames, Nc]`` (little-endian uint16, frame-major, as :func:`crc16_codes`) followed by its sequence field
    (little-endian uint16)."""
    array = _as_code_array(codes)
    if array.ndim != 2:
        raise LMCodecError(f"codes must have shape [frames, levels], got shape {array.shape}")
    data = np.ascontiguousarray(array, dtype="<u2").tobytes() + _UINT16.pack(sequence_field)
    return crc16(data) & ((1 << check_bits) - 1)


# ----------------------------------------------------------------------------------------------------------------
# raw code packing (payloads of streams without entropy coding)


def _check_bits(bits_per_code) -> int:
    return _check_int("bits_per_code", bits_per_code, 1, MAX_CODE_BITS)


def packed_size(frames: int, levels: int, bits_per_code: int) -> int:
    """Bytes that ``pack_codes`` writes for ``frames × levels`` codes: ceil(frames · levels · bits / 8)."""
    count = _check_int("frames", frames, 0, 1 << 40) * _check_int("levels", levels, 0, 255)
    return (count * _check_bits(bits_per_code) + 7) // 8


def pack_codes(codes, bits_per_code: int) -> bytes:
    """Bit-pack codes, ``bits_per_code`` bits each, MSB first, frame-major; the last byte is zero-padded.

    Args:
        codes: integer array ``[frames, levels]`` with values in ``0 .. 2**bits_per_code - 1``.
        bits_per_code: 1..16.
    Returns:
        ``packed_size(frames, levels, bits_per_code)`` bytes.
    """
    bits = _check_bits(bits_per_code)
    array = _as_code_array(codes)
    if array.ndim != 2:
        raise LMCodecError(f"codes must have shape [frames, levels], got shape {array.shape}")
    flat = array.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= 1 << bits):
        raise LMCodecError(
            f"codes must lie in 0..{(1 << bits) - 1} to pack with {bits} bits, got {flat.min()}..{flat.max()}"
        )
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)  # MSB first
    bit_matrix = ((flat.astype(np.uint32)[:, None] >> shifts) & 1).astype(np.uint8)  # [codes, bits]
    return np.packbits(bit_matrix.reshape(-1)).tobytes()


def unpack_codes(data: bytes, bits_per_code: int, frames: int, levels: int) -> np.ndarray:
    """Inverse of ``pack_codes``: ``data`` must be exactly ``packed_size(frames, levels, bits_per_code)`` bytes.

    Returns:
        int64 array ``[frames, levels]``.
    Raises:
        TruncatedStreamError when ``data`` is too short, CorruptStreamError when it is too long.
    """
    bits = _check_bits(bits_per_code)
    needed = packed_size(frames, levels, bits)
    if len(data) != needed:
        error = TruncatedStreamError if len(data) < needed else CorruptStreamError
        raise error(
            f"raw packet holds {len(data)} bytes but {frames} frames × {levels} levels × {bits} bits need {needed}; "
            "the stream is damaged — re-send it or decode with --partial"
        )
    count = frames * levels
    bit_matrix = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))[: count * bits].reshape(count, bits)
    weights = np.left_shift(np.int64(1), np.arange(bits - 1, -1, -1, dtype=np.int64))
    return (bit_matrix.astype(np.int64) @ weights).reshape(frames, levels)


# ----------------------------------------------------------------------------------------------------------------
# model identity


def fingerprint(state_dict_tensors: dict, config_items: dict) -> bytes:
    """8 bytes identifying model weights and settings, written into the header so a decoder can refuse a wrong model.

    The first 8 bytes of a SHA-256 over, for each tensor (numpy array or torch tensor) in name order: a canonical JSON
    line with its name, dtype (spelled as torch spells it, e.g. "torch.float32") and shape, then its values as
    little-endian float32 (integer tensors: little-endian int64, exactly); followed by the canonical JSON (sorted
    keys) of ``config_items``. Deterministic across processes, machines and backends with the same weights.
    """
    hasher = hashlib.sha256()
    for name in sorted(state_dict_tensors):
        tensor = state_dict_tensors[name]
        if hasattr(tensor, "detach"):
            dtype, values = str(tensor.dtype), tensor.detach().cpu()
            values = values.float().numpy() if values.is_floating_point() or dtype == "torch.bool" else values.numpy()
        elif isinstance(tensor, np.ndarray):
            dtype, values = f"torch.{tensor.dtype.name}", tensor
        else:
            raise LMCodecError(f"fingerprint input {name!r} is a {type(tensor).__name__}, not a tensor")
        description = {"name": str(name), "dtype": dtype, "shape": list(values.shape)}
        hasher.update(json.dumps(description, sort_keys=True).encode() + b"\n")
        if values.dtype.kind in "fb":
            hasher.update(np.ascontiguousarray(values, dtype="<f4").tobytes())
        else:  # integer tensors (the integer entropy model) are hashed exactly, as little-endian int64
            hasher.update(np.ascontiguousarray(values, dtype="<i8").tobytes())
    try:
        config_json = json.dumps(config_items, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError) as error:
        raise LMCodecError(f"fingerprint config items are not JSON-serialisable ({error}); pass plain values") from None
    hasher.update(b"config\n" + config_json.encode())
    return hasher.digest()[:FINGERPRINT_SIZE]
