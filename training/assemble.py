"""Assemble one checkpoint from the three trained stages: the codec, the fine LM and the entropy LM.

    python -m lmcodec.training.assemble --codec outputs/codec-gan/final --fine-lm outputs/fine-lm/final \
        --entropy-lm outputs/entropy-lm/final --output outputs/default

The LMs model the codes of one encoder and quantizer. When those are frozen after an early codec stage, the LMs can
train on that stage's codes while the decoder keeps training (e.g. adversarially); this joins the results. It refuses
checkpoints whose encoder or quantizer differ from the codec's, because their LMs learned other codes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lmcodec.errors import LMCodecError

TOKEN_DEFINING_PARTS = ("encoder.", "quantizer.")  # the weights that decide which codes audio gets
LM_CONFIG_FIELDS = {"fine_lm": ("fine_lm_config",),
                    "entropy_lm": ("entropy_lm_config", "entropy_lm_depth", "integer_entropy_model")}
# The modules each LM checkpoint contributes: the entropy LM comes with its integer twin (the model coding uses),
# which `train-lm --target entropy` exports from it; a checkpoint without one gives none.
LM_MODULES = {"fine_lm": ("fine_lm.",), "entropy_lm": ("entropy_lm.", "integer_entropy_lm.")}


def check_same_codes(codec_state: dict, other_state: dict, other_name: str) -> None:
    """Raise unless every encoder and quantizer tensor of `other_state` equals the codec's."""
    for name, tensor in codec_state.items():
        if name.startswith(TOKEN_DEFINING_PARTS) and not torch.equal(tensor, other_state.get(name, tensor.new_empty(0))):
            raise LMCodecError(f"{other_name} was trained on other codes: its {name} differs from the codec's; train "
                               "its LM on the codes of this codec's encoder and quantizer.")


def assemble_checkpoint(codec: str | Path, fine_lm: str | Path, entropy_lm: str | Path):
    """The codec checkpoint's model with `fine_lm`'s fine LM and `entropy_lm`'s entropy LM and its integer entropy
    model, when it has one (weights and configs)."""
    from lmcodec import LMCodecConfig, LMCodecModel
    from lmcodec.loading import load_model

    base = load_model(codec)
    sources = {"fine_lm": Path(fine_lm), "entropy_lm": Path(entropy_lm)}
    parts = {part: load_model(path) for part, path in sources.items()}
    codec_state = base.state_dict()
    config = base.config.to_dict()
    for part, source in parts.items():
        check_same_codes(codec_state, source.state_dict(), f"{part} checkpoint {sources[part]}")
        for field in LM_CONFIG_FIELDS[part]:
            config[field] = source.config.to_dict()[field]
    model = LMCodecModel(LMCodecConfig.from_dict(config)).eval()
    taken = tuple(prefix for part in parts for prefix in LM_MODULES[part])
    state = {name: tensor for name, tensor in codec_state.items() if not name.startswith(taken)}
    for part, source in parts.items():
        state.update({name: tensor for name, tensor in source.state_dict().items()
                      if name.startswith(LM_MODULES[part])})
    model.load_state_dict(state, strict=True)
    return model


def main(argv: list[str] | None = None) -> int:
    from lmcodec.training.args import accept_underscore_spellings

    parser = argparse.ArgumentParser(prog="python -m lmcodec.training.assemble", description=__doc__.splitlines()[0])
    parser.add_argument("--codec", required=True, help="checkpoint whose encoder, quantizer and decoder are kept")
    parser.add_argument("--fine-lm", required=True, help="checkpoint whose fine LM is kept")
    parser.add_argument("--entropy-lm", required=True, help="checkpoint whose entropy LM is kept")
    parser.add_argument("--output", required=True, help="folder to write the assembled checkpoint to")
    args = accept_underscore_spellings(parser).parse_args(argv)
    from lmcodec import save_checkpoint

    try:
        model = assemble_checkpoint(args.codec, args.fine_lm, args.entropy_lm)
    except LMCodecError as error:
        print(f"lmcodec: error: {error}", file=sys.stderr)
        return 2
    save_checkpoint(model, args.output)
    print(f"assembled {args.output} from codec {args.codec}, fine LM {args.fine_lm}, entropy LM {args.entropy_lm}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
