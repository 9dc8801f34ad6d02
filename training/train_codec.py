"""Train (or fine-tune) the LMCodec codec — encoder, RVQ and decoder — with Accelerate on `datasets` audio.

One process:
    python training/train_codec.py --config training/configs/tiny-cpu.json --output-dir runs/tiny
Several processes (CPU here; drop ACCELERATE_USE_CPU on GPUs):
    ACCELERATE_USE_CPU=1 accelerate launch --multi-gpu --num-processes 2 --num-machines 1 --mixed-precision no \
        --dynamo-backend no training/train_codec.py --config training/configs/tiny-cpu.json --output-dir runs/tiny2
Resume exactly where a run stopped:
    python training/train_codec.py --config ... --output-dir runs/tiny --resume-from-checkpoint latest
Fine-tune the bundled default (`default`) or any checkpoint, keeping existing bitstreams decodable:
    python training/train_codec.py --config training/configs/finetune-default.json \
        --train-dataset data/speech/librispeech-train-clean-100 --output-dir outputs/finetuned

Losses: the model's reconstruction losses (multi-scale log-mel, multi-resolution STFT, phase-aware) plus the RVQ
commitment loss; optionally adversarial + feature-matching losses from small discriminators that start after
`--adversarial-start-step` and are updated every `--discriminator-update-every` steps. AdamW with linear warm-up then
cosine decay (a pure function of the step), gradient clipping and accumulation.

Checkpoints (`--save-steps`): `OUTPUT/checkpoints/checkpoint-XXXXXXXX/` holds `accelerator.save_state` (model with
its codebook buffers, optimizers, every rank's RNG states), each rank's data position (`train_state_rank{r}.json`)
and `export/`, a loadable LMCodec checkpoint. The final model is exported to `OUTPUT/final/`. Because every batch is
a pure function of (seed, epoch, batch number) and the RNG states are restored, a resumed run reproduces the
uninterrupted one bit for bit (same torch build and thread count). `--max-steps 0` only evaluates the starting model.

Multi-process notes: the RVQ quantizer all-reduces its codebook statistics itself, so its buffers stay identical on
every rank and equal to those of one process seeing the combined batch; DDP is therefore built with
`broadcast_buffers=False` (rank 0's copy would only overwrite identical values, at ~6 MB of traffic per step for the
default codebooks, and would hide a divergence instead of letting the debug dump reveal it). Only the codec's
encoder and decoder are trained here; the fine and entropy LMs stay frozen (they are trained on the codec's codes).
The pieces shared with `train_lm.py` (run set-up, schedule, checkpoints, resume, logging) are in `training/loop.py`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmcodec.frames import SAMPLING_RATE
from lmcodec.training.loop import (
    StepTimer,
    TrainLog,
    TrainState,
    batch_stream,
    build_model,
    evaluation_due,
    log_evaluation,
    resume_training_state,
    save_training_checkpoint,
    set_learning_rate,
    start_run,
    start_trackers,
)

logger = logging.getLogger("lmcodec.training.train_codec")

CODEC_PARTS = ("encoder", "quantizer", "decoder")
LOSS_NAMES = ("loss", "reconstruction_loss", "commitment_loss", "mel_loss", "stft_loss", "phase_loss", "pitch_loss",
              "voicing_loss")  # the model output's losses that are logged (pitch and voicing: harmonic branch only)
WARM_STEPS = 2  # steps left out of the throughput (start-up)


# ---------------------------------------------------------------------------------------------------- model
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


# ---------------------------------------------------------------------------------------------------- the run
@dataclass
class Adversary:
    """The discriminators, their optimizer, and (once prepared) the unwrapped discriminators the generator's
    adversarial losses go through (no DDP hooks: their gradients are not wanted)."""

    discriminator: torch.nn.Module
    optimizer: torch.optim.Optimizer
    plain: torch.nn.Module | None = None


@dataclass
class CodecRun:
    """Everything the training loop works with, as `setup` prepared it."""

    args: object
    accelerator: object
    output_dir: Path
    model: torch.nn.Module  # wrapped by Accelerate (DDP with several processes)
    optimizer: torch.optim.Optimizer
    trainable: list[torch.nn.Parameter]
    adversary: Adversary | None
    loader: object
    eval_items: list[np.ndarray]
    eval_levels: list
    state: TrainState = field(default_factory=TrainState)

    @property
    def codec(self):
        """The unwrapped `LMCodecModel`."""
        return self.accelerator.unwrap_model(self.model)

    @property
    def audio_per_step(self) -> float:
        """Seconds of audio one optimizer step trains on, over all processes."""
        args = self.args
        return (self.loader.dataset.crop_samples / SAMPLING_RATE * args.per_device_batch_size
                * args.gradient_accumulation_steps * self.accelerator.num_processes)


def build_adversary(args) -> Adversary | None:
    """The discriminators `--discriminators` names (optionally starting from `--init-discriminator-from`) and their
    AdamW; None without discriminators."""
    from lmcodec.training.discriminators import build_discriminator

    if not args.discriminators:
        return None
    discriminator = build_discriminator(args.discriminators, args.discriminator_channels,
                                        args.magnitude_discriminator_compression)
    if args.init_discriminator_from:
        fresh = load_discriminator_weights(discriminator, args.init_discriminator_from)
        if fresh:
            logger.info("discriminators %s start fresh; the others come from %s", fresh, args.init_discriminator_from)
    optimizer = torch.optim.AdamW(discriminator.parameters(), lr=args.discriminator_learning_rate, betas=(0.5, 0.9))
    return Adversary(discriminator, optimizer)


def evaluation_levels(args, codec) -> list:
    """`--eval-num-quantizers` as a list of level counts (and 'latent' with `--eval-quality`); default the config's
    coarse levels."""
    if not args.eval_num_quantizers:
        return [codec.config.num_coarse_quantizers]
    levels = [int(v) if v.strip().isdigit() else v.strip() for v in args.eval_num_quantizers.split(",") if v.strip()]
    names = [level for level in levels if not isinstance(level, int)]
    if names and (not args.eval_quality or any(name != "latent" for name in names)):
        raise ValueError(f"--eval-num-quantizers takes level counts and, with --eval-quality, 'latent' (the "
                         f"unquantized encoder output); got {args.eval_num_quantizers!r}.")
    return levels


def setup(argv: list[str] | None) -> CodecRun:
    """Parse the arguments, start Accelerate, build the model, optimizers and data, prepare them and resume."""
    from accelerate.utils import set_seed

    from lmcodec.training.args import CodecTrainingArguments, DataArguments, ModelArguments, parse_arguments

    argument_sets = parse_arguments((ModelArguments, DataArguments, CodecTrainingArguments), argv)
    model_args, data_args, args = argument_sets
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    accelerator, output_dir, trackers = start_run(args, argument_sets, {"broadcast_buffers": False})
    set_seed(args.seed)  # the same on every rank: identical initial weights
    model = build_model(model_args)
    trainable = freeze_parts(model, model_args.freeze)
    model.train()
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                                  weight_decay=args.weight_decay)
    adversary = build_adversary(args)
    loader, eval_items = build_data(data_args, args, accelerator.process_index, accelerator.num_processes,
                                    model.config.hop_length)
    # torch >= 2.10 renames DDP's broadcast_buffers (Accelerate still passes the old name); False is what we want.
    warnings.filterwarnings("ignore", message=".*broadcast_buffers.*deprecated", category=FutureWarning)
    if adversary is not None:
        model, optimizer, adversary.discriminator, adversary.optimizer = accelerator.prepare(
            model, optimizer, adversary.discriminator, adversary.optimizer)
        adversary.plain = accelerator.unwrap_model(adversary.discriminator)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    run = CodecRun(args, accelerator, output_dir, model, optimizer, trainable, adversary, loader, eval_items, [])
    run.eval_levels = evaluation_levels(args, run.codec)
    # Training randomness (quantizer dropout, k-means seeds, code restarts) differs per rank; rank 0 draws what a
    # single process would, and the quantizer takes its random choices from rank 0. Resuming restores these states.
    torch.manual_seed(args.seed * 1000003 + accelerator.process_index + 1)
    run.state = resume_training_state(accelerator, args.resume_from_checkpoint, output_dir)
    start_trackers(accelerator, trackers, "codec", argument_sets)
    return run


# ---------------------------------------------------------------------------------------------------- one step
def generator_adversarial_losses(adversary: Adversary, fake: torch.Tensor, real: torch.Tensor, kind: str):
    """(adversarial loss of `kind` (hinge or lsgan), feature-matching loss) of the generated audio against the
    discriminators, whose own parameters get no gradient from them."""
    from lmcodec.training.discriminators import feature_matching_loss, generator_adversarial_loss

    adversary.plain.requires_grad_(False)
    fake_outputs = adversary.plain(fake)
    with torch.no_grad():
        real_outputs = adversary.plain(real)
    adversarial_loss = generator_adversarial_loss(fake_outputs, kind)
    matching_loss = feature_matching_loss(real_outputs, fake_outputs)
    adversary.plain.requires_grad_(True)
    return adversarial_loss, matching_loss


def discriminator_step(run: CodecRun, real: torch.Tensor, fake: torch.Tensor) -> float:
    """One update of the discriminators on real and (detached) generated audio, in one DDP forward; its loss."""
    from lmcodec.training.discriminators import discriminator_loss

    accelerator, adversary, args = run.accelerator, run.adversary, run.args
    with accelerator.autocast():
        outputs = adversary.discriminator(torch.cat([real, fake.detach()], dim=0))
        size = real.shape[0]
        real_outputs = [(logits[:size], []) for logits, _ in outputs]
        fake_outputs = [(logits[size:], []) for logits, _ in outputs]
        loss = discriminator_loss(real_outputs, fake_outputs, args.adversarial_loss)
    accelerator.backward(loss)
    if args.max_grad_norm > 0:
        accelerator.clip_grad_norm_(adversary.discriminator.parameters(), args.max_grad_norm)
    adversary.optimizer.step()
    adversary.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def training_step(run: CodecRun, batches) -> dict[str, float]:
    """One optimizer step of the codec over `--gradient-accumulation-steps` micro-batches (with the adversarial terms
    once they have started), then, when due, one discriminator update on the last micro-batch. Returns the step's
    logged values (losses averaged over the micro-batches, gradient norm, learning rate)."""
    accelerator, args, model, step = run.accelerator, run.args, run.model, run.state.step
    learning_rate = set_learning_rate(run.optimizer, step, args)
    use_adversarial = run.adversary is not None and step >= args.adversarial_start_step
    accumulation = args.gradient_accumulation_steps
    logs: dict[str, float] = {}

    def accumulate(name: str, value: torch.Tensor) -> None:
        logs[name] = logs.get(name, 0.0) + float(value.detach()) / accumulation

    for micro in range(accumulation):
        batch = next(batches)
        input_values = batch["input_values"].to(accelerator.device)
        padding_mask = batch["padding_mask"].to(accelerator.device)
        with contextlib.nullcontext() if micro == accumulation - 1 else accelerator.no_sync(model):
            with accelerator.autocast():
                output = model(input_values, padding_mask=padding_mask)
                loss = output.loss
                if use_adversarial:
                    adversarial_loss, matching_loss = generator_adversarial_losses(
                        run.adversary, output.audio_values, input_values, args.adversarial_loss)
                    loss = loss + args.adversarial_weight * adversarial_loss + (
                        args.feature_matching_weight * matching_loss)
                    accumulate("generator_adversarial_loss", adversarial_loss)
                    accumulate("feature_matching_loss", matching_loss)
            accelerator.backward(loss / accumulation)
        for name in LOSS_NAMES:
            if getattr(output, name) is not None:
                accumulate(name, getattr(output, name))
    if args.max_grad_norm > 0:
        logs["grad_norm"] = float(accelerator.clip_grad_norm_(run.trainable, args.max_grad_norm))
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    if use_adversarial and (step - args.adversarial_start_step) % max(args.discriminator_update_every, 1) == 0:
        logs["discriminator_loss"] = discriminator_step(run, input_values, output.audio_values)
    logs["learning_rate"] = learning_rate
    return logs


# ---------------------------------------------------------------------------------------------------- the loop
def evaluate(run: CodecRun, learning_rate: float | None = None) -> None:
    """Dev scores of the codec (STOI, PESQ-WB and mel with `--eval-quality`, else mel and STOI where pystoi is
    installed) on the main process, logged to the trackers, stdout and `--eval-log-file`."""
    from lmcodec.training.dev_eval import evaluate_dev

    args = run.args
    if args.eval_quality:
        names = ("stoi", "pesq", "mel")
    else:  # the cheap scores: mel distance, and STOI where pystoi (the eval extra) is installed
        names = ("mel", "stoi") if importlib.util.find_spec("pystoi") else ("mel",)
    log_evaluation(run.accelerator, lambda: evaluate_dev(run.codec, run.eval_items, run.eval_levels, metrics=names),
                   run.state.step, args.output_dir, args.eval_log_file,
                   extra={"learning_rate": learning_rate, "items": len(run.eval_items)})


def train(run: CodecRun) -> StepTimer:
    """Optimizer steps until `--max-steps`, with logging, periodic evaluation and checkpoints; returns the timer."""
    from tqdm.auto import tqdm

    accelerator, args, state = run.accelerator, run.args, run.state
    batches = batch_stream(run.loader, state)
    progress = tqdm(total=args.max_steps, initial=state.step, disable=not accelerator.is_local_main_process,
                    desc="codec", dynamic_ncols=True)
    log = TrainLog(accelerator, progress, args.logging_steps, args.max_steps, args.output_dir, args.train_log_file,
                   postfix={"loss": "loss", "mel": "mel_loss"})
    timer = StepTimer(WARM_STEPS, args.max_steps)
    while state.step < args.max_steps:
        timer.start()
        logs = training_step(run, batches)
        state.step += 1
        timer.stop(state.step)
        log.add(logs)
        progress.update(1)
        if log.due(state.step):
            log.log(state.step, extra={"audio_seconds_per_second": timer.rate(run.audio_per_step)})
        if run.eval_items and evaluation_due(state.step, args.eval_steps, args.max_steps):
            evaluate(run, logs["learning_rate"])
        if args.save_steps > 0 and state.step % args.save_steps == 0:
            save_training_checkpoint(accelerator, run.model, state, args.output_dir, args.save_total_limit)
    progress.close()
    return timer


def finish(run: CodecRun, timer: StepTimer) -> None:
    """The final evaluation, the throughput line, the debug state dump and the export to `OUTPUT/final`."""
    import lmcodec

    accelerator, args = run.accelerator, run.args
    if run.eval_items:
        evaluate(run)
    if timer.steps and accelerator.is_main_process:
        print(f"throughput: {timer.rate(run.audio_per_step):.2f} s of audio per wall second "
              f"({timer.steps} timed steps of {run.audio_per_step:g} s of audio, {accelerator.num_processes} "
              f"process(es), {torch.get_num_threads()} thread(s) each, "
              f"discriminators: {args.discriminators or 'none'})")
    if args.debug_dump_state_dir:
        dump = Path(args.debug_dump_state_dir)
        dump.mkdir(parents=True, exist_ok=True)
        rank = accelerator.process_index
        torch.save({"world_size": accelerator.num_processes, "rank": rank, "state": run.state.to_dict(),
                    "model": {k: v.detach().cpu().clone() for k, v in run.codec.state_dict().items()}},
                   dump / f"rank{rank}.pt")
    accelerator.wait_for_everyone()
    if args.export_final and accelerator.is_main_process:
        lmcodec.save_checkpoint(run.codec, run.output_dir / "final")
        print(f"exported {run.output_dir / 'final'}")
    accelerator.wait_for_everyone()
    accelerator.end_training()


def main(argv: list[str] | None = None) -> int:
    run = setup(argv)
    timer = train(run)
    finish(run, timer)
    return 0


__all__ = [
    "Adversary",
    "CodecRun",
    "build_adversary",
    "build_data",
    "discriminator_step",
    "evaluation_levels",
    "freeze_parts",
    "load_discriminator_weights",
    "main",
    "setup",
    "train",
    "training_step",
]

if __name__ == "__main__":
    sys.exit(main())
