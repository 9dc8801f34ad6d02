"""Bitrate (kbps) of coded files from their byte sizes and the duration of the audio they hold."""

import math

import datasets
import evaluate

_CITATION = """\
@inproceedings{jenrungrot2023lmcodec,
  title     = {{LMCodec}: A Low Bitrate Speech Codec With Causal Transformer Models},
  author    = {Jenrungrot, Teerapat and Chinen, Michael and Kleijn, W. Bastiaan and Skoglund, Jan and
               Borsos, Zal{\\'a}n and Zeghidour, Neil and Tagliasacchi, Marco},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  year      = {2023}
}
"""

_DESCRIPTION = """\
Bitrate: how many kilobits per second of audio a codec spends, measured honestly from whole coded files (or
streams), headers and packet overhead included: kbps = total bytes x 8 / total duration in seconds / 1000, summed
over all items (so long files weigh more than short ones, as in a real transmission). Per-item bitrates are
returned too. Lower is cheaper; read it beside a quality metric.
"""

_KWARGS_DESCRIPTION = """
Computes the bitrate of coded files.
Args:
    num_bytes (`list` of `int`): the size in bytes of each coded file or stream (everything sent: header included).
    durations (`list` of `float`): the duration in seconds of the audio each one decodes to (samples / 16000).
Returns:
    kbps (`float`): total bytes x 8 / total duration / 1000.
    kbps_per_item (`list` of `float`): bytes x 8 / duration / 1000 of each item (NaN for a zero duration).
    total_bytes (`int`): the sum of num_bytes.
    total_seconds (`float`): the sum of durations.
Examples:
    >>> import evaluate
    >>> from lmcodec.training.metrics import metric_path
    >>> bitrate = evaluate.load(metric_path("bitrate"))
    >>> bitrate.compute(num_bytes=[1250, 250], durations=[10.0, 2.0])["kbps"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bitrate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "num_bytes": datasets.Value("int64"),
                    "durations": datasets.Value("float64"),
                }
            ),
            homepage="https://arxiv.org/abs/2303.12984",
            reference_urls=["https://arxiv.org/abs/2303.12984"],
        )

    def _compute(self, num_bytes=None, durations=None):
        if num_bytes is None or durations is None:
            raise ValueError("bitrate needs num_bytes (ints) and durations (seconds), one of each per coded file")
        if len(num_bytes) == 0:
            raise ValueError("bitrate got no items to measure")
        for index, (size, seconds) in enumerate(zip(num_bytes, durations)):
            if size is None or seconds is None or size < 0 or not seconds >= 0 or math.isinf(seconds):
                raise ValueError(
                    f"bitrate, item {index}: num_bytes must be >= 0 and duration a finite number of seconds >= 0, "
                    f"got {size} bytes and {seconds} s"
                )
        total_bytes = int(sum(int(size) for size in num_bytes))
        total_seconds = float(sum(float(seconds) for seconds in durations))
        if total_seconds <= 0:
            raise ValueError(f"bitrate needs a positive total duration, got {total_seconds} s")
        return {
            "kbps": total_bytes * 8 / total_seconds / 1000,
            "kbps_per_item": [
                int(size) * 8 / float(seconds) / 1000 if seconds > 0 else math.nan
                for size, seconds in zip(num_bytes, durations)
            ],
            "total_bytes": total_bytes,
            "total_seconds": total_seconds,
        }
