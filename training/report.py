"""The evaluation report, rendered from `results.json`: report.md, the plots and a static listening page.

    python -m lmcodec.training.report OUT_DIR   # re-render report.md, report.html and plots/ from results.json

Everything is drawn from `results.json` and the decoded audio files beside it (`audio/<utterance>/<system>.wav`),
so the report can be re-rendered without running the evaluation again. The HTML page is static and self-contained:
inline CSS, relative links to the audio files and plots, no scripts or network resources.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

import numpy as np

from lmcodec.errors import LMCodecError

from lmcodec.frames import SAMPLING_RATE

from .metrics import SCORES as METRICS

PLOTS = "plots"
TABLE_METRICS = ("pesq", "stoi", "dnsmos_ovrl", "mel_distance", "si_sdr")
DIGITS = {"kbps": 3, "pesq": 2, "stoi": 3, "dnsmos_ovrl": 2, "dnsmos_sig": 2, "dnsmos_bak": 2, "mel_distance": 3,
          "si_sdr": 1, "rtf": 3}
LABELS = {key: label for key, label, _ in METRICS}
HIGHER_IS_BETTER = {key: higher for key, _, higher in METRICS}
KIND_STYLE = {  # how each kind of system is drawn in the quality plots
    "lmcodec": dict(color="#1f5fbf", marker="o", linestyle="-", label="LMCodec (operating points)"),
    "sample": dict(color="#8a4fbf", marker="D", linestyle=":", label="LMCodec, sampled fine codes"),
    "greedy": dict(color="#bf4f8a", marker="v", linestyle=":", label="LMCodec, greedy fine codes"),
    "expected": dict(color="#4fa0bf", marker="P", linestyle=":", label="LMCodec, expected fine vectors"),
    "coarse-only": dict(color="#7aa6e0", marker="o", linestyle="--", label="coarse levels only (no fine LM)"),
    "all-levels": dict(color="#1f5fbf", marker="*", markersize=11, linestyle="none", label="all levels (upper bound)"),
    "codec2": dict(color="#d9731a", marker="s", linestyle="none", label="Codec2"),
    "opus": dict(color="#3a9a4a", marker="^", linestyle="none", label="Opus (Ogg overhead included)"),
}


# ---------------------------------------------------------------------------------------------------- results.json
def check_results(results, source: str) -> dict:
    """`results` (a parsed results.json of `lmcodec evaluate`) if it has the schema every reader here relies on:
    metadata, a non-empty systems list whose rows have a name, a kind, metrics, a kbps (number or None) and per_item
    (metric → list of scores or None), and utterances with names when present; else a one-line `LMCodecError`
    naming `source`."""

    def row_ok(row) -> bool:
        return (isinstance(row, dict) and isinstance(row.get("name"), str) and isinstance(row.get("kind"), str)
                and isinstance(row.get("metrics"), dict) and isinstance(row.get("per_item"), dict)
                and all(values is None or isinstance(values, list) for values in row["per_item"].values())
                and (row.get("kbps") is None or isinstance(row["kbps"], (int, float))))

    systems = results.get("systems") if isinstance(results, dict) else None
    utterances = results.get("utterances", []) if isinstance(results, dict) else None
    if (not isinstance(results, dict) or not isinstance(results.get("metadata"), dict) or not isinstance(systems, list)
            or not systems or not all(row_ok(row) for row in systems) or not isinstance(utterances, list)
            or not all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in utterances)):
        raise LMCodecError(f"{source} is not a results.json written by `lmcodec evaluate` (it needs metadata, a "
                           "non-empty systems list with name, kind, kbps, metrics and per_item in every row, and named "
                           "utterances); re-run the evaluation or give its results.json.")
    return results


# ---------------------------------------------------------------------------------------------------- numbers
def number(value, key: str) -> str:
    """A table cell: the value rounded for its column, or an em dash when there is none."""
    return "—" if value is None else f"{value:.{DIGITS.get(key, 3)}f}"


def kbps_cell(row: dict) -> str:
    """The measured kbps, or the nominal one marked as such (the all-levels upper bound sends no file)."""
    nominal = (row.get("kbps_source") or "").startswith("nominal")
    return number(row["kbps"], "kbps") + (" (nominal)" if nominal and row["kbps"] is not None else "")


def plot_group(row: dict) -> str | None:
    """Which line or marker style of the quality plots a results row belongs to (None: not plotted)."""
    if row["kind"] == "lmcodec":
        return "lmcodec"
    if row["kind"] == "ablation":
        for group in ("coarse-only", "sample", "greedy", "expected", "all-levels"):
            if row["slug"].endswith(group):
                return group
        raise ValueError(f"no plot style for the ablation {row['slug']!r}")
    if row["kind"] == "reference":
        return row["slug"].split("-")[0]
    return None


def table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the results table: system, kbps, the main metrics, RTF."""
    header = ["system", "kbps", "kbps without entropy coding", *(LABELS[key] for key in TABLE_METRICS), "RTF"]
    rows = []
    for row in results["systems"]:
        cells = [row["name"], kbps_cell(row), number(row.get("kbps_without_entropy_coding"), "kbps")]
        cells += [number(row["metrics"].get(key), key) for key in TABLE_METRICS]
        rows.append(cells + [number(row["rtf"], "rtf")])
    return header, rows


