"""`lmcodec evaluate`: the run end to end on short generated files with a tiny model, the reference codecs (skipped
without their binaries), DATA as a folder and as a saved `datasets` dataset, and the report files."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import lmcodec
from lmcodec.training import evaluation
from lmcodec.training.reference_codecs import all_reference_codecs, find_reference_codecs
from tests.conftest import speech_files, speech_like

REFERENCE_BINARIES = ("c2enc", "c2dec", "opusenc", "opusdec")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    import torch

    from tests.conftest import random_codebooks, tiny_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    lmcodec.save_checkpoint(random_codebooks(lmcodec.LMCodecModel(tiny_config())), folder)
    return str(folder)


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory) -> Path:
    """Two short speech-like files: a 16 kHz wav and a 22.05 kHz flac (resampled when read)."""
    folder = tmp_path_factory.mktemp("speech")
    sf.write(folder / "first.wav", speech_like(2.0, seed=1), 16000)
    sf.write(folder / "second.flac", speech_like(1.5, 22050, seed=2), 22050)
    return folder


def evaluate(data, out: Path, checkpoint: str, *options: str) -> dict:
    """Run `lmcodec evaluate` in-process; returns results.json."""
    assert evaluation.main([str(data), "--model", checkpoint, "--out", str(out), *options]) == 0
    return json.loads((out / "results.json").read_text())


def rows_by_slug(results: dict) -> dict[str, dict]:
    return {row["slug"]: row for row in results["systems"]}


def check_report(out: Path, results: dict) -> None:
    """report.md has every system in its table, report.html plays existing files, every PNG is an image."""
    markdown = (out / "report.md").read_text()
    results_table = markdown.split("## Paired differences")[0]
    table_names = [line.split("|")[1].strip() for line in results_table.splitlines() if line.startswith("| ")]
    assert table_names[0] == "system" and table_names[1:] == [row["name"] for row in results["systems"]]
    assert results["metadata"]["model"] in markdown
    page = (out / "report.html").read_text()
    sources = re.findall(r'<(?:audio|img)[^>]* src="([^"]+)"', page)
    assert sources and all((out / source).is_file() for source in sources)
    assert "http://" not in page and "https://" not in page  # static: no network resources
    for item in results["utterances"]:
        for path in item["audio"].values():
            assert f'src="{path}"' in page
            audio, rate = sf.read(out / path)
            assert rate == 16000 and len(audio) == round(item["seconds"] * 16000)
    plots = sorted((out / "plots").glob("*.png"))
    assert plots and all(path.read_bytes()[:8] == PNG_MAGIC for path in plots)
    import matplotlib.image

    assert all(matplotlib.image.imread(path).ndim == 3 for path in plots)


def test_folder_end_to_end_without_reference_codecs(tmp_path, speech_folder, checkpoint, monkeypatch, capsys):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no c2enc / opusenc: skipped with one line each, never fatal
    out = tmp_path / "out"
    # every system of the model; DNSMOS (~1-2 s per item on a loaded machine) is left to test_saved_dataset
    results = evaluate(speech_folder, out, checkpoint, "--listen", "1", "--metrics", "pesq", "stoi", "mel_distance",
                       "si_sdr")
    stderr = capsys.readouterr().err
    assert "Codec2 skipped: c2enc and c2dec not found" in stderr and "apt-get install opus-tools" in stderr
    assert len(results["metadata"]["missing_reference_codecs"]) == 2
    meta = results["metadata"]
    assert meta["num_files"] == 2 and meta["total_seconds"] == pytest.approx(3.5, abs=0.01)
    assert meta["model"] == f"checkpoint {checkpoint}" and not meta.get("random_weights")
    assert [item["name"] for item in results["utterances"]] == ["first", "second"]

    rows = rows_by_slug(results)
    # the checkpoint decodes coarse-only by default, so the LMCodec rows are coarse-only and the fine LM's decodings
    # are the ablations
    assert list(rows) == ["original", "lmcodec-nc2", "lmcodec-nc2-sample", "lmcodec-nc2-greedy",
                          "lmcodec-nc2-expected", "lmcodec-nc3", "lmcodec-nc3-sample", "lmcodec-nc3-greedy",
                          "lmcodec-nc3-expected", "lmcodec-all-levels"]
    for levels in (2, 3):
        sent, ablation = rows[f"lmcodec-nc{levels}"], rows[f"lmcodec-nc{levels}-greedy"]
        # all bytes counted: the header alone (41 B per file) is worth ~0.09 kbps here, above the raw codes' rate
        raw_rate = levels * 6 * 50 / 1000
        assert sent["kbps_without_entropy_coding"] > raw_rate and sent["kbps"] > 0
        assert len(sent["kbps_per_item"]) == 2 and sent["rtf"] > 0
        assert ablation["kbps"] == sent["kbps"] and "kbps_without_entropy_coding" not in ablation
        # the same stream, decoded another way
        assert ablation["metrics"] != sent["metrics"]
    assert rows["lmcodec-all-levels"]["kbps"] == pytest.approx(4 * 6 * 50 / 1000)
    for row in results["systems"]:
        assert set(row["metrics"]) == {"pesq", "stoi", "mel_distance", "si_sdr"}
        assert all(len(values) == 2 for values in row["per_item"].values())
    assert rows["original"]["metrics"]["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert rows["original"]["metrics"]["pesq"] > 4.5 and rows["original"]["rtf"] is None

    check_report(out, results)
    assert len([item for item in results["utterances"] if item["audio"]]) == 1
    assert (out / "plots" / "spectrograms.png").is_file() and (out / "plots" / "quality_pesq.png").is_file()


def test_worker_processes_give_the_one_process_results(tmp_path, speech_folder, checkpoint):
    """`--jobs 2`: the utterances are coded in two spawned worker processes; every score, byte count and listening
    file is the same as coding them in one process, in DATA's order."""
    options = ("--systems", "lmcodec", "fine-decodings", "--metrics", "stoi", "mel_distance", "--listen", "1")
    alone = evaluate(speech_folder, tmp_path / "one", checkpoint, *options)
    shared = evaluate(speech_folder, tmp_path / "two", checkpoint, *options, "--jobs", "2")
    assert shared["metadata"]["jobs"] == 2 and alone["metadata"]["jobs"] == 1
    assert shared["utterances"] == alone["utterances"]
    for one, two in zip(alone["systems"], shared["systems"], strict=True):
        assert (two["slug"], two["kbps_per_item"], two["per_item"]) == (one["slug"], one["kbps_per_item"], one["per_item"])
    listened = shared["utterances"][0]["audio"]
    assert listened and all(
        np.array_equal(sf.read(tmp_path / "one" / path)[0], sf.read(tmp_path / "two" / path)[0])
        for path in listened.values())


