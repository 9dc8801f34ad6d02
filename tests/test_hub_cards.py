"""Model and dataset cards (`lmcodec.hub_cards`): rendered from a real `lmcodec evaluate` run on a tiny model and from
schema-exact results.json fixtures; the model-index round-trips through huggingface_hub, every system row is in the
table, licences and attribution are present, random weights and tiny test models are flagged, the card's Python
example runs, and a dataset card's `configs` let `datasets.load_dataset` read the shards."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import soundfile as sf

import lmcodec
from lmcodec.errors import LMCodecError
from lmcodec.hub_cards import render_dataset_card, render_model_card
from tests.card_examples import section
from tests.conftest import REPO, speech_like

DEFAULT_CPU_FACTS = {
    "summary": "the default-cpu recipes: the codec, then the fine LM and the entropy LM on its codes",
    "commands": [
        "python training/train_codec.py --config training/configs/default-cpu.json --output_dir outputs/default-cpu",
        "python training/train_lm.py --config training/configs/lm-default-cpu.json --target fine "
        "--model_name_or_path outputs/default-cpu/final --output_dir outputs/fine-lm",
    ],
    "data": "about an hour of read speech (LibriSpeech train-clean-100 subset, LJSpeech, CMU ARCTIC, misc)",
    "train_dataset": "../shared/data/speech/librispeech-train-clean-100,../shared/data/speech/ljspeech,"
                     "../shared/data/speech/cmu-arctic,../shared/data/speech/misc",
    "steps": {"codec": 30000, "fine LM": 6000},
    "wall_time_seconds": 5400,
    "hardware": "2 CPU cores, no GPU",
}


# ---------------------------------------------------------------------------------------------------- fixtures
def sample_results(config, *, random_weights: bool = False, model: str = "checkpoint /models/tiny") -> dict:
    """A results.json with the exact schema `lmcodec evaluate` writes (training/evaluation.py), invented numbers, and
    reference codec rows whether or not Codec2 / Opus are installed here."""

    def row(name, slug, kind, levels, rate, source, nominal, metrics, rtf):
        return {"name": name, "slug": slug, "kind": kind, "description": f"{name}: test row",
                "num_coarse_quantizers": levels, "kbps": rate, "kbps_source": source, "nominal_kbps": nominal,
                "kbps_per_item": [rate, rate] if source and source.startswith("measured") else [], "rtf": rtf,
                "metrics": metrics, "per_item": {key: [value, value] for key, value in metrics.items()}}

    def scores(base: float) -> dict:
        return {"pesq": 1.0 + base, "stoi": 0.5 + base / 10, "mel_distance": 1.5 - base / 2, "si_sdr": -3.0 + base}

    rows = [row("Original", "original", "original", None, None, None, None, scores(3.6), None)]
    for number, levels in enumerate(config.operating_points):
        nominal = config.coarse_bitrate(levels) / 1000
        measured = nominal * 0.9 + 0.087
        sent = row(f"LMCodec Nc={levels}", f"lmcodec-nc{levels}", "lmcodec", levels, measured,
                   "measured: all bytes of the coded files", nominal, scores(0.4 + 0.1 * number), 0.25 + number / 100)
        sent["kbps_without_entropy_coding"] = nominal + 0.087
        rows.append(sent)
        rows.append(row(f"LMCodec Nc={levels}, coarse only", f"lmcodec-nc{levels}-coarse-only", "ablation", levels,
                        measured, f"the bytes of LMCodec Nc={levels} (same coarse codes, decoded without the fine LM)",
                        nominal, scores(0.3 + 0.1 * number), 0.02))
    levels = config.num_quantizers
    rows.append(row(f"LMCodec, all {levels} levels", "lmcodec-all-levels", "ablation", levels,
                    config.coarse_bitrate(levels) / 1000, "nominal: raw codes", config.coarse_bitrate(levels) / 1000,
                    scores(0.9), 0.02))
    references = (("Codec2 700C", "codec2-700c", 0.8, 0.7), ("Codec2 3200", "codec2-3200", 3.2, 3.2),
                  ("Opus 6 kbps", "opus-6", 6.71, 6.0))
    for name, slug, rate, nominal in references:
        rows.append(row(name, slug, "reference", None, rate, "measured: all bytes of the coded files", nominal,
                        scores(1.1), 0.05))
    metadata = {
        "model": model, "model_path": None if random_weights else model.split(" ", 1)[-1],
        "operating_points": list(config.operating_points),
        "default_operating_point": config.num_coarse_quantizers, "num_quantizers": config.num_quantizers,
        "data": "../shared/data/speech/librispeech-test-other", "split": None, "num_files": 2, "total_seconds": 5.5,
        "max_seconds": 3.0, "metrics": ["pesq", "stoi", "mel_distance", "si_sdr"],
        "systems_requested": ["lmcodec", "fine-decodings", "coarse-only", "all-levels", "codec2", "opus"],
        "missing_reference_codecs": [], "date": "2026-11-25T10:00:00+00:00",
        "machine": {"platform": "Linux-test", "processor": "x86_64", "cpu_count": 2, "python": "3.11.7",
                    "torch": "2.13.0+cpu", "torch_threads": 1},
        "jobs": 1,
        "notes": ["kbps = all bytes of each coded file x 8 / audio duration, summed over the utterances"],
    }
    if random_weights:  # written when development versions evaluated their random stand-in model; the card honours it
        metadata["random_weights"] = True
    return {"metadata": metadata, "systems": rows,
            "utterances": [{"name": "a", "seconds": 3.0, "audio": {}}, {"name": "b", "seconds": 2.5, "audio": {}}]}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import torch

    from tests.conftest import random_codebooks, tiny_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    lmcodec.save_checkpoint(random_codebooks(lmcodec.LMCodecModel(tiny_config())), folder)
    return folder


@pytest.fixture(scope="module")
def evaluated(tiny_checkpoint, tmp_path_factory) -> Path:
    """results.json of a real `lmcodec evaluate` run on the tiny checkpoint (every system that can run here)."""
    from lmcodec.training import evaluation

    data = tmp_path_factory.mktemp("speech")
    sf.write(data / "utterance.wav", speech_like(1.2, seed=3), 16000)
    out = tmp_path_factory.mktemp("evaluation")
    assert evaluation.main([str(data), "--model", str(tiny_checkpoint), "--out", str(out), "--listen", "0",
                            "--metrics", "pesq", "stoi", "si_sdr"]) == 0
    return out / "results.json"


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def metrics_table(text: str) -> dict[str, str]:
    """{system name: its line} of the card's metrics table (the one whose header starts `| system | kind |`)."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| system | kind |"))
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        table[line.split("|")[1].strip()] = line
    return table


