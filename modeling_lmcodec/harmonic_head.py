"""Harmonic branch of the decoder: a bank of sinusoids at multiples of a predicted f0, added to the iSTFT head.

The iSTFT head predicts a phase per frame and bin, and a model this small gets the phase of voiced speech wrong
(measured: near-random), which leaves it rough and "phasey". Here the phase of every harmonic is the running integral
of f0, so voiced speech comes out periodic and phase-coherent by construction (as in source-filter and DDSP
harmonic-plus-noise vocoders); the iSTFT head keeps the rest (noise, transients, whatever the harmonics miss).

Per decoder step j (one STFT hop of `hop` samples), from the decoder's hidden state:
- f0_j in [MIN_F0, MAX_F0] Hz (log scale), trained against YIN targets (`pitch.py`), not through the audio losses;
- voicing v_j in (0, 1), trained against YIN's voiced flag and the audio losses;
- a log-amplitude envelope over `num_bins` frequencies from 0 to the Nyquist frequency; harmonic k gets
  v_j * exp(envelope_j(k * f0_j)), zero at or above 0.95 * Nyquist.
Step j emits samples [hop * j, hop * (j + 1)): f0 and the amplitudes move linearly from step j - 1's values to step
j's across them, so the branch adds no delay. State: (f0 `[B]`, amplitudes `[B, K]`, phase `[B]` float64 in
[0, 2 pi)) at the end of the last step; a stream starts from silence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .pitch import MAX_F0, MIN_F0

MAX_LOG_AMPLITUDE = 0.0  # a harmonic's amplitude stays <= 1
INITIAL_LOG_AMPLITUDE = -7.0  # new heads start almost silent, so a trained iSTFT decoder keeps working when grafted


class LMCodecHarmonicHead(nn.Module):
    """hidden `[B, n, C]` → samples `[B, n * hop]` of `num_harmonics` sinusoids at multiples of a predicted f0."""

    def __init__(self, hidden_size: int, hop_length: int, num_harmonics: int, sampling_rate: int, num_bins: int):
        super().__init__()
        self.hop_length = hop_length
        self.num_harmonics = num_harmonics
        self.sampling_rate = sampling_rate
        self.num_bins = num_bins
        self.projection = nn.Linear(hidden_size, 2 + num_bins)  # f0, voicing, envelope

    def parameters_from(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """hidden `[B, n, C]` → (f0 Hz `[B, n]`, voicing logit `[B, n]`, log envelope `[B, n, num_bins]`)."""
        raw = self.projection(hidden).float()
        f0 = MIN_F0 * (MAX_F0 / MIN_F0) ** torch.sigmoid(raw[..., 0])
        envelope = (raw[..., 2:] + INITIAL_LOG_AMPLITUDE).clamp(max=MAX_LOG_AMPLITUDE)
        return f0, raw[..., 1], envelope

    def harmonic_amplitudes(self, f0: torch.Tensor, voicing_logit: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Amplitude of every harmonic `[B, n, K]`: the envelope read (linearly) at k * f0, times the voicing."""
        harmonics = torch.arange(1, self.num_harmonics + 1, device=f0.device, dtype=f0.dtype)
        frequencies = f0.detach().unsqueeze(-1) * harmonics  # [B, n, K] Hz
        position = (frequencies / (self.sampling_rate / 2) * (self.num_bins - 1)).clamp(max=self.num_bins - 1)
        lower = position.floor().long().clamp(max=self.num_bins - 2)
        fraction = position - lower
        below = envelope.gather(-1, lower)
        above = envelope.gather(-1, lower + 1)
        log_amplitude = below + fraction * (above - below)
        audible = frequencies < 0.95 * self.sampling_rate / 2
        return torch.sigmoid(voicing_logit).unsqueeze(-1) * log_amplitude.exp() * audible

    def synthesize(self, f0: torch.Tensor, amplitudes: torch.Tensor, state: tuple | None = None
                   ) -> tuple[torch.Tensor, tuple]:
        """f0 `[B, n]` Hz, amplitudes `[B, n, K]` → (samples `[B, n * hop]`, new state)."""
        batch, steps = f0.shape
        f0 = f0.detach()
        if state is None:
            previous_f0, previous_amplitudes = f0[:, 0], torch.zeros_like(amplitudes[:, 0])
            phase = torch.zeros(batch, dtype=torch.float64, device=f0.device)
        else:
            previous_f0, previous_amplitudes, phase = state
        f0_before = torch.cat([previous_f0.unsqueeze(1), f0[:, :-1]], dim=1)
        amplitudes_before = torch.cat([previous_amplitudes.unsqueeze(1), amplitudes[:, :-1]], dim=1)
        ramp = torch.arange(1, self.hop_length + 1, device=f0.device, dtype=f0.dtype) / self.hop_length
        f0_samples = f0_before.unsqueeze(-1) + (f0 - f0_before).unsqueeze(-1) * ramp  # [B, n, hop]
        within = torch.cumsum(f0_samples * (2 * math.pi / self.sampling_rate), dim=-1)  # phase advance in the step
        advance = within[..., -1].double()
        starts = torch.remainder(phase.unsqueeze(1) + torch.cumsum(advance, dim=1) - advance, 2 * math.pi)
        sample_phase = starts.float().unsqueeze(-1) + within  # [B, n, hop]
        harmonics = torch.arange(1, self.num_harmonics + 1, device=f0.device, dtype=f0.dtype)
        with torch.no_grad():  # f0 is detached: the sinusoids themselves need no gradient
            sines = (sample_phase.unsqueeze(-1) * harmonics).sin_()  # [B, n, hop, K]
        # sum_k (a_before_k + ramp * (a_k - a_before_k)) sin_k, as one batched matmul over the harmonics: the
        # [B, n, hop, K] amplitude ramp is never materialised
        weights = torch.stack([amplitudes_before, amplitudes - amplitudes_before], dim=-1)  # [B, n, K, 2]
        parts = torch.matmul(sines, weights)  # [B, n, hop, 2]
        samples = parts[..., 0] + ramp * parts[..., 1]
        end_phase = torch.remainder(starts[:, -1] + advance[:, -1], 2 * math.pi)
        return samples.flatten(1), (f0[:, -1], amplitudes[:, -1], end_phase)

    def forward(self, hidden: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """hidden `[B, n, C]` → (samples `[B, n * hop]`, new state)."""
        f0, voicing_logit, envelope = self.parameters_from(hidden)
        return self.synthesize(f0, self.harmonic_amplitudes(f0, voicing_logit, envelope), state)