@pytest.mark.skipif(any(shutil.which(name) is None for name in REFERENCE_BINARIES),
                    reason="Codec2 / Opus command-line tools absent (apt-get install codec2 opus-tools)")
def test_reference_codecs_when_installed(tmp_path, speech_folder, checkpoint):
    found, missing = find_reference_codecs()
    assert len(found) == len(all_reference_codecs()) and not missing
    out = tmp_path / "out"
    results = evaluate(speech_folder, out, checkpoint, "--systems", "lmcodec", "codec2", "opus", "--metrics", "stoi",
                       "si_sdr", "--max-files", "1")
    rows = rows_by_slug(results)
    assert list(rows) == ["original", "lmcodec-nc2", "lmcodec-nc3", "codec2-700c", "codec2-1200", "codec2-1300",
                          "codec2-3200", "opus-6", "opus-8", "opus-12"]
    # 2.0 s: Codec2 packs each frame into whole bytes (700C: 28 bits -> 4 bytes per 40 ms), no header
    assert rows["codec2-3200"]["kbps"] == pytest.approx(3.2)
    assert rows["codec2-700c"]["kbps"] == pytest.approx(0.8)
    for kbps in (6, 8, 12):  # hard CBR plus the Ogg container
        assert kbps < rows[f"opus-{kbps}"]["kbps"] < kbps * 1.5
    for row in results["systems"][3:]:
        assert row["kind"] == "reference" and row["rtf"] > 0 and row["metrics"]["stoi"] > 0.3
    check_report(out, results)
    paired = (out / "report.md").read_text().split("## Paired differences")[1]
    assert "| LMCodec Nc=3 − Codec2 700C |" in paired and "| STOI |" in paired  # the tiny model spends ~1 kbps


@pytest.mark.skipif(any(shutil.which(name) is None for name in REFERENCE_BINARIES),
                    reason="Codec2 / Opus command-line tools absent (apt-get install codec2 opus-tools)")
def test_reference_codecs_keep_the_length():
    audio = speech_like(0.73, seed=3)
    for codec in all_reference_codecs():
        coded = codec.code(audio)
        assert coded.audio.dtype == np.float32 and len(coded.audio) == len(audio) and coded.num_bytes > 0


def flac_bytes(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="FLAC")
    return buffer.getvalue()


def test_saved_dataset(tmp_path, checkpoint):
    import datasets

    audio = [{"bytes": flac_bytes(speech_like(1.2, seed=seed), 16000), "path": None} for seed in (4, 5)]
    dataset = datasets.Dataset.from_dict({"id": ["utt/one", "utt/two"], "audio": audio})
    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    saved = tmp_path / "saved"
    datasets.DatasetDict({"test": dataset, "train": dataset.select([0])}).save_to_disk(str(saved))
    out = tmp_path / "out"
    results = evaluate(saved, out, checkpoint, "--systems", "all-levels", "--max-seconds", "1.0")  # all metrics
    assert [item["name"] for item in results["utterances"]] == ["utt_one", "utt_two"]  # the test split, named by id
    assert results["metadata"]["total_seconds"] == pytest.approx(2.0)
    rows = rows_by_slug(results)
    assert list(rows) == ["original", "lmcodec-all-levels"]
    for row in rows.values():
        assert set(row["metrics"]) == {key for key, _, _ in evaluation.METRICS}
        assert 1.0 <= row["metrics"]["dnsmos_ovrl"] <= 5.0
    check_report(out, results)
    plots = {path.stem for path in (out / "plots").glob("*.png")}
    assert plots >= {f"quality_{key}" for key, _, _ in evaluation.METRICS}


