"""Reconstruction losses of the codec: multi-scale log-mel L1, multi-resolution STFT and a phase-aware term.

Magnitude-only losses leave the phase untrained and the output "phasey"; the phase-aware term compares
power-law-compressed complex spectra, which penalises phase errors where there is energy.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank

from .codec_blocks import ComputedBuffersMixin

# (window length, hop, mel bands) of each resolution; 16 kHz speech.
RESOLUTIONS = ((256, 64, 32), (512, 128, 64), (1024, 256, 80))
COMPRESSION = 0.3  # exponent applied to magnitudes in the phase-aware term


def _stft(audio: torch.Tensor, window_length: int, hop_length: int, window: torch.Tensor) -> torch.Tensor:
    """audio `[B, T]` → complex spectrogram `[B, window_length // 2 + 1, frames]`."""
    return torch.stft(audio, window_length, hop_length, window=window, center=True, return_complex=True)


def _magnitude(spectrum: torch.Tensor) -> torch.Tensor:
    """|spectrum| with a floor, so its gradient and its logarithm stay finite at zero."""
    return (spectrum.real.pow(2) + spectrum.imag.pow(2) + 1e-10).sqrt()


class LMCodecReconstructionLoss(ComputedBuffersMixin, nn.Module):
    """Weighted sum of the three reconstruction losses between `[B, T]` waveforms; returns (total, parts)."""

    def __init__(self, sampling_rate: int, mel_weight: float, stft_weight: float, phase_weight: float):
        super().__init__()
        self.weights = {"mel": mel_weight, "stft": stft_weight, "phase": phase_weight}
        self.sampling_rate = sampling_rate
        self.register_computed_buffers()

    def computed_buffers(self) -> dict[str, torch.Tensor]:
        """Hann windows and mel filter banks of every resolution."""
        buffers = {}
        for window_length, _, bands in RESOLUTIONS:
            buffers[f"window_{window_length}"] = torch.hann_window(window_length)
            filters = mel_filter_bank(
                num_frequency_bins=window_length // 2 + 1,
                num_mel_filters=bands,
                min_frequency=0.0,
                max_frequency=self.sampling_rate / 2,
                sampling_rate=self.sampling_rate,
                norm="slaney",
                mel_scale="slaney",
            )
            buffers[f"mel_{window_length}"] = torch.tensor(filters, dtype=torch.float32)
        return buffers

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """prediction, target: `[B, T]` → (weighted total, {"mel", "stft", "phase"} unweighted parts)."""
        parts = {"mel": prediction.new_zeros(()), "stft": prediction.new_zeros(()), "phase": prediction.new_zeros(())}
        for window_length, hop_length, _ in RESOLUTIONS:
            window = getattr(self, f"window_{window_length}")
            predicted = _stft(prediction, window_length, hop_length, window)
            reference = _stft(target, window_length, hop_length, window)
            predicted_magnitude = _magnitude(predicted)
            reference_magnitude = _magnitude(reference)
            convergence = torch.linalg.vector_norm(reference_magnitude - predicted_magnitude, dim=(1, 2)) / (
                torch.linalg.vector_norm(reference_magnitude, dim=(1, 2)) + 1e-7
            )
            log_magnitude = (torch.log(reference_magnitude) - torch.log(predicted_magnitude)).abs().mean()
            parts["stft"] = parts["stft"] + convergence.mean() + log_magnitude
            predicted_compressed = predicted * predicted_magnitude.pow(COMPRESSION - 1.0)
            reference_compressed = reference * reference_magnitude.pow(COMPRESSION - 1.0)
            parts["phase"] = parts["phase"] + (predicted_compressed - reference_compressed).abs().mean()
            filters = getattr(self, f"mel_{window_length}")
            predicted_mel = torch.log(torch.einsum("bft,fm->bmt", predicted_magnitude.pow(2), filters) + 1e-5)
            reference_mel = torch.log(torch.einsum("bft,fm->bmt", reference_magnitude.pow(2), filters) + 1e-5)
            parts["mel"] = parts["mel"] + (predicted_mel - reference_mel).abs().mean()
        parts = {name: value / len(RESOLUTIONS) for name, value in parts.items()}
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, parts


def pitch_losses(f0: torch.Tensor, voicing_logit: torch.Tensor, target, frame_mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The harmonic head's f0 and voicing logit `[B, n]` against a YIN `PitchTrack` → (pitch loss, voicing loss).

    Pitch: mean |log2 f0 - log2 target| (octaves) over the reliable frames; voicing: binary cross-entropy against
    YIN's voiced flag over the frames that hold audio (`frame_mask` `[B, n]` > 0)."""
    valid = frame_mask > 0
    voiced = target.voiced
    weight = (target.reliable & valid).float()
    octaves = (torch.log2(f0) - torch.log2(target.f0.clamp(min=1.0))).abs()
    pitch = (octaves * weight).sum() / weight.sum().clamp(min=1.0)
    cross_entropy = nn.functional.binary_cross_entropy_with_logits(voicing_logit, voiced.float(), reduction="none")
    voicing = (cross_entropy * valid).sum() / valid.sum().clamp(min=1)
    return pitch, voicing
