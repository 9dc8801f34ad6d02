"""Pack a codec training checkpoint small enough to carry to another machine, and unpack it there to resume the run.

    python -m lmcodec.training.resume_state pack   RUN/checkpoints/checkpoint-00004000 PACKED
    python -m lmcodec.training.resume_state unpack PACKED RUN/checkpoints

A codec checkpoint (`train_codec.py`, Accelerate state) is ~117 MB without its `export/`: the whole LMCodecModel in
float32, including the fine and entropy LMs, which codec training never updates, and Adam's two moments of every
codec weight. Packing drops the LM weights (the codec trainer does not read them: unpacking refills them from a
freshly initialised model) and stores Adam's moments in bfloat16 (the model weights, codebooks, discriminator, RNG
states and data position stay exact), ~53 MB in all, every file under 50 MB. A resumed run therefore continues the
same schedule and data order with the optimizer moments rounded to 8 significant bits: close to, not bit-identical
with, an uninterrupted run. Resume states stay out of git; CONTRIBUTING.md names the one exception (at most 25 MB),
and `pack` says when a state is larger.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LM_PREFIXES = ("fine_lm.", "entropy_lm.", "integer_entropy_lm.")
COMMIT_LIMIT_BYTES = 25_000_000  # the largest resume state CONTRIBUTING.md lets a contributor commit
PACKED_MARKER = "PACKED.json"


def pack(checkpoint: Path, destination: Path) -> Path:
    """checkpoint (with COMPLETE) → destination/<checkpoint name>, about half the checkpoint's size."""
    if not (checkpoint / "COMPLETE").exists():
        raise SystemExit(f"{checkpoint} is not a complete checkpoint (no COMPLETE marker)")
    target = destination / checkpoint.name
    if destination.exists():
        shutil.rmtree(destination)
    target.mkdir(parents=True)
    if (checkpoint / "export" / "config.json").exists():  # the model's shapes, for unpacking
        shutil.copy2(checkpoint / "export" / "config.json", destination / "config.json")
    for path in checkpoint.iterdir():
        if path.is_dir():  # export/: rebuilt at the next checkpoint
            continue
        if path.name == "model.safetensors":
            weights = load_file(str(path))
            dropped = sorted(name for name in weights if name.startswith(LM_PREFIXES))
            save_file({k: v for k, v in weights.items() if k not in dropped}, str(target / path.name),
                      metadata={"format": "pt"})
            (target / PACKED_MARKER).write_text(json.dumps({"dropped_lm_tensors": len(dropped)}) + "\n")
        elif path.name == "optimizer.bin":
            optimizer = torch.load(path, map_location="cpu", weights_only=False)
            for state in optimizer["state"].values():
                for key in ("exp_avg", "exp_avg_sq"):
                    if torch.is_tensor(state.get(key)) and state[key].dtype == torch.float32:
                        state[key] = state[key].to(torch.bfloat16)
            torch.save(optimizer, target / path.name)
        else:
            shutil.copy2(path, target / path.name)
    return target


def unpack(packed: Path, checkpoints: Path) -> Path:
    """packed/<checkpoint name> → checkpoints/<checkpoint name>, ready for `--resume-from-checkpoint latest`."""
    import lmcodec

    sources = sorted(p for p in packed.glob("checkpoint-*") if (p / PACKED_MARKER).exists())
    if not sources:
        raise SystemExit(f"no packed checkpoint in {packed}")
    source = sources[-1]
    target = checkpoints / source.name
    checkpoints.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    (target / PACKED_MARKER).unlink()
    weights = load_file(str(target / "model.safetensors"))
    config = lmcodec.LMCodecConfig.from_pretrained(packed) if (packed / "config.json").exists() else None
    fresh = lmcodec.LMCodecModel(config or lmcodec.LMCodecConfig()).state_dict()
    weights.update({name: value.contiguous() for name, value in fresh.items() if name.startswith(LM_PREFIXES[:2])})
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    optimizer = torch.load(target / "optimizer.bin", map_location="cpu", weights_only=False)
    for state in optimizer["state"].values():
        for key in ("exp_avg", "exp_avg_sq"):
            if torch.is_tensor(state.get(key)) and state[key].dtype == torch.bfloat16:
                state[key] = state[key].float()
    torch.save(optimizer, target / "optimizer.bin")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcodec.training.resume_state", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("source")
    parser.add_argument("destination")
    args = parser.parse_args(argv)
    if args.action == "pack":
        target = pack(Path(args.source), Path(args.destination))
    else:
        target = unpack(Path(args.source), Path(args.destination))
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    print(f"{args.action}ed {target} ({size / 2**20:.1f} MiB)")
    if args.action == "pack" and size > COMMIT_LIMIT_BYTES:
        print(f"{size / 1e6:.0f} MB is over the {COMMIT_LIMIT_BYTES / 1e6:.0f} MB a committed resume state may take "
              "(CONTRIBUTING.md): keep this one outside git.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