def test_parquet_folder(tmp_path, checkpoint):
    import datasets

    audio = [{"bytes": flac_bytes(speech_like(0.8, seed=6), 16000), "path": "clip.flac"}]
    folder = tmp_path / "shards"
    folder.mkdir()
    dataset = datasets.Dataset.from_dict({"audio": audio}).cast_column("audio", datasets.Audio(decode=False))
    dataset.to_parquet(str(folder / "test-00000-of-00001.parquet"))
    results = evaluate(folder, tmp_path / "out", checkpoint, "--systems", "lmcodec", "--metrics", "si_sdr",
                       "--listen", "0")
    assert [item["name"] for item in results["utterances"]] == ["clip"]
    assert len(results["systems"]) == 3 and all(row["metrics"]["si_sdr"] is not None for row in results["systems"])


def test_real_recording(tmp_path, checkpoint):
    import datasets

    path = speech_files("librispeech-test-other", 1)[0]
    listed = datasets.Dataset.from_dict({"audio": [{"bytes": None, "path": str(path)}]})
    listed.cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(tmp_path / "listed"))
    results = evaluate(tmp_path / "listed", tmp_path / "out", checkpoint, "--systems", "coarse-only", "--metrics",
                       "pesq", "stoi", "--max-seconds", "3", "--listen", "0")
    assert results["utterances"][0]["name"] == path.stem and results["metadata"]["total_seconds"] == 3.0
    assert rows_by_slug(results)["original"]["metrics"]["pesq"] > 4.5
    assert not (tmp_path / "out" / "audio").exists() and (tmp_path / "out" / "report.html").is_file()


@pytest.mark.parametrize("make_data, message", [
    (lambda folder: folder / "missing", "cannot open DATA"),
    (lambda folder: folder, "cannot open DATA"),  # a folder without audio files
])
def test_bad_data_is_a_one_line_error(tmp_path, checkpoint, capsys, make_data, message):
    code = evaluation.main([str(make_data(tmp_path)), "--model", checkpoint, "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written before the input is known to be good


@pytest.mark.parametrize("slug, group", [("lmcodec-nc3-sample", "sample"), ("lmcodec-nc3-greedy", "greedy"),
                                         ("lmcodec-nc3-expected", "expected"),
                                         ("lmcodec-nc2-coarse-only", "coarse-only"),
                                         ("lmcodec-all-levels", "all-levels")])
def test_each_ablation_gets_its_own_plot_style(slug, group):
    from lmcodec.training.report import KIND_STYLE, plot_group

    assert plot_group({"kind": "ablation", "slug": slug}) == group and group in KIND_STYLE


def test_paired_differences_against_reference_codecs_at_similar_rates():
    """report.md's paired table: LMCodec minus each reference codec spending at most 1.5x its kbps, per utterance;
    mean ± standard error, the number of utterances LMCodec wins, bold beyond two standard errors over at least 10
    utterances."""
    from lmcodec.training.report import paired_difference, paired_table

    def row(name, kind, kbps, stoi, pesq=None):
        return {"name": name, "kind": kind, "kbps": kbps, "per_item": {"stoi": stoi, **({"pesq": pesq} if pesq else {})}}

    lmcodec_row = row("LMCodec Nc=3", "lmcodec", 1.0, [0.80, 0.70, 0.90, None], [1.5, 1.4, 1.6, 1.2])
    near = row("Codec2 1300", "reference", 1.4, [0.70, 0.60, 0.85, 0.5], [1.4, 1.5, 1.5, 1.1])
    far = row("Opus 6 kbps", "reference", 6.9, [0.9, 0.9, 0.9, 0.9])
    mean, error, better, count = paired_difference(lmcodec_row, near, "stoi")
    assert count == 3 and better == 3  # the utterance LMCodec did not score is left out of the pair
    assert mean == pytest.approx(0.05 / 3 * 5) and error == pytest.approx(np.std([0.1, 0.1, 0.05], ddof=1) / np.sqrt(3))
    table = paired_table({"systems": [row("Original", "original", None, [1.0] * 4), lmcodec_row, near, far]})
    lines = table.splitlines()
    assert lines[0] == "| pair | kbps | PESQ-WB | STOI |" and len(lines) == 3  # Opus spends 6.9x: not compared
    # STOI: 6 standard errors from zero, but on 3 utterances only: not bold
    assert lines[2] == "| LMCodec Nc=3 − Codec2 1300 | 1.000 / 1.400 | +0.05 ± 0.05 (3/4) | +0.083 ± 0.017 (3/3) |"
    times = 4  # the same utterances four times over: 12 pairs, now bold
    twelve = [{**system, "per_item": {key: values * times for key, values in system["per_item"].items()}}
              for system in (lmcodec_row, near)]
    lines = paired_table({"systems": twelve}).splitlines()
    assert lines[2] == ("| LMCodec Nc=3 − Codec2 1300 | 1.000 / 1.400 | **+0.05 ± 0.02** (12/16) | "
                        "**+0.083 ± 0.007** (12/12) |")
