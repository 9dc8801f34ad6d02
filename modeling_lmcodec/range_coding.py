"""Range coding of coarse codes with integer frequency tables (constriction, `Categorical(perfect=False)`).

`IntegerEntropyCoder` (format version 3, what `compress` writes) takes its probabilities from the integer entropy
model (`integer_entropy_model.py`): integer frequency tables, which constriction sees as exact dyadic probabilities
f / 2^20, identical on every machine. `DatagramCoder` (format version 4) codes self-contained datagram packets: a
sequence field, the codes and an optional check, every symbol with an integer table. This module needs only numpy and constriction, so the torch-free runtime
shares it with the torch model; `entropy_coding.EntropyCoder` adds the float-LM coder of format versions 1 and 2.
"""

from __future__ import annotations

import numpy as np

from .bitstream import (
    DATAGRAM_FORMAT_VERSION,
    FORMAT_VERSION,
    CorruptStreamError,
    datagram_check,
    range_coder_word_order,
    uniform_frequencies,
)
from .errors import LMCodecError
from .integer_entropy_model import IntegerEntropyModel, IntegerLMState, mix_with_uniform

try:  # optional at import time so the model loads without it; coding needs it
    import constriction
except ImportError:  # pragma: no cover - exercised only where constriction is missing
    constriction = None


class StreamMismatchError(LMCodecError):
    """The decoded codes do not match what the sender coded (other model, other torch build, or damage)."""


def require_constriction():
    if constriction is None:
        raise LMCodecError("entropy coding needs the 'constriction' package; install it with `pip install constriction`.")
    return constriction


NO_INTEGER_MODEL_HINT = ("this checkpoint has no integer entropy model; export one with "
                         "model.export_integer_entropy_model(codes_of_real_speech), or write raw codes "
                         "(entropy_coding=False, lmcodec encode --no-entropy)")
CODER_ERRORS = (AssertionError, ValueError, RuntimeError)  # how constriction refuses a payload that does not decode


class _RangeCodedPayloads:
    """What both coders share: constriction's model family and how a packet's range-coder words become its payload
    (`format_version` fixes the spelling, `bitstream.range_coder_word_order`)."""

    def __init__(self, format_version: int):
        self.format_version = format_version
        self.word_order = range_coder_word_order(format_version)
        self.family = require_constriction().stream.model.Categorical(perfect=False)
        self.information_bits = 0.0  # sum of -log2 p over coded symbols: the model's cross-entropy

    def _payload(self, symbols: np.ndarray, models: np.ndarray, minimum_bits: int) -> bytes:
        """Range-code `symbols` `[n]` with probabilities `models` `[n, K]` (float32) into one flushed payload."""
        if not len(symbols):
            return b"\x00"
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols, self.family, models)
        flushed = encoder.get_compressed().astype(self.word_order).tobytes()
        if self.format_version == 1:  # trailing zero bytes carry no information (decode_frames pads them back)
            return flushed.rstrip(b"\x00") or b"\x00"
        return self._shortest_payload(flushed, symbols, models, minimum_bits)

    def _shortest_payload(self, flushed: bytes, symbols: np.ndarray, models: np.ndarray, minimum_bits: int) -> bytes:
        """The shortest byte string that decodes to `symbols` when padded with zeros: `flushed` (big-endian words)
        cut after n bytes, or that n-byte prefix plus one in its last byte, for the smallest n that decodes.

        The coder flushes whole 32-bit words, ~16 bits per packet beyond the information (measured at every packet
        length). Any number inside the coder's final interval decodes; with big-endian words a shorter prefix is a
        coarser number, so the two n-byte numbers nearest the flushed one are the only candidates of length n, and
        if neither decodes no shorter one does. Every payload returned has been decoded and checked here.
        `minimum_bits` (a lower bound of the packet's information) is where the search starts."""
        for length in range(max(1, minimum_bits // 8), len(flushed)):
            prefix = int.from_bytes(flushed[:length], "big")
            for value in (prefix, prefix + 1):
                candidate = value.to_bytes(length, "big").rstrip(b"\x00") if value < 256**length else b""
                if candidate and np.array_equal(self._decode_symbols(candidate, models), symbols):
                    return candidate
        return flushed.rstrip(b"\x00") or b"\x00"

    def _decode_symbols(self, payload: bytes, models: np.ndarray) -> np.ndarray | None:
        """All symbols of one payload at once, given their probabilities `[n, K]` (None if the coder refuses)."""
        try:
            return np.asarray(self._decoder(payload).decode(self.family, models))
        except CODER_ERRORS:
            return None

    def _decoder(self, payload: bytes):
        padded = payload + b"\x00" * (-len(payload) % 4)
        return constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype=self.word_order).astype(np.uint32))

    def _decode_one(self, decoder, probabilities: np.ndarray) -> int:
        try:
            return int(decoder.decode(self.family, probabilities)[0])
        except CODER_ERRORS as error:
            raise StreamMismatchError(
                f"range decoder failed ({type(error).__name__}): the stream is damaged or was made by another "
                "model; decode with the model that encoded it, or use --partial."
            ) from None


