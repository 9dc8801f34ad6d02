"""The Accelerate codec trainer: a step on generated audio, exact resume, frozen fine-tuning, two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lmcodec
from lmcodec.training import train_codec
from tests.conftest import REPO, tiny_config
from tests.test_data import generated_dataset


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Parquet shards of generated signals (an in-test `datasets` dataset) and a tiny model config."""
    root = tmp_path_factory.mktemp("train_codec")
    shards = root / "shards"
    shards.mkdir()
    dataset = generated_dataset(count=8, seconds=1.5)
    for shard in range(2):
        dataset.shard(2, shard, contiguous=True).to_parquet(str(shards / f"train-{shard:05d}-of-00002.parquet"))
    tiny_config().save_pretrained(root / "tiny")
    tiny_config(quantizer_dropout=0.0, codebook_dead_threshold=0.0).save_pretrained(root / "tiny-deterministic")
    return root


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The trainer runs with --num_threads 1 here (tiny models gain nothing from threads, and OpenMP barriers crawl when
    the other core is busy); give the rest of the session its thread count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def args_for(workspace: Path, output: Path, *extra: str, config: str = "tiny") -> list[str]:
    return [
        "--model_config", str(workspace / config),
        "--train_dataset", str(workspace / "shards"),
        "--dataset_cache_dir", str(workspace / "cache"),
        "--output_dir", str(output),
        "--crop_seconds", "0.4",
        "--per_device_batch_size", "2",
        "--learning_rate", "0.003",
        "--warmup_steps", "2",
        "--logging_steps", "1",
        "--report_to", "none",
        "--num_threads", "1",
        *extra,
    ]


