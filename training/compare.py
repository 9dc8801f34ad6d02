"""Paired differences between two evaluations of the same speech: is a new checkpoint better than the old one?

    lmcodec compare NEW OLD [--systems all] [--out comparison.md]

NEW and OLD are `lmcodec evaluate` output folders (or their results.json). Every system both evaluations ran is
compared utterance by utterance (matched by name, so the two runs may list them in different orders): NEW minus
OLD, mean ± standard error (utterances where NEW is better / utterances compared), in bold when the mean is more
than two standard errors from zero over at least 10 utterances (`report.MIN_SIGNIFICANT_PAIRS`: on a handful the
standard error itself is too uncertain to call anything significant). Per-utterance pairing removes the spread
between utterances, which is what makes differences of a few hundredths of a DNSMOS point measurable on 50 utterances. By default only LMCodec's own
rows are compared (the reference codecs and the original do not change between checkpoints).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmcodec.errors import LMCodecError

from .args import accept_underscore_spellings
from .metrics import SCORES as METRICS
from .report import (LABELS, MIN_SIGNIFICANT_PAIRS, SIGNIFICANCE_RULE, check_results, kbps_cell, paired_cell,
                     paired_difference)

COMPARED_KINDS = ("lmcodec", "ablation")  # the rows a checkpoint changes; --systems all adds the rest
COMPARED_METRICS = tuple(key for key, _, _ in METRICS)


def load_evaluation(path: str) -> dict:
    """An evaluation's results.json, from its output folder or the file itself, schema-checked; returns
    {"names": [utterance names], "position": {name: index}, "seconds": [per utterance], "systems": [rows],
    "path": str}."""
    file = Path(path)
    if file.is_dir():
        file = file / "results.json"
    if not file.is_file():
        raise LMCodecError(f"{path}: no results.json there; give an `lmcodec evaluate --out` folder or its "
                           "results.json.")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise LMCodecError(f"{file} is not valid JSON ({error}); re-run the evaluation or give its results.json.") \
            from None
    names = [utterance["name"] for utterance in check_results(results, str(file)).get("utterances", [])]
    if not names:
        raise LMCodecError(f"{file} names no utterances, so its scores cannot be paired; re-run `lmcodec evaluate`.")
    if len(set(names)) != len(names):
        raise LMCodecError(f"{file}: utterance names repeat, so utterances cannot be paired by name; give "
                           "evaluations of uniquely named utterances.")
    seconds = [utterance.get("seconds") for utterance in results["utterances"]]
    return {"names": names, "position": {name: index for index, name in enumerate(names)}, "seconds": seconds,
            "systems": results["systems"], "path": str(file)}


def at_common(values: list | None, results: dict, common: list[str]) -> list:
    """`values` (one per utterance of `results`; the list may be short, or None) at the `common` utterances, None
    where a value is missing."""
    values = values or []
    indices = (results["position"][name] for name in common)
    return [values[index] if index < len(values) else None for index in indices]


def aligned(row: dict, results: dict, common: list[str]) -> dict:
    """`row` of `results` with each per-utterance list reordered to the `common` utterances."""
    return {**row, "per_item": {key: at_common(values, results, common) for key, values in row["per_item"].items()}}


def kbps_on(row: dict, results: dict, common: list[str]) -> str:
    """The row's kbps over the `common` utterances (all bits over all their audio, from the per-utterance rates and
    durations), so two evaluations of different subsets compare the same speech; the row's own cell when the
    per-utterance figures are missing (nominal rates)."""
    rates = at_common(row.get("kbps_per_item"), results, common)
    seconds = at_common(results["seconds"], results, common)
    if not all(isinstance(value, (int, float)) for value in rates + seconds):
        return kbps_cell(row)
    total = sum(seconds)
    return kbps_cell({**row, "kbps": sum(rate * duration for rate, duration in zip(rates, seconds)) / total
                      if total else None})


def compare(new: dict, old: dict, kinds: tuple[str, ...] | None = COMPARED_KINDS) -> dict:
    """Paired NEW − OLD per system both ran (of `kinds`; None for all).

    Returns {"common": [utterance names], "only_new": int, "only_old": int, "systems_only_new": [names],
    "systems_only_old": [names], "metrics": [keys both scored], "rows": [{"name", "kbps_new", "kbps_old" (cells, over
    the common utterances),
    "differences": {metric: (mean, standard error, better, count) or None}}]}."""
    old_names = set(old["names"])
    common = [name for name in new["names"] if name in old_names]
    if not common:
        raise LMCodecError(f"{new['path']} and {old['path']} share no utterance; compare evaluations of the same "
                           "speech.")

    def chosen(results: dict) -> dict[str, dict]:
        return {row["name"]: row for row in results["systems"] if kinds is None or row["kind"] in kinds}

    new_rows, old_rows = chosen(new), chosen(old)
    shared = [name for name in new_rows if name in old_rows]
    if not shared:
        what = "system" if kinds is None else "LMCodec system"
        hint = "" if kinds is None else " (--systems all adds the original and the reference codecs)"
        raise LMCodecError(f"{new['path']} and {old['path']} share no {what} by name (NEW: "
                           f"{', '.join(new_rows) or 'none'}; OLD: {', '.join(old_rows) or 'none'}); compare "
                           f"evaluations of the same operating points{hint}.")
    metrics = [key for key in COMPARED_METRICS
               if any(new_rows[name]["per_item"].get(key) and old_rows[name]["per_item"].get(key) for name in shared)]
    if not metrics:
        raise LMCodecError(f"{new['path']} and {old['path']} share no metric for the same system; re-run "
                           "`lmcodec evaluate` with the same --metrics.")
    rows = []
    for name in shared:
        mine, theirs = aligned(new_rows[name], new, common), aligned(old_rows[name], old, common)
        rows.append({"name": name, "kbps_new": kbps_on(new_rows[name], new, common),
                     "kbps_old": kbps_on(old_rows[name], old, common),
                     "differences": {key: paired_difference(mine, theirs, key) for key in metrics}})
    return {"common": common, "only_new": len(new["names"]) - len(common),
            "only_old": len(old["names"]) - len(common), "metrics": metrics, "rows": rows,
            "systems_only_new": [name for name in new_rows if name not in old_rows],
            "systems_only_old": [name for name in old_rows if name not in new_rows]}


def utterances(count: int) -> str:
    return f"{count} utterance{'s' if count != 1 else ''}"


def markdown(comparison: dict, new_path: str, old_path: str) -> str:
    """The comparison as a Markdown table, with a header saying what was paired and what was left out."""
    keys = comparison["metrics"]
    lines = [f"NEW = {new_path}", f"OLD = {old_path}", "",
             f"Per utterance, NEW minus OLD on the {utterances(len(comparison['common']))} both scored: mean ± "
             f"standard error (utterances where NEW is better / utterances compared); {SIGNIFICANCE_RULE}. Positive is "
             "better, except for mel distance (lower is better)."]
    if len(comparison["common"]) < MIN_SIGNIFICANT_PAIRS:
        lines.append(f"Too few utterances to call any difference significant: compare on at least "
                     f"{MIN_SIGNIFICANT_PAIRS} (the test set's 50 for a decision).")
    if comparison["only_new"] or comparison["only_old"]:
        lines.append(f"Left out: {utterances(comparison['only_new'])} only NEW scored, "
                     f"{utterances(comparison['only_old'])} only OLD scored.")
    for side in ("new", "old"):
        if comparison[f"systems_only_{side}"]:
            lines.append(f"Only in {side.upper()}, not compared: {', '.join(comparison[f'systems_only_{side}'])}.")
    header = ["system", "kbps NEW / OLD (these utterances)", *(LABELS[key] for key in keys)]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in comparison["rows"]:
        cells = [paired_cell(row["differences"][key], key, extra_digits=1) for key in keys]
        lines.append(f"| {row['name']} | {row['kbps_new']} / {row['kbps_old']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    """`lmcodec compare`: print the table, and write it to --out when given."""
    from lmcodec.processing.files import write_bytes_atomically

    new, old = load_evaluation(args.new), load_evaluation(args.old)
    kinds = None if args.systems == "all" else COMPARED_KINDS
    text = markdown(compare(new, old, kinds), new["path"], old["path"])
    if args.out:
        write_bytes_atomically(args.out, text.encode("utf-8"))  # one-line LMCodecError when it cannot
    sys.stdout.write(text)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `lmcodec compare`."""
    add = parser.add_argument
    add("new", metavar="NEW", help="the evaluation to judge: an `lmcodec evaluate --out` folder or its results.json")
    add("old", metavar="OLD", help="the evaluation to compare it with (same speech), e.g. the default checkpoint's "
                                   "results.json beside its weights")
    add("--systems", choices=("lmcodec", "all"), default="lmcodec",
        help="lmcodec: LMCodec's rows and ablations (default); all: the original and reference codecs too")
    add("--out", metavar="FILE", help="also write the table to FILE (Markdown)")
    parser.set_defaults(handler=run)
    return accept_underscore_spellings(parser)


def main(argv: list[str] | None = None) -> int:
    """`python -m lmcodec.training.compare NEW OLD`: the same as `lmcodec compare NEW OLD`."""
    from lmcodec.console import run_subcommand_module

    return run_subcommand_module(add_arguments, "lmcodec compare", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
