"""Train LMCodec's fine LM or entropy LM with Accelerate, on codes of a frozen codec.

    python training/train_lm.py --target entropy --model_name_or_path outputs/default-cpu/final \\
        --config training/configs/lm-default-cpu.json --output_dir outputs/entropy-lm

The codec (encoder, quantizer, decoder) and the other LM stay frozen. Audio is tokenised once with the codec's
offline `encode` and cached with `datasets.map` as an on-disk codes dataset (keyed by a fingerprint of the encoder and
codebooks), so epochs never re-encode. Training sequences are windows of one sync period (`--sequence_frames`,
default the config's `sync_frames`), exactly the context the LM sees at inference; each sequence gets a number of
coarse levels Nc drawn from the config's `operating_points`. Teacher forcing, cross-entropy over the levels the target
predicts; reported as bits per code (for the entropy LM that is the coded rate: bits/code × Nc × 50 = bit/s) and as
top-1 accuracy (fine LM). Checkpoints, exact resume, multi-process and trackers work as in `train_codec.py`; the
result is exported into the same LMCodec checkpoint (`OUTPUT/final`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger("lmcodec.training.train_lm")
TARGETS = ("fine", "entropy")


@dataclass
class LMTrainingArguments:
    target: str = field(default="entropy", metadata={"help": "Which LM to train: fine or entropy."})
    output_dir: str = field(default="outputs/lm", metadata={"help": "Checkpoints, exports and logs go here."})
    seed: int = field(default=0, metadata={"help": "Seed of the data order, windows and Nc draws."})
    max_steps: int = field(default=1000, metadata={"help": "Optimizer steps."})
    per_device_batch_size: int = field(default=8, metadata={"help": "Sequences per process per micro-batch."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=6e-4, metadata={"help": "Peak learning rate."})
    min_learning_rate_ratio: float = field(default=0.05, metadata={"help": "Cosine decay ends at lr x this."})
    warmup_steps: int = field(default=200, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping (0 disables)."})
    mixed_precision: str = field(default="no", metadata={"help": "Passed to Accelerator: no, fp16, bf16."})
    num_threads: int = field(default=0, metadata={"help": "torch.set_num_threads per process (0: leave as is)."})
    sequence_frames: int = field(default=0, metadata={"help": "Frames per training sequence (0: sync_frames)."})
    codes_cache_dir: str = field(default="outputs/codes-cache", metadata={"help": "Where tokenised codes are kept."})
    tokenize_batch_size: int = field(default=8, metadata={
        "help": "Utterances encoded together when tokenising (padded; the codes equal encoding each alone)."})
    logging_steps: int = field(default=10, metadata={"help": "Log every N steps."})
    report_to: str = field(default="auto", metadata={"help": "Accelerate trackers (auto, none, or a list)."})
    eval_steps: int = field(default=0, metadata={"help": "Evaluate every N steps (0: only at the end)."})
    save_steps: int = field(default=0, metadata={"help": "Save resumable state + export every N steps (0: off)."})
    save_total_limit: int = field(default=0, metadata={"help": "Keep only the last N checkpoints (0: all)."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint folder or 'latest'."})
    export_final: bool = field(default=True, metadata={"help": "Export the final model with lmcodec.save_checkpoint."})


# ---------------------------------------------------------------------------------------------------- codes
def codec_fingerprint(model) -> str:
    """Hex id of what the codes depend on: the encoder's weights and the codebooks."""
    from lmcodec.bitstream import fingerprint

    tensors = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}
    tensors["quantizer.codebooks"] = model.quantizer.codebooks
    return fingerprint(tensors, {"hop_length": model.config.hop_length}).hex()


