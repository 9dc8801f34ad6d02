"""Bundle a trained checkpoint as the package's default, `lmcodec.DEFAULT_CHECKPOINT`.

    python -m lmcodec.training.bundle_default outputs/entropy-lm/final \
        --training-facts training/configs/default-facts.json --results eval/default/results.json

Writes, into `modeling_lmcodec/default_checkpoint/` of the source tree (replaced as a whole, never half-written):
`config.json` (without `auto_map`: the package's own classes load it), `model.safetensors` with every floating
tensor stored in float16 (the model still loads and runs in float32, so coding stays exact), `preprocessor_config.json`,
and, when given, `training_facts.json`, `results.json` and the model card rendered from them (`README.md`). No code
files: a checkpoint pushed to the Hub gets its code generated at push time, so bundled copies could only go stale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lmcodec.fine_decoding import FINE_DECODINGS
from lmcodec.errors import LMCodecError

SIZE_BUDGET_BYTES = 40 * 1024 * 1024
CARD_LOCATION = "modeling_lmcodec/default_checkpoint"  # as the card's examples name it (= lmcodec.DEFAULT_CHECKPOINT)
SOURCE_TREE_DESTINATION = Path(__file__).resolve().parent.parent / "modeling_lmcodec" / "default_checkpoint"


def store_half_precision(weights_file: Path) -> None:
    """Rewrite `weights_file` with floating tensors in float16; refuses values float16 cannot hold."""
    tensors = load_file(str(weights_file))
    limit = torch.finfo(torch.float16).max
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.abs().max().item() > limit:
            raise LMCodecError(f"{name} has values beyond float16's range ({limit:g}); keep this checkpoint in float32.")
    save_file({name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in tensors.items()},
              str(weights_file), metadata={"format": "pt"})


def bundle_default_checkpoint(source: str | Path, destination: str | Path = SOURCE_TREE_DESTINATION,
                              training_facts: str | Path | None = None, results: str | Path | None = None,
                              fine_decoding: str | None = None) -> Path:
    """Copy the checkpoint folder `source` to `destination` in the bundled form described above; returns it.
    `fine_decoding` sets the config's default decoding of the levels not sent (the one measured best)."""
    from lmcodec import save_checkpoint
    from lmcodec.hub_cards.model_card import build_model_card, load_results, read_json
    from lmcodec.loading import load_model

    destination = Path(destination)
    model = load_model(source)
    if fine_decoding is not None:
        if fine_decoding not in FINE_DECODINGS:
            raise LMCodecError(f"fine_decoding must be one of {', '.join(FINE_DECODINGS)}, got {fine_decoding!r}.")
        model.config.fine_decoding = fine_decoding
    facts = read_json(training_facts, "training facts")
    parsed_results = load_results(results)
    staging = Path(tempfile.mkdtemp(prefix=".default-checkpoint-", dir=destination.parent))
    try:
        save_checkpoint(model, staging)
        for code_file in staging.glob("*.py"):
            code_file.unlink()
        config = json.loads((staging / "config.json").read_text())
        config.pop("auto_map", None)
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        store_half_precision(staging / "model.safetensors")
        if facts is not None:
            (staging / "training_facts.json").write_text(json.dumps(facts, indent=2) + "\n")
        if parsed_results is not None:
            (staging / "results.json").write_text(json.dumps(parsed_results, indent=2) + "\n")
        build_model_card(model, parsed_results, facts, folder=staging, location=CARD_LOCATION).save(
            staging / "README.md")
        size = sum(path.stat().st_size for path in staging.iterdir())
        if size > SIZE_BUDGET_BYTES:
            raise LMCodecError(f"the bundled checkpoint would take {size / 2**20:.1f} MiB, over the "
                               f"{SIZE_BUDGET_BYTES / 2**20:.0f} MiB budget; use smaller LMs or codebooks.")
        staging.chmod(0o755)  # mkdtemp makes it private; package data must be readable by everyone
        for path in staging.iterdir():
            path.chmod(0o644)
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def main(argv: list[str] | None = None) -> int:
    from lmcodec.training.args import accept_underscore_spellings

    parser = argparse.ArgumentParser(prog="python -m lmcodec.training.bundle_default",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="trained checkpoint folder (the entropy LM's `final/`, holding all three)")
    parser.add_argument("--training-facts", metavar="facts.json", help="training facts for the model card")
    parser.add_argument("--results", metavar="results.json", help="`lmcodec evaluate` results of this checkpoint")
    parser.add_argument("--fine-decoding", choices=FINE_DECODINGS,
                        help="set the checkpoint's default fine decoding (config.fine_decoding) to the one measured best")
    parser.add_argument("--destination", default=str(SOURCE_TREE_DESTINATION), help="default: the source tree's")
    args = accept_underscore_spellings(parser).parse_args(argv)
    try:
        folder = bundle_default_checkpoint(args.checkpoint, args.destination, args.training_facts, args.results,
                                           args.fine_decoding)
    except LMCodecError as error:
        print(f"lmcodec: error: {error}", file=sys.stderr)
        return 2
    size = sum(path.stat().st_size for path in folder.iterdir())
    print(f"bundled {args.checkpoint} into {folder} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
