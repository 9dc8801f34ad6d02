"""`lmcodec compare NEW OLD`: paired differences between two evaluations, utterances matched by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmcodec.cli import main


def row(name: str, kind: str, kbps: float | None, **per_item: list) -> dict:
    return {"name": name, "kind": kind, "kbps": kbps, "per_item": per_item}


def write_results(folder, names: list[str], systems: list[dict]) -> str:
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({
        "metadata": {}, "utterances": [{"name": name} for name in names], "systems": systems}))
    return str(folder)


@pytest.fixture
def evaluations(tmp_path):
    """OLD scored utterances a, b, c, d; NEW scored c, a, b, e (another order, one different utterance)."""
    old = write_results(tmp_path / "old", ["a", "b", "c", "d"], [
        row("Original", "original", None, stoi=[1.0] * 4),
        row("LMCodec Nc=3", "lmcodec", 1.10, stoi=[0.80, 0.70, 0.90, 0.5], dnsmos_ovrl=[2.0, 2.5, 3.0, 2.2]),
        row("LMCodec Nc=3, greedy fine codes", "ablation", 1.10, stoi=[0.8, 0.8, 0.8, 0.8]),
        row("Codec2 1300", "reference", 1.40, stoi=[0.6, 0.6, 0.6, 0.6]),
        row("Only in OLD", "lmcodec", 1.0, stoi=[0.5] * 4),
    ])
    new = write_results(tmp_path / "new", ["c", "a", "b", "e"], [
        row("Original", "original", None, stoi=[1.0] * 4),
        row("LMCodec Nc=3", "lmcodec", 1.05, stoi=[0.95, 0.85, 0.70, 0.1], dnsmos_ovrl=[3.1, 2.2, 2.6, 1.0]),
        row("LMCodec Nc=3, greedy fine codes", "ablation", 1.05, stoi=[0.8, 0.8, None, 0.8]),
        row("Codec2 1300", "reference", 1.40, stoi=[0.6, 0.6, 0.6, 0.6]),
    ])
    return new, old


def table_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for cells in
            ([cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| "))}


def test_pairs_utterances_by_name_and_compares_lmcodec_rows(evaluations, tmp_path, capsys):
    new, old = evaluations
    out = tmp_path / "comparison.md"
    assert main(["compare", new, old, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text() == text
    rows = table_rows(text)
    assert rows["system"] == ["kbps NEW / OLD", "STOI", "DNSMOS OVRL"]
    assert set(rows) == {"system", "LMCodec Nc=3", "LMCodec Nc=3, greedy fine codes"}  # no reference, no original
    # a, b, c: NEW 0.85, 0.70, 0.95 against OLD 0.80, 0.70, 0.90 (utterance e and d are not paired)
    stoi = np.array([0.05, 0.0, 0.05])
    error = stoi.std(ddof=1) / np.sqrt(3)
    assert rows["LMCodec Nc=3"][:2] == ["1.050 / 1.100", f"+{stoi.mean():.4f} ± {error:.4f} (2/3)"]  # exactly two errors: not bold
    ovrl = np.array([2.2 - 2.0, 2.6 - 2.5, 3.1 - 3.0])
    assert rows["LMCodec Nc=3"][2] == f"**+{ovrl.mean():.3f} ± {ovrl.std(ddof=1) / np.sqrt(3):.3f}** (3/3)"
    assert rows["LMCodec Nc=3, greedy fine codes"][1] == "+0.0000 ± 0.0000 (0/2)"  # utterance b not scored by NEW
    assert "on the 3 utterances both scored" in text and "Left out: 1 utterances only NEW scored, 1 only OLD" in text


def test_all_systems_adds_the_reference_codecs(evaluations, capsys):
    assert main(["compare", *evaluations, "--systems", "all"]) == 0
    assert {"Original", "Codec2 1300"} <= set(table_rows(capsys.readouterr().out))


@pytest.mark.parametrize("make_bad, message", [
    (lambda tmp: str(tmp / "nowhere"), "no results.json there"),
    (lambda tmp: (tmp / "broken.json").write_text("{") and str(tmp / "broken.json"), "not an `lmcodec evaluate` results.json"),
    (lambda tmp: write_results(tmp / "other", ["x", "y"], [row("LMCodec Nc=3", "lmcodec", 1.0, stoi=[0.5, 0.5])]),
     "share no utterance"),
    (lambda tmp: write_results(tmp / "twice", ["a", "a"], [row("LMCodec Nc=3", "lmcodec", 1.0, stoi=[0.5, 0.5])]),
     "utterance names repeat"),
    (lambda tmp: write_results(tmp / "codec2", ["a", "b"], [row("Codec2 1300", "reference", 1.4, stoi=[0.6, 0.6])]),
     "share no LMCodec system"),
])
def test_bad_input_is_a_one_line_error(evaluations, tmp_path, capsys, make_bad, message):
    new, _ = evaluations
    assert main(["compare", new, make_bad(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1
