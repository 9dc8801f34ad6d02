"""The model card (the Hub repository's README.md) of an LMCodec checkpoint, rendered from measured results only.

    card = render_model_card("outputs/entropy-lm/final", "eval/results.json", json.load(open("training_facts.json")))
    card.save("README.md")

Sources, and nothing else:

- the checkpoint's config: operating points, nominal bitrates (`config.coarse_bitrate(n)`), frame rate, levels and
  codes, latency; its weights: parameter counts;
- `results.json` written by `lmcodec evaluate` (`lmcodec/training/evaluation.py`): every system row goes into the
  metrics table, and LMCodec's own operating points into the `model-index` metadata (`EvalResult`). Without it the
  card says that no evaluation was run;
- the training facts, a small dict passed by the caller (for instance from a `training_facts.json` written next to
  the checkpoint). Keys, all optional:

  ``summary`` (str), ``commands`` (list of exact command lines), ``data`` (str: what was trained on),
  ``train_dataset`` (the comma-separated paths given to the trainers), ``corpora`` (keys of `CORPORA`; otherwise
  inferred from ``data``, ``train_dataset`` and ``commands``), ``steps`` (int or {stage: int}), ``wall_time`` (str)
  or ``wall_time_seconds`` (number or {stage: number}), ``hardware`` (str), ``audio_seen_hours``, ``date``,
  ``seed``, ``random_weights`` (bool: the weights are untrained), ``test_model`` (bool), ``license`` (of the
  weights, default apache-2.0), ``notes`` and ``limitations`` (lists of str), ``learning_curves`` ({"caption": str,
  "columns": [str], "rows": [[cell per column]]}: measured checkpoints of the run, shown as a table); any other key
  is listed as it is.
  Without facts from the caller, a `training_facts.json` inside the checkpoint folder is used if present, and
  likewise its `results.json` without results.

The licences and attribution of the training corpora are written here (`CORPORA`), not read from the data folders at
run time.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lmcodec.errors import LMCodecError

TEMPLATE = "model_card.md"
TRAINING_FACTS_FILE = "training_facts.json"  # read from the checkpoint folder when no training facts are passed
RESULTS_FILE = "results.json"  # likewise when no results are passed
DEFAULT_LICENSE = "apache-2.0"
TAGS = ["audio", "speech", "speech-coding", "neural-audio-codec", "low-bitrate", "lmcodec"]
TINY_PARAMETERS = 1_000_000  # below this, a checkpoint is a test model, whatever its config says
TASK_TYPE = "audio-to-audio"
TASK_NAME = "Speech coding"
# (key in results.json, label, digits), in table order; the keys are those of lmcodec.training.evaluation.METRICS.
METRICS = (
    ("pesq", "PESQ-WB", 2),
    ("stoi", "STOI", 3),
    ("dnsmos_ovrl", "DNSMOS OVRL", 2),
    ("dnsmos_sig", "DNSMOS SIG", 2),
    ("dnsmos_bak", "DNSMOS BAK", 2),
    ("mel_distance", "mel distance", 3),
    ("si_sdr", "SI-SDR (dB)", 1),
)
KIND_LABELS = {"original": "anchor", "lmcodec": "LMCodec", "ablation": "ablation", "reference": "reference codec"}


@dataclass(frozen=True)
class Corpus:
    """A training corpus: how it is named, licensed and credited, and how to recognise it in a training record."""

    name: str
    licence: str
    attribution: str
    patterns: tuple[str, ...]  # regular expressions searched (case-insensitively) in the training record
    hub_id: str | None = None  # the dataset's id on the Hub, for the card's `datasets` metadata
    language: tuple[str, ...] = ("en",)


LIBRISPEECH_ATTRIBUTION = (
    'V. Panayotov, G. Chen, D. Povey and S. Khudanpur, "Librispeech: an ASR corpus based on public domain audio '
    'books", ICASSP 2015 (<https://www.openslr.org/12>). LibriSpeech (c) 2014 Vassil Panayotov, licensed under '
    "Creative Commons Attribution 4.0 International (<https://creativecommons.org/licenses/by/4.0/>); the recordings "
    "are LibriVox public-domain audiobooks."
)

CORPORA: dict[str, Corpus] = {
    "librispeech": Corpus(
        "LibriSpeech ASR corpus", "CC BY 4.0", LIBRISPEECH_ATTRIBUTION, (r"libri_?speech",), "openslr/librispeech_asr"),
    "ljspeech": Corpus(
        "LJ Speech Dataset 1.1", "public domain",
        "K. Ito and L. Johnson, The LJ Speech Dataset, 2017 (<https://keithito.com/LJ-Speech-Dataset/>): one "
        "female reader, LibriVox public-domain recordings. The clips used were copied from the test data of "
        "open-source repositories (coqui-ai/TTS, MPL-2.0; one from an Apache-2.0 repository).",
        (r"lj_?speech", r"\blj\d{3}"), "keithito/lj_speech"),
    "cmu-arctic": Corpus(
        "CMU ARCTIC databases", "CMU ARCTIC licence (free use and redistribution with attribution, BSD-like)",
        'J. Kominek and A. W. Black, "The CMU Arctic speech databases", 5th ISCA Speech Synthesis Workshop, 2004; '
        "Language Technologies Institute, Carnegie Mellon University (<http://www.festvox.org/cmu_arctic/>). The "
        "clips used were copied from open-source repositories (MIT and MPL-2.0).",
        (r"cmu[-_ ]?arctic", r"\barctic\b")),
    "misc": Corpus(
        "Short test recordings from open-source speech projects (under 2 minutes; English, Russian, French, "
        "Chinese)",
        "the licence of the project each clip comes from: MPL-2.0 (mozilla/DeepSpeech), Apache-2.0 "
        "(speechbrain/speechbrain, alphacep/vosk-api), BSD-2-Clause (the pocketsphinx 5.1.1 package, CMU Sphinx "
        "test recordings), BSD-3-Clause (Uberi/speech_recognition), MIT (the amfm_decompy 1.0.12.2 package)",
        "Test and example recordings shipped with those projects; for most clips the speaker and the original "
        "recording terms are not documented by the projects.",
        (r"(^|[/\\,\s])misc($|[/\\,\s])",), None, ("en", "ru", "fr", "zh")),
    "speechocean762": Corpus(
        "speechocean762 (non-native English read speech: 250 Mandarin-L1 speakers, adults and children)",
        "CC BY 4.0 (OpenSLR SLR101; its README: free for commercial and non-commercial use)",
        'J. Zhang, Z. Zhang, Y. Wang, Z. Yan, Q. Song, Y. Huang, K. Li, D. Povey and Y. Wang, "speechocean762: An '
        'Open-Source Non-native English Speech Corpus For Pronunciation Assessment", Interspeech 2021; released by '
        "Speechocean and Xiaomi (<https://github.com/jimbozhang/speechocean762>, <https://www.openslr.org/101/>).",
        (r"speechocean",), "mispeech/speechocean762"),
    "vcc2016": Corpus(
        "Voice Conversion Challenge 2016 (4 studio speakers)", "CC BY 4.0",
        'T. Toda, L.-H. Chen, D. Saito, F. Villavicencio, M. Wester, Z. Wu and J. Yamagishi, "The Voice Conversion '
        'Challenge 2016", Interspeech 2016 (DataShare, University of Edinburgh); npVCC2016 packaging by tarepan '
        "(<https://github.com/tarepan/npVCC2016Corpus>).",
        (r"vcc[-_ ]?2016",)),
    "picovoice-intent": Corpus(
        "Picovoice speech-to-intent benchmark (crowd-sourced spoken requests, 50+ speakers)", "Apache-2.0",
        "Picovoice Inc., speech-to-intent benchmark (<https://github.com/Picovoice/speech-to-intent-benchmark>); "
        "leading and trailing silence trimmed.",
        (r"picovoice",)),
    "librilight": Corpus(
        "Libri-Light", "CC BY 4.0",
        'J. Kahn et al., "Libri-Light: A Benchmark for ASR with Limited or No Supervision", ICASSP 2020 '
        "(<https://github.com/facebookresearch/libri-light>); the recordings are LibriVox public-domain audiobooks.",
        (r"libri[-_ ]?light",)),
}


# ---------------------------------------------------------------------------------------------------- inputs
def template_path(name: str = TEMPLATE) -> Path:
    """The path of a card template shipped in `lmcodec.hub_cards/templates/`."""
    path = Path(str(resources.files("lmcodec.hub_cards") / "templates" / name))
    if not path.is_file():
        raise LMCodecError(f"the card template {name} is missing from the lmcodec package ({path}); reinstall lmcodec "
                           "(its wheel must include hub_cards/templates/*.md).")
    return path


def read_json(source: str | os.PathLike | dict | None, what: str) -> dict | None:
    """A JSON object from a dict, a file path or None (→ None); one-line errors for a missing or bad file."""
    if source is None or isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_file():
        raise LMCodecError(f"{what} file not found: {path} (check the path).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LMCodecError(f"{what} file {path} is not valid JSON: {error}.") from None
    if not isinstance(data, dict):
        raise LMCodecError(f"{what} file {path} must hold a JSON object, got {type(data).__name__}.")
    return data


def find_training_facts(checkpoint_dir: str | os.PathLike, training_facts):
    """The training facts as given (dict or path), else the checkpoint folder's `training_facts.json`, else None."""
    if training_facts is None and (Path(checkpoint_dir) / TRAINING_FACTS_FILE).is_file():
        return Path(checkpoint_dir) / TRAINING_FACTS_FILE
    return training_facts