def tokenize(model, dataset, audio_column: str, cache_dir: str | Path, name: str, batch_size: int = 8):
    """Audio dataset → dataset of `codes` (flat int16, levels × frames) and `frames`, cached on disk by `datasets.map`.

    `batch_size` utterances are zero-padded to the longest and encoded at once: the encoder is causal, so each
    utterance's codes equal encoding it alone (tested), and the block loop's per-operator cost is shared (≈ 3× faster
    at 8 on one CPU thread)."""
    import datasets

    from lmcodec import LMCodecFeatureExtractor
    from lmcodec.training.data import decode_audio

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    levels = model.config.num_quantizers

    extractor = LMCodecFeatureExtractor(sampling_rate=model.config.sampling_rate, hop_length=model.config.hop_length)

    def encode(batch):
        inputs = extractor([decode_audio(value) for value in batch[audio_column]], sampling_rate=extractor.sampling_rate)
        with torch.inference_mode():
            output = model.encode(inputs["input_values"], padding_mask=inputs["padding_mask"])
        frames = output.audio_codes_mask.sum(dim=-1).tolist()
        codes = [output.audio_codes[row, :, :count].to(torch.int16).flatten().numpy() for row, count in enumerate(frames)]
        return {"codes": codes, "frames": frames}

    dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    features = datasets.Features({"codes": datasets.Sequence(datasets.Value("int16")), "frames": datasets.Value("int32")})
    fingerprint = f"{codec_fingerprint(model)}-{_items_fingerprint(dataset)}"
    return dataset.map(encode, batched=True, batch_size=batch_size, remove_columns=dataset.column_names,
                       features=features, desc=f"tokenising {name}",
                       cache_file_name=str(cache / f"{name}-{fingerprint}-{len(dataset)}.arrow"),
                       new_fingerprint=f"{name}-{fingerprint}"), levels


def _items_fingerprint(dataset) -> str:
    """A short hash of which files a dataset holds (its resolved paths; `datasets`' own fingerprint without paths),
    so two datasets of equal length never share a codes cache."""
    import hashlib

    from lmcodec.training.data import dataset_paths

    paths = dataset_paths(dataset)
    key = "\n".join(sorted(paths)) if paths else str(getattr(dataset, "_fingerprint", ""))
    return hashlib.sha1(key.encode()).hexdigest()[:10]


class CodeWindowDataset(torch.utils.data.Dataset):
    """`(epoch, index)` → a window of `window` frames of item `index` and a number of coarse levels.

    The window start and Nc are a pure function of (seed, epoch, index), so resumed runs see the same data."""

    def __init__(self, codes_dataset, levels: int, window: int, operating_points: list[int], seed: int = 0):
        self.codes, self.levels, self.window = codes_dataset, levels, window
        self.operating_points, self.seed = list(operating_points), seed

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        epoch, index = key
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index, 0x1F3]))
        item = self.codes[int(index)]
        codes = np.asarray(item["codes"], dtype=np.int64).reshape(self.levels, item["frames"])
        start = int(rng.integers(0, max(codes.shape[1] - self.window, 0) + 1))
        piece = codes[:, start : start + self.window]
        padded = np.zeros((self.levels, self.window), dtype=np.int64)
        padded[:, : piece.shape[1]] = piece
        mask = np.zeros(self.window, dtype=np.int64)
        mask[: piece.shape[1]] = 1
        num_coarse = self.operating_points[int(rng.integers(0, len(self.operating_points)))]
        return {"audio_codes": torch.from_numpy(padded), "frame_mask": torch.from_numpy(mask),
                "num_coarse": torch.tensor(num_coarse)}


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([example[key] for example in examples]) for key in examples[0]}


def code_loader(codes_dataset, levels: int, window: int, operating_points, batch_size: int, rank: int,
                world_size: int, seed: int):
    from lmcodec.training.data import ShardedBatchSampler

    windows = CodeWindowDataset(codes_dataset, levels, window, operating_points, seed)
    sampler = ShardedBatchSampler(len(windows), batch_size, rank, world_size, seed)
    generator = torch.Generator().manual_seed(seed)  # keeps DataLoader iterators off the global RNG (exact resume)
    return torch.utils.data.DataLoader(windows, batch_sampler=sampler, collate_fn=collate, generator=generator)


