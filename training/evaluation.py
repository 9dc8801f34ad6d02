"""`lmcodec evaluate DATA --model M --out DIR`: LMCodec against its ablations and reference codecs on real speech.

For every utterance of DATA (a folder of audio files, a dataset saved with `save_to_disk`, a folder or file of
Parquet shards, or a Hub dataset id with an audio column) it runs these systems, all scored at 16 kHz against the
original with PESQ-WB, STOI, DNSMOS (SIG / BAK / OVRL), mel distance and SI-SDR (the `evaluate` modules of
`lmcodec.training.metrics`):

- ``lmcodec``: the real byte path at each operating point of the checkpoint, `compress` then `decompress` with the
  checkpoint's default fine decoding (`config.fine_decoding`). kbps
  counts every byte of the coded file (header and packet framing included); the same audio is also compressed
  without entropy coding (raw 10-bit codes) to report that file's kbps too. Both files decode to the same audio.
- ``fine-decodings`` (ablation): the LMCodec stream of each operating point decoded with each fine-LM decoding that
  is not the checkpoint's default (`sample`, `greedy`, `expected`), to measure which sounds better; same bytes, same
  kbps.
- ``coarse-only`` (ablation): the same Nc coarse levels decoded by the codec alone, without the fine LM. It carries
  the same bits as the LMCodec row of that Nc, so it is given that row's kbps.
- ``all-levels`` (upper bound): all Nq levels decoded, i.e. a perfect fine LM. Its kbps is nominal (raw codes of
  every level); no operating point sends them.
- ``codec2`` / ``opus``: the reference codecs of `reference_codecs.py`, when their binaries are on PATH.
- the original itself, as the anchor row (PESQ 4.64, STOI 1; its DNSMOS is what the data can reach).

The real-time factor (RTF) of a system is its encode + decode wall time divided by the audio duration (for the
reference codecs: resampling, writing files and running the command-line tools included).

Outputs in `--out`: `results.json` (every number, per item too), `report.md`, `report.html` (a listening page),
the plots (`plots/*.png`) and the decoded audio of the first `--listen` utterances (`audio/<utterance>/<system>.wav`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from lmcodec.errors import LMCodecError
from lmcodec.threads import limit_threads

from .args import accept_underscore_spellings
from .metrics import SCORES
from .reference_codecs import FAMILIES, SAMPLING_RATE, CodedAudio, ReferenceCodec, find_reference_codecs, fit_length

SYSTEM_GROUPS = ("lmcodec", "fine-decodings", "coarse-only", "all-levels", *FAMILIES)
DECODING_TEXT = {"sample": "fine codes sampled by the fine LM (temperature 1, seed 0)",
                 "greedy": "the fine LM's most likely (greedy) fine codes",
                 "expected": "each fine level's probability-weighted mean codebook vector under the fine LM",
                 "coarse-only": "no fine LM: the decoder gets the sent levels alone"}
METRIC_MODULES = ("pesq", "stoi", "dnsmos", "mel_distance", "si_sdr")
# (key in results.json, label, higher is better), in table order.
METRICS = SCORES  # (key in results.json, label, higher is better), in table order
MIN_SECONDS = 0.25  # shorter utterances are skipped: PESQ and STOI cannot score them
DEFAULT_LISTEN = 3


# ---------------------------------------------------------------------------------------------------- systems
@dataclass
class System:
    """One row of the results: how to code an utterance, and what to call it."""

    name: str
    slug: str
    kind: str  # "original", "lmcodec", "ablation" or "reference"
    description: str
    code: Callable[[np.ndarray], CodedAudio]
    nominal_kbps: float | None = None
    num_coarse_quantizers: int | None = None


def timed(function: Callable[[], CodedAudio]) -> CodedAudio:
    """Call `function` and store its wall time in the result's `seconds`."""
    start = time.perf_counter()
    coded = function()
    coded.seconds = time.perf_counter() - start
    return coded


