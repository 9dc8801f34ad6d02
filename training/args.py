"""Arguments of the training scripts: dataclasses for `transformers.HfArgumentParser`, plus config files.

`parse_arguments(dataclasses, argv)` reads `--config FILE` (JSON, or YAML when PyYAML is installed) whose keys are
field names of the dataclasses, then applies the rest of the command line on top. A file may start from another one
with `"extends": "other.json"` (a path beside it or in `training/configs`); its own keys win, recursively:

    python training/train_codec.py --config training/configs/tiny-cpu.json --max-steps 20 --output-dir runs/x

Flags are documented with hyphens (`--output-dir`); the field names' underscore spelling (`--output_dir`) is accepted
too, by HfArgumentParser here and by `accept_underscore_spellings` in the argparse-based training scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Fine-tune this LMCodec checkpoint instead of training from scratch: a local folder, a Hub "
                  "id, or 'default' for the bundled checkpoint (lmcodec.DEFAULT_CHECKPOINT)."},
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision of model_name_or_path."})
    model_config: str | None = field(
        default=None,
        metadata={"help": "From scratch: a config.json (or folder holding one) for LMCodecConfig; default config if unset."},
    )
    model_config_overrides: str | None = field(
        default=None,
        metadata={"help": "JSON object of LMCodecConfig fields to override, e.g. '{\"quantizer_dropout\": 0.5}'."},
    )
    freeze: str = field(
        default="",
        metadata={"help": "Comma-separated parts kept fixed: encoder, quantizer (codebooks, no EMA updates), decoder. "
                  "'encoder,quantizer' keeps existing bitstreams decodable."},
    )


@dataclass
class DataArguments:
    train_dataset: str = field(
        default="",
        metadata={"help": "Training audio: folders (comma-separated), Parquet shards/glob, audiofolder:DIR or a Hub id."},
    )
    train_dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name (Hub)."})
    train_split: str = field(default="train", metadata={"help": "Split of train_dataset."})
    eval_dataset: str | None = field(default=None, metadata={"help": "Held-out audio for periodic evaluation."})
    eval_split: str = field(default="train", metadata={"help": "Split of eval_dataset."})
    eval_holdout: int = field(
        default=0, metadata={"help": "Without eval_dataset: hold out this many training items for evaluation."}
    )
    train_exclude: str = field(
        default="",
        metadata={"help": "Comma-separated glob patterns of file paths left out of training (fnmatch on absolute paths, "
                  "e.g. '*/speechocean762/SPEAKER0056/*'); needs folder (path-column) data."},
    )
    exclude_eval_from_train: bool = field(
        default=True,
        metadata={"help": "When eval_dataset is folders of files, drop those files from the training data (so "
                  "eval_dataset can name dev-speaker subfolders of a training folder), and fail if any remain."},
    )
    max_train_items: int = field(
        default=0,
        metadata={"help": "Train on the first N training items only (in path order, after the held-out and excluded "
                  "ones are set aside; 0: all), e.g. a few minutes of speech for a quick fine-tune."},
    )
    eval_spread: bool = field(
        default=False,
        metadata={"help": "Take the max_eval_items evaluation utterances evenly spread over eval_dataset (every "
                  "speaker of a multi-folder dev set) instead of the first ones."},
    )
    streaming: bool = field(default=False, metadata={"help": "Stream train_dataset (datasets IterableDataset)."})
    audio_column: str = field(default="audio", metadata={"help": "Name of the audio column."})
    dataset_cache_dir: str | None = field(default=None, metadata={"help": "cache_dir for datasets.load_dataset."})
    crop_seconds: float = field(default=1.0, metadata={"help": "Training crop length (rounded to whole frames)."})
    min_seconds: float = field(
        default=0.0, metadata={"help": "Drop items shorter than this (needs a duration column; folders have one)."}
    )
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes (map-style datasets)."})
    shuffle_buffer_size: int = field(default=1000, metadata={"help": "Shuffle buffer of streaming datasets."})
    gain_prob: float = field(default=1.0, metadata={"help": "Probability of a random level."})
    rms_db_min: float = field(default=-35.0, metadata={"help": "Lowest random RMS level, dBFS."})
    rms_db_max: float = field(default=-15.0, metadata={"help": "Highest random RMS level, dBFS."})
    polarity_prob: float = field(default=0.5, metadata={"help": "Probability of a sign flip."})
    speed_prob: float = field(default=0.0, metadata={"help": "Probability of a speed (resampling) change."})
    speed_min: float = field(default=0.9, metadata={"help": "Lowest speed factor."})
    speed_max: float = field(default=1.1, metadata={"help": "Highest speed factor."})
    eq_prob: float = field(default=0.0, metadata={"help": "Probability of a random spectral tilt/bump."})
    eq_db: float = field(default=6.0, metadata={"help": "Largest EQ gain, dB."})
    noise_prob: float = field(default=0.0, metadata={"help": "Probability of added white/pink noise."})
    noise_snr_min: float = field(default=15.0, metadata={"help": "Lowest noise SNR, dB."})
    noise_snr_max: float = field(default=40.0, metadata={"help": "Highest noise SNR, dB."})
    max_eval_items: int = field(default=8, metadata={"help": "Utterances used for periodic evaluation."})
    max_eval_seconds: float = field(default=10.0, metadata={"help": "Evaluation utterances are cut to this length."})


@dataclass
class CodecTrainingArguments:
    output_dir: str = field(default="outputs/codec", metadata={"help": "Checkpoints, exports and logs go here."})
    seed: int = field(default=0, metadata={"help": "Seed of the model, the data order, crops and augmentation."})
    max_steps: int = field(default=1000, metadata={"help": "Optimizer steps."})
    per_device_batch_size: int = field(default=8, metadata={"help": "Crops per process per micro-batch."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of the codec."})
    min_learning_rate_ratio: float = field(default=0.05, metadata={"help": "Cosine decay ends at lr x this."})
    warmup_steps: int = field(default=100, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    adam_beta1: float = field(default=0.8, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(default=0.99, metadata={"help": "AdamW beta2."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping (0 disables)."})
    mixed_precision: str = field(default="no", metadata={"help": "Passed to Accelerator: no, fp16, bf16."})
    num_threads: int = field(default=0, metadata={"help": "torch.set_num_threads per process (0: leave as is)."})
    logging_steps: int = field(default=10, metadata={"help": "Log every N steps."})
    report_to: str = field(default="auto", metadata={"help": "Accelerate trackers: auto (tensorboard if installed), "
                                                          "none, or a comma-separated list."})
    eval_steps: int = field(default=0, metadata={"help": "Evaluate every N steps (0: only at the end)."})
    eval_num_quantizers: str = field(
        default="", metadata={"help": "Comma-separated levels to evaluate at (default: the config's coarse levels); "
                              "with eval_quality also 'latent' (the unquantized encoder output)."}
    )
    eval_quality: bool = field(
        default=False,
        metadata={"help": "Periodic evaluation with STOI, PESQ-WB and the mel-distance metric (training/dev_eval.py) "
                  "instead of the model's mel loss + STOI."},
    )
    eval_log_file: str = field(
        default="eval_log.jsonl",
        metadata={"help": "Every evaluation is appended as one JSON line to this file in output_dir ('' disables)."},
    )
    train_log_file: str = field(
        default="train_log.jsonl",
        metadata={"help": "Every logged training mean is appended as one JSON line to this file in output_dir "
                  "('' disables)."},
    )
    save_steps: int = field(default=0, metadata={"help": "Save resumable state + export every N steps (0: off)."})
    save_total_limit: int = field(default=0, metadata={"help": "Keep only the last N checkpoints (0: all)."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' for the newest one in output_dir."}
    )
    # adversarial training
    discriminators: str = field(default="", metadata={"help": "'' (no GAN), or one or more of 'msstft', 'mpd' and "
                                                              "'mrd' joined by commas; a name may carry its own width "
                                                              "('mpd,mrd:8')."})
    discriminator_channels: int = field(default=8, metadata={"help": "Channels of the discriminators' first layer."})
    magnitude_discriminator_compression: float = field(
        default=0.3, metadata={"help": "The 'mrd' discriminator sees |STFT| to this power (1: linear magnitudes, "
                                       "dominated by the loud harmonics; smaller: more weight on quiet detail)."})
    adversarial_start_step: int = field(default=0, metadata={"help": "Adversarial losses start after this step."})
    discriminator_update_every: int = field(default=1, metadata={"help": "Update the discriminators every k steps."})
    adversarial_loss: str = field(default="hinge", metadata={"help": "hinge or lsgan."})
    adversarial_weight: float = field(default=1.0, metadata={"help": "Weight of the generator's adversarial loss."})
    feature_matching_weight: float = field(default=1.0, metadata={"help": "Weight of the feature-matching loss."})
    discriminator_learning_rate: float = field(default=2e-4, metadata={"help": "Discriminators' learning rate."})
    init_discriminator_from: str | None = field(
        default=None, metadata={"help": "A checkpoint folder of an earlier run with the same discriminators: start "
                                        "from its trained discriminator weights (model_1.safetensors) instead of new "
                                        "ones, e.g. when fine-tuning a changed codec from that run."})
    # diagnostics
    debug_dump_state_dir: str | None = field(
        default=None, metadata={"help": "Write each rank's final model state (params and buffers) to DIR/rank{r}.pt."}
    )
    export_final: bool = field(default=True, metadata={"help": "Export the final model with lmcodec.save_checkpoint."})


EXTENDS_KEY = "extends"  # a config file may name another one whose values it starts from


def _config_path(path: str | os.PathLike, relative_to: Path | None = None) -> Path:
    """The config file `path` names: beside `relative_to` (the file extending it) if given, else as given (relative to
    the working directory); failing that, in CONFIG_DIR."""
    path = Path(path)
    for candidate in ((relative_to / path) if relative_to else path, CONFIG_DIR / path):
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"config file not found: {path}")


def _read_config(path: str | os.PathLike, relative_to: Path | None = None, chain: tuple[Path, ...] = ()) -> dict:
    """Argument values of a config file, with those of the file it `extends` (recursively) underneath its own."""
    path = _config_path(path, relative_to)
    if path in chain:
        raise ValueError(f"config files extend each other in a cycle: {' -> '.join(str(p) for p in (*chain, path))}")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # optional

        values = yaml.safe_load(text) or {}
    else:
        values = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold an object of argument names to values.")
    values = {key: value for key, value in values.items() if not key.startswith("_")}  # "_comment" keys allowed
    base = values.pop(EXTENDS_KEY, None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise ValueError(f"{path}: '{EXTENDS_KEY}' must name one config file, got {base!r}.")
    return {**_read_config(base, path.parent, (*chain, path)), **values}


def parse_arguments(dataclass_types, argv: list[str] | None = None):
    """Parse `--config FILE` plus command-line overrides into instances of `dataclass_types` (a tuple).

    Keys starting with "_" in the config file are comments. JSON objects are accepted for fields documented as JSON
    (they are re-serialised to strings).
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types)
    parser.add_argument("--config", default=None, help="JSON/YAML file of argument values; the command line wins.")
    pre, _ = parser.parse_known_args(args=argv)
    if pre.config:
        values = _read_config(pre.config)
        known = {f.name for t in dataclass_types for f in dataclasses.fields(t)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys in {pre.config}: {', '.join(unknown)}")
        values = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in values.items()}
        parser.set_defaults(**values)
    *outputs, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if rest:
        raise ValueError(f"unknown command-line arguments: {' '.join(rest)}")
    # HfArgumentParser appends a namespace holding arguments of no dataclass (here --config): drop it.
    return tuple(output for output in outputs if dataclasses.is_dataclass(output))