def front_matter(text: str) -> str:
    return text.split("\n---\n", 1)[0]


def body_before_first_section(card) -> str:
    return card.text.split("\n## ", 1)[0]


# ---------------------------------------------------------------------------------------------------- model card
def test_card_from_a_real_evaluation(tiny_checkpoint, evaluated, tmp_path):
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    results = json.loads(evaluated.read_text())
    card = render_model_card(tiny_checkpoint, evaluated, DEFAULT_CPU_FACTS, repo_id="someone/lmcodec-tiny")
    path = tmp_path / "README.md"
    card.save(path)
    text = path.read_text()

    # Every system row of results.json is a row of the metrics table, with its numbers as measured.
    rows = metrics_table(text)
    assert list(rows) == [row["name"] for row in results["systems"]]
    for row in results["systems"]:
        assert row["name"] in rows, row["name"]
        if row["kind"] == "lmcodec":
            assert f"| {row['kbps']:.3f} |" in rows[row["name"]]
            assert f"| {row['metrics']['stoi']:.3f} |" in rows[row["name"]]
    # The model-index (LMCodec's operating points) parses back into the same numbers.
    metadata = metadata_load(path)
    name, entries = model_index_to_eval_results(metadata["model-index"])
    assert name == "lmcodec-tiny"
    reloaded = ModelCard.load(path)
    assert [entry.metric_value for entry in reloaded.data.eval_results] == [entry.metric_value for entry in entries]
    for row in (row for row in results["systems"] if row["kind"] == "lmcodec"):
        point = f"nc{row['num_coarse_quantizers']}"
        mine = {entry.metric_type: entry for entry in entries if entry.metric_config == point}
        assert set(mine) == {"pesq", "stoi", "si_sdr", "kbps", "rtf"}
        assert mine["stoi"].metric_value == pytest.approx(row["metrics"]["stoi"], abs=1e-4)
        assert mine["kbps"].metric_value == pytest.approx(row["kbps"], abs=1e-4)
        assert mine["pesq"].task_type == "audio-to-audio"
    assert len(entries) == 5 * len(results["metadata"]["operating_points"])  # no ablation or reference rows
    assert metadata["license"] == "apache-2.0" and metadata["pipeline_tag"] == "audio-to-audio"
    assert metadata["library_name"] == "transformers" and "openslr/librispeech_asr" in metadata["datasets"]

    # Operating points and nominal bitrates come from the config: 2 and 3 levels of 6 bits at 50 Hz.
    assert "| 0.6 kbps (default) | 2 | 2 | 0.6 kbps |" in text and "| 0.9 kbps | 3 | 1 | 0.9 kbps |" in text
    assert "4 levels × 64 codes" in text and "50 frames/s" in text
    # A tiny test model says so before anything else; these weights are not random as far as the record says.
    top = body_before_first_section(reloaded)
    assert "tiny test model" in top and "RANDOM" not in top
    # Training facts: the exact commands in a code block, the steps, the wall time.
    for command in DEFAULT_CPU_FACTS["commands"]:
        assert command in text
    assert "codec: 30,000" in text and "1 h 30 min" in text and "2 CPU cores, no GPU" in text


