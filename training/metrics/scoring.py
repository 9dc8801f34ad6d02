"""The per-utterance scores, defined once: used by the `evaluate` metric scripts of this folder (after they align
each prediction to its reference), by the dev evaluation during training and by `lmcodec evaluate`.

Every function takes 1-D 16 kHz float arrays of equal length, prediction first, and clips the prediction to [-1, 1].
Imported by the metric scripts as `from .scoring import ...` (`evaluate.load` copies it beside them).
"""

from __future__ import annotations

import numpy as np
from transformers.audio_utils import mel_filter_bank

from .alignment import SAMPLING_RATE

# Analysis settings (16 kHz): 64 ms Hann window, 16 ms hop, 80 mel bands over 0-8 kHz.
N_FFT = 1024
WINDOW_LENGTH = 1024
HOP_LENGTH = 256
NUM_MELS = 80
MIN_FREQUENCY = 0.0
MAX_FREQUENCY = 8000.0
FLOOR = 1e-5


_FILTERS = None


def _filters() -> np.ndarray:
    """The [N_FFT // 2 + 1, NUM_MELS] mel filter bank (built once)."""
    global _FILTERS
    if _FILTERS is None:
        _FILTERS = mel_filter_bank(
            num_frequency_bins=N_FFT // 2 + 1,
            num_mel_filters=NUM_MELS,
            min_frequency=MIN_FREQUENCY,
            max_frequency=MAX_FREQUENCY,
            sampling_rate=SAMPLING_RATE,
            norm="slaney",
            mel_scale="slaney",
        )
    return _FILTERS


def log_mel(audio: np.ndarray) -> np.ndarray:
    """log10 of the floored mel magnitude spectrogram of a 1-D 16 kHz signal: [frames, NUM_MELS]."""
    audio = np.asarray(audio, dtype=np.float64)
    pad = N_FFT // 2
    mode = "reflect" if audio.size > pad else "constant"
    padded = np.pad(audio, pad, mode=mode)
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    window = np.hanning(WINDOW_LENGTH + 1)[:-1]  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, n=N_FFT, axis=-1))
    return np.log10(np.maximum(magnitude @ _filters(), FLOOR))


def mel_distance(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Mean |log10 mel(prediction) - log10 mel(reference)| of two equal-length 1-D 16 kHz signals (0 = identical)."""
    return float(np.mean(np.abs(log_mel(np.clip(prediction, -1, 1)) - log_mel(reference))))


def stoi(prediction: np.ndarray, reference: np.ndarray, extended: bool = False) -> float:
    """STOI (Taal et al. 2011; pystoi), 0..1, higher is better."""
    from pystoi import stoi as pystoi

    return float(pystoi(np.asarray(reference), np.clip(prediction, -1, 1), SAMPLING_RATE, extended=bool(extended)))


def pesq_wb(prediction: np.ndarray, reference: np.ndarray) -> float:
    """PESQ wide-band (ITU-T P.862.2) MOS-LQO, 1.04..4.64; raises what the pesq package raises for input it cannot
    score (silence, too short)."""
    from pesq import pesq

    return float(pesq(SAMPLING_RATE, np.asarray(reference, dtype=np.float32),
                      np.clip(prediction, -1, 1).astype(np.float32), "wb"))
