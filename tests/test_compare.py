"""`lmcodec compare NEW OLD`: paired differences between two evaluations, utterances matched by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmcodec.cli import main


def row(name: str, kind: str, kbps: float | None, **per_item: list | None) -> dict:
    return {"name": name, "kind": kind, "kbps": kbps, "metrics": {}, "per_item": per_item}


def write_results(folder, names: list[str], systems: list[dict], seconds: list[float] | None = None) -> str:
    folder.mkdir()
    utterances = [{"name": name, **({"seconds": seconds[index]} if seconds else {})} for index, name in enumerate(names)]
    (folder / "results.json").write_text(json.dumps({"metadata": {}, "utterances": utterances, "systems": systems}))
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
        row("LMCodec Nc=3", "lmcodec", 1.05, stoi=[0.95, 0.85, 0.78, 0.1], dnsmos_ovrl=[3.1, 2.2, 2.6, 1.0]),
        # a list shorter than the utterances (utterance b, e unscored) and a metric with no scores at all
        row("LMCodec Nc=3, greedy fine codes", "ablation", 1.05, stoi=[0.95, 0.7], dnsmos_ovrl=None),
        row("Codec2 1300", "reference", 1.40, stoi=[0.6, 0.6, 0.6, 0.6]),
    ])
    return new, old


def table_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for cells in
            ([cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| "))}


def test_pairs_utterances_by_name_and_compares_lmcodec_rows(evaluations, tmp_path, capsys):
    new, old = evaluations
    out = tmp_path / "comparison.md"
    assert main(["compare", new, old + "/results.json", "--out", str(out)]) == 0  # a folder or the file itself
    text = capsys.readouterr().out
    assert out.read_text() == text
    rows = table_rows(text)
    assert rows["system"] == ["kbps NEW / OLD (these utterances)", "STOI", "DNSMOS OVRL"]
    assert set(rows) == {"system", "LMCodec Nc=3", "LMCodec Nc=3, greedy fine codes"}  # no reference, no original
    # a, b, c: NEW 0.85, 0.78, 0.95 against OLD 0.80, 0.70, 0.90 (utterances d and e are not paired)
    stoi = np.array([0.05, 0.08, 0.05])
    error = stoi.std(ddof=1) / np.sqrt(3)
    # six standard errors from zero, but on 3 utterances: not bold (see the test of the minimum count below)
    assert rows["LMCodec Nc=3"][:2] == ["1.050 / 1.100", f"+{stoi.mean():.4f} ± {error:.4f} (3/3)"]
    ovrl = np.array([2.2 - 2.0, 2.6 - 2.5, 3.1 - 3.0])
    assert rows["LMCodec Nc=3"][2] == f"+{ovrl.mean():.3f} ± {ovrl.std(ddof=1) / np.sqrt(3):.3f} (3/3)"
    assert "Too few utterances to call any difference significant: compare on at least 10" in text
    # greedy: NEW scored c (0.95) and a (0.7) only, against OLD 0.8 and 0.8: +0.15 and -0.1
    greedy = np.array([0.15, -0.1])
    assert rows["LMCodec Nc=3, greedy fine codes"] == [
        "1.050 / 1.100", f"+{greedy.mean():.4f} ± {greedy.std(ddof=1) / np.sqrt(2):.4f} (1/2)", "—"]
    assert "on the 3 utterances both scored" in text and "Left out: 1 utterance only NEW scored, 1 utterance only OLD" in text
    assert "Only in OLD, not compared: Only in OLD." in text


@pytest.mark.parametrize("count, bold", [(2, False), (9, False), (10, True), (50, True)])
def test_a_difference_is_called_significant_only_on_at_least_ten_utterances(tmp_path, capsys, count, bold):
    """The same clear gain (every utterance better, mean about 14 standard errors from zero) is bold from 10 paired
    utterances on, and never on fewer, where the standard error itself is too uncertain."""
    names = [f"u{index}" for index in range(count)]
    gains = 0.05 + 0.01 * (np.arange(count) % 2)
    old_scores = [0.7] * count
    new = write_results(tmp_path / "new", names, [row("LMCodec Nc=3", "lmcodec", 1.0,
                                                      stoi=[0.7 + gain for gain in gains])])
    old = write_results(tmp_path / "old", names, [row("LMCodec Nc=3", "lmcodec", 1.0, stoi=old_scores)])
    assert main(["compare", new, old]) == 0
    text = capsys.readouterr().out
    cell = table_rows(text)["LMCodec Nc=3"][1]
    assert cell.startswith("**+") == bold and cell.endswith(f"({count}/{count})"), cell
    assert ("Too few utterances" in text) == (count < 10)
    assert "more than two standard errors from zero over at least 10 utterances" in text


def test_all_systems_adds_the_reference_codecs(evaluations, capsys):
    assert main(["compare", *evaluations, "--systems", "all"]) == 0
    assert {"Original", "Codec2 1300"} <= set(table_rows(capsys.readouterr().out))


def test_nominal_kbps_is_marked_as_in_the_report(tmp_path, capsys):
    levels = {**row("LMCodec, all 12 levels", "ablation", 6.0, stoi=[0.9, 0.8]), "kbps_source": "nominal: raw codes"}
    new = write_results(tmp_path / "new", ["a", "b"], [levels])
    old = write_results(tmp_path / "old", ["a", "b"], [levels])
    assert main(["compare", new, old]) == 0
    assert table_rows(capsys.readouterr().out)["LMCodec, all 12 levels"][0] == "6.000 (nominal) / 6.000 (nominal)"


def test_kbps_is_taken_over_the_utterances_both_scored(tmp_path, capsys):
    """A run on a subset is compared with the same subset's rate, not with the whole other run's."""
    def sent(rates):
        return {**row("LMCodec Nc=3", "lmcodec", None, stoi=[0.8] * len(rates)), "kbps_per_item": rates}

    whole = write_results(tmp_path / "whole", ["a", "b", "c"], [{**sent([1.0, 2.0, 3.0]), "kbps": 2.5}],
                          seconds=[1.0, 1.0, 2.0])
    subset = write_results(tmp_path / "subset", ["b", "a"], [{**sent([2.0, 1.0]), "kbps": 1.5}], seconds=[1.0, 1.0])
    assert main(["compare", subset, whole]) == 0
    assert table_rows(capsys.readouterr().out)["LMCodec Nc=3"][0] == "1.500 / 1.500"  # not 1.500 / 2.500


def lmcodec_rows(**per_item) -> list[dict]:
    return [row("LMCodec Nc=3", "lmcodec", 1.0, **per_item)]


@pytest.mark.parametrize("make_bad, message", [
    (lambda tmp: str(tmp / "nowhere"), "no results.json there"),
    (lambda tmp: (tmp / "broken.json").write_text("{") and str(tmp / "broken.json"), "is not valid JSON"),
    (lambda tmp: (tmp / "list.json").write_text("[]") and str(tmp / "list.json"), "is not a results.json written by"),
    (lambda tmp: write_results(tmp / "no-per-item", ["a", "b"], [{"name": "LMCodec Nc=3", "kind": "lmcodec",
                                                                  "kbps": 1.0, "metrics": {}}]),
     "is not a results.json written by"),
    (lambda tmp: write_results(tmp / "per-item-list", ["a", "b"], [{**row("LMCodec Nc=3", "lmcodec", 1.0),
                                                                    "per_item": [0.5, 0.5]}]),
     "is not a results.json written by"),
    (lambda tmp: write_results(tmp / "text-kbps", ["a", "b"], [row("LMCodec Nc=3", "lmcodec", "1.0", stoi=[0.5])]),
     "is not a results.json written by"),
    (lambda tmp: write_results(tmp / "no-names", [], lmcodec_rows(stoi=[0.5])), "names no utterances"),
    (lambda tmp: write_results(tmp / "other", ["x", "y"], lmcodec_rows(stoi=[0.5, 0.5])), "share no utterance"),
    (lambda tmp: write_results(tmp / "twice", ["a", "a"], lmcodec_rows(stoi=[0.5, 0.5])), "utterance names repeat"),
    (lambda tmp: write_results(tmp / "codec2", ["a", "b"], [row("Codec2 1300", "reference", 1.4, stoi=[0.6, 0.6])]),
     "share no LMCodec system by name (NEW: LMCodec Nc=3, LMCodec Nc=3, greedy fine codes; OLD: none); compare "
     "evaluations of the same operating points (--systems all adds"),
    (lambda tmp: write_results(tmp / "pesq-only", ["a", "b"], lmcodec_rows(pesq=[1.5, 1.6])), "share no metric"),
])
def test_bad_input_is_a_one_line_error(evaluations, tmp_path, capsys, make_bad, message):
    new, _ = evaluations
    assert main(["compare", new, make_bad(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_no_shared_system_with_all_systems_does_not_suggest_all_systems(evaluations, tmp_path, capsys):
    new, _ = evaluations
    other = write_results(tmp_path / "other", ["a", "b"], [row("Opus 6 kbps", "reference", 6.9, stoi=[0.9, 0.9])])
    assert main(["compare", new, other, "--systems", "all"]) == 2
    error = capsys.readouterr().err
    assert "share no system by name" in error and "--systems all" not in error


def test_unwritable_out_is_a_one_line_error_and_prints_nothing(evaluations, tmp_path, capsys):
    assert main(["compare", *evaluations, "--out", str(tmp_path / "missing-folder" / "comparison.md")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("lmcodec: error: ") and captured.err.count("\n") == 1