def test_card_lists_every_row_with_reference_codecs_and_attribution(tiny_checkpoint, tmp_path):
    config = lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint)
    results = sample_results(config)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    text = str(render_model_card(tiny_checkpoint, path, DEFAULT_CPU_FACTS))
    assert list(metrics_table(text)) == [row["name"] for row in results["systems"]]
    assert "| Opus 6 kbps | reference codec | 6.710 |" in text and "| 0.800 |" in text
    assert "1.200 (nominal)" in text  # the all-levels upper bound's kbps is marked nominal
    # Licences and attribution of the training corpora, and of the evaluation data.
    for needle in ("LibriSpeech ASR corpus** — CC BY 4.0", "Panayotov", "LJ Speech Dataset 1.1** — public domain",
                   "Ito and L. Johnson", "CMU ARCTIC databases** — CMU ARCTIC licence", "Kominek",
                   "mozilla/DeepSpeech",
                   "Evaluation data: LibriSpeech ASR corpus", "@inproceedings{panayotov2015librispeech"):
        assert needle in text, needle
    assert "Training scale: about an hour of read speech" in text and "(2 CPU cores, no GPU; 1 h 30 min of" in text


def test_schema_of_the_fixture_matches_a_real_evaluation(tiny_checkpoint, evaluated):
    real = json.loads(evaluated.read_text())
    fake = sample_results(lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint))
    assert set(fake) == set(real) and set(fake["metadata"]) == set(real["metadata"])
    for kind in ("original", "lmcodec", "ablation"):
        real_keys = {frozenset(row) for row in real["systems"] if row["kind"] == kind}
        assert real_keys == {frozenset(row) for row in fake["systems"] if row["kind"] == kind}, kind
    assert set(fake["systems"][-1]) == set(fake["systems"][2])  # reference rows have the ablations' keys


def test_without_results_the_card_says_no_evaluation_was_run(tiny_checkpoint):
    from huggingface_hub import ModelCard

    card = render_model_card(tiny_checkpoint, None, None, repo_id="someone/untested")
    text = str(card)
    assert "No evaluation was run for these weights" in text and "model-index" not in front_matter(text)
    assert "no training record was supplied" in text.lower()
    assert not [line for line in table_lines(text) if "PESQ" in line]
    assert ModelCard(text).data.eval_results is None


def test_random_weights_are_flagged(tiny_checkpoint):
    config = lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint)
    results = sample_results(config, random_weights=True,
                             model="RANDOM weights (no trained checkpoint is bundled yet): the output will not sound "
                                   "like speech")
    card = render_model_card(tiny_checkpoint, results, {"random_weights": True})
    top = body_before_first_section(card)
    assert "RANDOM (untrained)" in top and "randomly initialised weights" in top
    assert "model-index" not in front_matter(str(card))  # numbers of random weights are not published as results
    assert "random-weights" in card.data.tags
    assert "These numbers do not measure a trained LMCodec" in card.text
    assert list(metrics_table(card.text)) == [row["name"] for row in results["systems"]]  # still there, flagged


def test_results_of_another_model_are_refused(tiny_checkpoint):
    results = sample_results(lmcodec.LMCodecConfig())  # 12 levels, not the tiny model's 4
    with pytest.raises(lmcodec.LMCodecError, match="this checkpoint has 4 levels"):
        render_model_card(tiny_checkpoint, results, None)


@pytest.mark.parametrize("make, message", [
    (lambda folder: folder / "missing.json", "results file not found"),
    (lambda folder: (folder / "bad.json").write_text("{not json") and folder / "bad.json", "not valid JSON"),
    (lambda folder: (folder / "other.json").write_text('{"a": 1}') and folder / "other.json",
     "not a results.json written by `lmcodec evaluate`"),
])
def test_bad_results_files_are_one_line_errors(tiny_checkpoint, tmp_path, make, message):
    with pytest.raises(lmcodec.LMCodecError, match=re.escape(message)) as error:
        render_model_card(tiny_checkpoint, make(tmp_path), None)
    assert "\n" not in str(error.value)


