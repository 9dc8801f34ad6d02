"""Train (or fine-tune) the LMCodec codec — encoder, RVQ and decoder — with Accelerate on `datasets` audio.

One process:
    python training/train_codec.py --config training/configs/tiny-cpu.json --output_dir runs/tiny
Several processes (CPU here; drop ACCELERATE_USE_CPU on GPUs):
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
        --dynamo_backend no training/train_codec.py --config training/configs/tiny-cpu.json --output_dir runs/tiny2
Resume exactly where a run stopped:
    python training/train_codec.py --config ... --output_dir runs/tiny --resume_from_checkpoint latest
Fine-tune a checkpoint, keeping existing bitstreams decodable:
    python training/train_codec.py --config ... --model_name_or_path runs/tiny/final --freeze encoder,quantizer

Losses: the model's reconstruction losses (multi-scale log-mel, multi-resolution STFT, phase-aware) plus the RVQ
commitment loss; optionally adversarial + feature-matching losses from small discriminators that start after
`--adversarial_start_step` and are updated every `--discriminator_update_every` steps. AdamW with linear warm-up then
cosine decay (a pure function of the step), gradient clipping and accumulation.

Checkpoints (`--save_steps`): `OUTPUT/checkpoints/checkpoint-XXXXXXXX/` holds `accelerator.save_state` (model with
its codebook buffers, optimizers, every rank's RNG states), each rank's data position (`train_state_rank{r}.json`)
and `export/`, a loadable LMCodec checkpoint. The final model is exported to `OUTPUT/final/`. Because every batch is
a pure function of (seed, epoch, batch number) and the RNG states are restored, a resumed run reproduces the
uninterrupted one bit for bit (same torch build and thread count).

Multi-process notes: the RVQ quantizer all-reduces its codebook statistics itself, so its buffers stay identical on
every rank and equal to those of one process seeing the combined batch; DDP is therefore built with
`broadcast_buffers=False` (rank 0's copy would only overwrite identical values, at ~6 MB of traffic per step for the
default codebooks, and would hide a divergence instead of letting the debug dump reveal it). Only the codec's
encoder and decoder are trained here; the fine and entropy LMs stay frozen (they are trained on the codec's codes).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from lmcodec.frames import SAMPLING_RATE

logger = logging.getLogger("lmcodec.training.train_codec")

CODEC_PARTS = ("encoder", "quantizer", "decoder")
CHECKPOINT_PREFIX = "checkpoint-"


# ---------------------------------------------------------------------------------------------------- model
def build_model(model_args):
    """A new `LMCodecModel` (config from `model_config` + overrides) or a pretrained one (`model_name_or_path`)."""
    import lmcodec

    overrides = json.loads(model_args.model_config_overrides) if model_args.model_config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError("model_config_overrides must be a JSON object of LMCodecConfig fields.")
    unknown = sorted(set(overrides) - set(lmcodec.LMCodecConfig().to_dict()))
    if unknown:
        raise ValueError(f"unknown LMCodecConfig fields in model_config_overrides: {', '.join(unknown)}")
    if model_args.model_name_or_path:
        config = lmcodec.LMCodecConfig.from_pretrained(model_args.model_name_or_path, revision=model_args.revision)
        config = lmcodec.LMCodecConfig.from_dict({**config.to_dict(), **overrides})
        # overrides may reshape a part (e.g. decoder_window_length the head's projection): that part starts fresh,
        # and transformers logs which weights it newly initialised
        return lmcodec.LMCodecModel.from_pretrained(model_args.model_name_or_path, revision=model_args.revision,
                                                    config=config, ignore_mismatched_sizes=bool(overrides))
    if model_args.model_config:
        base = lmcodec.LMCodecConfig.from_pretrained(model_args.model_config).to_dict()
    else:
        base = lmcodec.LMCodecConfig().to_dict()
    return lmcodec.LMCodecModel(lmcodec.LMCodecConfig.from_dict({**base, **overrides}))


def load_discriminator_weights(discriminator: torch.nn.Module, checkpoint: str) -> list[str]:
    """Copy the trained discriminators of an earlier run's checkpoint folder (Accelerate's `model_1.safetensors`).

    Discriminators the checkpoint does not hold (e.g. `msstft` added next to a trained `mpd`) keep their fresh
    weights; returns the names of those. Every discriminator the checkpoint does hold must match exactly.
    """
    from safetensors.torch import load_file

    path = Path(checkpoint) / "model_1.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"--init_discriminator_from: {path} does not exist; pass a checkpoint folder of a run "
                                "trained with discriminators (checkpoints/checkpoint-XXXXXXXX).")
    state = load_file(str(path))
    saved = {key.split(".")[1] for key in state if key.startswith("discriminators.")}
    fresh = [name for name in discriminator.discriminators if name not in saved]
    advice = ("use the same --discriminators and --discriminator_channels as that run (new discriminators may be "
              "added)")
    try:
        missing, unexpected = discriminator.load_state_dict(state, strict=False)
    except RuntimeError as error:  # tensors of other shapes: other --discriminator_channels
        raise ValueError(f"--init_discriminator_from: {path} holds other discriminators (tensor shapes differ); "
                         f"{advice}.") from error
    missing = [key for key in missing if key.split(".")[1] not in fresh]
    if missing or unexpected or len(fresh) == len(discriminator.discriminators):
        raise ValueError(f"--init_discriminator_from: {path} holds other discriminators (missing {len(missing)}, "
                         f"unexpected {len(unexpected)} tensors); {advice}.")
    return fresh


def freeze_parts(model, freeze: str | list[str]) -> list[torch.nn.Parameter]:
    """Freeze the named codec parts and everything outside the codec (the LMs); return the trainable parameters.

    "quantizer" stops the codebooks' EMA updates, dead-code restarts and k-means initialisation, while keeping
    quantizer dropout (which needs training mode).
    """
    parts = [p.strip() for p in freeze.split(",") if p.strip()] if isinstance(freeze, str) else list(freeze)
    unknown = [p for p in parts if p not in CODEC_PARTS]
    if unknown:
        raise ValueError(f"cannot freeze {unknown}; choose from {', '.join(CODEC_PARTS)}.")
    for name, parameter in model.named_parameters():
        top = name.split(".", 1)[0]
        parameter.requires_grad_(top in CODEC_PARTS and top not in parts)
    if "quantizer" in parts:
        if not bool(model.quantizer.initialized.all()):
            logger.warning("freezing a quantizer whose codebooks were never initialised (train it first)")
        model.quantizer.update_codebooks = False
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"--freeze {','.join(parts)} leaves nothing to train.")
    return trainable


def learning_rate_at(step: int, peak: float, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to `peak * min_ratio` at `max_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(max_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# ---------------------------------------------------------------------------------------------------- checkpoints
class TrainState:
    """Where training stands: optimizer steps done, and the data position (epoch, and the position inside it as
    returned by `lmcodec.training.data.advance_position`)."""

    def __init__(self, step: int = 0, epoch: int = 0, position: dict | None = None):
        self.step, self.epoch, self.position = step, epoch, position

    def to_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "position": self.position}

    def save(self, directory: Path, rank: int) -> None:
        path = directory / f"train_state_rank{rank}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_dict()))
        os.replace(temporary, path)

    @classmethod
    def load(cls, directory: Path, rank: int) -> TrainState:
        path = directory / f"train_state_rank{rank}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: was the checkpoint written with the same number of processes?")
        return cls(**json.loads(path.read_text()))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under `output_dir/checkpoints`, oldest first."""
    folder = Path(output_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / "COMPLETE").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def resolve_checkpoint(value: str, output_dir: str) -> Path | None:
    if value == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(value)
    if not (path / "COMPLETE").is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no COMPLETE marker).")
    return path


