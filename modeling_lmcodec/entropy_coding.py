"""Range coding of coarse codes with the entropy LM's probabilities (constriction, `Categorical(perfect=False)`).

Exact decoding rule: the receiver must reproduce the sender's probabilities bit for bit, so both sides run the very
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


class EntropyCoder:
    """Turns the coarse codes of a stream into range-coded packets and back, frame by frame.

    One instance per stream and direction; `start_segment()` at every sync point. `encode_frames` and
    `decode_frames` call the LM identically, so the probabilities agree bit for bit. `format_version` fixes how a
    payload spells the coder's words (`bitstream.range_coder_word_order`): streams are written in the current
    version, older ones are still read.
    """

    def __init__(self, lm: LMCodecFrameLM, codebooks: torch.Tensor, num_quantizers: int, num_coarse: int,
                 format_version: int = FORMAT_VERSION):
        self.lm = lm
        self.format_version = format_version
        self.word_order = range_coder_word_order(format_version)
        self.codebooks = codebooks
        self.num_quantizers = num_quantizers
        self.num_coarse = num_coarse
        self.family = require_constriction().stream.model.Categorical(perfect=False)
        self.state: FrameLMState | None = None
        self.information_bits = 0.0  # sum of -log2 p over coded symbols: the LM's cross-entropy

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
        if not symbols:
            return b"\x00"
        symbols, models = np.asarray(symbols, dtype=np.int32), np.stack(models)
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols, self.family, models)
        flushed = encoder.get_compressed().astype(self.word_order).tobytes()
        if self.format_version == 1:  # trailing zero bytes carry no information (decode_frames pads them back)
            return flushed.rstrip(b"\x00") or b"\x00"
        return self._shortest_payload(flushed, symbols, models, self.information_bits - information_before)

    def _shortest_payload(self, flushed: bytes, symbols: np.ndarray, models: np.ndarray,
                          information_bits: float) -> bytes:
        """The shortest byte string that decodes to `symbols` when padded with zeros: `flushed` (big-endian words)
        cut after n bytes, or that n-byte prefix plus one in its last byte, for the smallest n that decodes.

        The coder flushes whole 32-bit words, ~16 bits per packet beyond the information (measured at every packet
        length). Any number inside the coder's final interval decodes; with big-endian words a shorter prefix is a
        coarser number, so the two n-byte numbers nearest the flushed one are the only candidates of length n, and
        if neither decodes no shorter one does. Every payload returned has been decoded and checked here.
        `information_bits` (the packet's -log2 p) bounds the search from below."""
        for length in range(max(1, int(information_bits // 8)), len(flushed)):
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

    def decode_frames(self, payload: bytes, frames: int) -> np.ndarray:
        """One packet's payload → coarse codes `[frames, Nc]`."""
        decoder = self._decoder(payload)

        def read(probabilities, level):
            try:
                code = int(decoder.decode(self.family, probabilities)[0])
            except CODER_ERRORS as error:
                raise StreamMismatchError(
                    f"range decoder failed ({type(error).__name__}): the stream is damaged or was made by another "
                    "model; decode with the model that encoded it, or use --partial."
                ) from None
            return code

        return np.stack([self._frame(read).numpy() for _ in range(frames)]) if frames else np.zeros(
            (0, self.num_coarse), dtype=np.int64
        )
