"""Deepen a trained checkpoint's decoder without changing what it outputs, to train the added capacity from there.

    python -m lmcodec.training.grow_decoder modeling_lmcodec/default_checkpoint outputs/codec-deep \
        --decoder-frame-layers 6 --decoder-stft-layers 8

New causal ConvNeXt blocks are appended to the decoder's 50 Hz (frame) and STFT-rate stacks with their layer scale
at zero, so each starts as the identity and the grown checkpoint decodes exactly as the original; training then
moves the scales off zero (their gradient is the block's output, which is not zero). Every other weight is copied:
encoder, quantizer and both LMs are unchanged, so the codes and the LMs trained on them stay valid. Then train the
decoder as usual (`train_codec.py --model-name-or-path outputs/codec-deep --freeze encoder,quantizer`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lmcodec.errors import LMCodecError

STACKS = {"num_decoder_frame_layers": "decoder.frame_layers", "num_decoder_stft_layers": "decoder.stft_layers"}


def grow_decoder(model, num_decoder_frame_layers: int | None = None, num_decoder_stft_layers: int | None = None):
    """A new `LMCodecModel` equal to `model` with its decoder stacks deepened to the given layer counts (None: keep);
    the new blocks' layer scales are zero, so both models compute the same output."""
    from lmcodec import LMCodecConfig, LMCodecModel

    original = model.config.to_dict()
    config = dict(original)
    wanted = dict(zip(STACKS, (num_decoder_frame_layers, num_decoder_stft_layers)))
    for field, layers in wanted.items():
        if layers is None:
            continue
        if layers < config[field]:
            raise LMCodecError(f"--{field.removeprefix('num_').replace('_', '-')} {layers} is fewer than the "
                               f"checkpoint's {config[field]}; growing only adds layers.")
        config[field] = layers
    if all(config[field] == original[field] for field in STACKS):
        raise LMCodecError(f"nothing to grow: the decoder already has {original['num_decoder_frame_layers']} + "
                           f"{original['num_decoder_stft_layers']} blocks; ask for more with --decoder-frame-layers "
                           "and/or --decoder-stft-layers.")
    grown = LMCodecModel(LMCodecConfig.from_dict(config)).eval()
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    added_prefixes = tuple(f"{STACKS[field]}.layers.{index}."
                           for field in STACKS for index in range(original[field], config[field]))
    not_copied = [name for name in missing if not name.startswith(added_prefixes)]
    if unexpected or not_copied:
        raise LMCodecError(f"cannot grow this checkpoint: its weights do not match this version's model ("
                           f"{(unexpected or not_copied)[0]}); load and re-save it with this version of lmcodec first.")
    with torch.no_grad():
        for name, parameter in grown.named_parameters():
            if name.startswith(added_prefixes) and name.endswith(".layer_scale"):
                parameter.zero_()
    return grown


def main(argv: list[str] | None = None) -> int:
    from lmcodec.training.args import accept_underscore_spellings

    parser = argparse.ArgumentParser(prog="python -m lmcodec.training.grow_decoder", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="trained checkpoint folder")
    parser.add_argument("output", help="folder to write the grown checkpoint to")
    parser.add_argument("--decoder-frame-layers", type=int, help="ConvNeXt blocks at the frame rate (50 Hz) after growing")
    parser.add_argument("--decoder-stft-layers", type=int, help="ConvNeXt blocks at the STFT rate (100 Hz) after growing")
    args = accept_underscore_spellings(parser).parse_args(argv)
    from lmcodec import save_checkpoint
    from lmcodec.console import print_error
    from lmcodec.loading import load_model

    try:
        if args.decoder_frame_layers is None and args.decoder_stft_layers is None:
            raise LMCodecError("nothing to grow: pass --decoder-frame-layers and/or --decoder-stft-layers.")
        if Path(args.output).exists():
            raise LMCodecError(f"{args.output} already exists; pass a new folder for the grown checkpoint.")
        source = load_model(args.checkpoint)
        grown = grow_decoder(source, args.decoder_frame_layers, args.decoder_stft_layers)
        save_checkpoint(grown, args.output)
    except OSError as error:
        print(f"lmcodec: error: cannot write {args.output}: {error.strerror or error}; pass a writable folder.",
              file=sys.stderr)
        return 2
    except LMCodecError as error:
        return print_error(error)
    added = sum(p.numel() for p in grown.decoder.parameters()) - sum(p.numel() for p in source.decoder.parameters())
    print(f"grew {args.checkpoint} into {Path(args.output)}: decoder {grown.config.num_decoder_frame_layers} + "
          f"{grown.config.num_decoder_stft_layers} blocks, {added / 1e6:.2f} M parameters added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