def markdown_table(results: dict) -> str:
    header, rows = table_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


PAIRED_METRICS = ("pesq", "stoi", "dnsmos_ovrl")
PAIRED_RATE_RATIO = 1.5  # a reference codec is compared with an LMCodec row when it spends at most 1.5x its kbps
# Below this many paired utterances the standard error is itself too uncertain (on 2 utterances it rests on one degree
# of freedom), so no difference is called significant, whatever its size.
MIN_SIGNIFICANT_PAIRS = 10
SIGNIFICANCE_RULE = (f"in bold when the mean is more than two standard errors from zero over at least "
                     f"{MIN_SIGNIFICANT_PAIRS} utterances")
PAIRED_NOTE = (f"Per utterance, LMCodec minus each reference codec spending at most {PAIRED_RATE_RATIO:g}x its kbps: "
               f"mean ± standard error (utterances where LMCodec is better / utterances scored); {SIGNIFICANCE_RULE}. "
               "Positive is better for LMCodec.")


def paired_difference(system: dict, reference: dict, key: str,
                      higher_is_better: bool | None = None) -> tuple[float, float | None, int, int] | None:
    """(mean of system − reference over the utterances both scored, its standard error, how many utterances the
    system is better on, how many were compared), or None when none were. `higher_is_better` defaults to the
    metric's direction in METRICS (needed for keys outside it)."""
    pairs = [(mine, theirs) for mine, theirs in zip(system["per_item"].get(key) or [], reference["per_item"].get(key) or [])
             if mine is not None and theirs is not None]
    if not pairs:
        return None
    differences = np.array([mine - theirs for mine, theirs in pairs])
    error = float(differences.std(ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else None
    if higher_is_better is None:
        higher_is_better = HIGHER_IS_BETTER[key]
    better = int((differences > 0).sum() if higher_is_better else (differences < 0).sum())
    return float(differences.mean()), error, better, len(differences)


def significant(difference: tuple | None) -> bool:
    """Whether a `paired_difference` is called significant: its mean more than two standard errors from zero, over at
    least `MIN_SIGNIFICANT_PAIRS` utterances."""
    if difference is None:
        return False
    mean_difference, error, _, count = difference
    return count >= MIN_SIGNIFICANT_PAIRS and error is not None and abs(mean_difference) > 2 * error


def paired_cell(difference: tuple | None, key: str, extra_digits: int = 0) -> str:
    """"+0.013 ± 0.017 (25/50)"; in bold when `significant`. `extra_digits` beyond the metric's table precision suit
    the small differences between two checkpoints."""
    if difference is None:
        return "—"
    mean_difference, error, better, count = difference
    digits = DIGITS.get(key, 3) + extra_digits
    text = f"{mean_difference:+.{digits}f}" + (f" ± {error:.{digits}f}" if error is not None else "")
    return (f"**{text}**" if significant(difference) else text) + f" ({better}/{count})"


def rate_matched_pairs(results: dict) -> tuple[list[str], list[tuple[dict, dict, dict]]]:
    """The paired metrics present, and (LMCodec row, reference row, {metric: paired_difference}) for each LMCodec
    operating point and each reference codec spending at most `PAIRED_RATE_RATIO` times its kbps."""
    systems = [row for row in results["systems"] if row["kind"] == "lmcodec" and row["kbps"]]
    references = [row for row in results["systems"] if row["kind"] == "reference" and row["kbps"]]
    keys = [key for key in PAIRED_METRICS if any(key in row["per_item"] for row in systems)]
    return keys, [(system, reference, {key: paired_difference(system, reference, key) for key in keys})
                  for system in systems for reference in references
                  if reference["kbps"] <= PAIRED_RATE_RATIO * system["kbps"]]


def paired_table(results: dict) -> str | None:
    """Markdown: each LMCodec operating point minus each reference codec that spends at most `PAIRED_RATE_RATIO`
    times its kbps, per utterance; None without such pairs."""
    keys, pairs = rate_matched_pairs(results)
    lines = [f"| {system['name']} − {reference['name']} | {system['kbps']:.3f} / {reference['kbps']:.3f} | "
             + " | ".join(paired_cell(differences[key], key) for key in keys) + " |"
             for system, reference, differences in pairs]
    if not lines or not keys:
        return None
    header = ["pair", "kbps", *(LABELS[key] for key in keys)]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *lines])