def find_results(checkpoint_dir: str | os.PathLike, results):
    """The results as given (dict or path), else the checkpoint folder's `results.json` (the bundled default ships
    one), else None."""
    if results is None and (Path(checkpoint_dir) / RESULTS_FILE).is_file():
        return Path(checkpoint_dir) / RESULTS_FILE
    return results


def load_results(source: str | os.PathLike | dict | None) -> dict | None:
    """results.json of `lmcodec evaluate` (path or dict), checked against its schema; None stays None."""
    from lmcodec.training.report import check_results

    results = read_json(source, "results")
    return None if results is None else check_results(results, "results" if isinstance(source, dict) else str(source))


# ---------------------------------------------------------------------------------------------------- formatting
def one_line(value: Any) -> str:
    """Any value as one line of Markdown: dicts as `key: value` pairs, lists joined, whitespace collapsed."""
    if isinstance(value, dict):
        value = ", ".join(f"{key}: {one_line(item)}" for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        value = "; ".join(one_line(item) for item in value)
    elif isinstance(value, float):
        value = f"{value:g}"
    return " ".join(str(value).split())


def cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return one_line(value).replace("|", "\\|")


def number(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def count(parameters: int) -> str:
    """6061234 → '6.06 M', 41234 → '41.2 k'."""
    return f"{parameters / 1e6:.2f} M" if parameters >= 100_000 else f"{parameters / 1e3:.1f} k"


def duration(seconds: float) -> str:
    """3725 → '1 h 02 min', 95 → '1 min 35 s'."""
    seconds = float(seconds)
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


def kbps(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------------- the model
def parameter_counts(model) -> list[tuple[str, int]]:
    """(component, parameters) for the codec, the fine LM and the entropy LM (buffers such as codebooks excluded)."""
    groups = {"codec": 0, "fine LM": 0, "entropy LM": 0}
    for name, child in model.named_children():
        group = {"fine_lm": "fine LM", "entropy_lm": "entropy LM"}.get(name, "codec")
        groups[group] += sum(parameter.numel() for parameter in child.parameters())
    return [(name, value) for name, value in groups.items() if value]


def config_facts(config) -> dict:
    from lmcodec.bitstream import FORMAT_VERSION

    return {
        "sampling_rate": config.sampling_rate,
        "hop_length": config.hop_length,
        "frame_rate": f"{config.frame_rate:g}",
        "num_quantizers": config.num_quantizers,
        "codebook_size": config.codebook_size,
        "bits_per_code": config.bits_per_code,
        "level_bitrate": f"{config.coarse_bitrate(1):g}",
        "latency_ms": f"{config.algorithmic_latency_ms:g}",
        "sync_seconds": f"{config.sync_frames / config.frame_rate:g}",
        "packet_seconds": f"{config.packet_frames / config.frame_rate:g}",
        "default_nc": config.num_coarse_quantizers,
        "fine_decoding": config.fine_decoding,
        "bitstream_version": FORMAT_VERSION,
        "integer_entropy_model": bool(getattr(config, "integer_entropy_model", False)),
    }


def operating_points(config, results: dict | None = None) -> list[dict]:
    points = []
    for levels in config.operating_points:
        rate = config.coarse_bitrate(levels) / 1000
        measured = measured_kbps(results, levels)
        points.append({"name": f"{kbps(rate)} kbps", "nc": levels, "fine": config.num_quantizers - levels,
                       "kbps": kbps(rate), "default": levels == config.num_coarse_quantizers,
                       "measured": "—" if measured is None else f"{measured:.3f}"})
    return points


def bitrate_range(config) -> str:
    """'1–1.5' for operating points 2 and 3 of the default config: the nominal kbps before entropy coding."""
    rates = sorted({config.coarse_bitrate(levels) / 1000 for levels in config.operating_points})
    return kbps(rates[0]) if len(rates) == 1 else f"{kbps(rates[0])}–{kbps(rates[-1])}"


def architecture_differences(config) -> list[str]:
    """`name=value` for the architecture fields where `config` differs from the default LMCodecConfig."""
    from lmcodec import LMCodecConfig

    default = LMCodecConfig()
    fields = ("hidden_size", "intermediate_size", "num_quantizers", "codebook_size", "codebook_dim",
              "operating_points")
    differences = []
    for name in fields:
        mine, theirs = getattr(config, name), getattr(default, name)
        if name == "operating_points":
            mine, theirs = list(mine), list(theirs)
        if mine != theirs:
            differences.append(f"{name}={mine}")
    for name in ("fine_lm_config", "entropy_lm_config"):
        mine, theirs = getattr(config, name), getattr(default, name)
        if (mine.n_embd, mine.n_layer) != (theirs.n_embd, theirs.n_layer):
            differences.append(f"{name}: {mine.n_layer} layers × {mine.n_embd} wide")
    return differences


def check_results_match(results: dict, config) -> None:
    """results.json must come from a model with this checkpoint's levels and operating points."""
    meta = results["metadata"]
    measured = (meta.get("num_quantizers"), list(meta.get("operating_points") or []))
    mine = (config.num_quantizers, list(config.operating_points))
    if measured[0] is not None and measured != mine:
        raise LMCodecError(
            f"results.json was measured on a model with {measured[0]} levels and operating points {measured[1]} "
            f"({meta.get('model')}), but this checkpoint has {mine[0]} levels and operating points {mine[1]}: pass "
            "the results.json of this checkpoint's own evaluation.")


# ---------------------------------------------------------------------------------------------------- evaluation
def eval_dataset(meta: dict) -> dict:
    """How the evaluation data is named in `model-index`: a Hub id where the data is a known corpus."""
    data = str(meta.get("data") or "unknown")
    low = data.lower()
    size = f"{meta.get('num_files', '?')} utterances"
    if meta.get("max_seconds"):
        size += f", first {meta['max_seconds']:g} s of each"
    for part in ("test-other", "test-clean", "dev-other", "dev-clean"):
        if "librispeech" in low and (part in low or part.replace("-", "_") in low or part.replace("-", ".") in low):
            split, config = part.split("-")
            return {"type": "openslr/librispeech_asr", "config": config, "split": split,
                    "name": f"LibriSpeech {part} ({size})"}
    local = data.startswith((".", "/", "~")) or Path(data).exists() or data.count("/") != 1
    name = Path(data.rstrip("/")).name or data
    return {"type": name if local else data, "config": None, "split": meta.get("split"), "name": f"{name} ({size})"}


def eval_results(results: dict) -> list:
    """`EvalResult`s of LMCodec's own rows (its operating points): every metric, the measured kbps and the RTF."""
    from huggingface_hub import EvalResult

    dataset = eval_dataset(results["metadata"])
    entries = []
    for row in results["systems"]:
        if row.get("kind") != "lmcodec":
            continue
        levels = row.get("num_coarse_quantizers")
        values = [(key, label, row["metrics"].get(key)) for key, label, _ in METRICS]
        values += [("kbps", "kbps (all bytes)", row.get("kbps")), ("rtf", "RTF", row.get("rtf"))]
        for key, label, value in values:
            if value is None or not math.isfinite(float(value)):
                continue
            entries.append(EvalResult(
                task_type=TASK_TYPE, task_name=TASK_NAME, dataset_type=dataset["type"], dataset_name=dataset["name"],
                dataset_config=dataset["config"], dataset_split=dataset["split"], metric_type=key,
                metric_value=round(float(value), 4), metric_name=f"{label}, Nc={levels}", metric_config=f"nc{levels}"))
    return entries


def evaluation_section(results: dict) -> dict:
    """Everything the card's evaluation section shows, copied from results.json."""
    meta, rows = results["metadata"], results["systems"]
    present = [(key, label, digits) for key, label, digits in METRICS
               if any(row["metrics"].get(key) is not None for row in rows)]
    header = ["system", "kind", "kbps", "kbps without entropy coding", *(label for _, label, _ in present), "RTF"]
    table = []
    for row in rows:
        rate = number(row.get("kbps"), 3)
        if (row.get("kbps_source") or "").startswith("nominal") and row.get("kbps") is not None:
            rate += " (nominal)"
        cells = [cell(row["name"]), KIND_LABELS.get(row["kind"], cell(row["kind"])), rate,
                 number(row.get("kbps_without_entropy_coding"), 3)]
        cells += [number(row["metrics"].get(key), digits) for key, _, digits in present]
        cells.append(number(row.get("rtf"), 3))
        table.append("| " + " | ".join(cells) + " |")
    cut = f", each cut to its first {meta['max_seconds']:g} s" if meta.get("max_seconds") else ""
    split = f" (split {meta['split']})" if meta.get("split") else ""
    total = meta.get("total_seconds")
    data_line = (f"{meta.get('num_files', '?')} utterances, {total:.1f} s of audio{cut}, from `{meta.get('data')}`"
                 f"{split}; evaluated {meta.get('date', 'on an unrecorded date')}." if total is not None else
                 f"`{meta.get('data')}`{split}.")
    machine = meta.get("machine") or {}
    machine_line = (f"{machine.get('platform', 'unrecorded platform')}, {machine.get('cpu_count', '?')} CPUs, "
                    f"Python {machine.get('python', '?')}, torch {machine.get('torch', '?')} with "
                    f"{machine.get('torch_threads', '?')} thread(s)"
                    + (f" in each of {meta['jobs']} processes coding utterances at the same time." if
                       (meta.get("jobs") or 1) > 1 else "."))
    random = bool(meta.get("random_weights"))
    weights_line = (f"**The evaluation ran on randomly initialised weights ({one_line(meta.get('model'))}). These "
                    "numbers do not measure a trained LMCodec.**" if random
                    else f"Weights evaluated: {one_line(meta.get('model'))}.")
    data_text = str(meta.get("data") or "").lower()
    return {
        "weights_line": weights_line,
        "data_line": data_line,
        "machine_line": machine_line,
        "header": "| " + " | ".join(header) + " |",
        "separator": "|" + "---|" * len(header),
        "rows": table,
        "scale_note": ("Higher is better for every score except mel distance. PESQ-WB (P.862.2) runs from 1.04 to "
                       "4.64, STOI from 0 to 1, DNSMOS P.835 from 1 to 5; all scores are at 16 kHz against the "
                       "original."),
        "systems": [{"name": cell(row["name"]), "description": cell(row.get("description") or "—"),
                     "kbps_source": cell(row.get("kbps_source") or "—")} for row in rows],
        "notes": [one_line(note) for note in meta.get("notes") or []],
        "missing": [one_line(line) for line in meta.get("missing_reference_codecs") or []],
        "data_attribution": ("LibriSpeech ASR corpus, " + LIBRISPEECH_ATTRIBUTION) if "librispeech" in data_text
        else None,
        "model_index_note": None if random else (
            "The `model-index` metadata of this card lists LMCodec's own rows (one per operating point); the "
            "ablations, the anchor and the reference codecs are in the table only."),
    }


# ---------------------------------------------------------------------------------------------------- first screen
def default_row(results: dict, config) -> dict | None:
    """The LMCodec row of the checkpoint's default operating point (decoded with its default fine decoding)."""
    levels = results["metadata"].get("default_operating_point") or config.num_coarse_quantizers
    return next((row for row in results["systems"]
                 if row["kind"] == "lmcodec" and row.get("num_coarse_quantizers") == levels), None)


def measured_kbps(results: dict | None, levels: int) -> float | None:
    """The measured kbps (every byte counted) of LMCodec's row at `levels` coarse levels, if results.json has one."""
    row = next((row for row in (results or {}).get("systems", [])
                if row["kind"] == "lmcodec" and row.get("num_coarse_quantizers") == levels), None)
    return row.get("kbps") if row and (row.get("kbps_source") or "").startswith("measured") else None


def introduction(config, results: dict | None, graphs: bool) -> list[str]:
    """The card's opening paragraphs: what the codec is, at which rate and latency (from the config and results.json),
    and what the checkpoint holds."""
    levels, total = config.num_coarse_quantizers, config.num_quantizers
    raw = kbps(config.coarse_bitrate(levels) / 1000)
    measured = measured_kbps(results, levels)
    if not getattr(config, "integer_entropy_model", False):
        rate = f"{raw} kbps"
        coding = (f"as raw codes ({raw} kbps: this checkpoint has no integer entropy model, so it does not "
                  "entropy-code)")
    elif measured is not None:
        rate = f"about {measured:.1f} kbps"
        coding = (f"range-coded with the probabilities of a causal Transformer (the entropy LM): {measured:.3f} kbps "
                  f"measured with every byte of the coded files counted, against {raw} kbps of raw codes")
    else:
        rate = f"under {raw} kbps"
        coding = (f"range-coded with the probabilities of a causal Transformer (the entropy LM), below the {raw} kbps "
                  "of raw codes (not measured for these weights)")
    others = []
    for point in config.operating_points:
        if point != levels:
            rate_of_point = measured_kbps(results, point)
            others.append(f"Nc={point} ({rate_of_point:.3f} kbps measured)" if rate_of_point is not None
                          else f"Nc={point} ({kbps(config.coarse_bitrate(point) / 1000)} kbps of raw codes)")
    frame_ms = 1000 * config.hop_length / config.sampling_rate
    what = (f"LMCodec is a causal neural speech codec for {config.sampling_rate / 1000:g} kHz mono speech at {rate}. "
            f"Every {frame_ms:g} ms ({config.frame_rate:g} frames/s) its encoder writes {total} residual-vector-"
            f"quantized codes, coarsest first; the default operating point sends the first {levels} (Nc={levels}), "
            f"{coding}. Algorithmic latency: {config.algorithmic_latency_ms:g} ms, streaming or offline."
            + (f" Other operating point{'s' if len(others) > 1 else ''}: {', '.join(others)}." if others else ""))
    origin = ("An independent implementation after *LMCodec: A Low Bitrate Speech Codec With Causal Transformer "
              "Models* (Jenrungrot et al., ICASSP 2023, [arXiv:2303.12984](https://arxiv.org/abs/2303.12984)), not "
              "the authors' code or weights. This checkpoint is the whole codec: encoder, quantizer, decoder, "
              "entropy LM and fine LM" + (", with ONNX graphs in `onnx/` to run it without torch." if graphs else "."))
    return [what, origin]


FINE_DECODING_NAMES = {"expected": "expected fine vectors", "sample": "sampled fine codes",
                       "greedy": "greedy fine codes", "coarse-only": "coarse only"}


def fine_decoding_comparison(results: dict, config) -> dict | None:
    """The other fine decodings of the default operating point against the default row, per utterance: {"table"
    (Markdown), "better" (names of decodings ahead on some paired score by more than two standard errors and behind
    on none), "alternatives" (their count)}; None when results.json has no such ablations."""
    from lmcodec.training.report import (HIGHER_IS_BETTER, LABELS, PAIRED_METRICS, paired_cell, paired_difference,
                                         significant)

    default = default_row(results, config)
    if default is None:
        return None
    prefix = f"lmcodec-nc{default['num_coarse_quantizers']}-"
    alternatives = [row for row in results["systems"] if row["kind"] == "ablation" and row["slug"].startswith(prefix)
                    and row["slug"][len(prefix):] in FINE_DECODING_NAMES]
    keys = [key for key in PAIRED_METRICS if default["per_item"].get(key)
            and any(row["per_item"].get(key) for row in alternatives)]
    if not alternatives or not keys:
        return None
    lines = ["| " + " | ".join(["decoding", *(LABELS[key] for key in keys)]) + " |", "|" + "---|" * (len(keys) + 1)]
    better = []
    for row in alternatives:
        differences = {key: paired_difference(row, default, key) for key in keys}
        gains = [(difference[0] if HIGHER_IS_BETTER[key] else -difference[0]) for key, difference in
                 differences.items() if significant(difference)]
        suffix = row["slug"][len(prefix):]
        if any(gain > 0 for gain in gains) and not any(gain < 0 for gain in gains):
            better.append(FINE_DECODING_NAMES[suffix])
        lines.append(f"| {FINE_DECODING_NAMES[suffix]} − {FINE_DECODING_NAMES[config.fine_decoding]} (default) | "
                     + " | ".join(paired_cell(differences[key], key, extra_digits=1) for key in keys) + " |")
    return {"table": "\n".join(lines), "better": better, "alternatives": len(alternatives)}


def decoding_paragraph(config, comparison: dict | None) -> str:
    """The default decoding, said up front: what the receiver does with the levels that were not sent, and why."""
    from lmcodec.fine_decoding import FINE_DECODINGS

    levels, rest, mode = config.num_coarse_quantizers, config.num_quantizers - config.num_coarse_quantizers, \
        config.fine_decoding
    if mode != "coarse-only":
        return (f"**Default decoding: {mode}.** The receiver gets {levels} levels and the fine LM regenerates the "
                f"other {rest} ({FINE_DECODING_NAMES[mode]}); `fine_decoding=\"coarse-only\"` decodes the sent levels "
                "alone.")
    if comparison and not comparison["better"]:
        why = ("it is not used by default because it measured no better (the per-utterance comparison is under "
               "[Headline numbers](#headline-numbers))")
    elif comparison:
        why = (f"it is not used by default (`fine_decoding` in config.json), although the evaluation below measured "
               f"{', '.join(comparison['better'])} ahead of it on some scores and behind on none")
    else:
        why = "it is not used by default (`\"fine_decoding\": \"coarse-only\"` in config.json)"
    others = [name for name in FINE_DECODINGS if name not in (mode, "expected")]
    options = '`fine_decoding="expected"` (or ' + ", ".join(f'`"{name}"`' for name in others) + ")"
    return (f"**Default decoding: coarse-only.** The receiver decodes the {levels} levels it gets and nothing else. "
            f"The checkpoint also carries a fine LM that can regenerate the other {rest} levels from them, but {why}. "
            f"To use it, pass {options} to `decompress`, or `--fine-decoding` on the command line.")


def headline_section(results: dict, config) -> dict:
    """The first screen's numbers: LMCodec's operating points and the reference codecs at a similar rate (kbps and the
    paired scores), their per-utterance differences, and the other fine decodings against the default one."""
    from lmcodec.training.report import (DIGITS, LABELS, PAIRED_METRICS, PAIRED_NOTE, SIGNIFICANCE_RULE, paired_table,
                                         rate_matched_pairs)

    keys, pairs = rate_matched_pairs(results)
    systems = [row for row in results["systems"] if row["kind"] == "lmcodec"]
    if not keys:
        keys = [key for key in PAIRED_METRICS if any(row["metrics"].get(key) is not None for row in systems)]
    matched = [row for row in results["systems"] if any(row is reference for _, reference, _ in pairs)]
    default = default_row(results, config)
    header = ["system", "kbps (all bytes)", *(LABELS[key] for key in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in systems + matched:
        name = cell(row["name"]) + (" (default)" if row is default else "")
        cells = [name, number(row.get("kbps"), 3), *(number(row["metrics"].get(key), DIGITS.get(key, 3))
                                                     for key in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    meta = results["metadata"]
    dataset = eval_dataset(meta)["name"]
    seconds = f", {meta['total_seconds']:.0f} s of audio" if meta.get("total_seconds") is not None else ""
    comparison = fine_decoding_comparison(results, config)
    return {
        "data_line": (f"{dataset}{seconds}; LMCodec decoded as by default ({config.fine_decoding}); kbps counts every "
                      "byte of the coded files."),
        "table": "\n".join(lines),
        "paired_table": paired_table(results),
        "paired_note": PAIRED_NOTE,
        "decodings": comparison,
        "decodings_note": (f"The fine LM's decodings at Nc={default['num_coarse_quantizers']} against the default, per "
                           f"utterance: mean ± standard error (utterances where the fine LM is better / utterances "
                           f"scored); {SIGNIFICANCE_RULE}." if comparison and default else None),
    }


# ---------------------------------------------------------------------------------------------------- training
FACT_LABELS = {
    "summary": "Summary",
    "data": "Training data",
    "train_dataset": "Training data paths",
    "steps": "Steps",
    "audio_seen_hours": "Audio seen (hours)",
    "wall_time": "Wall time",
    "wall_time_seconds": "Wall time",
    "hardware": "Hardware",
    "date": "Date",
    "seed": "Seed",
}
SPECIAL_FACTS = {"commands", "notes", "limitations", "corpora", "random_weights", "test_model", "license",
                 "learning_curves"}


def learning_curves_table(curves) -> dict | None:
    """The training facts' ``learning_curves`` as {"caption", "table"} (Markdown), checked cell by cell."""
    if curves is None:
        return None
    columns, rows = (curves.get("columns"), curves.get("rows")) if isinstance(curves, dict) else (None, None)
    if not columns or not isinstance(columns, list) or not rows or not isinstance(rows, list) or any(
            not isinstance(row, list) or len(row) != len(columns) for row in rows):
        raise LMCodecError("training facts: learning_curves must be {\"caption\": str, \"columns\": [str], \"rows\": "
                           "[[one cell per column], ...]} with at least one row; fix the training facts file.")
    lines = ["| " + " | ".join(cell(column) for column in columns) + " |", "|" + "---|" * len(columns)]
    def entry(value) -> str:  # steps as in the facts above (30,000); missing measurements as a dash
        if value is None:
            return "—"
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else cell(value)

    lines += ["| " + " | ".join(entry(value) for value in row) + " |" for row in rows]
    return {"caption": one_line(curves.get("caption") or "Learning curves."), "table": "\n".join(lines)}


def training_section(facts: dict) -> dict:
    rows = []
    for key, label in FACT_LABELS.items():
        if facts.get(key) is None or (key == "wall_time_seconds" and facts.get("wall_time") is not None):
            continue
        value = facts[key]
        if key == "wall_time_seconds":
            value = ({stage: duration(seconds) for stage, seconds in value.items()} if isinstance(value, dict)
                     else duration(value))
        elif key == "steps" and isinstance(value, dict):
            value = {stage: f"{steps:,}" if isinstance(steps, int) else steps for stage, steps in value.items()}
        elif key == "steps" and isinstance(value, int):
            value = f"{value:,}"
        rows.append((label, one_line(value)))
    rows += [(key.replace("_", " "), one_line(value)) for key, value in facts.items()
             if key not in FACT_LABELS and key not in SPECIAL_FACTS and not key.startswith("_") and value is not None]
    commands = facts.get("commands") or []
    commands = [commands] if isinstance(commands, str) else [str(command) for command in commands]
    return {"facts": rows, "commands": commands, "notes": [one_line(note) for note in facts.get("notes") or []],
            "learning_curves": learning_curves_table(facts.get("learning_curves"))}


def training_corpora(facts: dict | None) -> tuple[list[str], str | None]:
    """(keys of the CORPORA trained on, the training data no corpus accounts for) from the training facts."""
    if not facts:
        return [], None
    named = facts.get("corpora")
    if named:
        named = [named] if isinstance(named, str) else list(named)
        unknown = [str(key) for key in named if key not in CORPORA]
        return [key for key in CORPORA if key in named], (", ".join(unknown) or None)
    commands = facts.get("commands") or []
    record = " ".join([one_line(facts.get("data") or ""), one_line(facts.get("train_dataset") or ""),
                       *([commands] if isinstance(commands, str) else commands)])
    found = [key for key, corpus in CORPORA.items()
             if any(re.search(pattern, record, flags=re.IGNORECASE) for pattern in corpus.patterns)]
    # Entries of the training paths that no corpus accounts for, else the free-text description if nothing matched.
    paths = [part.strip() for part in str(facts.get("train_dataset") or "").split(",") if part.strip()]
    unknown = [path for path in paths if not any(
        re.search(pattern, path, flags=re.IGNORECASE) for corpus in CORPORA.values() for pattern in corpus.patterns)]
    if not found and not unknown and facts.get("data"):
        unknown = [one_line(facts["data"])]
    return found, ("; ".join(unknown) or None)


# ---------------------------------------------------------------------------------------------------- the card
def not_ahead_of_references(results: dict) -> str | None:
    """A sentence naming every rate-matched pair (LMCodec operating point, reference codec) and metric where the
    evaluation does not show LMCodec ahead by more than two standard errors of the per-utterance difference (over at
    least `report.MIN_SIGNIFICANT_PAIRS` utterances); None when it is ahead everywhere or nothing was paired."""
    from lmcodec.training.report import (DIGITS, HIGHER_IS_BETTER, LABELS, MIN_SIGNIFICANT_PAIRS, rate_matched_pairs,
                                         significant)

    clauses = []
    for system, reference, differences in rate_matched_pairs(results)[1]:
        misses = []
        for key, difference in differences.items():
            if difference is None or difference[1] is None:
                continue
            mean, error, _, count = difference
            gain = mean if HIGHER_IS_BETTER[key] else -mean  # positive when LMCodec is better
            if not (significant(difference) and gain > 0):
                digits = DIGITS.get(key, 3)
                verdict = ("behind" if significant(difference) else "a tie" if count >= MIN_SIGNIFICANT_PAIRS
                           else f"too few utterances to tell: {count}")
                misses.append(f"{LABELS[key]} {mean:+.{digits}f} ± {error:.{digits}f} ({verdict})")
        if misses:
            clauses.append(f"{system['name']} against {reference['name']}: {', '.join(misses)}")
    if not clauses:
        return None
    return ("Not ahead of every reference codec at a similar rate: in the paired differences under Headline numbers, "
            "per utterance (mean ± "
            f"standard error; ahead means by more than two standard errors over at least {MIN_SIGNIFICANT_PAIRS} "
            "utterances), " + "; ".join(clauses) + ".")


def limitations(facts: dict | None, evaluated: bool, corpora: list[str], integer_model: bool = False,
                results: dict | None = None, fine_decoding: str = "sample") -> list[str]:
    items = []
    if results is not None and (shortfall := not_ahead_of_references(results)):
        items.append(shortfall)
    if facts and (facts.get("data") or facts.get("hardware")):
        compute = ", ".join(one_line(facts[key]) for key in ("hardware",) if facts.get(key))
        time = facts.get("wall_time") or (duration(facts["wall_time_seconds"])
                                          if isinstance(facts.get("wall_time_seconds"), (int, float)) else None)
        spent = "; ".join(part for part in (compute, f"{one_line(time)} of training" if time else "") if part)
        items.append(f"Training scale: {one_line(facts.get('data') or 'the data above')}"
                     + (f" ({spent})" if spent else "") + ". Neural speech codecs are usually trained on thousands of "
                     "hours of speech on GPUs; with less, expect lower quality, especially for voices unlike the "
                     "training speakers.")
    else:
        items.append("How these weights were trained is not recorded with them (see Training).")
    kinds = ["audiobooks"] + (["non-native read sentences from adults and children"]
                              if "speechocean762" in corpora else []) + (
        ["short spoken requests"] if "picovoice-intent" in corpora else [])
    children = "" if "speechocean762" in corpora else "children's or "
    unlike = (f"conversational, noisy, reverberant, far-field, overlapping, shouted, sung, {children}non-English "
              "speech, and on music or other sounds")
    items.append(f"Trained mostly on English read speech ({', '.join(kinds)}): expect worse results on {unlike}."
                 if corpora else f"The training data are not recorded: expect worse results on speech unlike it, "
                 f"for instance {unlike}.")
    items += [
        "16 kHz only: everything above 8 kHz is lost; inputs at other rates are resampled.",
        ("Generative decoding (off by default: this checkpoint decodes coarse-only): with a fine decoding, the fine LM "
         if fine_decoding == "coarse-only" else "Generative decoding: the fine LM ")
        + "invents the detail that was not sent, so decoded speech can differ from the input in timbre, prosody or "
        "even phonetic content. PESQ, STOI and DNSMOS were not designed for generative codecs and may not match "
        "perceived quality; no listening test has been run.",
        ("Entropy-coded streams decode exactly on any machine (integer entropy model); streams written by releases "
         "before bitstream format 3 decode only on the kind of CPU that wrote them." if integer_model else
         "This checkpoint has no integer entropy model: it writes raw codes only (`lmcodec export-integer-lm` adds "
         "one); entropy-coded streams of older releases decode only on the kind of CPU that wrote them."),
    ]
    if evaluated:
        items.append("Real-time factors were measured on the machine named under Evaluation and change with the "
                     "hardware, the thread count and the load.")
    items += [one_line(item) for item in (facts or {}).get("limitations") or []]
    return items


# ---------------------------------------------------------------------------------------------------- the folder
CONFIG_FILES = ("config.json", "preprocessor_config.json")


def claimed_code_files(folder: str | os.PathLike) -> dict[str, list[str]]:
    """{config file: the code files its `auto_map` names} for `config.json` and `preprocessor_config.json` of
    `folder`: the remote code a checkpoint claims to carry (`"module.Class"` → `module.py`)."""
    claims = {}
    for name in CONFIG_FILES:
        path = Path(folder) / name
        if not path.is_file():
            continue
        auto_map = json.loads(path.read_text(encoding="utf-8")).get("auto_map") or {}
        references = [reference for value in auto_map.values()
                      for reference in (value if isinstance(value, (list, tuple)) else [value]) if reference]
        files = sorted({reference.split("--")[-1].rsplit(".", 1)[0] + ".py" for reference in references})
        if files:
            claims[name] = files
    return claims


def carries_code(folder: str | os.PathLike | None) -> bool:
    """Whether transformers loads `folder` without the lmcodec package (`AutoModel.from_pretrained(folder,
    trust_remote_code=True)`): its config.json maps AutoConfig and AutoModel to code files that are all there."""
    if folder is None or not (Path(folder) / "config.json").is_file():
        return False
    auto_map = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("auto_map") or {}
    claimed = [name for files in claimed_code_files(folder).values() for name in files]
    return {"AutoConfig", "AutoModel"} <= set(auto_map) and all((Path(folder) / name).is_file() for name in claimed)


def stored_float_dtypes(weights: Path) -> set[str]:
    """The safetensors dtypes ("F16", "F32", ...) of the floating tensors in `weights`, read from its header."""
    import struct

    with open(weights, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    return {entry["dtype"] for name, entry in header.items() if name != "__metadata__"
            and entry["dtype"].startswith(("F", "BF"))}


def shipped_files(folder: Path) -> list[str]:
    """Every file of a checkpoint folder as a path relative to it (POSIX), hidden files and caches left out."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file() and not any(
        part.startswith(".") or part == "__pycache__" for part in path.relative_to(folder).parts))


def file_list(folder: Path | None, version: str, integer_model: bool = False) -> list[dict]:
    """The card's Files section: every file of `folder` (this card, README.md, included), the code files and the
    `onnx/` folder each as one entry with their names; without a folder, what `lmcodec.save_checkpoint` writes."""
    from lmcodec.runtime import ONNX_FOLDER

    names = shipped_files(folder) if folder else ["config.json", "model.safetensors", "preprocessor_config.json"]
    names = sorted(set(names) | {"README.md"})
    code = [name for name in names if name.endswith(".py") and "/" not in name]
    graphs = [name for name in names if name.startswith(ONNX_FOLDER + "/")]
    remote = carries_code(folder) if folder else True
    weights = folder / "model.safetensors" if folder else None
    half = bool(weights and weights.is_file() and stored_float_dtypes(weights) == {"F16"})
    described = {
        "config.json": "`LMCodecConfig`: codec hyperparameters, operating points, the default fine decoding, the "
                       "GPT-2 sub-configs of both LMs" + (", and `auto_map` for `trust_remote_code`" if remote else
                                                         " (no `auto_map`: the `lmcodec` package loads this folder)"),
        "preprocessor_config.json": "`LMCodecFeatureExtractor` settings (16 kHz mono, padding to whole frames)",
        "model.safetensors": "every weight and buffer: codec, quantizer codebooks, fine LM, entropy LM"
                             + (" and its integer twin" if integer_model else "")
                             + ("; stored in float16, loaded and run in float32" if half else ""),
        "README.md": "this card",
        "results.json": "the `lmcodec evaluate` results this card's numbers are copied from (per utterance too)",
        TRAINING_FACTS_FILE: "the training record the Training section is rendered from",
    }
    files = [{"name": name, "description": described.get(name)} for name in names
             if name not in code and name not in graphs]
    if code:
        files.append({"name": "*.py", "description": f"the model's code for `trust_remote_code`, generated from "
                                                     f"lmcodec {version}: " + ", ".join(f"`{name}`" for name in code)})
    if graphs:
        files.append({"name": f"{ONNX_FOLDER}/", "description": "ONNX graphs of the encoder step, the decoder step and "
                      "the fine LM's steps, for `lmcodec.runtime.load_codec` (onnxruntime and numpy, no torch); the "
                      "weights stay in `model.safetensors`: " + ", ".join(f"`{name}`" for name in graphs)})
    return files


def usage_context(folder: Path | None, repo_id: str | None, bundled: bool) -> dict:
    """How the card's examples name the checkpoint: `ref` (a Python expression), `cli` (the `--model` option),
    `shown` (for prose), whether transformers loads it without the package (`remote_ready`) and under which name
    (`remote_ref`), and whether it ships ONNX graphs (`graphs`)."""
    from lmcodec.runtime import has_graphs

    if bundled:  # lmcodec.DEFAULT_CHECKPOINT: wherever the package is installed; the command line's default model
        ref, cli, shown = "lmcodec.DEFAULT_CHECKPOINT", "", "lmcodec.DEFAULT_CHECKPOINT"
    else:
        shown = repo_id or (str(folder) if folder else "path/to/checkpoint")
        ref, cli = json.dumps(shown), f" --model {shown}"
    remote_ready = carries_code(folder) if folder is not None else repo_id is not None
    return {"ref": ref, "cli": cli, "shown": shown, "remote_ready": remote_ready,
            "remote_ref": ref if remote_ready else '"NAMESPACE/NAME"',
            "graphs": bool(folder) and has_graphs(folder)}


def build_model_card(model, results: dict | None, facts: dict | None, *, repo_id: str | None = None,
                     folder: str | os.PathLike | None = None, tags: list[str] | None = None, bundled: bool = False):
    """The card of a loaded `model`; `results` and `facts` are already-parsed dicts (or None). `folder`: the files
    the card goes with (its file list, whether it carries code and ONNX graphs). The card's examples load `repo_id`,
    else `lmcodec.DEFAULT_CHECKPOINT` when `bundled`, else `folder`."""
    from huggingface_hub import ModelCard, ModelCardData

    import lmcodec

    config = model.config
    if results is not None:
        check_results_match(results, config)
    counts = parameter_counts(model)
    total = sum(value for _, value in counts)
    differences = architecture_differences(config)
    facts_random = bool(facts and facts.get("random_weights"))
    results_random = bool(results and results["metadata"].get("random_weights"))
    tiny = total < TINY_PARAMETERS or bool(facts and facts.get("test_model"))
    folder = Path(folder) if folder is not None else None
    usage = usage_context(folder, repo_id, bundled)

    warnings = []
    if facts_random:
        warnings.append("These weights are RANDOM (untrained): the decoded audio is not speech and the entropy coding "
                        "saves nothing.")
    if tiny:
        warnings.append(f"This is a tiny test model ({count(total)} parameters; {config.num_quantizers} levels × "
                        f"{config.codebook_size} codes, width {config.hidden_size}), not LMCodec's default "
                        "configuration: any numbers below are from a tiny test model and say nothing about LMCodec's "
                        "quality.")
    if results_random:
        warnings.append("The evaluation below ran on randomly initialised weights (results.json: random_weights): its "
                        "numbers do not measure a trained LMCodec.")

    status = []
    if facts_random:
        status.append("Weights: **random, untrained**.")
    elif facts:
        status.append("Weights: trained; the record of how is under Training below.")
    else:
        status.append("Weights: **no training record was supplied**, so nothing here says how (or whether) they were "
                      "trained.")
    if results is None:
        status.append("Evaluation: **none was run**; this card reports no measured quality, bitrate or speed.")
    else:
        meta = results["metadata"]
        status.append(f"Evaluation: `lmcodec evaluate` on {meta.get('num_files', '?')} utterances, "
                      f"{one_line(meta.get('date', 'date not recorded'))} (below).")
    status.append("Architecture: " + ("the default LMCodecConfig." if not differences else
                                      "differs from the default LMCodecConfig in " + ", ".join(differences) + "."))
    status.append(f"Code: lmcodec {lmcodec.__version__}.")

    corpora_keys, unknown = training_corpora(facts)
    corpora = [{"name": CORPORA[key].name, "licence": CORPORA[key].licence,
                "attribution": CORPORA[key].attribution} for key in corpora_keys]
    languages = sorted({language for key in corpora_keys for language in CORPORA[key].language},
                       key=lambda language: (language != "en", language)) or ["en"]
    datasets = [CORPORA[key].hub_id for key in corpora_keys if CORPORA[key].hub_id]
    evaluation = evaluation_section(results) if results is not None else None
    entries = eval_results(results) if results is not None and not results_random else []

    card_tags = list(TAGS) + (["random-weights"] if facts_random or results_random else []) + (
        ["test-model"] if tiny else []) + [tag for tag in tags or [] if tag not in TAGS]
    card_data = ModelCardData(
        model_name=(repo_id.split("/")[-1] if repo_id else "lmcodec"),
        license=(facts or {}).get("license") or DEFAULT_LICENSE,
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        language=languages,
        tags=card_tags,
        datasets=datasets or None,
        eval_results=entries or None,
    )
    parameters = ", ".join(f"{name} {count(value)}" for name, value in counts) + f"; {count(total)} in all"
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        title=f"LMCodec: {repo_id}" if repo_id else "LMCodec",
        usage=usage,
        introduction=introduction(config, results, usage["graphs"]),
        decoding=decoding_paragraph(config, fine_decoding_comparison(results, config) if results else None),
        headline=headline_section(results, config) if results is not None else None,
        warnings=warnings,
        status_lines=status,
        config=config_facts(config),
        operating_points=operating_points(config, results),
        parameters=parameters,
        evaluation=evaluation,
        training=training_section(facts) if facts else None,
        corpora=corpora,
        unknown_data=unknown,
        cite_librispeech="librispeech" in corpora_keys or bool(evaluation and evaluation["data_attribution"]),
        limitations=limitations(facts, results is not None, corpora_keys,
                                bool(getattr(config, "integer_entropy_model", False)), results, config.fine_decoding),
        bitrate_range=bitrate_range(config),
        files=file_list(folder, lmcodec.__version__, bool(getattr(config, "integer_entropy_model", False))),
    )


def render_model_card(checkpoint_dir: str | os.PathLike, results_json_path: str | os.PathLike | dict | None = None,
                      training_facts: dict | str | os.PathLike | None = None, *, repo_id: str | None = None,
                      tags: list[str] | None = None):
    """The `huggingface_hub.ModelCard` of the checkpoint in `checkpoint_dir`.

    `results_json_path`: the `results.json` of `lmcodec evaluate` on this checkpoint (a path or the parsed dict), or
    None: the checkpoint folder's `results.json` if there is one, else the card says no evaluation was run.
    `training_facts`: the dict described in this module's docstring (or a path to its JSON file); None: the
    checkpoint folder's `training_facts.json` if there is one. `repo_id` names the repository in the usage examples.
    Every number in the card comes from the config, the weights or results.json.
    """
    results = load_results(find_results(checkpoint_dir, results_json_path))
    facts = read_json(find_training_facts(checkpoint_dir, training_facts), "training facts")
    from lmcodec.loading import load_model

    model = load_model(checkpoint_dir)
    return build_model_card(model, results, facts, repo_id=repo_id, folder=checkpoint_dir, tags=tags)


__all__ = ["CORPORA", "Corpus", "build_model_card", "eval_results", "find_results", "find_training_facts",
           "load_results", "render_model_card"]
