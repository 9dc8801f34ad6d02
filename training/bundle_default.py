"""Bundle a trained checkpoint as the package's default, `lmcodec.DEFAULT_CHECKPOINT`, and render its model card.

    python -m lmcodec.training.bundle_default outputs/entropy-lm/final \
        --training-facts training/configs/default-facts.json --results eval/default/results.json
    python -m lmcodec.training.bundle_default --card-only     # re-render README.md of the bundled default only

Writes, into `modeling_lmcodec/default_checkpoint/` of the source tree (replaced as a whole, never half-written):
`config.json` and `preprocessor_config.json` (both without `auto_map`: the package's own classes load the folder),
`model.safetensors` with every floating tensor stored in float16 (the model still loads and runs in float32, so coding
stays exact), the runtime's `onnx/` graphs (those of the source or of the checkpoint being replaced when they fit
the new weights, else exported from the weights as stored: needs the `export` extra), and, when given,
`training_facts.json`, `results.json` and the model card rendered from all of them (`README.md`).

No code files, and so no `auto_map`: a checkpoint that claims remote code must carry its code, and carrying it here
would mean a second copy of the package's modules in the source tree (copies or symlinks, which go stale, or break on
checkouts without symlinks and in some archives). The package loads this folder with its own classes; a copy for
users without the package gets its code generated from the installed package when it is pushed to the Hub
(`lmcodec push-to-hub`) or saved (`lmcodec.save_checkpoint`), and the model card says so.
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


def export_graphs(folder: Path) -> None:
    """The runtime's ONNX graphs in `folder/onnx`, exported from the weights exactly as stored (float16 read back as
    float32), so their fingerprints match what the runtime reads."""
    import torch

    from lmcodec import LMCodecModel
    from lmcodec.onnx_export import export_onnx

    export_onnx(LMCodecModel.from_pretrained(str(folder), dtype=torch.float32).eval(), folder / "onnx")


def drop_auto_map(config_file: Path) -> None:
    """Remove `auto_map` from a saved config: the bundled folder carries no code, so it must not claim any."""
    config = json.loads(config_file.read_text())
    if config.pop("auto_map", None) is not None:
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def carry_onnx_graphs(staging: Path, candidates: list[Path]) -> bool:
    """Copy into `staging/onnx` the first of the `candidates` (onnx/ folders) whose graphs fit the staged weights, so
    that re-bundling the same weights keeps their graphs byte for byte; False when none does."""
    from lmcodec.hub_cards.push import check_onnx_graphs
    from lmcodec.runtime import ONNX_FOLDER

    for candidate in candidates:
        if not candidate.is_dir():
            continue
        shutil.copytree(candidate, staging / ONNX_FOLDER, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        try:
            check_onnx_graphs(staging)
            return True
        except LMCodecError:
            shutil.rmtree(staging / ONNX_FOLDER)
    return False


def write_card(model, folder: Path, results: dict | None, facts: dict | None) -> Path:
    """Render the bundled default's card from `folder` (its files, weights, results and facts) into its README.md."""
    from lmcodec.hub_cards.model_card import build_model_card

    card = build_model_card(model, results, facts, folder=folder, bundled=True)
    temporary = folder / ".README.md.tmp"
    card.save(temporary)
    temporary.chmod(0o644)
    temporary.replace(folder / "README.md")
    return folder / "README.md"


def render_bundled_card(folder: str | Path = SOURCE_TREE_DESTINATION) -> Path:
    """Re-render `folder/README.md` (the bundled default's model card) from the folder as it is: its weights, files,
    `results.json` and `training_facts.json`. Nothing else in the folder is written."""
    from lmcodec.hub_cards.model_card import TRAINING_FACTS_FILE, load_results, read_json
    from lmcodec.loading import load_model

    folder = Path(folder)
    model = load_model(folder)
    results = load_results(folder / "results.json") if (folder / "results.json").is_file() else None
    facts = read_json(folder / TRAINING_FACTS_FILE, "training facts") if (folder / TRAINING_FACTS_FILE).is_file() \
        else None
    return write_card(model, folder, results, facts)


def bundle_default_checkpoint(source: str | Path, destination: str | Path = SOURCE_TREE_DESTINATION,
                              training_facts: str | Path | None = None, results: str | Path | None = None,
                              fine_decoding: str | None = None) -> Path:
    """Copy the checkpoint folder `source` to `destination` in the bundled form described above; returns it.
    `fine_decoding` sets the config's default decoding of the levels not sent (the one measured best)."""
    from lmcodec import save_checkpoint
    from lmcodec.hub_cards.model_card import load_results, read_json
    from lmcodec.loading import load_model
    from lmcodec.runtime import ONNX_FOLDER

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
        for name in ("config.json", "preprocessor_config.json"):
            drop_auto_map(staging / name)
        store_half_precision(staging / "model.safetensors")
        if not carry_onnx_graphs(staging, [Path(source) / ONNX_FOLDER, destination / ONNX_FOLDER]):
            export_graphs(staging)  # graphs that fit these weights: exported from them as stored
        if facts is not None:
            (staging / "training_facts.json").write_text(json.dumps(facts, indent=2) + "\n")
        if parsed_results is not None:
            (staging / "results.json").write_text(json.dumps(parsed_results, indent=2) + "\n")
        write_card(model, staging, parsed_results, facts)
        size = sum(path.stat().st_size for path in staging.rglob("*") if path.is_file())
        if size > SIZE_BUDGET_BYTES:
            raise LMCodecError(f"the bundled checkpoint would take {size / 2**20:.1f} MiB, over the "
                               f"{SIZE_BUDGET_BYTES / 2**20:.0f} MiB budget; use smaller LMs or codebooks.")
        staging.chmod(0o755)  # mkdtemp makes it private; package data must be readable by everyone
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
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
    parser.add_argument("checkpoint", nargs="?",
                        help="trained checkpoint folder (the entropy LM's `final/`, holding all three)")
    parser.add_argument("--card-only", action="store_true",
                        help="only re-render the model card (README.md) of the bundled folder from its files")
    parser.add_argument("--training-facts", metavar="facts.json", help="training facts for the model card")
    parser.add_argument("--results", metavar="results.json", help="`lmcodec evaluate` results of this checkpoint")
    parser.add_argument("--fine-decoding", choices=FINE_DECODINGS,
                        help="set the checkpoint's default fine decoding (config.fine_decoding) to the one measured best")
    parser.add_argument("--destination", default=str(SOURCE_TREE_DESTINATION), help="default: the source tree's")
    args = accept_underscore_spellings(parser).parse_args(argv)
    if args.card_only == bool(args.checkpoint):
        parser.error("pass a CHECKPOINT to bundle, or --card-only to re-render the bundled card")
    try:
        if args.card_only:
            print(f"rendered {render_bundled_card(args.destination)}")
            return 0
        folder = bundle_default_checkpoint(args.checkpoint, args.destination, args.training_facts, args.results,
                                           args.fine_decoding)
    except LMCodecError as error:
        print(f"lmcodec: error: {error}", file=sys.stderr)
        return 2
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    print(f"bundled {args.checkpoint} into {folder} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
