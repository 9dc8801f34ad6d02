"""The `lmcodec` command line. Every bad input ends in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import LMCodecError

DEMO_SENTENCE = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
DEMO_SPEECH_SUBFOLDER = "librispeech-test-other"  # speakers never seen in training


def _load_model(model_path: str | None):
    """(model, description of its weights). Without a path: a randomly initialised default model."""
    import torch

    from . import LMCodecConfig, LMCodecModel

    if model_path:
        try:
            model = LMCodecModel.from_pretrained(model_path)
        except OSError as error:
            raise LMCodecError(f"cannot load model from {model_path}: {str(error).splitlines()[0]}") from None
        return model.eval(), f"checkpoint {model_path}"
    torch.manual_seed(0)
    model = LMCodecModel(LMCodecConfig()).eval()
    return model, "RANDOM weights (no trained checkpoint is bundled yet): the output will not sound like speech"


def _demo_input(path: str | None, speech_dir: str | None, workdir: Path) -> tuple[Path, str]:
    """The demo's input file and where it came from: IN, a real recording from `speech_dir`, or espeak-ng speech."""
    if path:
        return Path(path), "your file"
    folder = Path(speech_dir) / DEMO_SPEECH_SUBFOLDER if speech_dir else None
    recordings = sorted(folder.glob("*.flac")) if folder and folder.is_dir() else []
    if recordings:
        return recordings[0], "real recording: LibriSpeech test-other, CC BY 4.0"
    if shutil.which("espeak-ng") is None:
        raise LMCodecError("no input given and espeak-ng is not installed; run `make demo IN=your.wav` or "
                           "`apt-get install espeak-ng`.")
    synthesized = workdir / "espeak.wav"
    subprocess.run(["espeak-ng", "-w", str(synthesized), DEMO_SENTENCE], check=True, capture_output=True)
    return synthesized, "sentence synthesized with espeak-ng"


def run_demo(args: argparse.Namespace) -> int:
    """Speech file → codes of the coarse levels → speech again, with bitrate, duration and real-time factor."""
    import torch

    from .processing import load_audio, write_audio

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        source, origin = _demo_input(args.input, args.speech_dir, Path(workdir))
        audio, rate = load_audio(source)
    model, weights = _load_model(args.model)
    levels = args.coarse or model.config.num_coarse_quantizers
    duration = len(audio) / rate
    start = time.perf_counter()
    input_values = torch.from_numpy(audio).view(1, 1, -1)
    codes = model.encode(input_values, num_quantizers=levels).audio_codes
    decoded = model.decode(codes, padding_mask=torch.ones(1, len(audio))).audio_values[0, 0].numpy()
    elapsed = time.perf_counter() - start
    write_audio(args.output, decoded, rate)
    print(f"input    {source} ({origin})")
    print(f"weights  {weights}")
    print(f"duration {duration:.2f} s, {codes.shape[-1]} frames, {levels} coarse levels sent")
    print(f"bitrate  {model.config.coarse_bitrate(levels) / 1000:.2f} kbps raw codes (before entropy coding)")
    print(f"speed    real-time factor {elapsed / duration:.3f} (encode + decode, {args.threads} thread(s))")
    print(f"output   {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmcodec", description="LMCodec low-bitrate speech codec.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="round-trip a speech file through the codec and report rate and speed")
    demo.add_argument("input", nargs="?", help="any audio file soundfile reads (default: a real recording)")
    demo.add_argument("--output", default="outputs/demo.wav", help="decoded speech (default: outputs/demo.wav)")
    demo.add_argument("--model", help="checkpoint folder (default: the built-in model)")
    demo.add_argument("--coarse", type=int, help="coarse levels sent (default: the model's operating point)")
    demo.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    demo.add_argument("--speech-dir", help="folder of real speech to take the default input from")
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "output", None):
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    try:
        return args.handler(args)
    except LMCodecError as error:
        print(f"lmcodec: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmcodec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
