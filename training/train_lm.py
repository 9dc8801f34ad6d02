"""Train LMCodec's fine LM or entropy LM with Accelerate, on codes of a frozen codec.

    python training/train_lm.py --target entropy --model-name-or-path outputs/default-cpu/final \\
        --config training/configs/lm-default-cpu.json --output-dir outputs/entropy-lm

The codec (encoder, quantizer, decoder) and the other LM stay frozen. Audio is tokenised once with the codec's
offline `encode` and cached with `datasets.map` as an on-disk codes dataset (keyed by a fingerprint of the encoder and
codebooks), so epochs never re-encode. Training sequences are windows of one sync period (`--sequence-frames`,
default the config's `sync_frames`), exactly the context the LM sees at inference; each sequence gets a number of
coarse levels Nc drawn from the config's `operating_points`. Teacher forcing, cross-entropy over the levels the target
predicts; reported as bits per code (for the entropy LM that is the coded rate: bits/code × Nc × 50 = bit/s) and as
top-1 accuracy (fine LM). Checkpoints, exact resume, multi-process, trackers and the JSON-lines logs
(`train_log.jsonl`, `eval_log.jsonl`) work as in `train_codec.py`, through the same `training/loop.py`; the result is
exported into the same LMCodec checkpoint (`OUTPUT/final`). `--model-name-or-path default` is the bundled checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

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
    train_log_file: str = field(default="train_log.jsonl", metadata={
        "help": "Every logged training mean is appended as one JSON line to this file in output_dir ('' disables)."})
    eval_log_file: str = field(default="eval_log.jsonl", metadata={
        "help": "Every evaluation is appended as one JSON line to this file in output_dir ('' disables)."})
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


# ---------------------------------------------------------------------------------------------------- the run
@dataclass
class LMRun:
    """Everything the training loop works with, as `setup` prepared it."""

    args: LMTrainingArguments
    accelerator: object
    output_dir: Path
    model: torch.nn.Module  # the whole frozen codec; `lm` is one of its LMs
    lm: torch.nn.Module  # wrapped by Accelerate (DDP with several processes)
    optimizer: torch.optim.Optimizer
    trainable: list[torch.nn.Parameter]
    loader: object
    codes: object  # the tokenised training set
    eval_codes: object | None
    levels: int
    window: int
    state: TrainState

    @property
    def plain_lm(self):
        """The unwrapped LM."""
        return self.accelerator.unwrap_model(self.lm)


def check_arguments(model_args, data_args, args) -> None:
    if args.target not in TARGETS:
        raise ValueError(f"--target must be one of {TARGETS}, got {args.target!r}.")
    if not model_args.model_name_or_path:
        raise ValueError("--model-name-or-path is required: the LMs are trained on the codes of a trained codec.")
    if not data_args.train_dataset:
        raise ValueError("--train-dataset is required.")
    if data_args.streaming:
        raise ValueError("train-lm tokenises its whole training set once; --streaming is not supported here.")


def trainable_lm(model, target: str):
    """`model`'s `target` LM with only its own parameters trainable (its unused token embedding excepted)."""
    lm = model.fine_lm if target == "fine" else model.entropy_lm
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in lm.parameters():
        parameter.requires_grad_(True)
    lm.backbone.wte.weight.requires_grad_(False)  # GPT-2's token embedding is unused: inputs are frame embeddings
    return lm


def tokenized_data(accelerator, model, data_args, args):
    """(training codes, held-out codes or None, levels): the audio the data arguments name, tokenised by rank 0
    first (the other ranks then read its cache)."""
    from lmcodec.training import data as data_lib

    audio, held_out = data_lib.train_and_held_out(data_args, args.seed)
    audio = data_lib.filter_min_duration(audio, data_args.min_seconds)
    with accelerator.main_process_first():
        codes, levels = tokenize(model, audio, data_args.audio_column, args.codes_cache_dir, "train",
                                 args.tokenize_batch_size)
        eval_codes = None
        if held_out is not None:
            eval_codes, _ = tokenize(model, held_out, data_args.audio_column, args.codes_cache_dir, "eval",
                                     args.tokenize_batch_size)
    return codes, eval_codes, levels


