"""The dataset card of Parquet shards written by `training/prepare_librilight.py`, measured from the shards.

    card = render_dataset_card("data/librilight-parquet", repo_id="me/librilight-flac",
                               command="python training/prepare_librilight.py --input_dir ... --output_dir ...")
    card.save("data/librilight-parquet/README.md")

Rows, hours, speakers, books and sizes are counted from the shards' small columns (the audio column is not read,
except the header of each shard's first item for its sampling rate); the licence and attribution come from
`model_card.CORPORA`.
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from lmcodec.errors import LMCodecError

from .model_card import CORPORA, duration, template_path

TEMPLATE = "dataset_card.md"
SHARD_NAME = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")
COLUMNS = ("audio", "speaker_id", "book", "path", "start", "duration", "metadata")
HUB_LICENSES = {"librilight": "cc-by-4.0", "librispeech": "cc-by-4.0"}  # the others are "other"


def find_shards(shards_dir: str | os.PathLike) -> dict[str, list[Path]]:
    """{split: shard paths} of `OUTPUT/data/{split}-XXXXX-of-YYYYY.parquet` (or of the folder itself)."""
    folder = Path(shards_dir)
    if not folder.is_dir():
        raise LMCodecError(f"shards folder not found: {folder} (pass the --output_dir of prepare_librilight.py).")
    data = folder / "data" if (folder / "data").is_dir() else folder
    splits: dict[str, list[Path]] = {}
    for path in sorted(data.glob("*.parquet")):
        match = SHARD_NAME.match(path.name)
        if match:
            splits.setdefault(match["split"], []).append(path)
    if not splits:
        raise LMCodecError(f"no shards named SPLIT-XXXXX-of-YYYYY.parquet in {data} (write them with "
                           "training/prepare_librilight.py).")
    return splits


def size_text(num_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} B"


def size_category(rows: int) -> str:
    """The Hub's `size_categories` value for a number of rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if rows < limit:
            return name
    return "1B<n<10B"


def first_sampling_rate(path: Path) -> int | None:
    """The sampling rate of the first item of a shard, from its FLAC header; None when it cannot be read."""
    import pyarrow.parquet as pq
    import soundfile as sf

    try:
        shard = pq.ParquetFile(path)
        if shard.metadata.num_rows == 0:
            return None
        value = shard.read_row_group(0, columns=["audio"]).column("audio")[0].as_py()
        return sf.info(io.BytesIO(value["bytes"])).samplerate if value and value.get("bytes") else None
    except Exception:  # noqa: BLE001 - a statistic for the card, never a reason to fail
        return None


def split_statistics(name: str, shards: list[Path]) -> dict:
    """Counts of one split, from its shards' small columns."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows, seconds, speakers, books, size, segmented = 0, 0.0, set(), set(), 0, 0
    rates = set()
    for path in shards:
        try:
            schema = pq.read_schema(path)
            missing = [column for column in COLUMNS if column not in schema.names]
            if missing:
                raise LMCodecError(f"{path} lacks the column(s) {', '.join(missing)}: it was not written by "
                                   "prepare_librilight.py.")
            table = pq.read_table(path, columns=["speaker_id", "book", "start", "duration"])
        except LMCodecError:
            raise
        except Exception as error:  # noqa: BLE001 - pyarrow raises several types for damaged files
            raise LMCodecError(f"cannot read shard {path}: {str(error).splitlines()[0]}") from None
        rows += table.num_rows
        seconds += float(pc.sum(table.column("duration")).as_py() or 0.0)
        segmented += int(pc.sum(pc.greater(table.column("start"), 0)).as_py() or 0)
        speakers.update(table.column("speaker_id").to_pylist())
        books.update(table.column("book").to_pylist())
        size += path.stat().st_size
        rate = first_sampling_rate(path)
        if rate:
            rates.add(rate)
    return {"name": name, "shards": len(shards), "rows": f"{rows:,}", "num_rows": rows, "audio": duration(seconds),
            "seconds": seconds, "speakers": f"{len(speakers):,}", "books": f"{len(books):,}", "size": size_text(size),
            "segmented": segmented, "rates": rates}


def render_dataset_card(shards_dir: str | os.PathLike, *, repo_id: str | None = None, pretty_name: str | None = None,
                        command: str | None = None, corpus: str = "librilight", description: str | None = None,
                        tags: list[str] | None = None):
    """The `huggingface_hub.DatasetCard` of the Parquet shards in `shards_dir` (the `--output_dir` of
    `prepare_librilight.py`, or its `data/` folder).

    `command`: the exact `prepare_librilight.py` command that made the shards (shown as is); `corpus`: the key of the
    source corpus in `model_card.CORPORA` (its licence and attribution go into the card); `repo_id`: the dataset
    repository the usage example loads.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    if corpus not in CORPORA:
        raise LMCodecError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}.")
    source = CORPORA[corpus]
    shards = find_shards(shards_dir)
    splits = [split_statistics(name, paths) for name, paths in shards.items()]
    total_rows = sum(split["num_rows"] for split in splits)
    rates = sorted({rate for split in splits for rate in split["rates"]})
    segmented = sum(split["segmented"] for split in splits)
    segments_line = (f"{segmented:,} of the {total_rows:,} rows start after the beginning of their source file: long "
                     "files were cut into segments." if segmented else
                     "Every row starts at the beginning of its source file (no file was cut, or each cut file's first "
                     "segment only).")
    name = pretty_name or f"{source.name} (Parquet, FLAC)"
    card_data = DatasetCardData(
        pretty_name=name,
        license=HUB_LICENSES.get(corpus, "other"),
        language=list(source.language),
        task_categories=["audio-to-audio"],
        size_categories=[size_category(total_rows)],
        tags=["audio", "speech", "parquet", "flac", corpus, "lmcodec", *(tags or [])],
        configs=[{"config_name": "default",
                  "data_files": [{"split": split["name"], "path": f"data/{split['name']}-*"} for split in splits]}],
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path(TEMPLATE)),
        title=name,
        description=description,
        corpus={"name": source.name, "licence": source.licence, "attribution": source.attribution},
        corpus_key=corpus,
        splits=splits,
        sampling_rates=", ".join(f"{rate} Hz" for rate in rates),
        segments_line=segments_line,
        repo_id=repo_id or "your-name/your-dataset",
        first_split="train" if "train" in shards else max(splits, key=lambda split: split["num_rows"])["name"],
        command=command.strip() if command else None,
        written=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    )


__all__ = ["find_shards", "render_dataset_card"]