def test_not_a_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(lmcodec.LMCodecError, match="not an LMCodec checkpoint folder"):
        render_model_card(tmp_path, None, None)


def test_every_python_example_of_the_card_runs_as_written(tiny_checkpoint, tmp_path):
    """Each example of a repository's card, with the repository replaced by a saved checkpoint, in a fresh interpreter:
    the package's examples where nothing registered LMCodec before them, the remote-code one where `lmcodec` cannot be
    imported at all (a checkpoint saved by the package carries its code)."""
    from tests.card_examples import python_blocks, run_python, workdir

    card = render_model_card(tiny_checkpoint, None, None, repo_id="someone/lmcodec-tiny")
    quick = python_blocks(section(card.text, "Quick start"))
    usage = python_blocks(section(card.text, "How to use"))
    assert len(quick) == 1 and len(usage) == 2  # no ONNX graphs in this checkpoint: no runtime example
    package, auto, remote = quick[0], usage[0], usage[1]
    assert 'lmcodec.LMCodecModel.from_pretrained("someone/lmcodec-tiny")' in package
    assert 'lmcodec.register_auto_classes()' in auto and 'AutoModel.from_pretrained("someone/lmcodec-tiny")' in auto
    assert 'AutoModel.from_pretrained("someone/lmcodec-tiny", trust_remote_code=True)' in remote
    assert "import lmcodec" not in remote
    checks = {
        "package": (package, (), "assert isinstance(data, bytes) and decoded.ndim == 1 and sampling_rate == 16000"),
        "auto": (auto, (), "assert type(model).__name__ == 'LMCodecModel' and codes.shape[1] == 2\n"
                           "assert audio_values.shape[-1] == inputs['input_values'].shape[-1]"),
        "remote": (remote, ("lmcodec",), "assert not type(model).__module__.startswith('lmcodec')\n"
                                         "assert codes.shape[1] == 4 and decoded.shape == audio.shape"),
    }
    for name, (code, block, check) in checks.items():
        code = code.replace("someone/lmcodec-tiny", str(tiny_checkpoint))
        run_python(code + check + "\n", workdir(tmp_path, name), block=block)


def test_templates_ship_inside_the_package():
    from importlib import resources

    folder = resources.files("lmcodec.hub_cards") / "templates"
    assert {"model_card.md", "dataset_card.md"} <= {entry.name for entry in folder.iterdir()}


# ---------------------------------------------------------------------------------------------------- dataset card
@pytest.fixture
def librilight_shards(tmp_path) -> tuple[Path, dict]:
    """Parquet shards from a LibriLight-layout folder (2 splits, 3 speakers, one long file cut into segments)."""
    from lmcodec.training import prepare_librilight

    root = tmp_path / "librilight"
    files = {("small", "100", "bookA", "a1"): 1.5, ("small", "100", "bookA", "a2"): 1.0,
             ("small", "200", "bookB", "b1"): 4.5, ("medium", "300", "bookC", "c1"): 1.2}
    for (split, speaker, book, name), seconds in files.items():
        folder = root / split / speaker / book
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{name}.flac", speech_like(seconds, seed=len(name) + int(speaker)), 16000)
    (root / "small" / "100" / "bookA" / "a1.json").write_text(json.dumps({"snr": 20.0}))
    output = tmp_path / "shards"
    assert prepare_librilight.main(["--input_dir", str(root), "--output_dir", str(output), "--max_segment_seconds",
                                    "2.0", "--shard_size_mb", "0.05"]) == 0
    return output, files