def load_dump(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_one_step_on_generated_audio_exports_a_loadable_codec(workspace: Path, tmp_path: Path, capsys):
    output = tmp_path / "one-step"
    assert train_codec.main(args_for(workspace, output, "--max_steps", "1", "--eval_holdout", "2",
                                     "--max_eval_items", "2", "--report_to", "auto")) == 0
    printed = capsys.readouterr().out
    assert "eval step 1: mel_q2=" in printed and "throughput:" in printed
    model = lmcodec.LMCodecModel.from_pretrained(output / "final")
    assert bool(model.quantizer.initialized.all()), "the first training step initialises every codebook"
    torch.manual_seed(0)
    fresh = lmcodec.LMCodecModel(tiny_config())
    assert not torch.equal(model.decoder.input_projection.weight, fresh.decoder.input_projection.weight)
    assert all(torch.equal(a, b) for a, b in zip(model.fine_lm.parameters(), fresh.fine_lm.parameters(), strict=True)), \
        "the codec trainer leaves the language models alone"
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return
    assert list(output.rglob("events.out.tfevents.*")), "tensorboard logs are written when tensorboard is installed"


def test_quality_evaluation_appends_stoi_pesq_and_mel_per_level_to_a_jsonl_log(workspace: Path, tmp_path: Path):
    import json

    output = tmp_path / "quality-eval"
    assert train_codec.main(args_for(workspace, output, "--max_steps", "2", "--eval_steps", "1", "--eval_holdout",
                                     "2", "--max_eval_items", "2", "--eval_quality", "--eval_num_quantizers", "1,4,latent",
                                     "--export_final", "false")) == 0
    records = [json.loads(line) for line in (output / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and records[0]["learning_rate"] is not None
    for key in ("stoi_q1", "pesq_q1", "mel_q1", "stoi_q4", "pesq_q4", "mel_q4", "mel_qlatent"):
        assert key in records[-1]
    assert [json.loads(line)["step"] for line in (output / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    assert records[-1]["mel_q4"] > 0


RESUME_SETUPS = {
    # 8 items, 2 per micro-batch, 2 micro-batches per step: the checkpoint at step 3 is mid-epoch and the run crosses
    # epochs; a late, cheap GAN puts the discriminators and their optimizer into the checkpoint too.
    "map-style+gan": ["--gradient_accumulation_steps", "2", "--discriminators", "msstft,mpd",
                      "--discriminator_channels", "4", "--adversarial_start_step", "2",
                      "--discriminator_update_every", "2"],
    # Streaming Parquet read by two DataLoader workers: resuming must restore each worker's part and the round-robin.
    "streaming+workers": ["--streaming", "--num_workers", "2", "--shuffle_buffer_size", "3"],
}


@pytest.mark.parametrize("setup", sorted(RESUME_SETUPS))
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(workspace: Path, tmp_path: Path, setup: str, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)  # Parquet streaming's 5 s pause
    common = ["--max_steps", "6", *RESUME_SETUPS[setup]]
    full = tmp_path / "full"
    assert train_codec.main(args_for(workspace, full, *common, "--save_steps", "3",
                                     "--debug_dump_state_dir", str(tmp_path / "dump-full"))) == 0
    checkpoint = full / "checkpoints" / "checkpoint-00000003"
    assert (checkpoint / "COMPLETE").is_file() and (checkpoint / "export" / "config.json").is_file()
    assert lmcodec.LMCodecModel.from_pretrained(checkpoint / "export") is not None
    recorded = json.loads((full / "run_arguments.json").read_text())  # the arguments as run, command line included
    assert recorded["max_steps"] == 6 and recorded["save_steps"] == 3 and recorded["output_dir"] == str(full)

    resumed = tmp_path / "resumed"
    assert train_codec.main(args_for(workspace, resumed, *common, "--resume_from_checkpoint", str(checkpoint),
                                     "--debug_dump_state_dir", str(tmp_path / "dump-resumed"))) == 0
    a, b = load_dump(tmp_path / "dump-full" / "rank0.pt"), load_dump(tmp_path / "dump-resumed" / "rank0.pt")
    assert a["state"] == b["state"] and a["state"]["step"] == 6 and a["state"]["epoch"] >= 1
    different = [name for name in a["model"] if not torch.equal(a["model"][name], b["model"][name])]
    assert not different, f"resumed run differs in {different[:5]}"


def test_a_packed_checkpoint_resumes_and_stays_close_to_the_uninterrupted_run(workspace: Path, tmp_path: Path):
    """`resume_state pack` drops the untouched LM weights and rounds Adam's moments to bfloat16 (to fit in git);
    `unpack` restores a checkpoint that resumes: same steps and data, weights within bfloat16 moment rounding."""
    from lmcodec.training import resume_state

    common = ["--max_steps", "4", "--discriminators", "mpd", "--discriminator_channels", "4",
              "--adversarial_start_step", "1"]
    full = tmp_path / "full"
    assert train_codec.main(args_for(workspace, full, *common, "--save_steps", "2",
                                     "--debug_dump_state_dir", str(tmp_path / "dump-full"))) == 0
    packed = resume_state.pack(full / "checkpoints" / "checkpoint-00000002", tmp_path / "packed")
    assert not any(name.startswith(("fine_lm.", "entropy_lm.")) for name in
                   __import__("safetensors.torch").torch.load_file(str(packed / "model.safetensors")))
    resumed = tmp_path / "resumed"
    resume_state.unpack(tmp_path / "packed", resumed / "checkpoints")
    assert train_codec.main(args_for(workspace, resumed, *common, "--resume_from_checkpoint", "latest",
                                     "--debug_dump_state_dir", str(tmp_path / "dump-resumed"))) == 0
    a, b = load_dump(tmp_path / "dump-full" / "rank0.pt"), load_dump(tmp_path / "dump-resumed" / "rank0.pt")
    assert a["state"] == b["state"] and a["state"]["step"] == 4
    for name, value in a["model"].items():
        if name.startswith(("encoder.", "decoder.")) and value.is_floating_point():
            torch.testing.assert_close(b["model"][name], value, atol=2e-3, rtol=0, msg=name)


def test_fine_tuning_with_frozen_encoder_and_quantizer_keeps_bitstreams_decodable(workspace: Path, tmp_path: Path):
    base = tmp_path / "base"
    assert train_codec.main(args_for(workspace, base, "--max_steps", "2")) == 0
    tuned = tmp_path / "tuned"
    assert train_codec.main(args_for(workspace, tuned, "--max_steps", "2", "--model_name_or_path", str(base / "final"),
                                     "--freeze", "encoder,quantizer", "--learning_rate", "0.01")) == 0
    before = lmcodec.LMCodecModel.from_pretrained(base / "final")
    after = lmcodec.LMCodecModel.from_pretrained(tuned / "final")
    for name, tensor in before.state_dict().items():
        if name.startswith(("encoder.", "quantizer.")):
            assert torch.equal(tensor, after.state_dict()[name]), f"{name} changed although frozen"
    assert not torch.equal(before.decoder.input_projection.weight, after.decoder.input_projection.weight)


def test_two_processes_stay_identical_and_match_one_process_on_the_combined_batch(workspace: Path, tmp_path: Path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.exists():
        pytest.skip("the accelerate launcher is not installed next to this Python")
    # Deterministic quantizer (no dropout, no dead-code restarts: both draw rank-local random numbers whose count
    # depends on the per-process batch size) and a frozen encoder, so the quantizer sees the same latents in one and
    # two processes; the decoder trains, so DDP's gradient averaging is exercised too.
    common = ["--max_steps", "3", "--freeze", "encoder"]
    two = tmp_path / "two"
    env = dict(os.environ, ACCELERATE_USE_CPU="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
               HF_DATASETS_CACHE=str(tmp_path / "datasets-cache"))
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "training" / "train_codec.py"),
               *args_for(workspace, two, *common, "--debug_dump_state_dir", str(tmp_path / "dump-two"),
                         config="tiny-deterministic")]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [load_dump(tmp_path / "dump-two" / f"rank{r}.pt") for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["rank"] for r in ranks] == [0, 1], \
        "accelerate launch must really start two processes"
    different = [n for n in ranks[0]["model"] if not torch.equal(ranks[0]["model"][n], ranks[1]["model"][n])]
    assert not different, f"ranks differ in {different[:5]}"
    assert not torch.equal(ranks[0]["model"]["quantizer.ema_counts"], torch.zeros_like(
        ranks[0]["model"]["quantizer.ema_counts"]))

    one = tmp_path / "one"
    assert train_codec.main(args_for(workspace, one, *common, "--per_device_batch_size", "4",
                                     "--debug_dump_state_dir", str(tmp_path / "dump-one"),
                                     config="tiny-deterministic")) == 0
    single = load_dump(tmp_path / "dump-one" / "rank0.pt")["model"]
    distributed = ranks[0]["model"]
    assert torch.equal(single["quantizer.initialized"], distributed["quantizer.initialized"])
    # k-means initialisation on the gathered batch, then two EMA updates from all-reduced statistics.
    for name in ("quantizer.ema_counts", "quantizer.ema_sums", "quantizer.codebooks"):
        torch.testing.assert_close(distributed[name], single[name], rtol=1e-5, atol=1e-5, msg=name)


def test_grafting_a_harmonic_branch_onto_a_trained_run_with_its_discriminator(workspace: Path, tmp_path: Path):
    """Fine-tune path of issue 11: start from a run's export with `num_harmonics` added, and from its discriminator."""
    first = tmp_path / "first"
    assert train_codec.main(args_for(workspace, first, "--max_steps", "1", "--save_steps", "1",
                                     "--discriminators", "mpd")) == 0
    checkpoint = sorted((first / "checkpoints").glob("checkpoint-*"))[-1]
    second = tmp_path / "second"
    assert train_codec.main(args_for(workspace, second, "--max_steps", "1", "--discriminators", "mpd",
                                     "--model_name_or_path", str(first / "final"),
                                     "--model_config_overrides", '{"num_harmonics": 8}',
                                     "--init_discriminator_from", str(checkpoint))) == 0
    model = lmcodec.LMCodecModel.from_pretrained(second / "final")
    assert model.config.num_harmonics == 8 and model.decoder.harmonic_head is not None
    logged = (second / "train_log.jsonl").read_text()
    assert "train/pitch_loss" in logged and "train/voicing_loss" in logged
    with pytest.raises(FileNotFoundError, match="init_discriminator_from"):
        train_codec.main(args_for(workspace, tmp_path / "third", "--max_steps", "1", "--discriminators", "mpd",
                                  "--init_discriminator_from", str(first)))
    with pytest.raises(ValueError, match="other discriminators"):
        train_codec.main(args_for(workspace, tmp_path / "fourth", "--max_steps", "1", "--discriminators", "msstft",
                                  "--init_discriminator_from", str(checkpoint)))


def test_init_discriminator_from_loads_the_saved_discriminators_and_adds_new_ones_fresh(tmp_path: Path):
    """`--discriminators mpd,msstft --init_discriminator_from <an mpd run>`: mpd is copied, msstft starts fresh."""
    from safetensors.torch import save_file

    from training.discriminators import build_discriminator

    torch.manual_seed(0)
    trained = build_discriminator("mpd", channels=4)
    save_file(trained.state_dict(), str(tmp_path / "model_1.safetensors"))
    torch.manual_seed(1)
    both = build_discriminator("mpd,msstft", channels=4)
    fresh_msstft = {k: v.clone() for k, v in both.discriminators["msstft"].state_dict().items()}
    assert train_codec.load_discriminator_weights(both, str(tmp_path)) == ["msstft"]
    for key, value in trained.discriminators["mpd"].state_dict().items():
        assert torch.equal(both.discriminators["mpd"].state_dict()[key], value), key
    for key, value in both.discriminators["msstft"].state_dict().items():
        assert torch.equal(value, fresh_msstft[key]), key
    with pytest.raises(ValueError, match="other discriminators"):
        train_codec.load_discriminator_weights(build_discriminator("mpd", channels=8), str(tmp_path))


def test_zero_steps_only_evaluates_the_starting_model(workspace: Path, tmp_path: Path, capsys):
    """`--max-steps 0`: the dev scores of the model a fine-tune starts from, logged like any evaluation."""
    output = tmp_path / "zero"
    assert train_codec.main(args_for(workspace, output, "--max-steps", "0", "--eval-holdout", "2",
                                     "--max-eval-items", "2", "--export-final", "false")) == 0
    records = [json.loads(line) for line in (output / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0] and "mel_q2" in records[0]
    assert not (output / "train_log.jsonl").exists() and not (output / "final").exists()
    assert "throughput" not in capsys.readouterr().out
