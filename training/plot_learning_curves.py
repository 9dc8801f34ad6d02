"""Plot the dev learning curves of a codec run from its `eval_log.jsonl` (and the training loss from `train_log.jsonl`).

    python training/plot_learning_curves.py outputs/default-cpu-v2 [--out curves.png] [--table]

One panel per metric (STOI, PESQ-WB, mel distance; higher, higher, lower is better), one line per number of RVQ
levels (3, 12, unquantized); a fourth panel shows the training losses. Several runs can be given to compare them.
`--table` also prints the evaluations as a Markdown table. Needs matplotlib (the `eval` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = (("stoi", "STOI (higher is better)"), ("pesq", "PESQ-WB (higher is better)"),
           ("mel", "mel distance (lower is better)"))


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_step = {record["step"]: record for record in records}  # a resumed run may repeat steps: keep the last
    return [by_step[step] for step in sorted(by_step)]


def levels_of(records: list[dict]) -> list[str]:
    found = {key.split("_q", 1)[1] for record in records for key in record if key.startswith("stoi_q")}
    return sorted(found, key=lambda level: (not level.isdigit(), int(level) if level.isdigit() else 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="output folders of train_codec.py runs (holding eval_log.jsonl)")
    parser.add_argument("--out", default=None, help="image file (default: RUN/learning_curves.png of the first run)")
    parser.add_argument("--table", action="store_true", help="also print the evaluations as a Markdown table")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    styles = {"3": "-", "12": "--", "latent": ":"}
    for number, run in enumerate(map(Path, args.runs)):
        records = read_jsonl(run / "eval_log.jsonl")
        color = f"C{number}"
        for (metric, title), axis in zip(METRICS, axes, strict=False):
            for level in levels_of(records):
                points = [(r["step"], r[f"{metric}_q{level}"]) for r in records if f"{metric}_q{level}" in r]
                if points:
                    label = f"{run.name} " + ("unquantized" if level == "latent" else f"{level} levels")
                    axis.plot(*zip(*points), styles.get(level, "-."), color=color, marker=".", label=label)
            axis.set_title(title)
            axis.set_xlabel("step")
            axis.grid(alpha=0.3)
        training = read_jsonl(run / "train_log.jsonl")
        for key, style in (("train/reconstruction_loss", "-"), ("train/feature_matching_loss", "--")):
            points = [(r["step"], r[key]) for r in training if key in r]
            if points:
                axes[3].plot(*zip(*points), style, color=color, label=f"{run.name} {key.split('/')[1]}")
        if args.table and records:
            levels = levels_of(records)
            columns = [f"{m}_q{level}" for level in levels for m, _ in METRICS]
            print(f"\n{run}\n\n| step | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
            for r in records:
                print(f"| {r['step']} | " + " | ".join(f"{r[c]:.3f}" if c in r else "" for c in columns) + " |")
    axes[3].set_title("training losses")
    axes[3].set_xlabel("step")
    axes[3].grid(alpha=0.3)
    for axis in axes:
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.tight_layout()
    out = Path(args.out) if args.out else Path(args.runs[0]) / "learning_curves.png"
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
