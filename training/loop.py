"""What the Accelerate trainers share (`train_codec.py`, `train_lm.py`): one definition of each piece of the loop.

- the run: `start_run` (threads, Accelerator with trackers, output folder and `run_arguments.json`), `start_trackers`
- the model: `build_model` from `ModelArguments` (`--model-name-or-path default` is the bundled checkpoint)
- the schedule: `learning_rate_at` (warm-up, then cosine) and `set_learning_rate`
- exact resume: `TrainState` (step and data position), `list_checkpoints`, `resolve_checkpoint`,
  `save_training_checkpoint`, `resume_training_state`, and `batch_stream` (batches that follow the data position)
- logging: `TrainLog` (running means of each step's values, reduced across ranks, to the trackers, a JSON-lines file
  and the progress bar), `StepTimer` (throughput without the start-up steps), `evaluation_due` and `log_evaluation`
  (main process only: trackers, stdout, a JSON-lines file)

Nothing here depends on what is trained; the trainers keep their own data, losses and steps.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger("lmcodec.training.loop")

CHECKPOINT_PREFIX = "checkpoint-"
DEFAULT_MODEL = "default"  # `--model-name-or-path default`: the bundled checkpoint, lmcodec.DEFAULT_CHECKPOINT


# ---------------------------------------------------------------------------------------------------- the run
def tracker_names(report_to: str) -> list[str]:
    """Accelerate trackers for `--report-to`: none or '' → [], auto → tensorboard if installed, else the names."""
    if report_to in ("", "none"):
        return []
    if report_to == "auto":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return []
        return ["tensorboard"]
    return [name.strip() for name in report_to.split(",") if name.strip()]


def hparams(*argument_sets) -> dict:
    """Every field of the argument dataclasses as a tracker-friendly value (int, float, str or bool)."""
    values = {}
    for arguments in argument_sets:
        for key, value in vars(arguments).items():
            values[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return values


def start_run(args, argument_sets: tuple, ddp_kwargs: dict):
    """Set the thread count, create the Accelerator (trackers from `args.report_to`, DDP built with `ddp_kwargs`) and,
    on the main process, the output folder with `run_arguments.json`. Returns (accelerator, output folder, trackers)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    from lmcodec.training.args import write_run_arguments

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    output_dir = Path(args.output_dir)
    trackers = tracker_names(args.report_to)
    accelerator = Accelerator(mixed_precision=args.mixed_precision, log_with=trackers or None,
                              project_dir=str(output_dir),
                              kwargs_handlers=[DistributedDataParallelKwargs(**ddp_kwargs)])
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_run_arguments(output_dir, *argument_sets)
        logger.info("processes: %d (%s), device %s, threads per process %d", accelerator.num_processes,
                    accelerator.distributed_type, accelerator.device, torch.get_num_threads())
    return accelerator, output_dir, trackers


def start_trackers(accelerator, trackers: list[str], project: str, argument_sets: tuple) -> None:
    """Open the trackers (if any) under `project` with every argument as a hyperparameter."""
    if trackers:
        accelerator.init_trackers(project, config=hparams(*argument_sets))


# ---------------------------------------------------------------------------------------------------- model
def model_location(name_or_path: str) -> str:
    """The checkpoint `--model-name-or-path` names: `default` is the bundled one (`lmcodec.DEFAULT_CHECKPOINT`);
    anything else (a folder or a Hub id) as given."""
    if name_or_path == DEFAULT_MODEL:
        import lmcodec

        return lmcodec.DEFAULT_CHECKPOINT
    return name_or_path


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
        location = model_location(model_args.model_name_or_path)
        config = lmcodec.LMCodecConfig.from_pretrained(location, revision=model_args.revision)
        config = lmcodec.LMCodecConfig.from_dict({**config.to_dict(), **overrides})
        # overrides may reshape a part (e.g. decoder_window_length the head's projection): that part starts fresh,
        # and transformers logs which weights it newly initialised
        return lmcodec.LMCodecModel.from_pretrained(location, revision=model_args.revision, config=config,
                                                    ignore_mismatched_sizes=bool(overrides))
    if model_args.model_config:
        base = lmcodec.LMCodecConfig.from_pretrained(model_args.model_config).to_dict()
    else:
        base = lmcodec.LMCodecConfig().to_dict()
    return lmcodec.LMCodecModel(lmcodec.LMCodecConfig.from_dict({**base, **overrides}))


