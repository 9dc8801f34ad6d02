"""LibriLight-layout folder → Parquet shards that `datasets.load_dataset("parquet", ...)` reads.

Input layout (LibriLight: https://github.com/facebookresearch/libri-light): ``ROOT/SPLIT/SPEAKER_ID/BOOK/*.flac``,
each file optionally with a ``.json`` of metadata beside it. ``ROOT`` may also be a single split folder
(``SPEAKER_ID/BOOK/*.flac``), which then gets the split name `split_name`.

Output: ``OUTPUT/data/{split}-{i:05d}-of-{n:05d}.parquet`` with columns
  - ``audio``: struct ``{bytes, path}`` holding FLAC bytes, with `datasets.Audio` feature metadata in the schema, so
    `load_dataset("parquet", data_dir=OUTPUT)` sees an audio column (decode it with soundfile, or cast it to
    `Audio(decode=False)` to get the bytes without torchcodec);
  - ``speaker_id``, ``book``, ``path`` (source file relative to ROOT), ``start`` and ``duration`` (seconds),
    ``metadata`` (the source's ``.json`` as text, or null).
Unsegmented FLAC files are embedded byte for byte; with `max_segment_seconds` long files are cut at low-energy points
into segments of at most that length, each re-encoded as FLAC with soundfile.

Shards are planned from the file sizes before anything is written, so the plan is the same on every run: a shard
that exists is skipped, and each shard is written to a temporary name and renamed when complete, so an interrupted
run resumes where it stopped.

    python training/prepare_librilight.py --input-dir data/librilight --output-dir data/librilight-parquet \
        --max-segment-seconds 30 --shard-size-mb 500 --num-workers 8
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

SHARD_PATTERN = "{split}-{index:05d}-of-{total:05d}.parquet"


@dataclass
class PrepareArguments:
    input_dir: str = field(metadata={"help": "LibriLight root (SPLIT/SPEAKER/BOOK/*.flac) or one split folder."})
    output_dir: str = field(metadata={"help": "Where OUTPUT/data/{split}-XXXXX-of-YYYYY.parquet are written."})
    splits: str | None = field(default=None, metadata={"help": "Comma-separated split folders to include (all)."})
    split_name: str = field(default="train", metadata={"help": "Split name when input_dir is itself one split."})
    shard_size_mb: float = field(default=500.0, metadata={"help": "Target shard size (planned from file sizes)."})
    max_segment_seconds: float | None = field(
        default=None, metadata={"help": "Cut longer files at low-energy points into segments of at most this."}
    )
    min_segment_seconds: float = field(
        default=1.0, metadata={"help": "Cuts leave every segment but a file's last at least this long."}
    )
    extensions: str = field(default=".flac", metadata={"help": "Comma-separated audio extensions to collect."})
    num_workers: int = field(default=1, metadata={"help": "Shards written in parallel processes."})
    row_group_size: int = field(default=64, metadata={"help": "Rows per Parquet row group."})


@dataclass
class SourceFile:
    path: str  # absolute
    relative: str  # to the input root
    split: str
    speaker_id: str
    book: str
    size: int


# ---------------------------------------------------------------------------------------------------- discovery
def find_librilight_files(input_dir: str | os.PathLike, splits: list[str] | None = None, split_name: str = "train",
                          extensions: tuple[str, ...] = (".flac",)) -> list[SourceFile]:
    """All audio files under `input_dir` in LibriLight layout, sorted by split then relative path.

    A file at ``SPLIT/SPEAKER/BOOK/name.flac`` (relative to `input_dir`) belongs to SPLIT; one at
    ``SPEAKER/BOOK/name.flac`` to `split_name`. Files at other depths are ignored with a warning.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"LibriLight folder not found: {root} (pass the folder holding SPLIT/SPEAKER/BOOK).")
    files, ignored = [], 0
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix.lower() not in extensions:
            continue
        parts = path.relative_to(root).parts
        if len(parts) == 4:
            split, speaker, book = parts[0], parts[1], parts[2]
        elif len(parts) == 3:
            split, speaker, book = split_name, parts[0], parts[1]
        else:
            ignored += 1
            continue
        if splits and split not in splits:
            continue
        files.append(SourceFile(str(path.absolute()), path.relative_to(root).as_posix(), split, speaker, book,
                                path.stat().st_size))
    if ignored:
        logger.warning("ignored %d audio files not at SPLIT/SPEAKER/BOOK/file or SPEAKER/BOOK/file", ignored)
    return sorted(files, key=lambda f: (f.split, f.relative))