def weights_line(meta: dict) -> str:
    if meta.get("random_weights"):
        return f"**Weights: {meta['model']}.** These numbers do not measure a trained LMCodec."
    return f"**Weights:** {meta['model']}."


def data_line(meta: dict) -> str:
    cut = f", each cut to its first {meta['max_seconds']:g} s" if meta.get("max_seconds") else ""
    split = f" (split {meta['split']})" if meta.get("split") else ""
    return (f"{meta['num_files']} utterances, {meta['total_seconds']:.1f} s of audio{cut}, from {meta['data']}{split}. "
            f"Evaluated {meta['date']} on {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPUs, "
            f"torch {meta['machine']['torch']} with {meta['machine']['torch_threads']} thread(s)"
            + (f" in each of {meta['jobs']} processes coding utterances at the same time." if
               (meta.get("jobs") or 1) > 1 else "."))


def scale_note() -> str:
    return ("Higher is better for every score except mel distance. PESQ-WB (P.862.2) runs from 1.04 to 4.64, STOI "
            "from 0 to 1, DNSMOS P.835 from 1 to 5; all scores are at 16 kHz against the original after removing "
            "each system's delay.")


# ---------------------------------------------------------------------------------------------------- plots
def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def point_label(row: dict, group: str) -> str | None:
    """The text beside a point: the mode of a reference codec, Nc of an LMCodec operating point (the legend names
    the rest)."""
    if group == "codec2":
        return row["slug"].split("-", 1)[1].upper()
    if group == "opus":
        return f"{row['nominal_kbps']:g}k"
    return f"Nc={row['num_coarse_quantizers']}" if group == "lmcodec" else None


def plot_quality(results: dict, key: str, path: Path) -> Path:
    """One metric against kbps (log axis): LMCodec's operating points joined, the others as labelled points."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    rows = [row for row in results["systems"] if row["kbps"] and row["metrics"].get(key) is not None]
    for group, style in KIND_STYLE.items():
        members = sorted((row for row in rows if plot_group(row) == group), key=lambda row: row["kbps"])
        if not members:
            continue
        xs, ys = [row["kbps"] for row in members], [row["metrics"][key] for row in members]
        axis.plot(xs, ys, **style)
        for row, x, y in zip(members, xs, ys):
            label = point_label(row, group)
            if label:
                axis.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7,
                              color=style["color"])
    original = next((row for row in results["systems"] if row["kind"] == "original"), None)
    if original and key.startswith("dnsmos") and original["metrics"].get(key) is not None:
        axis.axhline(original["metrics"][key], color="0.5", linestyle=":", linewidth=1, label="original")
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_xlabel("bitrate (kbps, all bytes of the coded file)")
    axis.set_ylabel(LABELS[key] + ("" if HIGHER_IS_BETTER[key] else " (lower is better)"))
    axis.set_title(f"{LABELS[key]} against bitrate")
    axis.grid(True, which="both", alpha=0.3)
    axis.margins(x=0.12, y=0.08)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


def log_spectrogram(audio: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Magnitude in dB `[frequency, frame]` of a 16 kHz signal (Hann window)."""
    audio = np.pad(np.asarray(audio, dtype=np.float64), (0, max(0, n_fft - len(audio))))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop] * np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(frames, axis=-1)).T
    return 20 * np.log10(magnitude + 1e-6)