def code_lmcodec(model, levels: int, audio: np.ndarray, fine_decoding: str | None = None) -> CodedAudio:
    """The real byte path: compress (entropy-coded) and decompress, filling in the levels not sent as
    `fine_decoding` says (default: the checkpoint's); also the size of the raw-code file (untimed)."""

    def roundtrip() -> CodedAudio:
        data = model.compress(audio, sampling_rate=SAMPLING_RATE, num_coarse_quantizers=levels, entropy_coding=True)
        decoded, _ = model.decompress(data, fine_decoding=fine_decoding)
        return CodedAudio(fit_length(decoded, len(audio)), len(data))

    coded = timed(roundtrip)
    if fine_decoding is None:
        raw = model.compress(audio, sampling_rate=SAMPLING_RATE, num_coarse_quantizers=levels, entropy_coding=False)
        coded.num_bytes_without_entropy_coding = len(raw)
    return coded


def decode_levels(model, levels: int, audio: np.ndarray) -> CodedAudio:
    """Encode and decode from the first `levels` levels only (no fine LM): the ablations."""
    import torch

    def roundtrip() -> CodedAudio:
        samples = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).view(1, 1, -1)
        codes = model.encode(samples, num_quantizers=levels).audio_codes
        decoded = model.decode(codes, padding_mask=torch.ones(1, len(audio))).audio_values
        return CodedAudio(fit_length(decoded[0, 0].numpy(), len(audio)), None)

    return timed(roundtrip)


def original_system() -> System:
    return System("Original", "original", "original", "the input itself, 16 kHz (the anchor: what the data scores)",
                  lambda audio: CodedAudio(np.asarray(audio, dtype=np.float32), None, seconds=0.0))


def lmcodec_systems(model, groups: set[str]) -> list[System]:
    """LMCodec at each operating point, its coarse-only ablations and the all-levels upper bound."""
    config, systems = model.config, []
    for levels in config.operating_points:
        nominal = config.coarse_bitrate(levels) / 1000
        if "lmcodec" in groups:
            systems.append(System(
                f"LMCodec Nc={levels}", f"lmcodec-nc{levels}", "lmcodec",
                f"{levels} coarse levels range-coded with the entropy LM, the other {config.num_quantizers - levels} "
                f"filled in as the checkpoint's default ({DECODING_TEXT[config.fine_decoding]}); compress / "
                "decompress, all bytes counted",
                partial(code_lmcodec, model, levels), nominal, levels))
        if "fine-decodings" in groups:
            for decoding in ("sample", "greedy", "expected"):
                if decoding != config.fine_decoding:
                    systems.append(System(
                        f"LMCodec Nc={levels}, {decoding} fine codes" if decoding != "expected" else
                        f"LMCodec Nc={levels}, expected fine vectors", f"lmcodec-nc{levels}-{decoding}", "ablation",
                        f"ablation: the same stream decoded with {DECODING_TEXT[decoding]}",
                        partial(code_lmcodec, model, levels, fine_decoding=decoding), nominal, levels))
        if "coarse-only" in groups and config.fine_decoding != "coarse-only":  # else the LMCodec row is this
            systems.append(System(
                f"LMCodec Nc={levels}, coarse only", f"lmcodec-nc{levels}-coarse-only", "ablation",
                f"ablation: the same {levels} coarse levels decoded without the fine LM",
                partial(decode_levels, model, levels), nominal, levels))
    if "all-levels" in groups:
        levels = config.num_quantizers
        systems.append(System(
            f"LMCodec, all {levels} levels", "lmcodec-all-levels", "ablation",
            f"upper bound: all {levels} encoded levels decoded (a perfect fine LM); nominal raw-code kbps",
            partial(decode_levels, model, levels), config.coarse_bitrate(levels) / 1000, levels))
    return systems


def reference_system(codec: ReferenceCodec) -> System:
    return System(codec.name, codec.slug, "reference", codec.description,
                  lambda audio: timed(lambda: codec.code(audio)), codec.nominal_kbps)


def build_systems(model, groups) -> tuple[list[System], list[str]]:
    """(the original, then every requested system that can run here; one line per missing reference codec)."""
    groups = set(groups)
    codecs, missing = find_reference_codecs([family for family in FAMILIES if family in groups])
    systems = [original_system(), *lmcodec_systems(model, groups), *map(reference_system, codecs)]
    return systems, missing


# ---------------------------------------------------------------------------------------------------- data
def choose_split(dataset, split: str | None, data: str):
    """One split of a DatasetDict: `split`, else "test", else the only one."""
    import datasets

    if not isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return dataset
    names = list(dataset.keys())
    if split:
        if split not in dataset:
            raise LMCodecError(f"{data} has no split {split!r} (splits: {', '.join(names)}); pass --split.")
        return dataset[split]
    if "test" in dataset or len(names) == 1:
        return dataset["test" if "test" in dataset else names[0]]
    raise LMCodecError(f"{data} has the splits {', '.join(names)}; choose one with --split.")