def plan_shards(files: list[SourceFile], shard_size_mb: float) -> dict[str, list[list[SourceFile]]]:
    """Group each split's files (in order) into shards of about `shard_size_mb` of source audio."""
    limit = max(shard_size_mb, 1e-6) * 1024 * 1024
    plan: dict[str, list[list[SourceFile]]] = defaultdict(list)
    for file in files:
        shards = plan[file.split]
        if not shards or (shards[-1] and sum(f.size for f in shards[-1]) + file.size > limit):
            shards.append([])
        shards[-1].append(file)
    return dict(plan)


# ---------------------------------------------------------------------------------------------------- segmentation
def low_energy_cuts(audio: np.ndarray, sampling_rate: int, max_seconds: float,
                    min_seconds: float = 1.0) -> list[tuple[int, int]]:
    """Cut mono `audio` into `(start, end)` sample ranges of at most `max_seconds`, at low-energy points.

    Each cut is placed at the quietest 20 ms frame (energy smoothed over 100 ms, later frames winning ties) between
    `min_seconds` and `max_seconds` after the previous cut, so every segment but the last is at least `min_seconds`
    long and no segment is longer than `max_seconds`.
    """
    total = audio.shape[0]
    max_len = int(max_seconds * sampling_rate)
    if max_len <= 0:
        raise ValueError(f"max_segment_seconds must be positive, got {max_seconds}.")
    if total <= max_len:
        return [(0, total)]
    min_len = min(int(min_seconds * sampling_rate), max_len // 2)
    frame = max(1, sampling_rate // 50)
    frames = total // frame
    energy = (audio[: frames * frame].astype(np.float64).reshape(frames, frame) ** 2).mean(axis=1)
    smooth = np.convolve(energy, np.ones(5) / 5, mode="same") if frames >= 5 else energy
    cuts, start = [], 0
    while total - start > max_len:
        first = (start + min_len + frame - 1) // frame  # frames whose centre lies in [start+min, start+max]
        last = (start + max_len) // frame - 1
        if last >= first:
            window = smooth[first : last + 1]
            best = first + int(len(window) - 1 - np.argmin(window[::-1]))
            cut = best * frame + frame // 2
            cut = min(max(cut, start + min_len), start + max_len)
        else:
            cut = start + max_len
        cuts.append((start, cut))
        start = cut
    cuts.append((start, total))
    return cuts


# ---------------------------------------------------------------------------------------------------- writing
def _features():
    from datasets import Audio, Features, Value

    return Features({
        "audio": Audio(),
        "speaker_id": Value("string"),
        "book": Value("string"),
        "path": Value("string"),
        "start": Value("float32"),
        "duration": Value("float32"),
        "metadata": Value("string"),
    })


def _read_metadata(path: str) -> str | None:
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return None
    text = sidecar.read_text(encoding="utf-8")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)
    except json.JSONDecodeError:
        logger.warning("metadata %s is not valid JSON; stored as text", sidecar)
        return text


def _encode_flac(audio: np.ndarray, sampling_rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sampling_rate, format="FLAC", subtype=subtype)
    return buffer.getvalue()


def file_rows(file: SourceFile, max_segment_seconds: float | None, min_segment_seconds: float) -> list[dict]:
    """The rows of one source file: the original bytes, or one re-encoded FLAC per segment."""
    info = sf.info(file.path)
    duration = info.frames / info.samplerate
    metadata = _read_metadata(file.path)
    base = {"speaker_id": file.speaker_id, "book": file.book, "path": file.relative, "metadata": metadata}
    if (max_segment_seconds is None or duration <= max_segment_seconds) and info.format == "FLAC":
        data = Path(file.path).read_bytes()
        return [dict(base, audio={"bytes": data, "path": Path(file.relative).name}, start=0.0, duration=duration)]
    audio, rate = sf.read(file.path, dtype="float32", always_2d=True)
    subtype = info.subtype if info.subtype in ("PCM_16", "PCM_24", "PCM_S8") else "PCM_16"
    mono = audio.mean(axis=1)
    spans = [(0, audio.shape[0])] if max_segment_seconds is None else low_energy_cuts(
        mono, rate, max_segment_seconds, min_segment_seconds)
    rows, stem = [], Path(file.relative).stem
    for number, (begin, end) in enumerate(spans):
        name = f"{stem}_{number:04d}.flac" if len(spans) > 1 else f"{stem}.flac"
        rows.append(dict(base, audio={"bytes": _encode_flac(audio[begin:end], rate, subtype), "path": name},
                         start=begin / rate, duration=(end - begin) / rate))
    return rows


def write_shard(files: list[SourceFile], destination: str, max_segment_seconds: float | None,
                min_segment_seconds: float = 1.0, row_group_size: int = 64) -> str:
    """Write the rows of `files` to the Parquet file `destination` atomically (temporary name, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = _features()
    rows = [row for file in files for row in file_rows(file, max_segment_seconds, min_segment_seconds)]
    columns = {name: [row[name] for row in rows] for name in features}
    table = pa.Table.from_pydict(columns, schema=features.arrow_schema)
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features.to_dict()}})})
    destination = Path(destination)
    temporary = destination.with_name(f".{destination.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, temporary, row_group_size=row_group_size)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return str(destination)


def prepare_librilight(input_dir: str | os.PathLike, output_dir: str | os.PathLike, splits: list[str] | None = None,
                       split_name: str = "train", shard_size_mb: float = 500.0,
                       max_segment_seconds: float | None = None, min_segment_seconds: float = 1.0,
                       extensions: tuple[str, ...] = (".flac",), num_workers: int = 1,
                       row_group_size: int = 64) -> dict[str, list[str]]:
    """Convert a LibriLight-layout folder to Parquet shards; returns {split: [shard paths]}.

    Existing shards are kept (resume); leftovers of interrupted writes are removed.
    """
    files = find_librilight_files(input_dir, splits, split_name, extensions)
    if not files:
        raise FileNotFoundError(f"no {'/'.join(extensions)} files in LibriLight layout under {input_dir}.")
    data_dir = Path(output_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for leftover in data_dir.glob(".*.parquet.tmp-*"):
        leftover.unlink(missing_ok=True)
    plan = plan_shards(files, shard_size_mb)
    outputs: dict[str, list[str]] = {}
    jobs = []
    for split, shards in plan.items():
        outputs[split] = []
        for index, shard in enumerate(shards):
            path = data_dir / SHARD_PATTERN.format(split=split, index=index, total=len(shards))
            outputs[split].append(str(path))
            if path.exists():
                logger.info("skipping %s (already written)", path.name)
                continue
            jobs.append((shard, str(path)))
    logger.info("%d files, %d shards to write, %d already done", len(files), len(jobs),
                sum(map(len, outputs.values())) - len(jobs))
    arguments = [(shard, path, max_segment_seconds, min_segment_seconds, row_group_size) for shard, path in jobs]
    if num_workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            for written in pool.map(_write_shard_job, arguments):
                logger.info("wrote %s", written)
    else:
        for job in arguments:
            logger.info("wrote %s", _write_shard_job(job))
    return outputs


def _write_shard_job(arguments: tuple) -> str:
    return write_shard(*arguments)


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = HfArgumentParser(PrepareArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    try:
        outputs = prepare_librilight(
            args.input_dir,
            args.output_dir,
            splits=[s for s in args.splits.split(",") if s] if args.splits else None,
            split_name=args.split_name,
            shard_size_mb=args.shard_size_mb,
            max_segment_seconds=args.max_segment_seconds,
            min_segment_seconds=args.min_segment_seconds,
            extensions=tuple(e if e.startswith(".") else f".{e}" for e in args.extensions.split(",") if e),
            num_workers=args.num_workers,
            row_group_size=args.row_group_size,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for split, shards in outputs.items():
        print(f"{split}: {len(shards)} shards in {Path(args.output_dir) / 'data'}")
    return 0


__all__ = [
    "PrepareArguments",
    "SourceFile",
    "file_rows",
    "find_librilight_files",
    "low_energy_cuts",
    "main",
    "plan_shards",
    "prepare_librilight",
    "write_shard",
]

if __name__ == "__main__":
    sys.exit(main())
