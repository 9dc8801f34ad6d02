"""LibriLight-layout folder → Parquet shards → `datasets.load_dataset("parquet")`, decoded with soundfile."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lmcodec.training import prepare_librilight
from tests.conftest import speech_files


@pytest.fixture
def librilight_tree(tmp_path: Path) -> Path:
    """small/SPEAKER/CHAPTER/*.flac (symlinks to 5 real LibriSpeech files) with a .json beside some of them."""
    files = speech_files("librispeech-train-clean-100", 5)
    root = tmp_path / "librilight"
    for number, file in enumerate(files):
        speaker, chapter, _ = file.stem.split("-")
        folder = root / "small" / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(file, folder / file.name)
        if number % 2 == 0:
            (folder / f"{file.stem}.json").write_text(json.dumps({"speaker": speaker, "snr": 12.5 + number}))
    return root


def _load(output: Path, split: str = "small"):
    import datasets

    dataset = datasets.load_dataset("parquet", data_dir=str(output), split=split, cache_dir=str(output / "cache"))
    return dataset.cast_column("audio", datasets.Audio(decode=False))


def test_prepare_round_trip_and_resume(librilight_tree: Path, tmp_path: Path):
    output = tmp_path / "out"
    assert prepare_librilight.main(["--input_dir", str(librilight_tree), "--output_dir", str(output),
                                    "--shard_size_mb", "0.5"]) == 0
    shards = sorted((output / "data").glob("small-*-of-*.parquet"))
    assert len(shards) >= 2, "0.5 MB shards of ~1 MB of FLAC must give several shards"
    dataset = _load(output)
    sources = sorted(librilight_tree.rglob("*.flac"))
    assert len(dataset) == len(sources)
    assert sorted(dataset["path"]) == sorted(p.relative_to(librilight_tree).as_posix() for p in sources)
    for row in dataset:
        source = librilight_tree / row["path"]
        speaker, chapter, _ = source.stem.split("-")
        assert (row["speaker_id"], row["book"]) == (speaker, chapter)
        assert row["audio"]["bytes"] == source.read_bytes(), "unsegmented FLAC is embedded byte for byte"
        decoded, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert rate == 16000 and abs(row["duration"] - decoded.shape[0] / rate) < 1e-3
        sidecar = source.with_suffix(".json")
        if sidecar.exists():
            assert json.loads(row["metadata"]) == json.loads(sidecar.read_text())
        else:
            assert row["metadata"] is None

    # Resume: finished shards are kept as they are, a missing one is rewritten, stale temporary files removed.
    mtimes = {p: p.stat().st_mtime_ns for p in shards}
    shards[-1].unlink()
    stale = output / "data" / f".{shards[0].name}.tmp-12345"
    stale.write_bytes(b"partial")
    assert prepare_librilight.main(["--input_dir", str(librilight_tree), "--output_dir", str(output),
                                    "--shard_size_mb", "0.5"]) == 0
    assert shards[-1].exists() and not stale.exists()
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in shards[:-1])


def test_segmentation_at_low_energy_points(librilight_tree: Path, tmp_path: Path):
    output = tmp_path / "segmented"
    prepare_librilight.prepare_librilight(librilight_tree, output, max_segment_seconds=4.0, min_segment_seconds=1.0,
                                          shard_size_mb=100)
    dataset = _load(output)
    total_source = sum(sf.info(p).duration for p in librilight_tree.rglob("*.flac"))
    assert len(dataset) > 5
    assert abs(sum(dataset["duration"]) - total_source) < 1e-2, "segments cover every sample exactly once"
    for row in dataset:
        audio, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert audio.shape[0] / rate <= 4.0 + 1e-6
        source, _ = sf.read(librilight_tree / row["path"], dtype="float32")
        start = int(round(row["start"] * rate))
        np.testing.assert_allclose(audio, source[start : start + audio.shape[0]], atol=1e-4)


def test_low_energy_cuts_choose_the_pause():
    rate = 16000
    rng = np.random.default_rng(0)
    audio = 0.3 * rng.standard_normal(10 * rate)
    audio[int(3.0 * rate) : int(3.4 * rate)] *= 0.001  # a pause at 3.0–3.4 s
    cuts = prepare_librilight.low_energy_cuts(audio, rate, max_seconds=4.0, min_seconds=1.0)
    assert 3.0 * rate <= cuts[0][1] <= 3.4 * rate
    assert cuts[0][0] == 0 and cuts[-1][1] == audio.shape[0]
    assert all(end - start <= 4 * rate for start, end in cuts)
    assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))


def test_missing_input_folder_is_a_clear_error(tmp_path: Path, capsys):
    assert prepare_librilight.main(["--input_dir", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "o")]) == 1
    assert "not found" in capsys.readouterr().err
