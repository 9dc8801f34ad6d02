"""Log-mel L1 distance between decoded audio and its reference, as an `evaluate` metric."""

import datasets
import evaluate
import numpy as np

from .alignment import MAX_LAG
from .alignment import SAMPLING_RATE
from .alignment import aligned_pairs
from .scoring import mel_distance

_CITATION = """\
@inproceedings{kumar2023dac,
  title     = {High-Fidelity Audio Compression with Improved {RVQGAN}},
  author    = {Kumar, Rithesh and Seetharaman, Prem and Luebs, Alejandro and Kumar, Ishaan and Kumar, Kundan},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2023}
}
"""

_DESCRIPTION = """\
Mel distance: the mean absolute difference between the log-mel spectrograms of a prediction and its reference,
a common objective measure of neural audio codecs (lower is better, 0 for identical signals). It compares
spectral envelopes and ignores phase, so it suits generative low-bitrate codecs better than waveform metrics.

Analysis (16 kHz): periodic Hann window of 1024 samples (64 ms), hop 256 samples (16 ms), 1024-point FFT,
frames centred (reflect padding of 512 samples at both ends); magnitude spectrum |STFT|; 80 mel bands from 0 to
8000 Hz (Slaney mel scale, Slaney area-normalized triangles, as librosa's default filter bank); each mel value is
floored at 1e-5 and its base-10 logarithm taken. The distance is the mean of |log10 M_pred - log10 M_ref| over
all bands and frames, per item; the result is the mean over items. A distance of 1.0 means the mel magnitudes
differ by a factor of 10 on average.

Before scoring, each prediction is clipped to [-1, 1] and time-aligned to its reference (integer lag within
+-max_lag samples, found on the amplitude envelopes and refined by FFT cross-correlation; both are then trimmed to their common length), so a codec's delay does
not count as distortion.
"""

_KWARGS_DESCRIPTION = """
Computes the log-mel L1 distance of each prediction to its reference.
Args:
    predictions (`list` of 1-D float arrays): decoded audio, 16 kHz, nominally in [-1, 1].
    references (`list` of 1-D float arrays): the matching reference audio, 16 kHz.
    sampling_rate (`int`, defaults to 16000): must be 16000.
    max_lag (`int`, defaults to 2000): largest delay (in samples, either direction) that alignment undoes; 0 turns
        alignment off.
Returns:
    mel_distance (`float`): mean log10-mel L1 distance over the items (0 = identical; lower is better).
    mel_distance_per_item (`list` of `float`): the distance of each item, in input order.
    lags (`list` of `int`): samples each prediction was late (negative: early) and was shifted back by.
Examples:
    >>> import evaluate, numpy as np
    >>> from lmcodec.training.metrics import metric_path
    >>> mel_distance = evaluate.load(metric_path("mel_distance"))
    >>> reference = 0.5 * np.sin(np.arange(16000) / 10.0)
    >>> mel_distance.compute(predictions=[reference], references=[reference])["mel_distance"]
    0.0
"""

@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MelDistance(evaluate.Metric):
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
            homepage="https://arxiv.org/abs/2306.06546",
            reference_urls=["https://arxiv.org/abs/2306.06546"],
        )

    def _compute(self, predictions=None, references=None, sampling_rate=SAMPLING_RATE, max_lag=MAX_LAG):
        pairs = aligned_pairs(predictions, references, "mel_distance", sampling_rate, max_lag)
        scores = [mel_distance(prediction, reference) for prediction, reference, _ in pairs]
        return {
            "mel_distance": float(np.mean(scores)),
            "mel_distance_per_item": scores,
            "lags": [lag for _, _, lag in pairs],
        }
