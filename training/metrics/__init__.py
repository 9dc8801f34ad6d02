"""Evaluation metrics of LMCodec as `evaluate` modules that load offline from the installed package.

    import evaluate
    from lmcodec.training.metrics import metric_path

    stoi = evaluate.load(metric_path("stoi"))
    stoi.compute(predictions=[decoded], references=[original])   # 1-D float arrays at 16 kHz

Each metric is one script in this folder (`<name>.py`, an `evaluate.Metric`); the intrusive ones (pesq, stoi,
mel_distance, si_sdr) share `alignment.py`, which clips each prediction to [-1, 1] and undoes its integer delay
against the reference (+-2000 samples: amplitude envelopes, then waveform cross-correlation) before scoring. pesq, stoi and dnsmos need the `eval`
extra (`pip install 'lmcodec[eval]'`); mel_distance, si_sdr and bitrate need only numpy.
"""

from __future__ import annotations

from pathlib import Path

METRICS = ("pesq", "stoi", "dnsmos", "mel_distance", "si_sdr", "bitrate")

# The scores an evaluation reports, in table order: (key in results.json, label, higher is better).
SCORES = (
    ("pesq", "PESQ-WB", True),
    ("stoi", "STOI", True),
    ("dnsmos_ovrl", "DNSMOS OVRL", True),
    ("dnsmos_sig", "DNSMOS SIG", True),
    ("dnsmos_bak", "DNSMOS BAK", True),
    ("mel_distance", "mel distance", False),
    ("si_sdr", "SI-SDR (dB)", True),
)

_FOLDER = Path(__file__).resolve().parent


def metric_path(name: str) -> str:
    """The local path of metric `name` that `evaluate.load(...)` accepts (the metric's script in this folder)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}: available metrics are {', '.join(METRICS)}")
    return str(_FOLDER / f"{name}.py")


__all__ = ["METRICS", "SCORES", "metric_path"]
