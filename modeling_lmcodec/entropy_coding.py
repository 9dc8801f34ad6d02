"""Range coding of coarse codes with the entropy model's probabilities (constriction, `Categorical(perfect=False)`).

Two sources of probabilities. `IntegerEntropyCoder` (format version 3, what `compress` writes) takes them from the
integer entropy model (`integer_entropy_model.py`): integer frequency tables, which constriction sees as exact
dyadic probabilities f / 2^20, identical on every machine. `EntropyCoder` (versions 1 and 2, still read) takes them
from the float entropy LM, which only decodes where the float arithmetic matches the sender's:

Exact decoding rule for the float LM: the receiver must reproduce the sender's probabilities bit for bit, so both sides run the very
same sequence of operations — float32 on the CPU, batch 1, one torch thread (set inside `exact_coding`, restored
after), GPT-2 with a fixed attention implementation, one step per frame, the same context resets — and only then
turn probabilities into the coder's fixed-point model. The weights must also sit at the same memory alignment on
both sides: CPU matrix kernels round differently for weights that are not 64-byte aligned (measured on an AVX2 EPYC:
safetensors-loaded weights gave other float32 logits than freshly allocated ones), so every stream compressor and
decompressor moves any misaligned weight into freshly allocated (64-byte aligned) memory when it is created
(`align_weights`; once per stream, not per chunk: the check costs ~1.5 ms).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from .bitstream import FORMAT_VERSION, range_coder_word_order
from .errors import LMCodecError
from .frame_lm import FrameLMState, LMCodecFrameLM
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


CODER_ERRORS = (AssertionError, ValueError, RuntimeError)  # how constriction refuses a payload that does not decode
WEIGHT_ALIGNMENT_BYTES = 64  # what torch's CPU allocator guarantees; safetensors offsets give no such promise


def align_weights(model: torch.nn.Module) -> int:
    """Copy every parameter and buffer whose storage is not 64-byte aligned into fresh memory (in place, once).

    Returns how many tensors moved. Values are unchanged; only the addresses the matrix kernels see are.
    """
    moved = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.numel() and tensor.data_ptr() % WEIGHT_ALIGNMENT_BYTES:
            tensor.data = tensor.data.clone(memory_format=torch.contiguous_format)
            moved += 1
    return moved


@contextmanager
def exact_coding(model):
    """Run the coding path deterministically: float32 CPU model in eval mode, one torch thread, no autograd (the
    thread count and training mode are restored on exit). The weights must already be aligned (`align_weights`)."""
    if model.device.type != "cpu" or model.dtype != torch.float32:
        raise LMCodecError(
            f"compress/decompress need the model in float32 on the CPU for exact decoding (it is {model.dtype} on "
            f"{model.device}); use model.float().cpu() first."
        )
    threads, training = torch.get_num_threads(), model.training
    torch.set_num_threads(1)
    model.eval()  # dropout off: both sides must compute the same function
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(threads)
        model.train(training)


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


class EntropyCoder(_RangeCodedPayloads):
    """Turns the coarse codes of a stream into range-coded packets and back, frame by frame, with the float entropy
    LM (format versions 1 and 2).

    One instance per stream and direction; `start_segment()` at every sync point. `encode_frames` and
    `decode_frames` call the LM identically, so the probabilities agree bit for bit on the same machine.
    """

    def __init__(self, lm: LMCodecFrameLM, codebooks: torch.Tensor, num_quantizers: int, num_coarse: int,
                 format_version: int = 2):
        super().__init__(format_version)
        self.lm = lm
        self.codebooks = codebooks
        self.num_quantizers = num_quantizers
        self.num_coarse = num_coarse
        self.state: FrameLMState | None = None

    def start_segment(self) -> None:
        self.state = self.lm.start()

    def _frame(self, choose) -> torch.Tensor:
        """Run the LM for one frame; `choose(probabilities [1, K], level) -> code` codes or decodes each level."""
        codes = torch.zeros(1, self.num_quantizers, dtype=torch.long)
        conditioned = self.lm.step(self.state, codes, self.num_coarse, self.codebooks)
        for level in range(self.num_coarse):
            probabilities = torch.softmax(self.lm.level_logits(conditioned, level), dim=-1).numpy()  # float32 [1, K]
            code = choose(probabilities, level)
            self.information_bits -= float(np.log2(max(float(probabilities[0, code]), 1e-30)))
            codes[0, level] = code
            conditioned = self.lm.condition(conditioned, level, codes[:, level], self.codebooks)
        self.lm.finish_frame(self.state, codes)
        return codes[0, : self.num_coarse]

    def encode_frames(self, coarse_codes: np.ndarray) -> bytes:
        """coarse_codes: `[f, Nc]` → one flushed range-coder payload (at least one byte)."""
        symbols, models = [], []
        information_before = self.information_bits
        for row in coarse_codes:

            def remember(probabilities, level, row=row):
                symbols.append(int(row[level]))
                models.append(probabilities[0])
                return symbols[-1]

            self._frame(remember)
        information = self.information_bits - information_before
        models = np.stack(models) if models else np.zeros((0, 0), dtype=np.float32)
        return self._payload(np.asarray(symbols, dtype=np.int32), models, int(information // 8) * 8)

    def decode_frames(self, payload: bytes, frames: int) -> np.ndarray:
        """One packet's payload → coarse codes `[frames, Nc]`."""
        decoder = self._decoder(payload)

        def read(probabilities, level):
            return self._decode_one(decoder, probabilities)

        return np.stack([self._frame(read).numpy() for _ in range(frames)]) if frames else np.zeros(
            (0, self.num_coarse), dtype=np.int64
        )