def test_dataset_card_counts_the_shards_and_loads_with_datasets(librilight_shards):
    import datasets
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    output, _ = librilight_shards
    command = "python training/prepare_librilight.py --input_dir /data/ll --output_dir /data/ll-parquet"
    card = render_dataset_card(output, repo_id="someone/librilight-flac", command=command)
    text = str(card)
    shards = {split: sorted((output / "data").glob(f"{split}-*.parquet")) for split in ("small", "medium")}
    rows = {split: sum(pq.read_metadata(path).num_rows for path in paths) for split, paths in shards.items()}
    lines = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]] for line in table_lines(text)}
    assert lines["small"][:2] == [str(len(shards["small"])), str(rows["small"])]
    assert lines["medium"][:2] == [str(len(shards["medium"])), str(rows["medium"])]
    assert lines["small"][3:5] == ["2", "2"]  # speakers, books
    assert lines["small"][2] == "7.0 s" and lines["medium"][2] == "1.2 s"  # 1.5 + 1.0 + 4.5 s; 1.2 s
    assert "16000 Hz" in text and "start after the beginning of their source file" in text  # the 4.5 s file was cut
    for needle in ("Libri-Light** — CC BY 4.0", "Kahn", "@inproceedings{kahn2020librilight", command,
                   'load_dataset("someone/librilight-flac", split="small"'):
        assert needle in text, needle
    data = DatasetCard(text).data
    assert data.license == "cc-by-4.0" and data.size_categories == ["n<1K"] and "audio-to-audio" in data.task_categories

    # The card's `configs` are what `datasets` uses to find the splits of the folder, and its example runs on it.
    card.save(output / "README.md")
    loaded = datasets.load_dataset(str(output), split="medium", cache_dir=str(output / ".cache"))
    assert len(loaded) == rows["medium"] and set(loaded.column_names) >= {"audio", "speaker_id", "book", "duration"}
    example = re.findall(r"```python\n(.*?)```", card.text, flags=re.DOTALL)[0]
    namespace = {"__name__": "dataset_card_example"}
    exec(compile(example.replace("someone/librilight-flac", str(output)), "README.md", "exec"), namespace)
    assert namespace["sampling_rate"] == 16000 and namespace["item"]["path"].startswith("small/")


def test_dataset_card_of_a_folder_without_shards_is_a_one_line_error(tmp_path):
    with pytest.raises(lmcodec.LMCodecError, match="no shards named SPLIT-XXXXX-of-YYYYY.parquet"):
        render_dataset_card(tmp_path)


def test_dataset_card_without_the_command_says_so(librilight_shards):
    output, _ = librilight_shards
    text = str(render_dataset_card(output / "data"))
    assert "The exact command was not recorded" in text and "your-name/your-dataset" in text


def test_unknown_training_data_is_named_without_a_licence(tiny_checkpoint):
    facts = copy.deepcopy(DEFAULT_CPU_FACTS)
    facts["train_dataset"] += ",/data/my-own-recordings"
    text = str(render_model_card(tiny_checkpoint, None, facts))
    assert "without a licence known to this card: /data/my-own-recordings" in text


def test_card_credits_the_v2_corpora_found_in_the_training_record(tiny_checkpoint):
    """The v2 recipe's extra corpora (../speech-extra/...) are recognised from the training paths and credited."""
    from lmcodec.hub_cards.model_card import training_corpora

    recipe = json.loads((REPO / "training" / "configs" / "default-cpu-v2.json").read_text())
    facts = {**DEFAULT_CPU_FACTS, "data": "7.6 h of read speech and spoken requests",
             "train_dataset": recipe["train_dataset"]}
    corpora, unknown = training_corpora(facts)
    assert {"speechocean762", "vcc2016", "picovoice-intent", "librispeech"} <= set(corpora) and unknown is None
    text = str(render_model_card(tiny_checkpoint, None, facts))
    for needle in ("speechocean762 (non-native English read speech", "Zhang", "CC BY 4.0 (OpenSLR SLR101",
                   "Voice Conversion Challenge 2016", "Toda", "Picovoice speech-to-intent benchmark", "Apache-2.0",
                   "non-native read sentences from adults and children"):
        assert needle in text, needle
    assert "children's or non-English" not in text


def card_with_results(checkpoint, folder: Path, results: dict) -> str:
    """The model card of `checkpoint` rendered with `results` (written to folder/results.json) and DEFAULT_CPU_FACTS."""
    path = folder / "results.json"
    path.write_text(json.dumps(results))
    return str(render_model_card(checkpoint, path, DEFAULT_CPU_FACTS))


def test_card_says_when_worker_processes_shared_the_machine(tiny_checkpoint, tmp_path):
    """RTF measured with `lmcodec evaluate --jobs 2` ran beside a second process: the card says so."""
    results = sample_results(lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint))
    assert "1 thread(s)." in card_with_results(tiny_checkpoint, tmp_path, results)
    results["metadata"]["jobs"] = 2
    text = card_with_results(tiny_checkpoint, tmp_path, results)
    assert "1 thread(s) in each of 2 processes coding utterances at the same time." in text