def spectrogram_systems(results: dict) -> list[dict]:
    """Original, LMCodec at the default operating point, and the Codec2 mode (else any reference) nearest its kbps."""
    rows = results["systems"]
    default = results["metadata"].get("default_operating_point")
    chosen = [row for row in rows if row["kind"] == "original"]
    lmcodec = [row for row in rows if row["kind"] == "lmcodec"]
    main = next((row for row in lmcodec if row["num_coarse_quantizers"] == default), lmcodec[0] if lmcodec else None)
    references = [row for row in rows if row["kind"] == "reference"]
    codec2 = [row for row in references if row["slug"].startswith("codec2")] or references
    if main:
        chosen.append(main)
        if codec2:
            chosen.append(min(codec2, key=lambda row: abs(np.log(row["kbps"] / main["kbps"]))))
    return chosen


def plot_spectrograms(results: dict, out: Path, path: Path) -> Path | None:
    """Spectrograms of the first listened utterance: the original beside LMCodec and a similar-rate reference."""
    item = next((item for item in results["utterances"] if item["audio"]), None)
    if item is None:
        return None
    import soundfile as sf

    shown = [row for row in spectrogram_systems(results) if row["slug"] in item["audio"]]
    spectrograms = [log_spectrogram(sf.read(out / item["audio"][row["slug"]], dtype="float32")[0]) for row in shown]
    top = float(np.max(spectrograms[0]))  # one colour scale for all, 80 dB below the original's peak
    plt = pyplot()
    figure, axes = plt.subplots(len(shown), 1, figsize=(7.5, 1.9 * len(shown) + 0.5), dpi=110, sharex=True,
                                squeeze=False, layout="constrained")
    seconds = item["seconds"]
    for axis, row, spectrogram in zip(axes[:, 0], shown, spectrograms):
        image = axis.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                            extent=(0, seconds, 0, SAMPLING_RATE / 2000))
        rate = f" — {row['kbps']:.2f} kbps" if row["kbps"] else ""
        axis.set_title(f"{row['name']}{rate}", fontsize=9, loc="left")
        axis.set_ylabel("kHz")
    axes[-1, 0].set_xlabel(f"seconds ({item['name']})")
    figure.colorbar(image, ax=axes[:, 0].tolist(), label="dB", shrink=0.9)
    figure.savefig(path)
    plt.close(figure)
    return path


def write_plots(results: dict, out: Path) -> list[Path]:
    folder = out / PLOTS
    folder.mkdir(parents=True, exist_ok=True)
    measured = {key for row in results["systems"] for key, value in row["metrics"].items() if value is not None}
    paths = [plot_quality(results, key, folder / f"quality_{key}.png") for key, _, _ in METRICS if key in measured]
    spectrogram = plot_spectrograms(results, out, folder / "spectrograms.png")
    return paths + ([spectrogram] if spectrogram else [])


