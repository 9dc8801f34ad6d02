"""The LM trainer: tokenise with a frozen codec (cached), train the fine or entropy LM, resume exactly, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lmcodec
from lmcodec.training import train_lm
from tests.conftest import random_codebooks, tiny_config
from tests.test_data import generated_dataset


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A tiny codec checkpoint and Parquet shards of generated audio."""
    root = tmp_path_factory.mktemp("train_lm")
    torch.manual_seed(0)
    lmcodec.save_checkpoint(random_codebooks(lmcodec.LMCodecModel(tiny_config())), root / "codec")
    (root / "shards").mkdir()
    generated_dataset(count=6, seconds=1.2).to_parquet(str(root / "shards" / "train-00000-of-00001.parquet"))
    return root


@pytest.fixture(autouse=True)
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def args_for(workspace: Path, output: Path, target: str, *extra: str) -> list[str]:
    return ["--target", target, "--model_name_or_path", str(workspace / "codec"),
            "--train_dataset", str(workspace / "shards"), "--codes_cache_dir", str(workspace / "codes"),
            "--output_dir", str(output), "--per_device_batch_size", "2", "--sequence_frames", "20",
            "--learning_rate", "0.003", "--warmup_steps", "2", "--logging_steps", "1", "--report_to", "none",
            "--num_threads", "1", *extra]


@pytest.mark.parametrize("target", ["fine", "entropy"])
def test_training_changes_only_the_target_lm_and_exports_the_whole_checkpoint(workspace, tmp_path, target):
    output = tmp_path / target
    assert train_lm.main(args_for(workspace, output, target, "--max_steps", "3", "--eval_holdout", "1")) == 0
    before = lmcodec.LMCodecModel.from_pretrained(workspace / "codec").state_dict()
    after = lmcodec.LMCodecModel.from_pretrained(output / "final").state_dict()
    changed = {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}
    # the entropy LM's training also exports its integer twin, the one coding uses
    assert changed == ({"entropy_lm", "integer_entropy_lm"} if target == "entropy" else {"fine_lm"})
    assert list((workspace / "codes").glob("train-*.arrow")), "tokenised codes are cached on disk"


def test_resume_reproduces_the_uninterrupted_run(workspace, tmp_path):
    straight = tmp_path / "straight"
    assert train_lm.main(args_for(workspace, straight, "entropy", "--max_steps", "4")) == 0
    resumed = tmp_path / "resumed"
    assert train_lm.main(args_for(workspace, resumed, "entropy", "--max_steps", "2", "--save_steps", "2",
                                  "--export_final", "false")) == 0
    assert train_lm.main(args_for(workspace, resumed, "entropy", "--max_steps", "4",
                                  "--resume_from_checkpoint", "latest")) == 0
    first = lmcodec.LMCodecModel.from_pretrained(straight / "final").entropy_lm.state_dict()
    second = lmcodec.LMCodecModel.from_pretrained(resumed / "final").entropy_lm.state_dict()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def test_windows_and_levels_are_a_pure_function_of_seed_epoch_index(workspace):
    model = lmcodec.LMCodecModel.from_pretrained(workspace / "codec")
    import datasets

    codes = datasets.Dataset.from_dict({"codes": [list(range(4 * 30))], "frames": [30]})
    windows = train_lm.CodeWindowDataset(codes, 4, 20, model.config.operating_points, seed=3)
    first, again = windows[(0, 0)], windows[(0, 0)]
    assert torch.equal(first["audio_codes"], again["audio_codes"]) and first["num_coarse"] == again["num_coarse"]
    assert first["audio_codes"].shape == (4, 20) and int(first["frame_mask"].sum()) == 20
    assert {int(windows[(epoch, 0)]["num_coarse"]) for epoch in range(20)} == {2, 3}


@pytest.mark.slow
def test_two_processes(workspace, tmp_path):
    """`accelerate launch` with two CPU processes over gloo (`--cpu` alone would silently run one)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "training" / "train_lm.py"),
               *args_for(workspace, tmp_path / "two", "fine", "--max_steps", "2")]
    result = subprocess.run(command, env={**os.environ, "ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "two" / "final" / "model.safetensors").exists()


def test_a_dev_split_of_speakers_is_held_out_and_caches_are_keyed_by_their_files(workspace, tmp_path):
    """`--eval_dataset` (a dev speaker's folder inside the training corpus): its files are tokenised for evaluation
    only; dev splits of equal size but other files get their own codes caches."""
    import soundfile as sf

    from tests.test_data import speech_like

    root = tmp_path / "corpus"
    for number, speaker in enumerate(("S1", "S2", "S3")):
        (root / speaker).mkdir(parents=True)
        for utterance in range(3):
            sf.write(root / speaker / f"{utterance}.wav", speech_like(1.2, 16000, seed=10 * number + utterance), 16000)
    cache = tmp_path / "codes"
    for dev in ("S1", "S2"):
        assert train_lm.main(args_for(workspace, tmp_path / dev, "entropy", "--max_steps", "1",
                                      "--train_dataset", str(root), "--eval_dataset", str(root / dev),
                                      "--codes_cache_dir", str(cache), "--export_final", "false")) == 0
    train_caches = sorted(cache.glob("train-*.arrow"))
    eval_caches = sorted(cache.glob("eval-*.arrow"))
    assert len(train_caches) == 2 and all(p.name.endswith("-6.arrow") for p in train_caches)  # S2+S3, then S1+S3
    assert len(eval_caches) == 2 and all(p.name.endswith("-3.arrow") for p in eval_caches)
    with pytest.raises(ValueError, match="streaming"):
        train_lm.main(args_for(workspace, tmp_path / "streamed", "entropy", "--streaming", "true"))


def test_batched_tokenising_gives_each_utterance_its_own_codes(workspace, tmp_path):
    """Utterances of different lengths padded into one batch get the codes (and frame counts) of encoding each alone."""
    import datasets

    from lmcodec.frames import num_frames
    from lmcodec.training.data import decode_audio

    model = lmcodec.LMCodecModel.from_pretrained(workspace / "codec").eval()
    audio = datasets.concatenate_datasets([generated_dataset(count=3, seconds=0.7), generated_dataset(count=3, seconds=1.9)])
    alone, _ = train_lm.tokenize(model, audio, "audio", tmp_path / "alone", "train", batch_size=1)
    batched, levels = train_lm.tokenize(model, audio, "audio", tmp_path / "batched", "train", batch_size=4)
    assert len({row["frames"] for row in batched}) > 1, "the batch mixes lengths"
    for value, one, many in zip(audio["audio"], alone, batched):
        assert many["frames"] == one["frames"] == num_frames(len(decode_audio(value)), model.config.hop_length)
        assert many["codes"] == one["codes"] and len(many["codes"]) == levels * many["frames"]


def test_training_means_and_evaluations_are_logged_as_json_lines_like_the_codec_trainer(workspace, tmp_path):
    import json

    output = tmp_path / "logged"
    assert train_lm.main(args_for(workspace, output, "entropy", "--max-steps", "2", "--eval-steps", "1",
                                  "--eval-holdout", "1", "--export-final", "false")) == 0
    train = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in train] == [1, 2]
    assert {"train/bits_per_code", "train/learning_rate", "train/sequences_per_second"} <= set(train[-1])
    evaluations = [json.loads(line) for line in (output / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evaluations] == [1, 2] and "bits_per_code_nc3" in evaluations[-1]  # the last once