def accept_underscore_spellings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let every `--hyphenated-flag` of `parser` also be given as `--hyphenated_flag`, the spelling of the dataclass
    fields and of older commands. The hyphen spelling is the documented one: help and error messages show only it.
    Call after adding the arguments; returns `parser`."""
    # argparse has no public way to add a hidden alias to an existing option: register the spelling for its action
    known = parser._option_string_actions  # noqa: SLF001
    for action in parser._actions:  # noqa: SLF001
        for option in action.option_strings:
            if option.startswith("--") and "-" in option[2:]:
                known.setdefault("--" + option[2:].replace("-", "_"), action)
    return parser


RUN_ARGUMENTS_FILE = "run_arguments.json"


def write_run_arguments(output_dir: str | os.PathLike, *arguments) -> Path:
    """Write every field of the parsed argument dataclasses to `output_dir/run_arguments.json`: the recipe as run,
    with its `extends` chain and command-line overrides resolved (usable as `--config` again)."""
    values = {}
    for instance in arguments:
        values.update({f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)})
    path = Path(output_dir) / RUN_ARGUMENTS_FILE
    path.write_text(json.dumps(values, indent=2, default=str) + "\n", encoding="utf-8")
    return path


__all__ = ["CodecTrainingArguments", "DataArguments", "ModelArguments", "accept_underscore_spellings",
           "parse_arguments", "write_run_arguments", "CONFIG_DIR", "RUN_ARGUMENTS_FILE"]