class IntegerEntropyCoder(_RangeCodedPayloads):
    """Range coding with the integer entropy model (format version 3): the same integer frequency tables on every
    machine. The sender computes a packet's tables all at once (teacher-forced), the receiver frame by frame and
    level by level; the arithmetic is exact, so both get the same integers."""

    def __init__(self, model: IntegerEntropyModel, num_coarse: int, format_version: int = FORMAT_VERSION):
        super().__init__(format_version)
        self.model = model
        self.num_coarse = num_coarse
        self.scale = np.float32(2.0**-model.frequency_bits)  # f · 2^-bits is exact in float32 (f ≤ 2^bits ≤ 2^24)
        self.state: IntegerLMState | None = None

    def start_segment(self) -> None:
        self.state = self.model.start()

    def probabilities(self, frequencies: np.ndarray) -> np.ndarray:
        """Integer frequencies `[..., K]` → the float32 probabilities constriction gets (exact dyadic fractions)."""
        return frequencies.astype(np.float32) * self.scale

    def encode_frames(self, coarse_codes: np.ndarray) -> bytes:
        """coarse_codes: `[f, Nc]` → one flushed range-coder payload (at least one byte)."""
        codes = np.asarray(coarse_codes, dtype=np.int64)[:, : self.num_coarse]
        frequencies = self.model.frequencies(self.state, codes, self.num_coarse)  # [f, Nc, K]
        frequencies = frequencies.reshape(-1, frequencies.shape[-1])
        symbols = codes.reshape(-1).astype(np.int32)
        chosen = np.take_along_axis(frequencies, symbols[:, None].astype(np.int64), axis=1)[:, 0]
        bits = self.model.frequency_bits
        self.information_bits += float(bits * len(chosen) - np.log2(chosen).sum())  # reporting only
        # A lower bound of the information from integers alone (bit_length(f) > log2 f), so the payload search, and
        # therefore the bytes, do not depend on a libm log2.
        bit_lengths = (chosen[:, None] >= (np.int64(1) << np.arange(bits + 1))).sum(axis=1)
        minimum_bits = int((bits - bit_lengths).sum())
        return self._payload(symbols, self.probabilities(frequencies), minimum_bits)

    def decode_frames(self, payload: bytes, frames: int) -> np.ndarray:
        """One packet's payload → coarse codes `[frames, Nc]`."""
        decoder = self._decoder(payload)
        out = np.zeros((frames, self.num_coarse), dtype=np.int64)
        for frame in range(frames):
            conditioned = self.model.step(self.state, self.num_coarse)
            for level in range(self.num_coarse):
                frequencies = self.model.level_frequencies(conditioned, level)
                out[frame, level] = self._decode_one(decoder, self.probabilities(frequencies))
                if level + 1 < self.num_coarse:
                    conditioned = self.model.condition(conditioned, level, out[frame, level : level + 1])
            self.model.finish_frame(self.state, out[frame])
        return out


