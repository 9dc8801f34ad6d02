"""Scale-invariant signal-to-distortion ratio (SI-SDR, dB) of decoded audio against its reference."""

import datasets
import evaluate
import numpy as np

from .alignment import MAX_LAG
from .alignment import SAMPLING_RATE
from .alignment import aligned_pairs

_CITATION = """\
@inproceedings{leroux2019sdr,
  title     = {{SDR} -- Half-baked or Well Done?},
  author    = {Le Roux, Jonathan and Wisdom, Scott and Erdogan, Hakan and Hershey, John R.},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages     = {626--630},
  year      = {2019}
}
"""

_DESCRIPTION = """\
SI-SDR (scale-invariant signal-to-distortion ratio, Le Roux et al. 2019) measures, in dB, how much of a predicted
waveform is the reference (optimally scaled) versus everything else. Both signals are made zero-mean, the reference
s is scaled by alpha = <p, s> / <s, s> to best match the prediction p, and
SI-SDR = 10 log10((|alpha s|^2 + eps) / (|p - alpha s|^2 + eps)), eps = 2.2e-16 (float64 machine epsilon), so an
exact copy scores a large finite number (about 10 log10(|s|^2 / eps), typically > 150 dB) instead of infinity.
Higher is better. It is a waveform metric: a low-bitrate generative codec that keeps how speech sounds but not its
phase can score low (even below 0 dB) while sounding good; read it with PESQ, STOI and the mel distance.

Before scoring, each prediction is clipped to [-1, 1] and time-aligned to its reference (integer lag within
+-max_lag samples, found on the amplitude envelopes and refined by FFT cross-correlation; both are then trimmed to their common length), so a codec's delay does
not count as distortion.
"""

_KWARGS_DESCRIPTION = """
Computes SI-SDR (dB) of each prediction against its reference.
Args:
    predictions (`list` of 1-D float arrays): decoded audio, 16 kHz, nominally in [-1, 1].
    references (`list` of 1-D float arrays): the matching reference audio, 16 kHz.
    sampling_rate (`int`, defaults to 16000): must be 16000.
    max_lag (`int`, defaults to 2000): largest delay (in samples, either direction) that alignment undoes; 0 turns
        alignment off.
Returns:
    si_sdr (`float`): mean SI-SDR in dB over the items.
    si_sdr_per_item (`list` of `float`): the SI-SDR of each item in dB, in input order.
    lags (`list` of `int`): samples each prediction was late (negative: early) and was shifted back by.
Examples:
    >>> import evaluate, numpy as np
    >>> from lmcodec.training.metrics import metric_path
    >>> si_sdr = evaluate.load(metric_path("si_sdr"))
    >>> reference = np.sin(np.arange(16000) / 10.0) * 0.5
    >>> noise = 0.05 * np.cos(np.arange(16000) / 3.0)
    >>> round(si_sdr.compute(predictions=[reference + noise], references=[reference])["si_sdr"])
    20
"""


def si_sdr(prediction: np.ndarray, reference: np.ndarray) -> float:
    """SI-SDR in dB of two equal-length 1-D signals (zero-mean first; eps keeps an exact copy finite)."""
    eps = np.finfo(np.float64).eps
    prediction = np.asarray(prediction, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    prediction = prediction - prediction.mean()
    reference = reference - reference.mean()
    alpha = np.dot(prediction, reference) / (np.dot(reference, reference) + eps)
    target = alpha * reference
    distortion = prediction - target
    return float(10.0 * np.log10((np.dot(target, target) + eps) / (np.dot(distortion, distortion) + eps)))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SiSdr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("float32")),
                }
            ),
            homepage="https://arxiv.org/abs/1811.02508",
            reference_urls=["https://arxiv.org/abs/1811.02508"],
        )

    def _compute(self, predictions=None, references=None, sampling_rate=SAMPLING_RATE, max_lag=MAX_LAG):
        pairs = aligned_pairs(predictions, references, "si_sdr", sampling_rate, max_lag)
        scores = [si_sdr(prediction, reference) for prediction, reference, _ in pairs]
        return {
            "si_sdr": float(np.mean(scores)),
            "si_sdr_per_item": scores,
            "lags": [lag for _, _, lag in pairs],
        }