def test_card_shows_the_paired_differences_against_reference_codecs(tiny_checkpoint, tmp_path):
    results = sample_results(lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint))
    text = card_with_results(tiny_checkpoint, tmp_path, results)
    sent = next(row for row in results["systems"] if row["kind"] == "lmcodec")
    # invented scores: LMCodec 0.7 below Codec2 700C on PESQ-WB on both utterances (no spread, SE 0, but only 2
    # utterances: not bold, and the note says why)
    assert f"| {sent['name']} − Codec2 700C | {sent['kbps']:.3f} / 0.800 | -0.70 ± 0.00 (0/2) |" in text
    assert "in bold when the mean is more than two standard errors from zero over at least 10 utterances" in text
    assert "Codec2 3200" not in text.split("Paired differences")[1].split("\n\n")[1]  # 3.2 kbps: not a peer


def test_limitations_name_every_reference_codec_lmcodec_is_not_ahead_of(tiny_checkpoint, tmp_path, monkeypatch):
    """The card's limitations say, pair by pair, where the evaluation does not show LMCodec ahead of a reference
    codec at a similar rate by more than two standard errors (a tie or behind), and say nothing when it is ahead."""
    from lmcodec.hub_cards.model_card import not_ahead_of_references

    def row(name, kind, kbps, **per_item):
        return {"name": name, "kind": kind, "kbps": kbps, "per_item": per_item}

    times = 4  # the three invented utterances repeated: 12, enough to call a difference significant
    ahead = row("LMCodec Nc=3", "lmcodec", 1.2, stoi=[0.9, 0.8, 0.85] * times, dnsmos_ovrl=[3.0, 2.9, 2.8] * times)
    codec2 = row("Codec2 1300", "reference", 1.4, stoi=[0.7, 0.6, 0.65] * times, dnsmos_ovrl=[2.5, 3.1, 2.9] * times)
    opus = row("Opus 6 kbps", "reference", 6.9, stoi=[0.99] * 12, dnsmos_ovrl=[3.5] * 12)  # not a peer at 5.75x
    sentence = not_ahead_of_references({"systems": [ahead, codec2, opus]})
    # STOI +0.2 on every utterance: ahead, not named; OVRL +0.5, -0.2, -0.1 (x4): mean +0.067, SE 0.093: a tie
    assert sentence.endswith("LMCodec Nc=3 against Codec2 1300: DNSMOS OVRL +0.07 ± 0.09 (a tie).")
    assert "STOI" not in sentence and "Opus" not in sentence
    assert "more than two standard errors over at least 10 utterances" in sentence
    # the same STOI gain on the first 3 utterances only is not shown ahead: too few to tell
    few = not_ahead_of_references({"systems": [{**ahead, "per_item": {"stoi": ahead["per_item"]["stoi"][:3]}},
                                               {**codec2, "per_item": {"stoi": codec2["per_item"]["stoi"][:3]}}]})
    assert few.endswith("LMCodec Nc=3 against Codec2 1300: STOI +0.200 ± 0.000 (too few utterances to tell: 3).")
    lower_mel = row("LMCodec Nc=3", "lmcodec", 1.2, stoi=[0.9, 0.8, 0.85] * times,
                    mel_distance=[0.1, 0.2, 0.15] * times)
    higher_mel = row("Codec2 1300", "reference", 1.4, stoi=[0.7, 0.6, 0.65] * times,
                     mel_distance=[0.3, 0.4, 0.35] * times)
    from lmcodec.training import report

    monkeypatch.setattr(report, "PAIRED_METRICS", ("stoi", "mel_distance"))  # lower mel distance is better
    assert not_ahead_of_references({"systems": [lower_mel, higher_mel]}) is None
    assert "mel distance +0.200 ± 0.000 (behind)" in not_ahead_of_references({"systems": [
        {**higher_mel, "name": "LMCodec Nc=3", "kind": "lmcodec", "kbps": 1.2}, {**lower_mel, "name": "Codec2 1300",
                                                                                "kind": "reference", "kbps": 1.4}]})
    monkeypatch.undo()
    behind = row("LMCodec Nc=3", "lmcodec", 1.2, stoi=[0.5, 0.4, 0.45] * times)
    assert "STOI -0.200 ± 0.000 (behind)" in not_ahead_of_references({"systems": [behind, codec2]})
    assert not_ahead_of_references({"systems": [row("LMCodec Nc=3", "lmcodec", 1.2, stoi=[0.9, 0.8, 0.85] * times),
                                                {**codec2, "per_item": {"stoi": codec2["per_item"]["stoi"]}}]}) is None

    results = sample_results(lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint))
    limitations = card_with_results(tiny_checkpoint, tmp_path, results).split("## Limitations")[1].split("## ")[0]
    sent = next(row for row in results["systems"] if row["kind"] == "lmcodec")
    assert f"{sent['name']} against Codec2 700C: PESQ-WB -0.70 ± 0.00 (too few utterances to tell: 2)" in limitations


