"""Export a checkpoint's integer entropy model (what format-3 streams are coded with), calibrated on real speech.

    lmcodec export-integer-lm CHECKPOINT OUTPUT --calibration-dataset data/speech/librispeech-train-clean-100

The float entropy LM is run teacher-forced over windows of the checkpoint's own codes of the calibration speech to
choose each fixed-point scale; the integer tensors are then stored in the checkpoint written to OUTPUT (config
`integer_entropy_model: true`). `train-lm --target entropy` does the same on its training codes before its final
export. Calibrate on training speech, never on the test set (data/ is the data root of training/data_sources.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from lmcodec.errors import LMCodecError
from lmcodec.training.args import accept_underscore_spellings


def calibration_windows(code_arrays, window: int, max_windows: int) -> torch.Tensor:
    """Codes `[Nq, F]` of several recordings → up to `max_windows` whole windows `[B, Nq, window]`, taken in turn
    from each recording (so many speakers are covered before a long recording fills the batch). When no recording
    is `window` frames long, the window shrinks to the longest one."""
    window = min(window, max((codes.shape[1] for codes in code_arrays), default=0))
    pieces = [[codes[:, start : start + window] for start in range(0, codes.shape[1] - window + 1, window)]
              for codes in code_arrays]
    chosen = []
    for round_index in range(max(map(len, pieces), default=0)):
        chosen += [windows[round_index] for windows in pieces if round_index < len(windows)]
    if not chosen or window == 0:
        raise LMCodecError("no calibration codes: give at least one recording of speech.")
    return torch.as_tensor(np.stack(chosen[:max_windows]), dtype=torch.long)


@torch.no_grad()
def codes_of_dataset(model, source: str, max_items: int, audio_column: str = "audio") -> list[np.ndarray]:
    """The codec's codes `[Nq, F]` of the first `max_items` recordings of a training source (folders, shards, ...)."""
    from lmcodec.training.data import decode_audio, load_audio_dataset

    dataset = load_audio_dataset(source, audio_column=audio_column)
    out = []
    for index in range(min(max_items, len(dataset))):
        audio = torch.from_numpy(decode_audio(dataset[index][audio_column]))
        out.append(model.encode(audio[None, None]).audio_codes[0].numpy())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmcodec export-integer-lm", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="checkpoint folder or Hub id with a trained entropy LM")
    parser.add_argument("output", help="folder to write the checkpoint with its integer entropy model to")
    parser.add_argument("--calibration-dataset", required=True, help="training speech (folders, shards, Hub id)")
    parser.add_argument("--max-items", type=int, default=64, help="recordings to encode (default 64)")
    parser.add_argument("--max-windows", type=int, default=48, help="sync-period windows to calibrate on (48)")
    args = accept_underscore_spellings(parser).parse_args(argv)
    import lmcodec

    try:
        model = lmcodec.LMCodecModel.from_pretrained(args.checkpoint).float().eval()
        codes = codes_of_dataset(model, args.calibration_dataset, args.max_items)
        model.export_integer_entropy_model(calibration_windows(codes, model.config.sync_frames, args.max_windows))
        lmcodec.save_checkpoint(model, Path(args.output))
    except LMCodecError as error:
        print(f"lmcodec: error: {error}", file=sys.stderr)
        return 2
    print(f"exported the integer entropy model into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
