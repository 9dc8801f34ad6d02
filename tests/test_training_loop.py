"""The trainers' shared loop (`training/loop.py`) and the training scripts' flag spellings."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
from pathlib import Path

import pytest

import lmcodec
from lmcodec.training import loop
from lmcodec.training.args import CONFIG_DIR, CodecTrainingArguments, DataArguments, ModelArguments, parse_arguments

TRAINING = Path(__file__).resolve().parent.parent / "training"


def test_neither_trainer_imports_the_other():
    """What train_codec and train_lm share lives in training/loop.py; neither reaches into the other."""
    for name, other in (("train_codec", "train_lm"), ("train_lm", "train_codec")):
        tree = ast.parse((TRAINING / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not any(module.endswith(other) for module in imported), f"{name} imports {other}"
        assert "lmcodec.training.loop" in imported


def test_the_learning_rate_warms_up_linearly_then_decays_by_a_cosine_to_the_floor():
    rates = [loop.learning_rate_at(step, 1.0, 4, 20, 0.1) for step in range(25)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(rates[4:], rates[5:], strict=False))
    assert rates[12] == pytest.approx(0.55) and rates[20] == pytest.approx(0.1) and rates[24] == pytest.approx(0.1)


def test_the_step_timer_leaves_out_the_warm_up_steps_unless_the_run_has_no_more():
    timer = loop.StepTimer(warm_steps=2, max_steps=5)
    for step in range(1, 6):
        timer.start()
        timer.stop(step)
    assert timer.steps == 3 and timer.rate(2.0) > 0
    short = loop.StepTimer(warm_steps=2, max_steps=1)
    assert short.rate(1.0) is None
    short.start()
    short.stop(1)
    assert short.steps == 1


def test_default_names_the_bundled_checkpoint():
    assert loop.model_location("default") == lmcodec.DEFAULT_CHECKPOINT
    assert loop.model_location("outputs/x/final") == "outputs/x/final"
    model = loop.build_model(ModelArguments(model_name_or_path="default"))
    assert model.name_or_path == lmcodec.DEFAULT_CHECKPOINT
    assert model.config.decoder_window_length == lmcodec.LMCodecConfig.from_pretrained(
        lmcodec.DEFAULT_CHECKPOINT).decoder_window_length


def test_the_fine_tuning_recipe_starts_from_the_default_with_the_current_decoder_recipe():
    model_args, data_args, args = parse_arguments((ModelArguments, DataArguments, CodecTrainingArguments),
                                                  ["--config", str(CONFIG_DIR / "finetune-default.json")])
    _, _, current = parse_arguments((ModelArguments, DataArguments, CodecTrainingArguments),
                                    ["--config", str(CONFIG_DIR / "decoder-linear-mrd.json")])
    assert model_args.model_name_or_path == "default" and model_args.freeze == "encoder,quantizer"
    for name in ("discriminators", "discriminator_channels", "magnitude_discriminator_compression",
                 "adversarial_weight", "feature_matching_weight", "adversarial_loss", "discriminator_update_every",
                 "discriminator_learning_rate"):
        assert getattr(args, name) == getattr(current, name), name
    assert args.max_steps <= 500 and args.num_threads <= 2  # minutes on a laptop, not hours
    assert args.learning_rate < current.learning_rate  # the default's decoder is annealed: a gentler peak
    assert data_args.train_dataset.startswith("data/speech/") and "," not in data_args.train_dataset  # the data root
    assert "librispeech-test-other" not in data_args.train_dataset
    assert data_args.eval_dataset is None and data_args.eval_holdout > 0 and not data_args.train_exclude


# ---------------------------------------------------------------------------------------------------- flags
class Parsed(Exception):  # noqa: N818 - carries the parse result out of a script's main
    def __init__(self, parser, namespace):
        super().__init__()
        self.parser, self.namespace = parser, namespace


@pytest.fixture
def parsed(monkeypatch):
    """Run a script's `main` only up to its argument parsing; return (parser, namespace)."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed(self, original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)

    def run(module: str, argv: list[str]):
        with pytest.raises(Parsed) as caught:
            importlib.import_module(f"lmcodec.training.{module}").main(argv)
        return caught.value.parser, caught.value.namespace

    return run