def open_dataset(data: str, split: str | None, audio_column: str):
    """DATA → a `datasets` dataset whose audio column is `Audio(decode=False)` (decoded later with soundfile)."""
    import datasets

    from .data import load_audio_dataset

    path = Path(data)
    try:
        if path.is_dir() and any((path / name).is_file() for name in ("state.json", "dataset_dict.json")):
            dataset = choose_split(datasets.load_from_disk(str(path)), split, data)
        elif path.is_dir() or path.suffix == ".parquet":
            return load_audio_dataset(str(path), split=split or "test", audio_column=audio_column)
        elif path.exists():
            raise LMCodecError(f"DATA {data} is a file; pass a folder of audio files, a saved or Parquet dataset, or "
                               "a Hub dataset id.")
        else:
            dataset = choose_split(datasets.load_dataset(data, split=split), split, data)
        return load_audio_dataset(dataset, audio_column=audio_column)
    except LMCodecError:
        raise
    except Exception as error:  # noqa: BLE001 - datasets raises many types; the user needs one line
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LMCodecError(f"cannot open DATA {data}: {detail}") from None


def utterance_name(row: dict, value, index: int) -> str:
    """A file-system-safe name for an item: its file name without extension, an id column, or its index."""
    path = value.get("path") if isinstance(value, dict) else None
    raw = Path(path).stem if path else str(row.get("id") or row.get("path") or "")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._")[:80]
    return name or f"item{index:04d}"


def utterances(dataset, audio_column: str, max_files: int | None,
               max_seconds: float | None) -> Iterator[tuple[str, np.ndarray]]:
    """(unique name, 16 kHz mono float32 audio) of the first `max_files` items, each cut to `max_seconds`."""
    from .data import decode_audio

    seen: set[str] = set()
    for index, row in enumerate(dataset):
        if max_files is not None and index >= max_files:
            return
        value = row[audio_column]
        name = utterance_name(row, value, index)
        name = name if name not in seen else f"{name}-{index}"
        seen.add(name)
        try:
            audio = decode_audio(value, max_seconds=max_seconds)
        except Exception as error:  # noqa: BLE001 - soundfile raises several types
            raise LMCodecError(f"cannot decode item {index} ({name}) of DATA: {str(error).splitlines()[0]}") from None
        if len(audio) < MIN_SECONDS * SAMPLING_RATE:
            print(f"lmcodec: skipping {name}: shorter than {MIN_SECONDS} s", file=sys.stderr)
            continue
        yield name, audio


def count_items(dataset, max_files: int | None) -> int | None:
    total = len(dataset) if hasattr(dataset, "__len__") else None
    return min(total, max_files) if total is not None and max_files is not None else (total or max_files)


# ---------------------------------------------------------------------------------------------------- scoring
def load_scorers(names) -> dict:
    import evaluate

    from lmcodec import metric_path

    return {name: evaluate.load(metric_path(name)) for name in names}


def score(scorers: dict, reference: np.ndarray, predictions: list[np.ndarray]) -> dict[str, list[float]]:
    """Scores of each prediction against `reference`: {metric key: [score per prediction]}."""
    scores, references = {}, [reference] * len(predictions)
    for name, module in scorers.items():
        if name == "dnsmos":
            result = module.compute(predictions=predictions)
            scores.update({f"dnsmos_{part}": result[f"{part}_per_item"] for part in ("sig", "bak", "ovrl")})
        else:
            options = {"on_error": "nan"} if name == "pesq" else {}
            scores[name] = module.compute(predictions=predictions, references=references, **options)[
                f"{name}_per_item"]
    return scores


def finite(value: float | None) -> float | None:
    """A JSON-safe number: NaN and infinities become None."""
    return float(value) if value is not None and math.isfinite(value) else None


def mean(values: list) -> float | None:
    valid = [value for value in values if value is not None]
    return float(np.mean(valid)) if valid else None