def setup(argv: list[str] | None) -> LMRun:
    """Parse the arguments, start Accelerate, load the codec, tokenise the data, prepare the LM and resume."""
    from accelerate.utils import set_seed

    from lmcodec.training.args import DataArguments, ModelArguments, parse_arguments

    argument_sets = parse_arguments((ModelArguments, DataArguments, LMTrainingArguments), argv)
    model_args, data_args, args = argument_sets
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_arguments(model_args, data_args, args)
    # A batch whose sequences all draw the same Nc leaves the other operating point's output head without gradient.
    accelerator, output_dir, trackers = start_run(args, argument_sets, {"find_unused_parameters": True})
    rank, world_size = accelerator.process_index, accelerator.num_processes
    set_seed(args.seed)
    model = build_model(model_args).eval()
    lm = trainable_lm(model, args.target)
    window = args.sequence_frames or model.config.sync_frames
    codes, eval_codes, levels = tokenized_data(accelerator, model, data_args, args)
    loader = code_loader(codes, levels, window, model.config.operating_points, args.per_device_batch_size, rank,
                         world_size, args.seed)
    trainable = [parameter for parameter in lm.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    lm.train()
    lm, optimizer = accelerator.prepare(lm, optimizer)
    torch.manual_seed(args.seed * 1000003 + rank + 1)  # dropout differs per rank; restored on resume
    state = resume_training_state(accelerator, args.resume_from_checkpoint, args.output_dir)
    start_trackers(accelerator, trackers, f"{args.target}_lm", argument_sets)
    return LMRun(args, accelerator, output_dir, model, lm, optimizer, trainable, loader, codes, eval_codes, levels,
                 window, state)


# ---------------------------------------------------------------------------------------------------- the loop
def evaluate(run: LMRun) -> None:
    """Held-out bits per code (and accuracy) on the main process, logged to the trackers, stdout and
    `--eval-log-file`."""
    log_evaluation(run.accelerator, lambda: evaluate_lm(run.model, run.plain_lm, run.eval_codes, run.levels,
                                                        run.window),
                   run.state.step, run.args.output_dir, run.args.eval_log_file, extra={"items": len(run.eval_codes)})


def train(run: LMRun) -> None:
    """Optimizer steps until `--max-steps`, with logging, periodic evaluation and checkpoints."""
    from tqdm.auto import tqdm

    accelerator, args, state = run.accelerator, run.args, run.state
    batches = batch_stream(run.loader, state)
    progress = tqdm(total=args.max_steps, initial=state.step, disable=not accelerator.is_local_main_process,
                    desc=f"{args.target} LM", dynamic_ncols=True)
    log = TrainLog(accelerator, progress, args.logging_steps, args.max_steps, args.output_dir, args.train_log_file,
                   postfix={"bits": "bits_per_code"})
    timer = StepTimer(0, args.max_steps)
    sequences_per_step = args.per_device_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    codebooks = run.model.quantizer.codebooks.to(accelerator.device)
    while state.step < args.max_steps:
        timer.start()
        learning_rate = set_learning_rate(run.optimizer, state.step, args)
        lm_step(run, batches, codebooks, log)
        state.step += 1
        timer.stop(state.step)
        progress.update(1)
        if log.due(state.step):
            log.log(state.step, extra={"learning_rate": learning_rate,
                                       "sequences_per_second": timer.rate(sequences_per_step)})
        if run.eval_codes is not None and evaluation_due(state.step, args.eval_steps, args.max_steps):
            evaluate(run)
        if args.save_steps > 0 and state.step % args.save_steps == 0:
            save_training_checkpoint(accelerator, run.lm, state, args.output_dir, args.save_total_limit,
                                     export=run.model)
    progress.close()


def finish(run: LMRun) -> None:
    """The final evaluation and the export to `OUTPUT/final`."""
    if run.eval_codes is not None:
        evaluate(run)
    run.accelerator.wait_for_everyone()
    if run.args.export_final and run.accelerator.is_main_process:
        export(run.model, run.codes, run.levels, run.window, run.args.target, run.output_dir / "final")
    run.accelerator.end_training()


def main(argv: list[str] | None = None) -> int:
    run = setup(argv)
    train(run)
    finish(run)
    return 0


def lm_step(run: LMRun, batches, codebooks: torch.Tensor, log: TrainLog) -> None:
    """One optimizer step of the LM (teacher forcing over `--gradient-accumulation-steps` micro-batches); adds bits
    per code and accuracy (per micro-batch) and the gradient norm to `log`."""
    accelerator, args, lm = run.accelerator, run.args, run.lm
    accumulation = args.gradient_accumulation_steps
    for micro in range(accumulation):
        batch = {key: value.to(accelerator.device) for key, value in next(batches).items()}
        with contextlib.nullcontext() if micro == accumulation - 1 else accelerator.no_sync(lm):
            with accelerator.autocast():
                logits = lm(batch["audio_codes"], batch["num_coarse"], codebooks)  # through DDP when wrapped
                loss, _, accuracy = run.plain_lm.loss_from_logits(logits, batch["audio_codes"], batch["num_coarse"],
                                                                  batch["frame_mask"])
            accelerator.backward(loss / accumulation)
        log.add({"bits_per_code": float(loss.detach()) / math.log(2), "accuracy": float(accuracy)})
    if args.max_grad_norm > 0:
        log.add({"grad_norm": float(accelerator.clip_grad_norm_(run.trainable, args.max_grad_norm))})
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)


def export(model, codes, levels: int, window: int, target: str, folder: Path) -> None:
    """Save the whole checkpoint to `folder`; after the entropy LM, with the integer twin that coding uses,
    calibrated on the training codes."""
    import lmcodec

    if target == "entropy":
        from lmcodec.training.export_integer_lm import calibration_windows

        arrays = [np.asarray(item["codes"], dtype=np.int64).reshape(levels, item["frames"])
                  for item in codes.select(range(min(len(codes), 64)))]
        model.export_integer_entropy_model(calibration_windows(arrays, window, 48))
    lmcodec.save_checkpoint(model, folder)
    print(f"exported {folder}")


__all__ = ["CodeWindowDataset", "LMRun", "LMTrainingArguments", "codec_fingerprint", "evaluate_lm", "lm_step", "main",
           "setup", "tokenize", "train"]

if __name__ == "__main__":
    sys.exit(main())
