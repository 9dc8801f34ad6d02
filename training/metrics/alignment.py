"""Shared input handling of the intrusive metrics (pesq, stoi, mel_distance, si_sdr).

Every intrusive metric scores a prediction (decoded audio) against its reference only after this module has
1. checked the sampling rate (16 kHz only) and made both 1-D float64 arrays,
2. clipped the prediction to [-1, 1] (what a 16-bit file or a sound card would do to it),
3. found the integer lag of the prediction behind its reference, within +-`max_lag` samples (first on their
   amplitude envelopes, which a vocoder's phase does not move, then refined on the waveform; `estimate_lag`),
   shifted the prediction by it and trimmed both to the common length,
so a codec's algorithmic delay (or a resampler's) is not counted as distortion.

The metric scripts import it as `from .alignment import ...`: `evaluate.load` copies a relative import next to
the script it loads, so this works both from the installed package and from a copied `metrics` folder.
"""

from __future__ import annotations

import numpy as np

from lmcodec.frames import SAMPLING_RATE  # noqa: E402 (the codec's rate; metric scripts load from the package)
MAX_LAG = 2000  # samples: 125 ms at 16 kHz


def check_sampling_rate(sampling_rate: int, metric: str) -> None:
    """Raise a one-line error unless `sampling_rate` is 16000."""
    if int(sampling_rate) != SAMPLING_RATE:
        raise ValueError(
            f"{metric} scores 16 kHz audio only, got sampling_rate={sampling_rate}: resample first "
            f"(lmcodec.load_audio(path) returns 16 kHz mono)"
        )


def as_signal(audio, what: str = "audio") -> np.ndarray:
    """A 1-D float64 copy of `audio` (list, numpy array or torch tensor; a [1, T] or [T, 1] array is squeezed)."""
    if hasattr(audio, "detach"):  # torch tensor, without importing torch
        audio = audio.detach().cpu().numpy()
    signal = np.asarray(audio, dtype=np.float64)
    if signal.ndim == 2 and 1 in signal.shape:
        signal = signal.reshape(-1)
    if signal.ndim != 1:
        raise ValueError(f"{what} must be one mono 1-D signal, got an array of shape {signal.shape}")
    if signal.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(signal)):
        raise ValueError(f"{what} contains NaN or infinite samples")
    return signal


ENVELOPE_HOP = 16  # samples (1 ms): resolution of the coarse, phase-insensitive lag search
ENVELOPE_SMOOTHING = 10  # hops averaged (10 ms), enough to blur pitch pulses, which a vocoder's phase moves


def cross_correlation(prediction: np.ndarray, reference: np.ndarray, max_lag: int) -> np.ndarray:
    """c[k] = sum_n prediction[n + k] * reference[n] for k = -max_lag..max_lag (one zero-padded FFT)."""
    size = prediction.size + reference.size - 1
    n_fft = 1 << (size - 1).bit_length()
    correlation = np.fft.irfft(np.fft.rfft(prediction, n_fft) * np.conj(np.fft.rfft(reference, n_fft)), n_fft)
    # lags -max_lag..-1 sit at the end of the circular result, 0..max_lag at the start
    return np.concatenate([correlation[n_fft - max_lag:], correlation[: max_lag + 1]])


def envelope(signal: np.ndarray) -> np.ndarray:
    """RMS per `ENVELOPE_HOP` samples, smoothed over `ENVELOPE_SMOOTHING` hops, mean removed."""
    frames = signal[: signal.size // ENVELOPE_HOP * ENVELOPE_HOP].reshape(-1, ENVELOPE_HOP)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    smoothed = np.convolve(rms, np.ones(ENVELOPE_SMOOTHING) / ENVELOPE_SMOOTHING, mode="same")
    return smoothed - smoothed.mean()


def estimate_lag(prediction: np.ndarray, reference: np.ndarray, max_lag: int = MAX_LAG) -> int:
    """How many samples `prediction` is late relative to `reference` (negative: early), within +-max_lag.

    Two steps, so that a codec that changes the phase (a vocoder, a neural decoder) is not shifted by a pitch
    period: the lag of the best cross-correlation of the two amplitude envelopes (1 ms resolution, insensitive to
    phase), then the waveform cross-correlation's best lag within two envelope hops of it (exact for codecs that
    keep the waveform). Returns 0 when the correlation is nowhere positive (silence, or nothing in common).
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    max_lag = int(max(0, min(max_lag, prediction.size - 1, reference.size - 1)))
    if max_lag == 0:
        return 0
    coarse = 0
    frames = max_lag // ENVELOPE_HOP
    if frames > 0 and min(prediction.size, reference.size) >= 4 * ENVELOPE_HOP * ENVELOPE_SMOOTHING:
        predicted, referenced = envelope(prediction), envelope(reference)
        frames = min(frames, predicted.size - 1, referenced.size - 1)
        window = cross_correlation(predicted, referenced, frames)
        best = int(np.argmax(window))
        if window[best] > 0:
            coarse = (best - frames) * ENVELOPE_HOP
    window = cross_correlation(prediction, reference, max_lag)
    low, high = max(-max_lag, coarse - 2 * ENVELOPE_HOP), min(max_lag, coarse + 2 * ENVELOPE_HOP)
    near = window[low + max_lag : high + max_lag + 1]
    best = int(np.argmax(near))
    return low + best if near[best] > 0 else coarse


def align(prediction, reference, max_lag: int = MAX_LAG, clip: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip `prediction` to [-1, 1], undo its lag behind `reference` and trim both to their common length.

    Returns (prediction, reference, lag) with two float64 arrays of equal length; `lag` > 0 means the prediction
    was that many samples late.
    """
    prediction = as_signal(prediction, "prediction")
    reference = as_signal(reference, "reference")
    if clip:
        prediction = np.clip(prediction, -1.0, 1.0)
    lag = estimate_lag(prediction, reference, max_lag) if max_lag else 0
    if lag > 0:
        prediction = prediction[lag:]
    elif lag < 0:
        reference = reference[-lag:]
    length = min(prediction.size, reference.size)
    return prediction[:length], reference[:length], lag


def aligned_pairs(predictions, references, metric: str, sampling_rate: int = SAMPLING_RATE,
                  max_lag: int = MAX_LAG) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """`align` applied to every (prediction, reference) pair, after checking the rate and the counts."""
    check_sampling_rate(sampling_rate, metric)
    if predictions is None or references is None:
        raise ValueError(f"{metric} needs both predictions and references (lists of 1-D 16 kHz signals)")
    if len(predictions) != len(references):
        raise ValueError(f"{metric} got {len(predictions)} predictions but {len(references)} references")
    if len(predictions) == 0:
        raise ValueError(f"{metric} got no predictions to score")
    pairs = []
    for index, (prediction, reference) in enumerate(zip(predictions, references)):
        try:
            pairs.append(align(prediction, reference, max_lag=max_lag))
        except ValueError as error:
            raise ValueError(f"{metric}, item {index}: {error}") from None
    return pairs