def test_learning_curves_from_the_training_facts_are_a_table(tiny_checkpoint):
    facts = {**DEFAULT_CPU_FACTS, "learning_curves": {
        "caption": "Dev split, 3 / 12 levels.", "columns": ["stage", "step", "STOI 3 / 12"],
        "rows": [["codec", 1000, "0.787 / 0.809"], ["codec | end", 30000, None]]}}
    training = str(render_model_card(tiny_checkpoint, None, facts)).split("## Training")[1].split("\n## ")[0]
    assert "Dev split, 3 / 12 levels.\n\n| stage | step | STOI 3 / 12 |\n|---|---|---|\n| codec | 1,000 | 0.787 / 0.809 |\n" \
           "| codec \\| end | 30,000 | — |" in training
    assert "- learning curves:" not in training  # not also listed as a fact


@pytest.mark.parametrize("curves", [["not", "a", "dict"], {"columns": ["a", "b"], "rows": [["only one"]]},
                                    {"rows": [[1]]}, {"columns": ["a"], "rows": []}])
def test_malformed_learning_curves_are_a_one_line_error(tiny_checkpoint, curves):
    with pytest.raises(LMCodecError, match="learning_curves must be") as error:
        render_model_card(tiny_checkpoint, None, {**DEFAULT_CPU_FACTS, "learning_curves": curves})
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------------- first screen
def first_screen(text: str) -> str:
    """What a Hub visitor sees before scrolling: the card's body up to its "How to use" section."""
    body = text.split("\n---\n", 1)[1]
    return body.split("\n## How to use\n", 1)[0]


def test_bundled_cards_first_screen_says_what_it_is_how_to_load_it_its_numbers_and_decoding():
    """The bundled default's card, as shipped: its opening says what the codec is with the config's and results.json's
    figures, how to load it (package, Auto classes, without the package, without torch), the headline numbers against
    Codec2 at a similar rate with the paired differences, and that it decodes coarse-only because the fine LM measured
    no better; the training history comes after all that."""
    from lmcodec.training.report import rate_matched_pairs

    folder = Path(lmcodec.DEFAULT_CHECKPOINT)
    text = (folder / "README.md").read_text()
    config = lmcodec.LMCodecConfig.from_pretrained(folder)
    results = json.loads((folder / "results.json").read_text())
    default = next(row for row in results["systems"]
                   if row["kind"] == "lmcodec" and row["num_coarse_quantizers"] == config.num_coarse_quantizers)
    screen = first_screen(text)
    opening = screen.split("\n## ", 1)[0]
    # what it is: the figures of this checkpoint (Nc=3 of 12 levels, 16 kHz, 50 frames/s, 60 ms, about 1.2 kbps)
    assert config.fine_decoding == "coarse-only" and config.num_coarse_quantizers == 3
    for needle in (f"about {default['kbps']:.1f} kbps", f"{default['kbps']:.3f} kbps measured",
                   f"{config.sampling_rate / 1000:g} kHz", f"{config.frame_rate:g} frames/s",
                   f"Algorithmic latency: {config.algorithmic_latency_ms:g} ms", f"Nc={config.num_coarse_quantizers}",
                   f"writes {config.num_quantizers} residual-vector-quantized codes"):
        assert needle in opening, needle
    assert f"{default['kbps']:.1f}" == "1.2" and config.algorithmic_latency_ms == 60 and config.frame_rate == 50
    # the default decoding, up front, and why; the old claim that the fine LM regenerates the levels by default is gone
    assert "**Default decoding: coarse-only.**" in opening and "measured no better" in opening
    assert "regenerates the remaining levels before the decoder" not in text
    # how to load it
    for needle in ("lmcodec.LMCodecModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT)",
                   "lmcodec.register_auto_classes()",
                   "AutoModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT)",
                   'AutoModel.from_pretrained("NAMESPACE/NAME", trust_remote_code=True)',
                   "lmcodec.runtime.load_codec(lmcodec.DEFAULT_CHECKPOINT)", "lmcodec encode speech.flac speech.lmc"):
        assert needle in screen, needle
    # the headline numbers: LMCodec's rows and every rate-matched reference codec, then their paired differences
    headline = screen.split("\n## Headline numbers\n", 1)[1]
    _, pairs = rate_matched_pairs(results)
    assert {reference["name"] for _, reference, _ in pairs} == {"Codec2 700C", "Codec2 1200", "Codec2 1300"}
    assert (f"| {default['name']} (default) | {default['kbps']:.3f} | {default['metrics']['pesq']:.2f} | "
            f"{default['metrics']['stoi']:.3f} | {default['metrics']['dnsmos_ovrl']:.2f} |") in headline
    for system, reference, _ in pairs:
        assert f"| {reference['name']} | {reference['kbps']:.3f} |" in headline
        pair = f"| {system['name']} − {reference['name']} | {system['kbps']:.3f} / {reference['kbps']:.3f} |"
        assert pair in headline
    assert "| LMCodec Nc=3 − Codec2 1200 | 1.167 / 1.197 | **+0.25 ± 0.03** (45/50) |" in headline
    assert "| expected fine vectors − coarse only (default) | **+0.018 ± 0.007** (37/50) |" in headline
    assert "Opus" not in headline  # not at a similar rate: in the full table only
    # all of it before the long sections
    order = [text.index(f"\n## {title}\n") for title in ("Quick start", "Headline numbers", "How to use",
                                                         "Limitations", "Evaluation", "Training", "Files")]
    assert order == sorted(order)
    assert len(screen.splitlines()) < 80