# ---------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_lm(model, lm, codes_dataset, levels: int, window: int) -> dict[str, float]:
    """Teacher-forced bits per code (and accuracy) on held-out items, for every operating point."""
    was_training = lm.training
    lm.eval()
    results = {}
    try:
        for num_coarse in model.config.operating_points:
            total_bits, total_count, total_correct = 0.0, 0.0, 0.0
            for item in codes_dataset:
                codes = torch.tensor(item["codes"], dtype=torch.long).view(1, levels, item["frames"])
                for start in range(0, codes.shape[-1], window):
                    piece = codes[..., start : start + window]
                    loss, count, accuracy = lm.loss(piece, torch.tensor([num_coarse]), model.quantizer.codebooks)
                    total_bits += float(loss) / math.log(2) * float(count)
                    total_correct += float(accuracy) * float(count)
                    total_count += float(count)
            bits = total_bits / max(total_count, 1)
            results[f"bits_per_code_nc{num_coarse}"] = bits
            results[f"accuracy_nc{num_coarse}"] = total_correct / max(total_count, 1)
            if lm.target == "entropy":
                results[f"bits_per_second_nc{num_coarse}"] = bits * num_coarse * model.config.frame_rate
    finally:
        lm.train(was_training)
    return results


# ---------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    import lmcodec
    from lmcodec.training import data as data_lib
    from lmcodec.training.args import DataArguments, ModelArguments, parse_arguments, write_run_arguments
    from lmcodec.training.train_codec import (
        TrainState,
        _hparams,
        _trackers,
        batch_stream,
        build_model,
        learning_rate_at,
        resolve_checkpoint,
        save_training_checkpoint,
    )

    model_args, data_args, args = parse_arguments((ModelArguments, DataArguments, LMTrainingArguments), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.target not in TARGETS:
        raise ValueError(f"--target must be one of {TARGETS}, got {args.target!r}.")
    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required: the LMs are trained on the codes of a trained codec.")
    if not data_args.train_dataset:
        raise ValueError("--train_dataset is required.")
    if data_args.streaming:
        raise ValueError("train-lm tokenises its whole training set once; --streaming is not supported here.")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    output_dir = Path(args.output_dir)
    trackers = _trackers(args.report_to)
    # A batch whose sequences all draw the same Nc leaves the other operating point's output head without gradient.
    accelerator = Accelerator(mixed_precision=args.mixed_precision, log_with=trackers or None,
                              project_dir=str(output_dir),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    rank, world_size = accelerator.process_index, accelerator.num_processes
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_run_arguments(output_dir, model_args, data_args, args)

    set_seed(args.seed)
    model = build_model(model_args).eval()
    lm = model.fine_lm if args.target == "fine" else model.entropy_lm
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in lm.parameters():
        parameter.requires_grad_(True)
    lm.backbone.wte.weight.requires_grad_(False)  # GPT-2's token embedding is unused: inputs are frame embeddings
    window = args.sequence_frames or model.config.sync_frames

    audio, held_out = data_lib.train_and_held_out(data_args, args.seed)
    audio = data_lib.filter_min_duration(audio, data_args.min_seconds)
    with accelerator.main_process_first():  # rank 0 tokenises; the others then read its cache
        codes, levels = tokenize(model, audio, data_args.audio_column, args.codes_cache_dir, "train",
                                   args.tokenize_batch_size)
        eval_codes = None
        if held_out is not None:
            eval_codes, _ = tokenize(model, held_out, data_args.audio_column, args.codes_cache_dir, "eval",
                                          args.tokenize_batch_size)
    loader = code_loader(codes, levels, window, model.config.operating_points, args.per_device_batch_size, rank,
                         world_size, args.seed)

    trainable = [parameter for parameter in lm.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    lm.train()
    lm, optimizer = accelerator.prepare(lm, optimizer)
    plain_lm = accelerator.unwrap_model(lm)
    torch.manual_seed(args.seed * 1000003 + rank + 1)  # dropout differs per rank; restored on resume
    state = TrainState()
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            state = TrainState.load(checkpoint, rank)
            logger.info("resumed from %s at step %d", checkpoint, state.step)
    if trackers:
        accelerator.init_trackers(f"{args.target}_lm", config=_hparams(model_args, data_args, args))

    batches = batch_stream(loader, state)
    progress = tqdm(total=args.max_steps, initial=state.step, disable=not accelerator.is_local_main_process,
                    desc=f"{args.target} LM", dynamic_ncols=True)
    running: dict[str, list[float]] = {}
    codebooks = model.quantizer.codebooks.to(accelerator.device)
    timed = [0, 0.0]
    while state.step < args.max_steps:
        started = time.perf_counter()
        learning_rate = learning_rate_at(state.step, args.learning_rate, args.warmup_steps, args.max_steps,
                                         args.min_learning_rate_ratio)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        for micro in range(args.gradient_accumulation_steps):
            batch = {key: value.to(accelerator.device) for key, value in next(batches).items()}
            last = micro == args.gradient_accumulation_steps - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(lm):
                with accelerator.autocast():
                    logits = lm(batch["audio_codes"], batch["num_coarse"], codebooks)  # through DDP when wrapped
                    loss, _, accuracy = plain_lm.loss_from_logits(logits, batch["audio_codes"], batch["num_coarse"],
                                                                  batch["frame_mask"])
                accelerator.backward(loss / args.gradient_accumulation_steps)
            running.setdefault("bits_per_code", []).append(float(loss.detach()) / math.log(2))
            running.setdefault("accuracy", []).append(float(accuracy))
        if args.max_grad_norm > 0:
            running.setdefault("grad_norm", []).append(float(accelerator.clip_grad_norm_(trainable,
                                                                                           args.max_grad_norm)))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        timed = [timed[0] + 1, timed[1] + time.perf_counter() - started]
        progress.update(1)
        if state.step % max(args.logging_steps, 1) == 0 or state.step == args.max_steps:
            means = {f"train/{k}": float(np.mean(v)) for k, v in running.items()}
            means["train/learning_rate"] = learning_rate
            means["train/sequences_per_second"] = args.per_device_batch_size * world_size * (
                args.gradient_accumulation_steps) * timed[0] / max(timed[1], 1e-9)
            running.clear()
            accelerator.log(means, step=state.step)
            progress.set_postfix(bits=f"{means['train/bits_per_code']:.3f}")
        if eval_codes is not None and args.eval_steps > 0 and state.step % args.eval_steps == 0:
            _evaluate_and_log(accelerator, model, plain_lm, eval_codes, levels, window, state.step)
        if args.save_steps > 0 and state.step % args.save_steps == 0:
            save_training_checkpoint(accelerator, lm, state, args.output_dir, args.save_total_limit, export=model)
    progress.close()
    if eval_codes is not None:
        _evaluate_and_log(accelerator, model, plain_lm, eval_codes, levels, window, state.step)
    accelerator.wait_for_everyone()
    if args.export_final and accelerator.is_main_process:
        if args.target == "entropy":  # the integer twin that coding uses, calibrated on the training codes
            from lmcodec.training.export_integer_lm import calibration_windows

            arrays = [np.asarray(item["codes"], dtype=np.int64).reshape(levels, item["frames"])
                      for item in codes.select(range(min(len(codes), 64)))]
            model.export_integer_entropy_model(calibration_windows(arrays, window, 48))
        lmcodec.save_checkpoint(model, output_dir / "final")
        print(f"exported {output_dir / 'final'}")
    accelerator.end_training()
    return 0


def _evaluate_and_log(accelerator, model, lm, codes, levels, window, step) -> None:
    if accelerator.is_main_process:
        metrics = evaluate_lm(model, lm, codes, levels, window)
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
        print(f"eval step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    accelerator.wait_for_everyone()


__all__ = ["CodeWindowDataset", "LMTrainingArguments", "codec_fingerprint", "evaluate_lm", "main", "tokenize"]

if __name__ == "__main__":
    sys.exit(main())