def _information_lower_bound(chosen: np.ndarray, bits: int) -> int:
    """Σ (bits - bit_length(f)) over the chosen symbols' frequencies: a lower bound of their information
    (bit_length(f) > log2 f) from integers alone, where the shortest-payload search starts."""
    chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)
    bit_lengths = (chosen[:, None] >= (np.int64(1) << np.arange(bits + 1))).sum(axis=1)
    return int((bits - bit_lengths).sum())


class DatagramCoder(_RangeCodedPayloads):
    """Range coding of datagram packets (format version 4, `bitstream.DatagramDescription`).

    One packet is one flushed range-coder payload of, in order: the sequence field (uniform over the sequence
    modulus), the packet's codes frame by frame and level by level (the integer entropy model's tables; the first
    frame of a reset segment mixed with the uniform table by the start-mix shares), and, with `check_bits` > 0, the
    check value (uniform over 2^check_bits). Every table is an integer table summing to 2^frequency_bits. The
    payload is the shortest byte string that decodes to these symbols (the version-3 rule), so a receiver checks a
    decoded packet by re-encoding it and comparing bytes (the canonical check) as well as by the check value.

    The entropy context is an `IntegerLMState` the caller owns (`start()` at each segment start), so a receiver can
    decide from the sequence field, before decoding anything else, whether it holds the right context."""

    def __init__(self, model: IntegerEntropyModel, num_coarse: int, sequence_modulus: int, check_bits: int,
                 start_mix):
        super().__init__(DATAGRAM_FORMAT_VERSION)
        self.model = model
        self.num_coarse = num_coarse
        self.bits = model.frequency_bits
        self.scale = np.float32(2.0**-self.bits)
        self.sequence_modulus = sequence_modulus
        self.check_bits = check_bits
        self.shares = np.asarray(start_mix, dtype=np.int64).reshape(num_coarse)
        self.sequence_table = uniform_frequencies(sequence_modulus, self.bits)
        self.check_table = uniform_frequencies(1 << check_bits, self.bits) if check_bits else None
        self.information_bits = 0.0  # -log2 p of the codes (reporting only)
        self.field_bits = 0.0  # -log2 p of the sequence fields and checks (reporting only)

    def start(self) -> IntegerLMState:
        """A fresh entropy context (at a segment start)."""
        return self.model.start()

    def probabilities(self, frequencies: np.ndarray) -> np.ndarray:
        return frequencies.astype(np.float32) * self.scale

    # ------------------------------------------------------------------ sender
    def encode(self, state: IntegerLMState, codes: np.ndarray, sequence_field: int, segment_start: bool) -> bytes:
        """One packet: codes `[P, Nc]` coded in `state` (advanced past them; fresh when `segment_start`) → payload."""
        codes = np.asarray(codes, dtype=np.int64)[:, : self.num_coarse]
        frequencies = self.model.frequencies(state, codes, self.num_coarse)  # [P, Nc, K]
        if segment_start:
            frequencies[0] = mix_with_uniform(frequencies[0], self.shares, self.bits)
        tables = frequencies.reshape(-1, frequencies.shape[-1])
        chosen = np.take_along_axis(tables, codes.reshape(-1, 1), axis=1)[:, 0]
        self.information_bits += float(self.bits * len(chosen) - np.log2(chosen).sum())  # reporting only
        self.field_bits += float(self.bits - np.log2(self.sequence_table[0, sequence_field])) + self.check_bits
        return self._parts_payload(self._parts(codes, tables, sequence_field))

    def _parts(self, codes: np.ndarray, tables: np.ndarray, sequence_field: int) -> list:
        """The packet's symbols and their integer tables, in coding order."""
        parts = [(np.array([sequence_field]), self.sequence_table), (codes.reshape(-1), tables)]
        if self.check_bits:
            parts.append((np.array([datagram_check(codes, sequence_field, self.check_bits)]), self.check_table))
        return parts

    def _parts_payload(self, parts: list) -> bytes:
        """Range-code the parts `[(symbols [n], integer tables [n, K_i])]` into the shortest decodable payload."""
        encoder = constriction.stream.queue.RangeEncoder()
        chosen = []
        for symbols, tables in parts:
            encoder.encode(symbols.astype(np.int32), self.family, self.probabilities(tables))
            chosen.append(np.take_along_axis(tables, symbols.astype(np.int64)[:, None], axis=1)[:, 0])
        flushed = encoder.get_compressed().astype(self.word_order).tobytes()
        minimum_bits = _information_lower_bound(np.concatenate(chosen), self.bits)
        for length in range(max(1, minimum_bits // 8), len(flushed)):
            prefix = int.from_bytes(flushed[:length], "big")
            for value in (prefix, prefix + 1):
                candidate = value.to_bytes(length, "big").rstrip(b"\x00") if value < 256**length else b""
                if candidate and self._decodes_to(candidate, parts):
                    return candidate
        return flushed.rstrip(b"\x00") or b"\x00"

    def _decodes_to(self, payload: bytes, parts: list) -> bool:
        try:
            decoder = self._decoder(payload)
            return all(np.array_equal(np.asarray(decoder.decode(self.family, self.probabilities(tables))), symbols)
                       for symbols, tables in parts)
        except CODER_ERRORS:
            return False

    # ------------------------------------------------------------------ receiver
    def read_sequence_field(self, payload: bytes):
        """The packet's first symbol, which needs no context: `(sequence field, decoder to continue with)`."""
        if not payload:
            raise CorruptStreamError("datagram packet is empty; a packet holds at least one byte")
        decoder = self._decoder(bytes(payload))
        return self._decode_one(decoder, self.probabilities(self.sequence_table)), decoder

    def decode(self, decoder, payload: bytes, state: IntegerLMState, frames: int, sequence_field: int,
               segment_start: bool) -> np.ndarray:
        """The rest of the packet after `read_sequence_field`: codes `[frames, Nc]`, decoded in `state` (advanced).

        Raises StreamMismatchError when the range decoder refuses, the check value differs, or the payload is not the
        one the sender writes for the decoded codes (the canonical check): the context or the model differs from
        the sender's, or the packet is damaged. `state` is then unusable until the next segment start."""
        out = np.zeros((frames, self.num_coarse), dtype=np.int64)
        tables = np.zeros((frames * self.num_coarse, self.model.codebook_size), dtype=np.int64)
        for frame in range(frames):
            conditioned = self.model.step(state, self.num_coarse)
            for level in range(self.num_coarse):
                frequencies = self.model.level_frequencies(conditioned, level)
                if segment_start and frame == 0:
                    frequencies = mix_with_uniform(frequencies, self.shares[level : level + 1], self.bits)
                tables[frame * self.num_coarse + level] = frequencies[0]
                out[frame, level] = self._decode_one(decoder, self.probabilities(frequencies))
                if level + 1 < self.num_coarse:
                    conditioned = self.model.condition(conditioned, level, out[frame, level : level + 1])
            self.model.finish_frame(state, out[frame])
        if self.check_bits:
            check = self._decode_one(decoder, self.probabilities(self.check_table))
            if check != datagram_check(out, sequence_field, self.check_bits):
                raise StreamMismatchError("datagram packet's check value differs from its decoded codes': the packet "
                                          "is damaged or the receiver's context or model differs from the sender's")
        if self._parts_payload(self._parts(out, tables, sequence_field)) != bytes(payload):
            raise StreamMismatchError("datagram packet is not the one its decoded codes give (canonical check): the "
                                      "packet is damaged or the receiver's context or model differs from the sender's")
        return out
