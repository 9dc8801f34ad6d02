"""Pitch (f0) targets for the harmonic decoder head: a batched YIN estimator in torch.

YIN (de Cheveigné and Kawahara, JASA 2002): the cumulative-mean-normalised difference function d'(tau) of each
frame; the first local minimum of d' below a threshold is the period, refined by parabolic interpolation. Frames
with no such minimum, or too quiet to matter, are unvoiced. Used only in training, on the clean input, so it needs no
extra dependency and runs on whatever device the batch is on.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .frames import SAMPLING_RATE

MIN_F0 = 50.0  # Hz; the harmonic head's f0 range, also YIN's search range
MAX_F0 = 550.0
RELIABLE_THRESHOLD = 0.15  # a dip of d' below this gives an f0 target (few octave errors)
VOICED_THRESHOLD = 0.35  # a dip below this marks the frame voiced (recall closer to pYIN's on real speech)
QUIET_DB = 35.0  # frames this far below the crop's loud frames (95th percentile RMS) are unvoiced


class PitchTrack(NamedTuple):
    """YIN's result per frame, each `[B, n]`: f0 in Hz (0 where unvoiced), `voiced` (a dip of d' below
    VOICED_THRESHOLD in an audible frame) and `reliable` (voiced with a dip below RELIABLE_THRESHOLD: f0 targets)."""

    f0: torch.Tensor
    voiced: torch.Tensor
    reliable: torch.Tensor


def yin_pitch(samples: torch.Tensor, frame_centers: torch.Tensor, sampling_rate: int = SAMPLING_RATE) -> PitchTrack:
    """samples `[B, T]`, frame_centers `[n]` (sample indices) → `PitchTrack` of `[B, n]` tensors.

    Each frame takes `integration + max_lag` samples around its centre (zero outside the signal). The period is the
    first local minimum of d' below RELIABLE_THRESHOLD if there is one, else the first below VOICED_THRESHOLD."""
    samples = samples.float()
    max_lag = int(sampling_rate / MIN_F0) + 1
    min_lag = int(sampling_rate / MAX_F0)
    integration = max_lag + max_lag // 2  # window of the difference function: >= 1.5 periods of the lowest f0
    length = integration + max_lag
    half = length // 2
    padded = torch.nn.functional.pad(samples, (half, half + 1))
    offsets = torch.arange(length, device=samples.device)
    frames = padded[:, frame_centers.long().unsqueeze(-1) + offsets]  # [B, n, length]

    # d(tau) = E(0) + E(tau) - 2 r(tau), with r(tau) = sum_t x[t] x[t + tau] over the integration window.
    size = 1 << (length - 1).bit_length()
    head = torch.fft.rfft(frames[..., :integration], n=size)
    whole = torch.fft.rfft(frames, n=size)
    correlation = torch.fft.irfft(head.conj() * whole, n=size)[..., : max_lag + 1]
    energy = torch.nn.functional.pad(frames.pow(2).cumsum(-1), (1, 0))
    lags = torch.arange(max_lag + 1, device=samples.device)
    window_energy = energy[..., lags + integration] - energy[..., lags]  # E(tau), [B, n, max_lag + 1]
    difference = (window_energy[..., :1] + window_energy - 2 * correlation).clamp(min=0)
    cumulative = difference[..., 1:].cumsum(-1)
    normalised = torch.ones_like(difference)
    normalised[..., 1:] = difference[..., 1:] * lags[1:] / cumulative.clamp(min=1e-12)

    inner = normalised[..., 1:-1]
    local_minimum = (inner <= normalised[..., :-2]) & (inner <= normalised[..., 2:])
    local_minimum[..., : min_lag - 1] = False
    strict = local_minimum & (inner < RELIABLE_THRESHOLD)
    loose = local_minimum & (inner < VOICED_THRESHOLD)
    reliable, found = strict.any(-1), loose.any(-1)
    lag = torch.where(reliable, strict.float().argmax(-1), loose.float().argmax(-1)) + 1  # index into `normalised`
    left = normalised.gather(-1, (lag - 1).unsqueeze(-1)).squeeze(-1)
    centre = normalised.gather(-1, lag.unsqueeze(-1)).squeeze(-1)
    right = normalised.gather(-1, (lag + 1).clamp(max=max_lag).unsqueeze(-1)).squeeze(-1)
    curvature = left - 2 * centre + right
    shift = torch.where(curvature > 1e-9, 0.5 * (left - right) / curvature.clamp(min=1e-9), torch.zeros_like(centre))
    period = lag.float() + shift.clamp(-0.5, 0.5)

    rms = frames[..., half - integration // 2: half + integration // 2].pow(2).mean(-1).sqrt()
    loud = torch.quantile(rms, 0.95, dim=-1, keepdim=True)
    audible = rms > loud * 10 ** (-QUIET_DB / 20) + 1e-6
    voiced = found & audible
    f0 = torch.where(voiced, sampling_rate / period, torch.zeros_like(period))
    return PitchTrack(f0, voiced, reliable & audible)