@dataclass
class Tally:
    """Everything measured for one system, item by item."""

    num_bytes: list = field(default_factory=list)
    num_bytes_without_entropy_coding: list = field(default_factory=list)
    elapsed: list = field(default_factory=list)
    scores: dict = field(default_factory=dict)

    def add(self, coded: CodedAudio, scores: dict[str, float]) -> None:
        self.num_bytes.append(coded.num_bytes)
        self.num_bytes_without_entropy_coding.append(coded.num_bytes_without_entropy_coding)
        self.elapsed.append(coded.seconds)
        for key, value in scores.items():
            self.scores.setdefault(key, []).append(finite(value))


@lru_cache(maxsize=1)
def bitrate_metric():
    return load_scorers(["bitrate"])["bitrate"]


def kbps(num_bytes: list, durations: list[float]) -> tuple[float | None, list]:
    """(kbps of all bytes over all audio, kbps per item), with the project's bitrate metric; None without bytes."""
    if not num_bytes or any(size is None for size in num_bytes):
        return None, []
    result = bitrate_metric().compute(num_bytes=num_bytes, durations=durations)
    return result["kbps"], result["kbps_per_item"]


def system_result(system: System, tally: Tally, durations: list[float]) -> dict:
    measured, per_item = kbps(tally.num_bytes, durations)
    without_entropy, _ = kbps(tally.num_bytes_without_entropy_coding, durations)
    row = {
        "name": system.name,
        "slug": system.slug,
        "kind": system.kind,
        "description": system.description,
        "num_coarse_quantizers": system.num_coarse_quantizers,
        "kbps": measured if measured is not None else system.nominal_kbps,
        "kbps_source": "measured: all bytes of the coded files" if measured is not None else (
            "nominal: raw codes" if system.nominal_kbps is not None else None),
        "nominal_kbps": system.nominal_kbps,
        "kbps_per_item": per_item,
        "rtf": sum(tally.elapsed) / sum(durations) if system.kind != "original" else None,
        "metrics": {key: mean(values) for key, values in tally.scores.items()},
        "per_item": tally.scores,
    }
    if system.kind == "lmcodec":
        row["kbps_without_entropy_coding"] = without_entropy
    return row


def link_ablation_bitrates(rows: list[dict]) -> None:
    """A coarse-only ablation decodes the same bits as the LMCodec row of its Nc: give it that row's kbps."""
    sent = {row["num_coarse_quantizers"]: row for row in rows if row["kind"] == "lmcodec"}
    for row in rows:
        source = sent.get(row["num_coarse_quantizers"])
        if row["slug"].endswith("coarse-only") and source is not None:
            row["kbps"] = source["kbps"]
            row["kbps_source"] = f"the bytes of {source['name']} (same coarse codes, decoded without the fine LM)"


# ---------------------------------------------------------------------------------------------------- outputs
def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def save_listening_audio(out: Path, name: str, coded: dict[str, CodedAudio]) -> dict[str, str]:
    """Write every system's audio of one utterance to audio/<name>/<slug>.wav; {slug: path relative to out}."""
    from lmcodec.processing import write_audio

    folder = out / "audio" / name
    folder.mkdir(parents=True, exist_ok=True)
    for slug, result in coded.items():
        write_audio(folder / f"{slug}.wav", result.audio, SAMPLING_RATE, subtype="PCM_16")
    return {slug: f"audio/{name}/{slug}.wav" for slug in coded}


def write_json(path: Path, data: dict) -> None:
    from lmcodec.processing.files import write_bytes_atomically

    write_bytes_atomically(str(path), (json.dumps(data, indent=1, allow_nan=False) + "\n").encode())


def prepare_output(out: str) -> Path:
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LMCodecError(f"cannot create --out folder {folder}: {error.strerror}.") from None
    if not os.access(folder, os.W_OK):
        raise LMCodecError(f"--out folder {folder} is not writable (choose another location).")
    return folder


# ---------------------------------------------------------------------------------------------------- the run
def code_and_score(systems: list[System], scorers: dict, out: Path, name: str, audio: np.ndarray,
                   listen: bool) -> tuple[dict[str, tuple[CodedAudio, dict]], dict[str, str]]:
    """Code one utterance with every system and score the results: ({slug: (coded, without its audio), {metric:
    score}}, the listening files written when `listen`)."""
    coded = {system.slug: system.code(audio) for system in systems}
    scores = score(scorers, audio, [result.audio for result in coded.values()])
    files = save_listening_audio(out, name, coded) if listen else {}
    measured = {slug: (replace(result, audio=None), {key: values[position] for key, values in scores.items()})
                for position, (slug, result) in enumerate(coded.items())}
    return measured, files


