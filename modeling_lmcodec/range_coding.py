"""Range coding of coarse codes with integer frequency tables (constriction, `Categorical(perfect=False)`).

`IntegerEntropyCoder` (format version 3, what `compress` writes) takes its probabilities from the integer entropy
model (`integer_entropy_model.py`): integer frequency tables, which constriction sees as exact dyadic probabilities
f / 2^20, identical on every machine. This module needs only numpy and constriction, so the torch-free runtime
shares it with the torch model; `entropy_coding.EntropyCoder` adds the float-LM coder of format versions 1 and 2.
"""

from __future__ import annotations

import numpy as np

from .bitstream import FORMAT_VERSION, range_coder_word_order
from .errors import LMCodecError
from .integer_entropy_model import IntegerEntropyModel, IntegerLMState

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
