"""Streaming codec: push audio in chunks of any size, get the codes of every completed frame, and back.

The streaming encoder runs the model's fixed encoder block loop (`LMCodecModel.encode_block`), exactly as offline
`encode` does, so the codes are identical to a one-shot `encode` of the concatenated audio whatever the chunk sizes.
Memory stays flat: the state is a few convolution buffers, never the past audio.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import LMCodecError
from .frames import ENCODER_BLOCK_FRAMES, num_frames


def _as_samples(samples, device, dtype) -> torch.Tensor:
    """A 1-D float array or tensor of samples → `[1, T]` tensor on the model's device."""
    tensor = torch.as_tensor(np.asarray(samples) if not torch.is_tensor(samples) else samples)
    if tensor.dim() != 1:
        raise LMCodecError(f"push() takes a 1-D array of mono samples, got shape {tuple(tensor.shape)}.")
    return tensor.to(device=device, dtype=dtype).unsqueeze(0)


class LMCodecStreamingEncoder:
    """`push(samples [T]) -> codes [K, f]` for the frames completed so far; `flush()` pads and ends the stream."""

    def __init__(self, model, num_quantizers: int):
        self.model = model
        self.num_quantizers = num_quantizers
        self.block_samples = ENCODER_BLOCK_FRAMES * model.config.hop_length
        self._pending = torch.zeros(1, 0, dtype=model.dtype, device=model.device)
        self._state = None
        self._norms = model.quantizer.codebook_norms()
        self._samples_seen = 0
        self._frames_emitted = 0
        self._finished = False

    @torch.no_grad()
    def _encode_pending(self, final: bool) -> torch.Tensor:
        blocks = []
        usable = self._pending.shape[-1] // self.block_samples * self.block_samples
        for start in range(0, usable, self.block_samples):
            block = self._pending[:, start : start + self.block_samples]
            codes, self._state = self.model.encode_block(block, self._state, self.num_quantizers, self._norms)
            blocks.append(codes[0])
        self._pending = self._pending[:, usable:]
        codes = torch.cat(blocks, dim=-1) if blocks else torch.zeros(self.num_quantizers, 0, dtype=torch.long)
        if final:
            total = num_frames(self._samples_seen, self.model.config.hop_length)
            codes = codes[:, : total - self._frames_emitted]
        self._frames_emitted += codes.shape[-1]
        return codes

    def push(self, samples) -> torch.Tensor:
        """Add mono samples (1-D) and return the codes `[K, f]` of the frames completed by them (f may be 0)."""
        if self._finished:
            raise RuntimeError("this streaming encoder was flushed; create a new one with model.streaming_encoder().")
        chunk = _as_samples(samples, self.model.device, self.model.dtype)
        self._samples_seen += chunk.shape[-1]
        self._pending = torch.cat([self._pending, chunk], dim=-1)
        return self._encode_pending(final=False)

    def flush(self) -> torch.Tensor:
        """End the stream: zero-pad the last partial frame and return the remaining codes `[K, f]`."""
        if self._finished:
            raise RuntimeError("this streaming encoder was already flushed.")
        self._finished = True
        remainder = self._pending.shape[-1]
        if remainder:
            padding = (-remainder) % self.block_samples
            self._pending = torch.nn.functional.pad(self._pending, (0, padding))
        return self._encode_pending(final=True)


class LMCodecStreamingDecoder:
    """`push(codes [K, f]) -> samples`, then `flush() -> samples`: frame-by-frame decoding with carried state.

    With the default decoder every push returns `f * hop_length` final samples and `flush()` returns none. A decoder
    with an output delay (`config.decoder_output_delay` samples, a synthesis window longer than the STFT window)
    returns that many fewer samples on the first push and the rest on `flush()`; all pushes plus the flush equal the
    offline `decode` of the same codes.
    """

    def __init__(self, model):
        self.model = model
        self._state = None
        self._skip = model.decoder.output_delay  # samples the head emits before time 0

    @torch.no_grad()
    def push(self, codes) -> torch.Tensor:
        """Decode codes `[K, f]` (levels 0..K-1 of f frames) into up to `f * hop_length` samples in [-1, 1]."""
        codes = torch.as_tensor(codes)
        if codes.dim() != 2:
            raise LMCodecError(f"push() takes codes of shape [levels, frames], got {tuple(codes.shape)}.")
        self.model._check_audio_codes(codes.unsqueeze(0))
        return self.push_latent(self.model.quantizer.decode(codes.unsqueeze(0).to(self.model.device))[0])

    @torch.no_grad()
    def push_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """Decode a quantized latent `[f, D]` (e.g. with expected fine levels) into up to `f * hop_length` samples."""
        samples, self._state = self.model.decoder(latent.unsqueeze(0).to(self.model.device), self._state)
        samples = samples[0]
        if self._skip:
            skipped = min(self._skip, samples.shape[0])
            samples, self._skip = samples[skipped:], self._skip - skipped
        return samples.clamp(-1.0, 1.0)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """The samples still held back by the decoder's output delay (`[0]` for the default decoder); the stream
        ends here, so the next push starts a new one."""
        state, self._state = self._state, None
        delay = self.model.decoder.output_delay
        if state is None or delay == 0:
            self._skip = delay
            return torch.zeros(0, dtype=self.model.dtype, device=self.model.device)
        pending = self.model.decoder.pending_samples(state)[0]
        pending = pending[self._skip:]  # a stream shorter than the delay never reached time 0's samples
        self._skip = delay
        return pending.clamp(-1.0, 1.0)
