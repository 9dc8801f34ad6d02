"""`benchmarks/diagnose_dnsmos.py --compare`: paired differences of two checkpoints' per-item scores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import diagnose_dnsmos  # noqa: E402


def scores(model: str, ovrl: list[float], files=("a.flac", "b.flac", "c.flac")) -> dict:
    return {"model": model, "items": len(ovrl), "files": list(files), "per_item": {"codec": {"ovrl": ovrl}}}


def test_paired_differences_are_item_by_item_with_standard_error_and_wins():
    baseline, candidate = scores("old", [2.0, 3.0, 2.5]), scores("new", [2.1, 3.3, 2.4])
    mean, error, wins, n = diagnose_dnsmos.paired_differences(baseline, candidate)["codec"]["ovrl"]
    assert mean == pytest.approx(0.1) and n == 3 and wins == 2
    assert error == pytest.approx(0.2 / 3**0.5)  # std (ddof 1) of (0.1, 0.3, -0.1) is 0.2


def test_scores_of_other_utterances_are_refused():
    with pytest.raises(SystemExit, match="different utterances"):
        diagnose_dnsmos.paired_differences(scores("old", [1, 2, 3]), scores("new", [1, 2, 3], files=("x", "y", "z")))
