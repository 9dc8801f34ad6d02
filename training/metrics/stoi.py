"""STOI (short-time objective intelligibility) of decoded speech against its reference, as an `evaluate` metric."""

import datasets
import evaluate
import numpy as np

from .alignment import MAX_LAG
from .alignment import SAMPLING_RATE
from .alignment import aligned_pairs
from .scoring import stoi

_CITATION = """\
@article{taal2011stoi,
  title   = {An Algorithm for Intelligibility Prediction of Time--Frequency Weighted Noisy Speech},
  author  = {Taal, Cees H. and Hendriks, Richard C. and Heusdens, Richard and Jensen, Jesper},
  journal = {IEEE Transactions on Audio, Speech, and Language Processing},
  volume  = {19},
  number  = {7},
  pages   = {2125--2136},
  year    = {2011}
}
@article{jensen2016estoi,
  title   = {An Algorithm for Predicting the Intelligibility of Speech Masked by Modulated Noise Maskers},
  author  = {Jensen, Jesper and Taal, Cees H.},
  journal = {IEEE/ACM Transactions on Audio, Speech, and Language Processing},
  volume  = {24},
  number  = {11},
  pages   = {2009--2022},
  year    = {2016}
}
"""

_DESCRIPTION = """\
STOI (Short-Time Objective Intelligibility) predicts how intelligible a degraded speech signal is, from the
correlation of short-time (384 ms) one-third-octave band envelopes of the degraded and the clean reference signal
after removing silent frames. It is computed with the `pystoi` package (which resamples to 10 kHz internally).
Scores lie in about [0, 1]; 1 means the envelopes match the reference exactly; higher is better. With
`extended=True` the extended STOI (ESTOI, Jensen & Taal 2016) is returned instead.

Before scoring, each prediction is clipped to [-1, 1] and time-aligned to its reference (integer lag within
+-max_lag samples, found on the amplitude envelopes and refined by FFT cross-correlation; both are then trimmed to their common length), so a codec's delay does
not count as distortion.
"""

_KWARGS_DESCRIPTION = """
Computes STOI (or ESTOI) of each prediction against its reference.
Args:
    predictions (`list` of 1-D float arrays): decoded (degraded) speech, 16 kHz, nominally in [-1, 1].
    references (`list` of 1-D float arrays): the matching clean speech, 16 kHz.
    sampling_rate (`int`, defaults to 16000): must be 16000.
    max_lag (`int`, defaults to 2000): largest delay (in samples, either direction) that alignment undoes; 0 turns
        alignment off.
    extended (`bool`, defaults to False): compute the extended STOI (ESTOI) instead.
Returns:
    stoi (`float`): mean STOI (or ESTOI) over the items, about 0 to 1.
    stoi_per_item (`list` of `float`): the score of each item, in input order.
    lags (`list` of `int`): samples each prediction was late (negative: early) and was shifted back by.
Examples:
    >>> import evaluate, numpy as np
    >>> from lmcodec.training.metrics import metric_path
    >>> stoi = evaluate.load(metric_path("stoi"))
    >>> t = np.arange(32000) / 16000
    >>> speech = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype("float32")
    >>> round(stoi.compute(predictions=[speech], references=[speech])["stoi"], 3)
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Stoi(evaluate.Metric):
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
            homepage="https://github.com/mpariente/pystoi",
            codebase_urls=["https://github.com/mpariente/pystoi"],
            reference_urls=["https://doi.org/10.1109/TASL.2011.2114881", "https://pypi.org/project/pystoi/"],
        )

    def _download_and_prepare(self, dl_manager):
        try:
            import pystoi  # noqa: F401  (imported here, not at the top, to give a clearer error than evaluate's)
        except ImportError:
            raise ImportError(
                "the stoi metric needs the package `pystoi`: pip install pystoi (or pip install 'lmcodec[eval]')"
            ) from None

    def _compute(self, predictions=None, references=None, sampling_rate=SAMPLING_RATE, max_lag=MAX_LAG,
                 extended=False):
        pairs = aligned_pairs(predictions, references, "stoi", sampling_rate, max_lag)
        scores = [stoi(prediction, reference, extended) for prediction, reference, _ in pairs]
        return {
            "stoi": float(np.mean(scores)),
            "stoi_per_item": scores,
            "lags": [lag for _, _, lag in pairs],
        }