# ---------------------------------------------------------------------------------------------------- documents
def write_markdown(results: dict, out: Path, plots: list[Path]) -> Path:
    meta = results["metadata"]
    lines = ["# LMCodec evaluation", "", weights_line(meta), "", data_line(meta), "", markdown_table(results), "",
             scale_note(), ""]
    lines += [f"- {note}" for note in meta["notes"]]
    lines += [f"- {line}" for line in meta["missing_reference_codecs"]]
    paired = paired_table(results)
    if paired:
        lines += ["", "## Paired differences", "", PAIRED_NOTE, "", paired]
    lines += ["", "## Plots", ""] + [f"![{path.stem}]({PLOTS}/{path.name})" for path in plots]
    lines += ["", "Listening page with the decoded audio: [report.html](report.html)", ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2430;
       background: #f5f6f8; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #dde1e7; }
p.meta { color: #566070; margin: 4px 0; }
p.weights { padding: 8px 12px; border-radius: 6px; background: #e8f1e8; border: 1px solid #b8d4b8; }
p.weights.random { background: #fff3e0; border-color: #f0c27b; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
th, td { padding: 6px 10px; border-bottom: 1px solid #e6e9ee; text-align: right; white-space: nowrap; }
th { background: #eef1f5; font-weight: 600; font-size: 13px; }
td:first-child, th:first-child { text-align: left; }
tr.kind-lmcodec td:first-child { font-weight: 600; color: #1f5fbf; }
tr.kind-original td { color: #566070; }
td.best { font-weight: 700; }
table.listen td, table.listen th { text-align: left; vertical-align: middle; }
table.listen audio { width: 230px; height: 32px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 14px; }
.plots img, img.wide { width: 100%; background: #fff; border: 1px solid #e1e4e9; border-radius: 4px; }
img.wide { max-width: 820px; }
ul.notes { color: #424b59; font-size: 14px; }
.small { font-size: 13px; color: #566070; }
"""


def best_cells(results: dict) -> set[tuple[str, str]]:
    """(system slug, metric) of the best coded system per table metric (the original does not compete)."""
    rows = [row for row in results["systems"] if row["kind"] != "original"]
    best = set()
    for key in TABLE_METRICS:
        scored = [row for row in rows if row["metrics"].get(key) is not None]
        if scored:
            pick = (max if HIGHER_IS_BETTER[key] else min)(scored, key=lambda row: row["metrics"][key])
            best.add((pick["slug"], key))
    return best


def html_results_table(results: dict) -> str:
    header, rows = table_rows(results)
    best = best_cells(results)
    keys = ["name", "kbps", "kbps_without_entropy_coding", *TABLE_METRICS, "rtf"]
    body = []
    for row, cells in zip(results["systems"], rows):
        tds = "".join(
            f'<td{" class=best" if (row["slug"], key) in best else ""} title="{html.escape(row["description"])}">'
            f"{html.escape(cell)}</td>" for key, cell in zip(keys, cells))
        body.append(f'<tr class="kind-{row["kind"]}">{tds}</tr>')
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_listening_table(results: dict) -> str:
    items = [item for item in results["utterances"] if item["audio"]]
    if not items:
        return '<p class="small">No decoded audio was kept (--listen 0).</p>'
    head = "".join(f"<th>{html.escape(item['name'])}<br><span class=small>{item['seconds']:.1f} s</span></th>"
                   for item in items)
    body = []
    for row in results["systems"]:
        players = "".join(
            f'<td><audio controls preload="metadata" src="{html.escape(item["audio"][row["slug"]])}"></audio></td>'
            if row["slug"] in item["audio"] else "<td>—</td>" for item in items)
        body.append(f'<tr class="kind-{row["kind"]}"><td>{html.escape(row["name"])}</td>'
                    f'<td>{kbps_cell(row)}</td>{players}</tr>')
    return (f'<table class="listen"><thead><tr><th>system</th><th>kbps</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def write_html(results: dict, out: Path, plots: list[Path]) -> Path:
    meta = results["metadata"]
    weights_class = "weights random" if meta.get("random_weights") else "weights"
    weights = html.escape(weights_line(meta).replace("**", ""))
    quality = [path for path in plots if path.stem.startswith("quality_")]
    images = "".join(f'<img src="{PLOTS}/{path.name}" alt="{html.escape(path.stem)}">' for path in quality)
    spectrogram = "".join(f'<h2>Spectrograms</h2><img class="wide" src="{PLOTS}/{path.name}" alt="spectrograms">'
                          for path in plots if path.stem == "spectrograms")
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in [*meta["notes"], *meta["missing_reference_codecs"]])
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LMCodec evaluation</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>LMCodec evaluation</h1>
<p class="{weights_class}">{weights}</p>
<p class="meta">{html.escape(data_line(meta))}</p>
<h2>Results</h2>
{html_results_table(results)}
<p class="small">{html.escape(scale_note())} Bold: the best coded system per column.</p>
<h2>Listen</h2>
{html_listening_table(results)}
<h2>Quality against bitrate</h2>
<div class="plots">{images}</div>
{spectrogram}
<h2>Notes</h2>
<ul class="notes">{notes}</ul>
</main>
</body>
</html>
"""
    path = out / "report.html"
    write_text(path, page)
    return path


def write_text(path: Path, text: str) -> None:
    from lmcodec.processing.files import write_bytes_atomically

    write_bytes_atomically(str(path), text.encode("utf-8"))


def write_report(results: dict, out: str | Path) -> list[Path]:
    """Write the plots, report.md and report.html into `out`; returns their paths."""
    out = Path(out)
    plots = write_plots(results, out)
    return [write_markdown(results, out, plots), write_html(results, out, plots), *plots]


def main(argv: list[str] | None = None) -> int:
    import json

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m lmcodec.training.report OUT_DIR (a folder with results.json)", file=sys.stderr)
        return 2
    out = Path(argv[0])
    results = json.loads((out / "results.json").read_text())
    for path in write_report(results, out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
