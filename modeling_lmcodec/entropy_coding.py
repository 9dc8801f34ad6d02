"""Range coding with the float entropy LM (format versions 1 and 2, still read), on top of `range_coding.py`.

`range_coding.IntegerEntropyCoder` (format version 3, what `compress` writes) needs only numpy. `EntropyCoder` here
takes its probabilities from the float entropy LM, which only decodes where the float arithmetic matches the sender's:

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

from .errors import LMCodecError
from .frame_lm import FrameLMState, LMCodecFrameLM
from .range_coding import (  # noqa: F401 (re-exported: the integer coder and the errors live in range_coding)
    CODER_ERRORS,
    IntegerEntropyCoder,
    StreamMismatchError,
    _RangeCodedPayloads,
    require_constriction,
)

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
