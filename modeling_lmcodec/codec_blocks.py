"""Causal building blocks of the codec, each usable offline (whole sequence) and streaming (a block at a time).

Every block takes `(x, state)` and returns `(y, new_state)`. `state=None` means "start of the stream" (zeros), so the
same call runs a whole sequence at once or a stream chunk by chunk; chaining the states reproduces the one-shot result
up to float rounding. Tensors are channels-last: `[batch, time, channels]`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


# Inputs of at most this many steps take the per-step depthwise path (see `LMCodecConvNeXtBlock._depthwise`).
SHORT_INPUT_STEPS = 16


class LMCodecConvNeXtBlock(nn.Module):
    """Causal ConvNeXt block: depthwise conv (left context only) → LayerNorm → MLP → layer scale → residual.

    State: the last `kernel_size - 1` inputs, `[B, kernel_size - 1, C]`.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, kernel_size: int, layer_scale: float, eps: float):
        super().__init__()
        self.context = kernel_size - 1
        self.layer_scale_init = layer_scale
        self.depthwise = nn.Conv1d(hidden_size, hidden_size, kernel_size, groups=hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.pointwise_in = nn.Linear(hidden_size, intermediate_size)
        self.pointwise_out = nn.Linear(intermediate_size, hidden_size)
        self.layer_scale = nn.Parameter(torch.full((hidden_size,), layer_scale))

    def initial_state(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch_size, self.context, like.shape[-1])

    def _depthwise(self, padded: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv of `[B, n + k - 1, C]` → `[B, n, C]`.

        Short inputs (streaming steps) use a multiply-and-sum over unfolded windows: oneDNN's convolution costs
        ~100 µs per call whatever the length, more than the rest of the block. Long inputs use the convolution.
        """
        if padded.shape[1] - self.context <= SHORT_INPUT_STEPS:
            windows = padded.unfold(1, self.context + 1, 1)  # [B, n, C, k]
            return (windows * self.depthwise.weight[:, 0]).sum(-1) + self.depthwise.bias
        return self.depthwise(padded.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: `[B, n, C]`, state: `[B, kernel_size - 1, C]` or None → (`[B, n, C]`, new state)."""
        if state is None:
            state = self.initial_state(x.shape[0], x)
        padded = torch.cat([state, x], dim=1)
        new_state = padded[:, padded.shape[1] - self.context :]
        h = self._depthwise(padded)
        h = self.pointwise_out(F.gelu(self.pointwise_in(self.norm(h)), approximate="tanh"))
        return x + self.layer_scale * h, new_state


class LMCodecConvNeXtStack(nn.Module):
    """A sequence of causal ConvNeXt blocks; its state is the list of the blocks' states."""

    def __init__(self, num_layers: int, hidden_size: int, intermediate_size: int, kernel_size: int, eps: float):
        super().__init__()
        layer_scale = 1.0 / max(num_layers, 1)
        self.layers = nn.ModuleList(
            LMCodecConvNeXtBlock(hidden_size, intermediate_size, kernel_size, layer_scale, eps) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        """x: `[B, n, C]` → (`[B, n, C]`, new state)."""
        new_state = []
        for i, layer in enumerate(self.layers):
            x, s = layer(x, None if state is None else state[i])
            new_state.append(s)
        return x, new_state


def periodic_hann(length: int) -> torch.Tensor:
    """Periodic Hann window; copies shifted by `length // 2` sum to exactly one."""
    return torch.hann_window(length, periodic=True, dtype=torch.float32)


class ComputedBuffersMixin:
    """Modules whose non-persistent buffers (windows, filters) are computed, not learned.

    `from_pretrained` builds models with uninitialised memory and loads only saved tensors, so the model's
    `_init_weights` refills these buffers from `computed_buffers()`; the constructor registers them from it too.
    """

    def computed_buffers(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def register_computed_buffers(self) -> None:
        for name, value in self.computed_buffers().items():
            self.register_buffer(name, value, persistent=False)


class LMCodecSTFTFeatures(ComputedBuffersMixin, nn.Module):
    """Causal STFT analysis: waveform → per-STFT-frame features.

    STFT frame j covers samples `[hop * (j + 1) - window, hop * (j + 1))`, so it ends at the last sample it has seen.
    Features per frame: log magnitude and the power-law-compressed complex spectrum (real, imaginary),
    `3 * (window // 2 + 1)` values.
    State: the last `window - hop` samples, `[B, window - hop]`.
    """

    def __init__(self, window_length: int, hop_length: int):
        super().__init__()
        self.window_length = window_length
        self.hop_length = hop_length
        self.register_computed_buffers()

    def computed_buffers(self) -> dict[str, torch.Tensor]:
        return {"window": periodic_hann(self.window_length)}

    @property
    def num_features(self) -> int:
        return 3 * (self.window_length // 2 + 1)

    def forward(self, samples: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """samples: `[B, n * hop]` → (features `[B, n, 3 * (window // 2 + 1)]`, new state `[B, window - hop]`)."""
        context = self.window_length - self.hop_length
        if state is None:
            state = samples.new_zeros(samples.shape[0], context)
        padded = torch.cat([state, samples], dim=1)
        frames = padded.unfold(1, self.window_length, self.hop_length) * self.window
        spectrum = torch.fft.rfft(frames, dim=-1)
        magnitude = spectrum.abs()
        compressed = spectrum * (magnitude + 1e-5).pow(-0.7)
        features = torch.cat([torch.log(magnitude + 1e-5), compressed.real, compressed.imag], dim=-1)
        return features, padded[:, padded.shape[1] - context :]


class LMCodecISTFTHead(ComputedBuffersMixin, nn.Module):
    """Magnitude-and-phase head followed by a causal inverse STFT with overlap-add.

    `overlap = 2` (the original head): one spectrum per hidden step, synthesis frame j placed at output samples
    `[hop * j, hop * j + window)`, Hann synthesis window, 50% overlap-add, no normalisation (the spectra that
    reconstruct a signal exactly are those of its unwindowed segments). Samples `[hop * j, hop * (j + 1))` are final
    once frames j - 1 and j exist, so the head adds no delay. State: the pending second half of the last frame,
    `[B, hop]`.

    `overlap = 2 k` (k >= 2): each hidden step emits k spectra at a synthesis hop of `window / overlap` samples,
    synthesised with a Hann window and normalised by the overlap-added squared window (weighted overlap-add, as in
    Vocos): the spectra that reconstruct a signal exactly are those of its Hann-windowed segments, which leak far less
    than unwindowed ones, and every output sample is the average of `overlap` frames, so one frame's phase error no
    longer decides half of the output. Frames still only start at or after the samples they are emitted for, so
    the head adds no delay either. State: the pending `window - window / overlap` samples.

    `synthesis_window_length` > `window_length` (a longer synthesis window, e.g. 640 samples = 40 ms): frames keep
    their synthesis hop and their end, and reach `lookback = synthesis_window_length - window_length` samples further
    back (frame i covers `[synthesis_hop * i - lookback, synthesis_hop * i + window)`), so more frames overlap each
    sample and the spectra resolve harmonics more finely, at the price of an output delay: the samples this head
    emits run `lookback` samples behind (its first `lookback` samples lie before time 0, and the last `lookback`
    samples of a stream are still pending). `LMCodecDecoder.decode_offline` and the streaming decoder undo that.
    """

    NOISE_PHASE_FRAMES = 1024  # period of the pseudo-random phase table of `phase="noise"` (about 10 s at hop 160)

    def __init__(self, hidden_size: int, window_length: int, hop_length: int, max_log_magnitude: float = 6.0,
                 overlap: int = 2, phase: str = "predicted", synthesis_window_length: int | None = None):
        super().__init__()
        if overlap < 2 or overlap % 2 or window_length % overlap or window_length != 2 * hop_length:
            raise ValueError(f"overlap must be an even number >= 2 dividing window_length ({window_length}) with "
                             f"window_length = 2 * hop_length; got overlap={overlap}, hop_length={hop_length}.")
        synthesis_hop = window_length // overlap
        synthesis_window_length = window_length if synthesis_window_length is None else synthesis_window_length
        if synthesis_window_length < window_length or synthesis_window_length % synthesis_hop:
            raise ValueError(f"synthesis_window_length must be a multiple of the synthesis hop ({synthesis_hop}) and "
                             f">= window_length ({window_length}); got {synthesis_window_length}.")
        self.window_length = synthesis_window_length
        self.hop_length = hop_length
        self.synthesis_hop = synthesis_hop
        self.overlap = synthesis_window_length // synthesis_hop  # frames that overlap each output sample
        self.lookback = synthesis_window_length - window_length  # output delay in samples
        self.frames_per_step = overlap // 2
        self.num_bins = synthesis_window_length // 2 + 1
        self.max_log_magnitude = max_log_magnitude
        if phase not in ("predicted", "noise"):
            raise ValueError(f"phase must be 'predicted' or 'noise', got {phase!r}.")
        self.phase = phase
        self.projection = nn.Linear(hidden_size, 2 * self.num_bins * self.frames_per_step)
        self.register_computed_buffers()

    def computed_buffers(self) -> dict[str, torch.Tensor]:
        window = periodic_hann(self.window_length)
        if self.overlap > 2:  # weighted overlap-add: Hann^2 summed over `overlap` shifts is 3 * overlap / 8
            window = window / (3.0 * self.overlap / 8.0)
        buffers = {"window": window}
        if self.phase == "noise":  # fixed, so decoding is deterministic and streaming equals one-shot decoding
            generator = torch.Generator().manual_seed(0)
            buffers["noise_phase"] = (torch.rand(self.NOISE_PHASE_FRAMES, self.num_bins, generator=generator)
                                      * 2 - 1) * math.pi
        return buffers

    def noise_phases(self, first_frame: int, count: int) -> torch.Tensor:
        """The pseudo-random phases `[count, bins]` of synthesis frames first_frame, first_frame + 1, ..."""
        rows = torch.arange(first_frame, first_frame + count, device=self.noise_phase.device) % self.NOISE_PHASE_FRAMES
        return self.noise_phase[rows]

    def spectra(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden `[B, n, C]` → (log magnitude, phase), each `[B, n * frames_per_step, bins]`."""
        batch, steps, _ = hidden.shape
        log_magnitude, phase = self.projection(hidden).reshape(batch, steps * self.frames_per_step, 2 * self.num_bins
                                                               ).chunk(2, dim=-1)
        return log_magnitude.clamp(max=self.max_log_magnitude), phase

    def synthesize(self, spectrum: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex spectra `[B, m, bins]` → (samples `[B, m * synthesis_hop]`, new state): windowed overlap-add."""
        frames = torch.fft.irfft(spectrum, n=self.window_length, dim=-1) * self.window
        if self.overlap == 2:  # the original head (window = 2 * hop)
            heads, tails = frames[..., : self.hop_length], frames[..., self.hop_length :]
            if state is None:
                state = frames.new_zeros(frames.shape[0], self.hop_length)
            previous_tails = torch.cat([state.unsqueeze(1), tails[:, :-1]], dim=1)
            return (heads + previous_tails).flatten(1), tails[:, -1]
        batch, count, _ = frames.shape
        hop, overlap = self.synthesis_hop, self.overlap
        chunks = frames.new_zeros(batch, count + overlap - 1, hop)
        pieces = frames.reshape(batch, count, overlap, hop)
        for k in range(overlap):
            chunks[:, k : k + count] += pieces[:, :, k]
        if state is not None:
            chunks[:, : overlap - 1] += state.reshape(batch, overlap - 1, hop)
        return chunks[:, :count].flatten(1), chunks[:, count:].flatten(1)

    def forward(self, hidden: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """hidden: `[B, n, C]` → (samples `[B, n * hop]`, new state: (pending overlap-add samples, frames so far))."""
        log_magnitude, phase = self.spectra(hidden)
        pending, first_frame = (None, 0) if state is None else state
        if self.phase == "noise":  # the head synthesises filtered noise: only its magnitude is predicted
            phase = self.noise_phases(first_frame, phase.shape[1]).to(phase.dtype).expand_as(phase)
        samples, pending = self.synthesize(torch.polar(torch.exp(log_magnitude), phase), pending)
        return samples, (pending, first_frame + phase.shape[1])