# ---------------------------------------------------------------------------------------------------- schedule
def learning_rate_at(step: int, peak: float, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to `peak * min_ratio` at `max_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(max_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer, step: int, args) -> float:
    """Give every parameter group of `optimizer` the schedule's rate at `step` (from `args`' learning_rate,
    warmup_steps, max_steps, min_learning_rate_ratio); returns it."""
    learning_rate = learning_rate_at(step, args.learning_rate, args.warmup_steps, args.max_steps,
                                     args.min_learning_rate_ratio)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    return learning_rate


# ---------------------------------------------------------------------------------------------------- checkpoints
class TrainState:
    """Where training stands: optimizer steps done, and the data position (epoch, and the position inside it as
    returned by `lmcodec.training.data.advance_position`)."""

    def __init__(self, step: int = 0, epoch: int = 0, position: dict | None = None):
        self.step, self.epoch, self.position = step, epoch, position

    def to_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "position": self.position}

    def save(self, directory: Path, rank: int) -> None:
        """Write this rank's state to `directory/train_state_rank{rank}.json` (atomically)."""
        path = directory / f"train_state_rank{rank}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_dict()))
        os.replace(temporary, path)

    @classmethod
    def load(cls, directory: Path, rank: int) -> TrainState:
        """The state `save` wrote for `rank`; a clear error if the checkpoint was written by fewer processes."""
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


def resolve_checkpoint(value: str, output_dir: str | os.PathLike) -> Path | None:
    """`--resume-from-checkpoint`'s folder: `latest` is the newest complete one in `output_dir` (None if there is
    none yet); a folder must be complete (hold the COMPLETE marker)."""
    if value == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(value)
    if not (path / "COMPLETE").is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no COMPLETE marker).")
    return path


def save_training_checkpoint(accelerator, model, state: TrainState, output_dir: str | os.PathLike,
                             save_total_limit: int, export=None) -> Path:
    """accelerator.save_state + every rank's data position + an exported LMCodec checkpoint (`export`, default the
    unwrapped `model`); marked COMPLETE last, then all but the newest `save_total_limit` checkpoints removed."""
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


def resume_training_state(accelerator, resume_from: str | None, output_dir: str | os.PathLike) -> TrainState:
    """A fresh `TrainState`, or with `resume_from` (a checkpoint folder or `latest`) the one saved there after
    restoring weights, buffers, optimizers and this rank's RNG states (`accelerator.load_state`)."""
    if not resume_from:
        return TrainState()
    checkpoint = resolve_checkpoint(resume_from, output_dir)
    if checkpoint is None:
        logger.info("no checkpoint in %s yet: starting from scratch", output_dir)
        return TrainState()
    accelerator.load_state(str(checkpoint))
    state = TrainState.load(checkpoint, accelerator.process_index)
    logger.info("resumed from %s at step %d (epoch %d, position %s)", checkpoint, state.step, state.epoch,
                state.position)
    return state


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


# ---------------------------------------------------------------------------------------------------- logging
def _append_json_line(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


class StepTimer:
    """Wall time of optimizer steps, leaving out the first `warm_steps` of a run (start-up) unless it has no more."""

    def __init__(self, warm_steps: int, max_steps: int):
        self.warm_steps, self.max_steps = warm_steps, max_steps
        self.steps, self.seconds, self._started = 0, 0.0, 0.0

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self, step: int) -> None:
        """End the step that brought training to `step` steps."""
        elapsed = time.perf_counter() - self._started
        if step > self.warm_steps or self.max_steps <= self.warm_steps:
            self.steps, self.seconds = self.steps + 1, self.seconds + elapsed

    def rate(self, amount_per_step: float) -> float | None:
        """`amount_per_step` × timed steps per wall second (None before any timed step)."""
        return amount_per_step * self.steps / max(self.seconds, 1e-9) if self.steps else None


class TrainLog:
    """Running means of the values each step adds, logged every `logging_steps` (and at `max_steps`): averaged
    across ranks, prefixed `train/`, to the trackers, one JSON line in `output_dir/log_file` (main process; '' for
    none) and the progress bar's postfix (`postfix`: label → value name)."""

    def __init__(self, accelerator, progress, logging_steps: int, max_steps: int, output_dir: str | os.PathLike,
                 log_file: str = "", postfix: dict[str, str] | None = None):
        self.accelerator, self.progress = accelerator, progress
        self.every, self.max_steps = max(logging_steps, 1), max_steps
        self.path = Path(output_dir) / log_file if log_file else None
        self.postfix = postfix or {}
        self.running: dict[str, list[float]] = {}

    def add(self, values: dict[str, float]) -> None:
        """Values of one step (or micro-batch): each is averaged with the others of its name until the next log."""
        for name, value in values.items():
            self.running.setdefault(name, []).append(value)

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.max_steps

    def log(self, step: int, extra: dict[str, float] | None = None) -> dict[str, float]:
        """Reduce and write the running means (a collective: every rank calls it) plus `extra` (this rank's values,
        not averaged, e.g. the current learning rate or a throughput); returns what was logged."""
        means = {name: float(np.mean(values)) for name, values in self.running.items()}
        self.running.clear()
        names = sorted(means)
        reduced = self.accelerator.reduce(torch.tensor([means[n] for n in names], device=self.accelerator.device),
                                          "mean")
        logged = {f"train/{n}": float(v) for n, v in zip(names, reduced.tolist(), strict=True)}
        logged.update({f"train/{n}": v for n, v in (extra or {}).items() if v is not None})
        self.accelerator.log(logged, step=step)
        if self.accelerator.is_main_process and self.path is not None:
            _append_json_line(self.path, {"step": step, "time": time.time(), **logged})
        self.progress.set_postfix({label: f"{logged[f'train/{name}']:.3f}" for label, name in self.postfix.items()})
        return logged


def evaluation_due(step: int, eval_steps: int, max_steps: int) -> bool:
    """A periodic evaluation every `eval_steps` steps (0: none), except at `max_steps`, where the final one follows."""
    return eval_steps > 0 and step % eval_steps == 0 and step < max_steps


def log_evaluation(accelerator, evaluate, step: int, output_dir: str | os.PathLike | None = None, log_file: str = "",
                   extra: dict | None = None) -> dict[str, float] | None:
    """On the main process: `evaluate()` (a dict of scores; no collective inside), logged as `eval/…` to the trackers,
    printed as one line, and appended with `extra` as one JSON line to `output_dir/log_file` ('' for none). The other
    ranks wait. Returns the scores on the main process, None elsewhere."""
    metrics = None
    if accelerator.is_main_process:
        start = time.perf_counter()
        metrics = evaluate()
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
        print(f"eval step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
        if output_dir is not None and log_file:
            _append_json_line(Path(output_dir) / log_file, {"step": step, "time": time.time(),
                                                           "eval_seconds": round(time.perf_counter() - start, 2),
                                                           **(extra or {}), **metrics})
    accelerator.wait_for_everyone()
    return metrics


__all__ = [
    "CHECKPOINT_PREFIX",
    "DEFAULT_MODEL",
    "StepTimer",
    "TrainLog",
    "TrainState",
    "batch_stream",
    "build_model",
    "evaluation_due",
    "hparams",
    "learning_rate_at",
    "list_checkpoints",
    "log_evaluation",
    "model_location",
    "resolve_checkpoint",
    "resume_training_state",
    "save_training_checkpoint",
    "set_learning_rate",
    "start_run",
    "start_trackers",
    "tracker_names",
]