ARGPARSE_SCRIPTS = {  # module: (arguments with hyphenated flags, what they parse to)
    "export_integer_lm": (["ckpt", "out", "--calibration-dataset", "speech", "--max-items", "3", "--max-windows", "5"],
                          {"calibration_dataset": "speech", "max_items": 3, "max_windows": 5}),
    "grow_decoder": (["ckpt", "out", "--decoder-frame-layers", "2", "--decoder-stft-layers", "3"],
                     {"decoder_frame_layers": 2, "decoder_stft_layers": 3}),
    "bundle_default": (["ckpt", "--training-facts", "facts.json", "--fine-decoding", "coarse-only"],
                       {"training_facts": "facts.json", "fine_decoding": "coarse-only"}),
    "assemble": (["--codec", "a", "--fine-lm", "b", "--entropy-lm", "c", "--output", "d"],
                 {"fine_lm": "b", "entropy_lm": "c"}),
    "evaluation": (["speech", "--out", "o", "--max-files", "3", "--max-seconds", "2.5", "--audio-column", "x"],
                   {"max_files": 3, "max_seconds": 2.5, "audio_column": "x"}),
}


@pytest.mark.parametrize("module", sorted(ARGPARSE_SCRIPTS))
def test_argparse_scripts_take_hyphenated_flags_and_the_underscore_spelling_as_a_hidden_alias(parsed, module):
    argv, expected = ARGPARSE_SCRIPTS[module]
    underscored = ["--" + a[2:].replace("-", "_") if a.startswith("--") else a for a in argv]
    assert underscored != argv
    parser, hyphen = parsed(module, argv)
    _, underscore = parsed(module, underscored)
    assert vars(hyphen) == vars(underscore) and all(getattr(hyphen, k) == v for k, v in expected.items())
    help_text = parser.format_help()
    flags = [a for a in argv if a.startswith("--") and "-" in a[2:]]
    assert all(flag in help_text for flag in flags)
    assert not any(("--" + flag[2:].replace("-", "_")) in help_text for flag in flags), "help shows only hyphens"


def test_a_required_flag_given_by_its_alias_counts_as_given(parsed):
    _, namespace = parsed("export_integer_lm", ["ckpt", "out", "--calibration_dataset", "speech"])
    assert namespace.calibration_dataset == "speech"
    with pytest.raises(SystemExit):
        parsed("export_integer_lm", ["ckpt", "out"])


def test_dataclass_scripts_take_both_spellings():
    """train-codec, train-lm and prepare-librilight parse with transformers' HfArgumentParser, which accepts both."""
    from transformers import HfArgumentParser

    from lmcodec.training.prepare_librilight import PrepareArguments
    from lmcodec.training.train_lm import LMTrainingArguments

    for dataclasses in ((ModelArguments, DataArguments, CodecTrainingArguments),
                        (ModelArguments, DataArguments, LMTrainingArguments)):
        for spelling in (["--output-dir", "o", "--model-name-or-path", "default"],
                         ["--output_dir", "o", "--model_name_or_path", "default"]):
            model_args, _, args = parse_arguments(dataclasses, spelling)
            assert (args.output_dir, model_args.model_name_or_path) == ("o", "default")
    for spelling in (["--input-dir", "a", "--output-dir", "b", "--shard-size-mb", "7"],
                     ["--input_dir", "a", "--output_dir", "b", "--shard_size_mb", "7"]):
        (args,) = HfArgumentParser(PrepareArguments).parse_args_into_dataclasses(args=spelling)
        assert (args.input_dir, args.output_dir, args.shard_size_mb) == ("a", "b", 7)


def test_recorded_run_arguments_name_fields_not_flags(tmp_path):
    """run_arguments.json keys are the field names, whichever spelling the command line used."""
    from lmcodec.training.args import write_run_arguments

    parsed_args = parse_arguments((ModelArguments, DataArguments, CodecTrainingArguments), ["--max-steps", "3"])
    recorded = json.loads(write_run_arguments(tmp_path, *parsed_args).read_text())
    assert recorded["max_steps"] == 3 and "max-steps" not in recorded


def test_max_train_items_keeps_the_first_items_after_the_held_out_ones(tmp_path):
    import soundfile as sf

    from lmcodec.training.data import dataset_paths, train_and_held_out
    from tests.test_data import speech_like

    for index in range(6):
        sf.write(tmp_path / f"{index}.wav", speech_like(0.5, 16000, seed=index), 16000)
    arguments = DataArguments(train_dataset=str(tmp_path), eval_holdout=2, max_train_items=3)
    train, held_out = train_and_held_out(arguments)
    assert len(train) == 3 and len(held_out) == 2
    assert not dataset_paths(train) & dataset_paths(held_out)
    assert list(train["path"]) == sorted(train["path"])  # the first ones, in path order
    everything, _ = train_and_held_out(DataArguments(train_dataset=str(tmp_path), eval_holdout=2))
    assert list(train["path"]) == list(everything["path"])[:3]
