"""`benchmarks/diagnose_dnsmos.py --compare`: paired differences of two checkpoints' per-item scores."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO


def load_benchmark(name: str):
    """A script of benchmarks/ (a folder of scripts, not a package) as a module, loaded from its path and registered
    under its own name, which is how its siblings import it; sys.path is left alone."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


load_benchmark("diagnose_decoder")  # diagnose_dnsmos imports it by name
diagnose_dnsmos = load_benchmark("diagnose_dnsmos")


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