_WORKER: dict = {}  # what a worker process of `--jobs` holds: its own model, systems and scorers


def start_worker(model_path: str | None, groups: list[str], metrics: list[str], threads: int, out: str) -> None:
    """Initializer of a `--jobs` worker process: one thread budget, its own model, systems and scorers."""
    import torch  # noqa: F401 - loaded first, so that limit_threads sets its pool too

    from lmcodec.loading import load_model

    limit_threads(threads)
    model = load_model(model_path)
    _WORKER.update(systems=build_systems(model, groups)[0], scorers=load_scorers(metrics), out=Path(out))


def worker_code_and_score(name: str, audio: np.ndarray, listen: bool):
    return code_and_score(_WORKER["systems"], _WORKER["scorers"], _WORKER["out"], name, audio, listen)


def evaluate_all(systems: list[System], items: Iterator, scorers: dict, out: Path, listen: int,
                 total: int | None, jobs: int = 1, worker_args: tuple = ()) -> tuple[dict[str, Tally], list[dict]]:
    """Code and score every utterance with every system, with a progress bar on stderr. With `jobs` > 1 the
    utterances are shared among that many worker processes, each started by `start_worker(*worker_args)` with its
    own model; the results keep DATA's order and equal a one-process run's (RTF aside)."""
    from tqdm.auto import tqdm

    tallies = {system.slug: Tally() for system in systems}
    described = []

    def absorb(name: str, audio_seconds: float, measured: dict, files: dict) -> None:
        for slug, (coded, scores) in measured.items():
            tallies[slug].add(coded, scores)
        described.append({"name": name, "seconds": audio_seconds, "audio": files})
        bar.update(1)

    with tqdm(total=total, unit="utt", desc="evaluating", file=sys.stderr, dynamic_ncols=True) as bar:
        if jobs == 1:
            for index, (name, audio) in enumerate(items):
                bar.set_postfix_str(name, refresh=True)
                absorb(name, len(audio) / SAMPLING_RATE, *code_and_score(systems, scorers, out, name, audio,
                                                                         index < listen))
            return tallies, described
        import multiprocessing
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=start_worker, initargs=worker_args) as pool:
            pending = deque()  # at most 2 utterances per worker in flight, absorbed in DATA's order
            for index, (name, audio) in enumerate(items):
                pending.append((name, len(audio) / SAMPLING_RATE,
                                pool.submit(worker_code_and_score, name, audio, index < listen)))
                if len(pending) >= 2 * jobs:
                    name, seconds, future = pending.popleft()
                    absorb(name, seconds, *future.result())
            while pending:
                name, seconds, future = pending.popleft()
                absorb(name, seconds, *future.result())
    return tallies, described


def check_arguments(args) -> None:
    """One-line errors for numeric options out of range."""
    for option, value, least in (("--max-files", args.max_files, 1), ("--listen", args.listen, 0),
                                 ("--threads", args.threads, 1), ("--jobs", args.jobs, 1)):
        if value is not None and value < least:
            raise LMCodecError(f"{option} must be at least {least}, got {value}.")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise LMCodecError(f"--max-seconds must be a positive number of seconds, got {args.max_seconds}.")


def run(args) -> int:
    import torch  # noqa: F401 - loaded first, so that limit_threads sets its pool too

    from lmcodec.loading import describe_source, load_model

    check_arguments(args)
    limit_threads(args.threads)
    dataset = open_dataset(args.data, args.split, args.audio_column)
    model, weights = load_model(args.model), describe_source(args.model)
    out = prepare_output(args.out)
    systems, missing = build_systems(model, args.systems)
    for line in missing:
        print(f"lmcodec: {line}", file=sys.stderr)
    items = utterances(dataset, args.audio_column, args.max_files, args.max_seconds)
    scorers = load_scorers(args.metrics) if args.jobs == 1 else {}  # with --jobs, each worker loads its own
    tallies, described = evaluate_all(systems, items, scorers, out, args.listen,
                                      count_items(dataset, args.max_files), args.jobs,
                                      (args.model, list(args.systems), list(args.metrics), args.threads, str(out)))
    if not described:
        raise LMCodecError(f"DATA {args.data} gave no utterances to evaluate (empty, or all shorter than "
                           f"{MIN_SECONDS} s).")
    durations = [item["seconds"] for item in described]
    rows = [system_result(system, tallies[system.slug], durations) for system in systems]
    link_ablation_bitrates(rows)
    results = {"metadata": metadata(args, weights, model, durations, missing), "systems": rows,
               "utterances": described}
    write_json(out / "results.json", results)
    from .report import markdown_table, write_report

    written = write_report(results, out)
    print(markdown_table(results))
    print(f"\nweights: {weights}")
    print(f"wrote {out / 'results.json'}, " + ", ".join(str(path) for path in written))
    return 0


