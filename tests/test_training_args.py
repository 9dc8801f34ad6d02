"""Recipes and their arguments: config files, `extends` chains, the command line on top, and the arguments a run
records (`run_arguments.json`)."""

from __future__ import annotations

import json

import pytest

from lmcodec.training.args import (
    CONFIG_DIR,
    CodecTrainingArguments,
    DataArguments,
    ModelArguments,
    parse_arguments,
    write_run_arguments,
)
from lmcodec.training.train_lm import LMTrainingArguments

CODEC_ARGUMENTS = (ModelArguments, DataArguments, CodecTrainingArguments)
LM_ARGUMENTS = (ModelArguments, DataArguments, LMTrainingArguments)


def write(path, values: dict):
    path.write_text(json.dumps(values))
    return path


def test_command_line_wins_over_the_config_file(tmp_path):
    config = write(tmp_path / "recipe.json", {"_comment": "ignored", "max_steps": 10, "learning_rate": 0.5})
    _, _, args = parse_arguments(CODEC_ARGUMENTS, ["--config", str(config), "--max_steps", "20"])
    assert (args.max_steps, args.learning_rate) == (20, 0.5)


def test_extends_chain_lets_each_file_override_the_one_it_extends(tmp_path):
    (tmp_path / "bases").mkdir()
    write(tmp_path / "bases" / "grand.json", {"max_steps": 1, "learning_rate": 0.1, "seed": 7,
                                             "model_config_overrides": {"decoder_window_length": 640}})
    write(tmp_path / "bases" / "parent.json", {"extends": "grand.json", "max_steps": 2, "learning_rate": 0.2})
    child = write(tmp_path / "child.json", {"extends": "bases/parent.json", "max_steps": 3,
                                            "model_config_overrides": None})
    model_args, _, args = parse_arguments(CODEC_ARGUMENTS, ["--config", str(child)])
    assert (args.max_steps, args.learning_rate, args.seed) == (3, 0.2, 7)
    assert model_args.model_config_overrides is None  # null in the child removes what the grandparent set


def test_extends_finds_the_shipped_recipes_by_name(tmp_path):
    child = write(tmp_path / "child.json", {"extends": "decoder-adversarial.json", "max_steps": 5})
    model_args, data_args, args = parse_arguments(CODEC_ARGUMENTS, ["--config", str(child)])
    assert args.max_steps == 5
    assert args.adversarial_weight == 0.5 and model_args.freeze == "encoder,quantizer"
    assert data_args.eval_dataset.endswith("npvcc2016/evals/TM3")  # set only at the bottom of the shipped chain


def test_extends_cycle_is_an_error_naming_the_files(tmp_path):
    write(tmp_path / "a.json", {"extends": "b.json", "max_steps": 1})
    write(tmp_path / "b.json", {"extends": "a.json"})
    with pytest.raises(ValueError, match="cycle.*a.json.*b.json.*a.json"):
        parse_arguments(CODEC_ARGUMENTS, ["--config", str(tmp_path / "a.json")])


def test_missing_base_and_unknown_keys_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-recipe.json"):
        parse_arguments(CODEC_ARGUMENTS, ["--config", str(write(tmp_path / "a.json", {"extends": "no-such-recipe.json"}))])
    write(tmp_path / "base.json", {"max_stpes": 1})
    with pytest.raises(ValueError, match="unknown keys.*max_stpes"):
        parse_arguments(CODEC_ARGUMENTS, ["--config", str(write(tmp_path / "b.json", {"extends": "base.json"}))])


@pytest.mark.parametrize("recipe", sorted(path.name for path in CONFIG_DIR.glob("*.json") if path.name != "default-facts.json"))
def test_every_shipped_recipe_parses(recipe):
    arguments = LM_ARGUMENTS if recipe.startswith("lm-") else CODEC_ARGUMENTS
    parse_arguments(arguments, ["--config", str(CONFIG_DIR / recipe)])


def test_run_arguments_file_reproduces_the_parsed_arguments(tmp_path):
    config = write(tmp_path / "recipe.json", {"extends": "decoder-adversarial.json", "max_steps": 9,
                                              "model_config_overrides": {"decoder_window_length": 640}})
    parsed = parse_arguments(CODEC_ARGUMENTS, ["--config", str(config), "--seed", "3"])
    recorded = write_run_arguments(tmp_path, *parsed)
    again = parse_arguments(CODEC_ARGUMENTS, ["--config", str(recorded)])
    assert again == parsed
