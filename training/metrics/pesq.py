"""PESQ (ITU-T P.862.2 wideband) of decoded speech against its reference, as an `evaluate` metric."""

import math

import datasets
import evaluate
import numpy as np

from .alignment import MAX_LAG
from .alignment import SAMPLING_RATE
from .alignment import aligned_pairs
from .scoring import pesq_wb

_CITATION = """\
@inproceedings{rix2001pesq,
  title     = {Perceptual evaluation of speech quality ({PESQ}) -- a new method for speech quality assessment of
               telephone networks and codecs},
  author    = {Rix, Antony W. and Beerends, John G. and Hollier, Michael P. and Hekstra, Andries P.},
  booktitle = {IEEE International Conference on Acoustics, Speech, and Signal Processing (ICASSP)},
  pages     = {749--752},
  year      = {2001}
}
@misc{itu2007p8622,
  title        = {{ITU-T} Recommendation {P.862.2}: Wideband extension to Recommendation {P.862} for the
                  assessment of wideband telephone networks and speech codecs},
  author       = {{ITU-T}},
  year         = {2007}
}
"""

_DESCRIPTION = """\
PESQ (Perceptual Evaluation of Speech Quality) predicts the mean opinion score a listening test would give a
degraded speech signal compared with its clean reference. This module computes the wideband version
(ITU-T P.862.2, mode "wb", 16 kHz) with the `pesq` package (C code of the ITU reference implementation). Scores
(MOS-LQO) range from about 1.04 (bad) to 4.64 (identical to the reference); higher is better.

Before scoring, each prediction is clipped to [-1, 1] and time-aligned to its reference (integer lag within
+-max_lag samples, found on the amplitude envelopes and refined by FFT cross-correlation; both are then trimmed to their common length), so a codec's delay does
not count as distortion. PESQ itself normalizes levels, so the overall gain does not matter.
"""

_KWARGS_DESCRIPTION = """
Computes wideband PESQ of each prediction against its reference.
Args:
    predictions (`list` of 1-D float arrays): decoded (degraded) speech, 16 kHz, nominally in [-1, 1].
    references (`list` of 1-D float arrays): the matching clean speech, 16 kHz.
    sampling_rate (`int`, defaults to 16000): must be 16000.
    max_lag (`int`, defaults to 2000): largest delay (in samples, either direction) that alignment undoes; 0 turns
        alignment off.
    on_error (`str`, defaults to "raise"): what to do when PESQ cannot score an item (for example no speech was
        detected in it): "raise" a ValueError naming the item, or "nan" to score it NaN and leave it out of the mean.
Returns:
    pesq (`float`): mean wideband PESQ (MOS-LQO, about 1.04 to 4.64) over the scored items.
    pesq_per_item (`list` of `float`): the score of each item, in input order.
    lags (`list` of `int`): samples each prediction was late (negative: early) and was shifted back by.
Examples:
    >>> import evaluate, numpy as np
    >>> from lmcodec.training.metrics import metric_path
    >>> pesq = evaluate.load(metric_path("pesq"))
    >>> t = np.arange(32000) / 16000
    >>> speech = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype("float32")
    >>> round(pesq.compute(predictions=[speech], references=[speech])["pesq"], 1)
    4.6
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Pesq(evaluate.Metric):
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
            homepage="https://www.itu.int/rec/T-REC-P.862.2",
            codebase_urls=["https://github.com/ludlows/PESQ"],
            reference_urls=["https://www.itu.int/rec/T-REC-P.862", "https://pypi.org/project/pesq/"],
        )

    def _download_and_prepare(self, dl_manager):
        try:
            import pesq  # noqa: F401  (imported here, not at the top, to give a clearer error than evaluate's)
        except ImportError:
            raise ImportError(
                "the pesq metric needs the package `pesq`: pip install pesq (or pip install 'lmcodec[eval]')"
            ) from None

    def _compute(self, predictions=None, references=None, sampling_rate=SAMPLING_RATE, max_lag=MAX_LAG,
                 on_error="raise"):
        if on_error not in ("raise", "nan"):
            raise ValueError(f'on_error must be "raise" or "nan", got {on_error!r}')
        pairs = aligned_pairs(predictions, references, "pesq", sampling_rate, max_lag)
        scores = []
        for index, (prediction, reference, _) in enumerate(pairs):
            try:
                score = pesq_wb(prediction, reference)
            except Exception as error:  # the pesq package raises its own error types (NoUtterancesError, ...)
                if on_error == "raise":
                    raise ValueError(
                        f"pesq could not score item {index} ({len(reference) / SAMPLING_RATE:.2f} s after "
                        f"alignment): {type(error).__name__}: {error}; pass on_error='nan' to skip such items"
                    ) from None
                score = math.nan
            scores.append(score)
        valid = [score for score in scores if not math.isnan(score)]
        return {
            "pesq": float(np.mean(valid)) if valid else math.nan,
            "pesq_per_item": scores,
            "lags": [lag for _, _, lag in pairs],
        }