def metadata(args, weights: str, model, durations: list[float], missing: list[str]) -> dict:
    return {
        "model": weights,
        "model_path": args.model,
        "operating_points": list(model.config.operating_points),
        "default_operating_point": model.config.num_coarse_quantizers,
        "num_quantizers": model.config.num_quantizers,
        "data": args.data,
        "split": args.split,
        "num_files": len(durations),
        "total_seconds": float(sum(durations)),
        "max_seconds": args.max_seconds,
        "metrics": list(args.metrics),
        "systems_requested": list(args.systems),
        "missing_reference_codecs": missing,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "jobs": args.jobs,
        "notes": [
            "kbps = all bytes of each coded file x 8 / audio duration, summed over the utterances",
            "LMCodec files include the 41-byte header and packet framing; Opus files include the Ogg container "
            "(page headers, OpusHead, OpusTags); Codec2 files are headerless with each frame padded to whole bytes",
            "coarse-only ablations carry the bits of the LMCodec row with the same Nc; the all-levels upper bound's "
            "kbps is nominal (raw codes of every level)",
            "RTF = encode + decode wall time / audio duration, torch threads as listed under machine (per process; "
            "`jobs` processes coded utterances at the same time); the reference codecs' RTF includes resampling, "
            "file I/O and process start-up",
        ],
    }


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `lmcodec evaluate`."""
    add = parser.add_argument
    add("data", metavar="DATA", help="a folder of audio files, a dataset saved with save_to_disk, a Parquet folder or "
                                     "file, or a Hugging Face dataset id with an audio column")
    add("--model", metavar="M", help="checkpoint folder or Hugging Face repo id (default: the bundled trained checkpoint, "
                                     "lmcodec.DEFAULT_CHECKPOINT)")
    add("--out", required=True, metavar="DIR",
        help="output folder (created): results.json, report.md, report.html, plots/, audio/")
    add("--max-files", type=int, metavar="N", help="evaluate at most N utterances (default: all)")
    add("--max-seconds", type=float, metavar="S", help="cut each utterance to its first S seconds (default: whole)")
    add("--systems", nargs="+", choices=SYSTEM_GROUPS, default=list(SYSTEM_GROUPS), metavar="SYSTEM",
        help="systems to run besides the original (default: all): " + ", ".join(SYSTEM_GROUPS))
    add("--metrics", nargs="+", choices=METRIC_MODULES, default=list(METRIC_MODULES), metavar="METRIC",
        help="metrics to compute (default: all): " + ", ".join(METRIC_MODULES) + "; dnsmos is the slowest")
    add("--listen", type=int, default=DEFAULT_LISTEN, metavar="N",
        help=f"utterances whose decoded audio goes into the listening page (default: {DEFAULT_LISTEN})")
    add("--split", metavar="NAME", help="dataset split (default: test, else the only split)")
    add("--audio-column", default="audio", metavar="NAME", help="the dataset's audio column (default: audio)")
    add("--threads", type=int, default=1, metavar="N",
        help="threads per process: torch, BLAS and onnxruntime (DNSMOS too) (default: 1)")
    add("--jobs", type=int, default=1, metavar="N",
        help="worker processes sharing the utterances, each with its own model (default: 1; the scores do not "
             "change, the RTF is then measured with N processes competing for the machine)")
    parser.set_defaults(handler=run)
    return accept_underscore_spellings(parser)


def main(argv: list[str] | None = None) -> int:
    """`python -m lmcodec.training.evaluation ...`: the same as `lmcodec evaluate ...`."""
    from lmcodec.console import run_subcommand_module

    return run_subcommand_module(add_arguments, "lmcodec evaluate", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