def test_the_card_claims_no_better_fine_decoding_than_was_measured(tiny_checkpoint):
    """The default-decoding paragraph follows the per-utterance comparison in results.json: "measured no better" only
    when no fine decoding is ahead on a paired score by more than two standard errors while behind on none."""
    from lmcodec.hub_cards.model_card import decoding_paragraph, fine_decoding_comparison

    config = lmcodec.LMCodecConfig.from_pretrained(tiny_checkpoint)
    assert config.fine_decoding == "coarse-only"

    def results(gain: float) -> dict:
        def row(slug, kind, pesq):
            return {"name": slug, "slug": slug, "kind": kind, "num_coarse_quantizers": 2, "kbps": 0.6,
                    "kbps_source": "measured: all bytes of the coded files", "metrics": {"pesq": pesq[0]},
                    "per_item": {"pesq": pesq, "stoi": [0.8, 0.7, 0.75] * 4}}

        base = [1.5, 1.7, 1.6] * 4
        return {"metadata": {"default_operating_point": 2}, "systems": [
            row("lmcodec-nc2", "lmcodec", base),
            row("lmcodec-nc2-expected", "ablation", [value + gain + 0.01 * (index % 3) for index, value in
                                                     enumerate(base)])]}

    ahead = fine_decoding_comparison(results(0.1), config)
    assert ahead["better"] == ["expected fine vectors"]
    paragraph = decoding_paragraph(config, ahead)
    assert "measured no better" not in paragraph and "measured expected fine vectors ahead" in paragraph
    behind = fine_decoding_comparison(results(-0.1), config)
    assert behind["better"] == [] and "measured no better" in decoding_paragraph(config, behind)
    assert "| expected fine vectors − coarse only (default) | **-0.090 ± 0.002** (0/12) | +0.0000" in behind["table"]
    assert "measured no better" not in decoding_paragraph(config, None)  # nothing measured: nothing claimed


def listed_files(text: str) -> set[str]:
    """The file names the card's Files section lists, with the entries that group files (`*.py`, `onnx/`) expanded."""
    names = set()
    for line in section(text, "Files").splitlines():
        match = re.match(r"- `([^`]+)`(.*)", line)
        if match:
            name, rest = match.groups()
            grouped = name in ("*.py", "onnx/")
            names |= {found for found in re.findall(r"`([^`]+\.(?:py|onnx|json))`", rest)
                      if found.endswith(".py") or found.startswith("onnx/")} if grouped else {name}
    return names


def test_the_file_list_is_what_the_folder_holds(tiny_checkpoint):
    """The bundled default's card lists exactly the files of its folder (onnx/ included, no code files), and a saved
    checkpoint's card lists its code files and auto_map."""
    from lmcodec.hub_cards.model_card import shipped_files

    folder = Path(lmcodec.DEFAULT_CHECKPOINT)
    text = (folder / "README.md").read_text()
    assert listed_files(text) == set(shipped_files(folder))
    assert any(name.startswith("onnx/") for name in listed_files(text)) and "`*.py`" not in section(text, "Files")
    assert "no `auto_map`" in section(text, "Files")
    saved = str(render_model_card(tiny_checkpoint, None, None))
    assert listed_files(saved) == set(shipped_files(tiny_checkpoint)) | {"README.md"}
    assert "modeling_lmcodec.py" in listed_files(saved) and "`auto_map` for `trust_remote_code`" in saved