def save_training_checkpoint(accelerator, model, state: TrainState, output_dir: str, save_total_limit: int,
                             export=None) -> Path:
    """accelerator.save_state + every rank's data position + an exported LMCodec checkpoint (`export`, default the
    unwrapped `model`); marked COMPLETE last."""
    import lmcodec

    path = Path(output_dir) / "checkpoints" / f"{CHECKPOINT_PREFIX}{state.step:08d}"
    if accelerator.is_main_process and path.exists():
        shutil.rmtree(path)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    path.mkdir(parents=True, exist_ok=True)
    state.save(path, accelerator.process_index)
    if accelerator.is_main_process:
        lmcodec.save_checkpoint(export if export is not None else accelerator.unwrap_model(model), path / "export")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (path / "COMPLETE").write_text(json.dumps(state.to_dict()))
        if save_total_limit > 0:
            for old in list_checkpoints(output_dir)[:-save_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


# ---------------------------------------------------------------------------------------------------- data
def build_data(data_args, training_args, rank: int, world_size: int, hop_length: int):
    """(train DataLoader, evaluation utterances) from the data arguments; crops are whole frames of `hop_length`."""
    from lmcodec.training import data as data_lib

    if not data_args.train_dataset:
        raise ValueError("--train_dataset is required (folders, Parquet shards, audiofolder:DIR or a Hub id).")
    dataset, held_out = data_lib.train_and_held_out(data_args, training_args.seed, **_cache_kwargs(data_args))
    eval_items: list[np.ndarray] = []
    if held_out is not None:
        eval_items = data_lib.load_eval_items(held_out, data_args.max_eval_items, data_args.max_eval_seconds,
                                              data_args.audio_column, spread=data_args.eval_spread)
    dataset = data_lib.filter_min_duration(dataset, data_args.min_seconds)
    augmentation = data_lib.AugmentationConfig(
        gain_prob=data_args.gain_prob, rms_db_min=data_args.rms_db_min, rms_db_max=data_args.rms_db_max,
        polarity_prob=data_args.polarity_prob, speed_prob=data_args.speed_prob, speed_min=data_args.speed_min,
        speed_max=data_args.speed_max, eq_prob=data_args.eq_prob, eq_db=data_args.eq_db,
        noise_prob=data_args.noise_prob, noise_snr_min=data_args.noise_snr_min, noise_snr_max=data_args.noise_snr_max,
    )
    loader = data_lib.build_dataloader(
        dataset, data_lib.crop_samples_for(data_args.crop_seconds, hop_length), training_args.per_device_batch_size, rank,
        world_size, training_args.seed, data_args.num_workers, data_args.audio_column, augmentation,
        data_args.shuffle_buffer_size,
    )
    return loader, eval_items


def _cache_kwargs(data_args) -> dict:
    return {"cache_dir": data_args.dataset_cache_dir} if data_args.dataset_cache_dir else {}


def batch_stream(loader, state: TrainState):
    """Endless batches from `loader`, epoch after epoch, starting at `state`'s data position; `state.epoch` and
    `state.position` follow every batch handed out (so a checkpoint taken between steps knows where to resume)."""
    from lmcodec.training.data import advance_position, initial_position, set_data_epoch

    empty_epochs = 0
    while True:
        if state.position is None:
            state.position = initial_position(loader)
        set_data_epoch(loader, state.epoch, state.position)
        produced = False
        for batch in loader:
            produced = True
            advance_position(state.position, batch)
            yield batch
        empty_epochs = 0 if produced else empty_epochs + 1
        if empty_epochs > 1:
            raise RuntimeError("the training data yields no batch: it has fewer items than one global batch.")
        state.epoch, state.position = state.epoch + 1, None


# ---------------------------------------------------------------------------------------------------- main
def _trackers(report_to: str) -> list[str]:
    if report_to in ("", "none"):
        return []
    if report_to == "auto":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return []
        return ["tensorboard"]
    return [name.strip() for name in report_to.split(",") if name.strip()]


def _hparams(*argument_sets) -> dict:
    values = {}
    for arguments in argument_sets:
        for key, value in vars(arguments).items():
            values[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return values


def main(argv: list[str] | None = None) -> int:
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    import lmcodec
    from lmcodec.training.args import (
        CodecTrainingArguments,
        DataArguments,
        ModelArguments,
        parse_arguments,
        write_run_arguments,
    )
    from lmcodec.training.discriminators import (
        build_discriminator,
        discriminator_loss,
        feature_matching_loss,
        generator_adversarial_loss,
    )

    model_args, data_args, args = parse_arguments((ModelArguments, DataArguments, CodecTrainingArguments), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    output_dir = Path(args.output_dir)
    trackers = _trackers(args.report_to)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        log_with=trackers or None,
        project_dir=str(output_dir),
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    rank, world_size = accelerator.process_index, accelerator.num_processes
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_run_arguments(output_dir, model_args, data_args, args)
        logger.info("processes: %d (%s), device %s, threads per process %d", world_size,
                    accelerator.distributed_type, accelerator.device, torch.get_num_threads())

    set_seed(args.seed)  # the same on every rank: identical initial weights
    model = build_model(model_args)
    trainable = freeze_parts(model, model_args.freeze)
    model.train()
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                                  weight_decay=args.weight_decay)
    adversarial = bool(args.discriminators)
    if adversarial:
        discriminator = build_discriminator(args.discriminators, args.discriminator_channels,
                                            args.magnitude_discriminator_compression)
        if args.init_discriminator_from:
            fresh = load_discriminator_weights(discriminator, args.init_discriminator_from)
            if fresh:
                logger.info("discriminators %s start fresh; the others come from %s", fresh,
                            args.init_discriminator_from)
        discriminator_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=args.discriminator_learning_rate,
                                                    betas=(0.5, 0.9))
    loader, eval_items = build_data(data_args, args, rank, world_size, model.config.hop_length)
    # torch >= 2.10 renames DDP's broadcast_buffers (Accelerate still passes the old name); False is what we want.
    warnings.filterwarnings("ignore", message=".*broadcast_buffers.*deprecated", category=FutureWarning)
    if adversarial:
        model, optimizer, discriminator, discriminator_optimizer = accelerator.prepare(
            model, optimizer, discriminator, discriminator_optimizer)
        plain_discriminator = accelerator.unwrap_model(discriminator)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    codec = accelerator.unwrap_model(model)
    eval_levels = ([int(v) if v.strip().isdigit() else v.strip() for v in args.eval_num_quantizers.split(",")
                    if v.strip()] if args.eval_num_quantizers else [codec.config.num_coarse_quantizers])
    if any(not isinstance(level, int) for level in eval_levels) and (
            not args.eval_quality or any(level != "latent" for level in eval_levels if not isinstance(level, int))):
        raise ValueError(f"--eval_num_quantizers takes level counts and, with --eval_quality, 'latent' (the "
                         f"unquantized encoder output); got {args.eval_num_quantizers!r}.")

    # Training randomness (quantizer dropout, k-means seeds, code restarts) differs per rank; rank 0 draws what a
    # single process would, and the quantizer takes its random choices from rank 0. Resuming restores these states.
    torch.manual_seed(args.seed * 1000003 + rank + 1)
    state = TrainState()
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
        if checkpoint is None:
            logger.info("no checkpoint in %s yet: starting from scratch", output_dir)
        else:
            accelerator.load_state(str(checkpoint))  # weights, buffers, optimizers, RNG states of this rank
            state = TrainState.load(checkpoint, rank)
            logger.info("resumed from %s at step %d (epoch %d, position %s)", checkpoint, state.step, state.epoch,
                        state.position)
    if trackers:
        accelerator.init_trackers("codec", config=_hparams(model_args, data_args, args))

    crop_seconds = loader.dataset.crop_samples / SAMPLING_RATE
    audio_per_step = crop_seconds * args.per_device_batch_size * args.gradient_accumulation_steps * world_size
    batches = batch_stream(loader, state)
    progress = tqdm(total=args.max_steps, initial=state.step, disable=not accelerator.is_local_main_process,
                    desc="codec", dynamic_ncols=True)
    timed_steps, timed_seconds, warm_steps = 0, 0.0, 2
    running: dict[str, list[float]] = {}

    while state.step < args.max_steps:
        step_start = time.perf_counter()
        learning_rate = learning_rate_at(state.step, args.learning_rate, args.warmup_steps, args.max_steps,
                                         args.min_learning_rate_ratio)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        use_adversarial = adversarial and state.step >= args.adversarial_start_step
        update_discriminator = use_adversarial and (state.step - args.adversarial_start_step) % max(
            args.discriminator_update_every, 1) == 0
        logs: dict[str, float] = {}
        for micro in range(args.gradient_accumulation_steps):
            batch = next(batches)
            input_values = batch["input_values"].to(accelerator.device)
            padding_mask = batch["padding_mask"].to(accelerator.device)
            last = micro == args.gradient_accumulation_steps - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(model):
                with accelerator.autocast():
                    output = model(input_values, padding_mask=padding_mask)
                    loss = output.loss
                    if use_adversarial:
                        plain_discriminator.requires_grad_(False)
                        fake = output.audio_values
                        fake_outputs = plain_discriminator(fake)
                        with torch.no_grad():
                            real_outputs = plain_discriminator(input_values)
                        adversarial_loss = generator_adversarial_loss(fake_outputs, args.adversarial_loss)
                        matching_loss = feature_matching_loss(real_outputs, fake_outputs)
                        loss = loss + args.adversarial_weight * adversarial_loss + (
                            args.feature_matching_weight * matching_loss)
                        plain_discriminator.requires_grad_(True)
                        logs["generator_adversarial_loss"] = logs.get("generator_adversarial_loss", 0.0) + float(
                            adversarial_loss.detach()) / args.gradient_accumulation_steps
                        logs["feature_matching_loss"] = logs.get("feature_matching_loss", 0.0) + float(
                            matching_loss.detach()) / args.gradient_accumulation_steps
                accelerator.backward(loss / args.gradient_accumulation_steps)
            for name in ("loss", "reconstruction_loss", "commitment_loss", "mel_loss", "stft_loss", "phase_loss",
                         "pitch_loss", "voicing_loss"):
                if getattr(output, name) is not None:  # pitch and voicing: only with a harmonic branch
                    logs[name] = logs.get(name, 0.0) + float(getattr(output, name).detach()) / (
                        args.gradient_accumulation_steps)
        if args.max_grad_norm > 0:
            logs["grad_norm"] = float(accelerator.clip_grad_norm_(trainable, args.max_grad_norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if update_discriminator:
            # On the last micro-batch: one DDP forward over real and generated audio together.
            with accelerator.autocast():
                both = torch.cat([input_values, output.audio_values.detach()], dim=0)
                outputs = discriminator(both)
                size = input_values.shape[0]
                real_outputs = [(logits[:size], []) for logits, _ in outputs]
                fake_outputs = [(logits[size:], []) for logits, _ in outputs]
                d_loss = discriminator_loss(real_outputs, fake_outputs, args.adversarial_loss)
            accelerator.backward(d_loss)
            if args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(discriminator.parameters(), args.max_grad_norm)
            discriminator_optimizer.step()
            discriminator_optimizer.zero_grad(set_to_none=True)
            logs["discriminator_loss"] = float(d_loss.detach())
        state.step += 1
        elapsed = time.perf_counter() - step_start
        if state.step > warm_steps or args.max_steps <= warm_steps:
            timed_steps, timed_seconds = timed_steps + 1, timed_seconds + elapsed
        logs["learning_rate"] = learning_rate
        for name, value in logs.items():
            running.setdefault(name, []).append(value)
        progress.update(1)
        if state.step % max(args.logging_steps, 1) == 0 or state.step == args.max_steps:
            means = {name: float(np.mean(values)) for name, values in running.items()}
            running.clear()
            names = sorted(means)
            reduced = accelerator.reduce(torch.tensor([means[n] for n in names], device=accelerator.device), "mean")
            means = {f"train/{n}": float(v) for n, v in zip(names, reduced.tolist(), strict=True)}
            if timed_steps:
                means["train/audio_seconds_per_second"] = audio_per_step * timed_steps / timed_seconds
            accelerator.log(means, step=state.step)
            if accelerator.is_main_process and args.train_log_file:
                with open(output_dir / args.train_log_file, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"step": state.step, "time": time.time(), **means}) + "\n")
            progress.set_postfix(loss=f"{means['train/loss']:.3f}", mel=f"{means['train/mel_loss']:.3f}")
        if eval_items and args.eval_steps > 0 and state.step % args.eval_steps == 0 and state.step < args.max_steps:
            _evaluate_and_log(accelerator, codec, eval_items, eval_levels, state.step, args, learning_rate)
        if args.save_steps > 0 and state.step % args.save_steps == 0:
            save_training_checkpoint(accelerator, model, state, args.output_dir, args.save_total_limit)
    progress.close()

    if eval_items:
        _evaluate_and_log(accelerator, codec, eval_items, eval_levels, state.step, args)
    if timed_steps and accelerator.is_main_process:
        print(f"throughput: {audio_per_step * timed_steps / timed_seconds:.2f} s of audio per wall second "
              f"({timed_steps} timed steps of {audio_per_step:g} s of audio, {world_size} process(es), "
              f"{torch.get_num_threads()} thread(s) each, discriminators: {args.discriminators or 'none'})")
    if args.debug_dump_state_dir:
        dump = Path(args.debug_dump_state_dir)
        dump.mkdir(parents=True, exist_ok=True)
        torch.save({"world_size": world_size, "rank": rank, "state": state.to_dict(),
                    "model": {k: v.detach().cpu().clone() for k, v in codec.state_dict().items()}},
                   dump / f"rank{rank}.pt")
    accelerator.wait_for_everyone()
    if args.export_final and accelerator.is_main_process:
        lmcodec.save_checkpoint(codec, output_dir / "final")
        print(f"exported {output_dir / 'final'}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def _evaluate_and_log(accelerator, codec, items, levels, step, args=None, learning_rate=None) -> None:
    """Evaluate on the main process (no collective inside), log (trackers, stdout and one JSON line in
    `output_dir/eval_log_file`), and let the other ranks wait."""
    if accelerator.is_main_process:
        start = time.perf_counter()
        from lmcodec.training.dev_eval import evaluate_dev

        if args is not None and args.eval_quality:
            names = ("stoi", "pesq", "mel")
        else:  # the cheap scores: mel distance, and STOI where pystoi (the eval extra) is installed
            names = ("mel", "stoi") if importlib.util.find_spec("pystoi") else ("mel",)
        metrics = evaluate_dev(codec, items, levels, metrics=names)
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
        print(f"eval step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
        if args is not None and args.eval_log_file:
            record = {"step": step, "time": time.time(), "eval_seconds": round(time.perf_counter() - start, 2),
                      "learning_rate": learning_rate, "items": len(items), **metrics}
            with open(Path(args.output_dir) / args.eval_log_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
    accelerator.wait_for_everyone()


__all__ = [
    "TrainState",
    "build_data",
    "build_model",
    "freeze_parts",
    "learning_rate_at",
    "list_checkpoints",
    "main",
    "save_training_checkpoint",
]

if __name__ == "__main__":
    sys.exit(main())
