"""The `lmcodec` command line. Every bad input ends in one line on stderr and exit code 2, never a traceback, and
no partial output file is left behind (outputs are written to a temporary file, then renamed)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .configuration_lmcodec import FINE_DECODINGS
from .errors import LMCodecError

DEMO_SENTENCE = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
DEMO_SPEECH_SUBFOLDER = "librispeech-test-other"  # speakers never seen in training
CHUNK_SECONDS = 1.0  # audio pushed per step, so long files show progress and memory stays flat
PROGRESS_MIN_SECONDS = 5.0


# ---------------------------------------------------------------------------------------------------- helpers
def load_model(model_path: str | None):
    """(model, description of its weights). `model_path`: a local folder or a Hub repo id; None: the trained default
    checkpoint bundled with the package (`lmcodec.DEFAULT_CHECKPOINT`)."""
    from . import DEFAULT_CHECKPOINT, LMCodecModel

    if not model_path:
        if not (Path(DEFAULT_CHECKPOINT) / "model.safetensors").is_file():
            raise LMCodecError(f"the bundled default checkpoint is missing from {DEFAULT_CHECKPOINT}; reinstall lmcodec "
                               "or pass --model with a checkpoint folder or Hub repo id.")
        return LMCodecModel.from_pretrained(DEFAULT_CHECKPOINT).eval(), "default checkpoint (lmcodec.DEFAULT_CHECKPOINT)"
    if Path(model_path).exists() and not (Path(model_path) / "config.json").is_file():
        raise LMCodecError(f"{model_path} is not an LMCodec checkpoint folder (no config.json); pass the folder "
                           "written by lmcodec.save_checkpoint.")
    try:
        model = LMCodecModel.from_pretrained(model_path)
    except (OSError, ValueError, KeyError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LMCodecError(f"cannot load model {model_path}: {detail}") from None
    return model.eval(), f"checkpoint {model_path}"


def read_audio_file(path: str) -> tuple["np.ndarray", int]:  # noqa: F821
    """Any file soundfile reads → (mono float32 at the file's rate, rate)."""
    from .processing import to_mono
    from .processing.audio_io import read_audio

    audio, rate = read_audio(path)
    if audio.shape[0] == 0:
        raise LMCodecError(f"{path} contains no audio samples (zero length); pass a non-empty recording.")
    return to_mono(audio), rate


def read_stream_file(path: str) -> bytes:
    file = Path(path)
    if not file.exists():
        raise LMCodecError(f"input file not found: {file} (check the path).")
    if file.is_dir():
        raise LMCodecError(f"input is a directory, not an .lmc stream: {file}.")
    return file.read_bytes()


def check_output_path(path: str) -> Path:
    """Fail before any work if `path` cannot be written: its folder must exist and be writable."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise LMCodecError(f"cannot write {target}: folder {folder} does not exist (create it first).")
    if target.is_dir():
        raise LMCodecError(f"cannot write {target}: it is a directory; give a file name such as out.wav.")
    if not os.access(folder, os.W_OK):
        raise LMCodecError(f"cannot write {target}: folder {folder} is not writable (choose another location).")
    return target


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it: a failure never leaves a partial file."""
    target = check_output_path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as error:
        raise LMCodecError(f"cannot write {target}: {error.strerror} (choose a writable location).") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise LMCodecError(f"cannot write {target}: {error.strerror} (choose a writable location).") from None


def progress(total_seconds: float, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=round(total_seconds, 1), unit="s", desc=description, file=sys.stderr,
                disable=total_seconds < PROGRESS_MIN_SECONDS, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s")


def compress_file(model, audio, rate: int, coarse: int | None, entropy: bool, packet_frames: int | None,
                  description: str = "encoding", format_version: int | None = None):
    """(stream bytes, CodingReport), pushing one second at a time (with a progress bar for long inputs)."""
    from .bitstream import FORMAT_VERSION
    from .compression import LMCodecStreamCompressor

    num_samples = round(len(audio) * model.config.sampling_rate / rate)
    compressor = LMCodecStreamCompressor(model, rate, coarse, entropy, packet_frames, num_samples=num_samples,
                                         format_version=format_version or FORMAT_VERSION)
    parts, step = [compressor.header()], int(CHUNK_SECONDS * rate)
    with progress(len(audio) / rate, description) as bar:
        for start in range(0, len(audio), step):
            parts.extend(compressor.push(audio[start : start + step]))
            bar.update(min(step, len(audio) - start) / rate)
    parts.extend(compressor.flush())
    return b"".join(parts), compressor.report


def decompress_with_progress(model, data: bytes, header, fine_decoding: str | None, seed: int | None):
    """`model.decompress(data)`, fed in pieces so long streams show a progress bar."""
    import numpy as np

    from .bitstream import HEADER_SIZE

    decompressor = model.stream_decompressor(data[:HEADER_SIZE], fine_decoding=fine_decoding, seed=seed)
    rate = model.config.sampling_rate
    total_seconds = (header.num_samples or 0) / rate
    body, pieces = data[HEADER_SIZE:], []
    step = max(1, len(body) // max(int(total_seconds), 1))  # about one second of stream per piece
    with progress(total_seconds, "decoding") as bar:
        for start in range(0, len(body), step):
            pieces.append(decompressor.push(body[start : start + step]))
            bar.update(min(len(pieces[-1]) / rate, bar.total - bar.n))
    pieces.append(decompressor.finish())
    return np.concatenate(pieces)


def describe_rate(data: bytes, report, seconds: float) -> str:
    kbps = len(data) * 8 / seconds / 1000
    overhead = (report.header_bytes + report.framing_bytes) * 8 / seconds / 1000
    return (f"{len(data)} bytes = {kbps:.3f} kbps (all bytes; header {report.header_bytes} B, packet framing "
            f"{report.framing_bytes} B in {report.packets} packets = {overhead:.3f} kbps of overhead)")


# ---------------------------------------------------------------------------------------------------- commands
def run_encode(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    check_output_path(args.output)
    audio, rate = read_audio_file(args.input)
    model, _ = load_model(args.model)
    start = time.perf_counter()
    data, report = compress_file(model, audio, rate, args.coarse, not args.no_entropy, args.packet_frames,
                                 format_version=args.format_version)
    elapsed = time.perf_counter() - start
    write_bytes_atomically(args.output, data)
    seconds = len(audio) / rate
    print(f"{args.output}: {seconds:.2f} s, {describe_rate(data, report, seconds)}; real-time factor "
          f"{elapsed / seconds:.3f}")
    return 0


def _output_rate(args, header, model) -> tuple[int, int | None]:
    """(rate to write, exact length in samples or None)."""
    if args.original_rate:
        length = None
        if header.num_samples is not None:
            length = round(header.num_samples * header.original_sampling_rate / model.config.sampling_rate)
        return header.original_sampling_rate, length
    return args.sample_rate or model.config.sampling_rate, None


def run_decode(args) -> int:
    import numpy as np

    from .bitstream import StreamHeader
    from .processing import resample, write_audio

    check_output_path(args.output)
    data = read_stream_file(args.input)
    header, _ = StreamHeader.from_bytes(data)
    model, _ = load_model(args.model)
    start = time.perf_counter()
    if args.partial:
        audio, rate, losses = model.decompress(data, partial=True, return_losses=True,
                                               fine_decoding=args.fine_decoding, seed=args.seed)
    else:
        audio = decompress_with_progress(model, data, header, args.fine_decoding, args.seed)
        rate, losses = model.config.sampling_rate, ""
    elapsed = time.perf_counter() - start
    target_rate, length = _output_rate(args, header, model)
    audio = resample(audio, rate, target_rate)
    if length is not None:
        audio = np.concatenate([audio, np.zeros(max(length - len(audio), 0), np.float32)])[:length]
    write_audio(args.output, audio, target_rate)
    seconds = len(audio) / target_rate
    print(f"{args.output}: {seconds:.2f} s at {target_rate} Hz; real-time factor {elapsed / max(seconds, 1e-9):.3f}")
    if losses:
        print(f"lmcodec: warning: {losses}", file=sys.stderr)
    return 0


def run_info(args) -> int:
    from .bitstream import HEADER_SIZE, split_stream

    data = read_stream_file(args.input)
    header, packets = split_stream(data)
    framing = len(data) - HEADER_SIZE - sum(len(packet.payload) for packet in packets)
    frames = sum(header.frames_in(packet) for packet in packets)
    seconds = (header.num_samples if header.num_samples is not None else frames * header.hop_length) / (
        header.model_sampling_rate)
    rows = [
        ("format", f"LMCodec stream, version {data[4]}, " + {
            "integer": "entropy-coded with the integer entropy model (decodes on any machine)",
            "float": "entropy-coded with the float LM (decodes only on the kind of CPU that wrote it)",
            "none": "raw codes"}[header.entropy_model]),
        ("duration", f"{seconds:.3f} s ({frames} frames of {header.hop_length} samples at "
                     f"{header.model_sampling_rate} Hz; original file {header.original_sampling_rate} Hz)"),
        ("levels", f"{header.num_coarse_quantizers} coarse sent of {header.num_quantizers}, "
                   f"{header.codebook_size} codes each"),
        ("packets", f"{len(packets)} of {header.packet_length_frames} frames; sync every "
                    f"{header.sync_period_frames} frames"),
        ("size", f"{len(data)} bytes = {len(data) * 8 / seconds / 1000:.3f} kbps"),
        ("overhead", f"header {HEADER_SIZE} B, packet framing {framing} B "
                     f"({(HEADER_SIZE + framing) * 8 / seconds / 1000:.3f} kbps)"),
        ("model", header.model_fingerprint.hex()),
    ]
    for name, value in rows:
        print(f"{name:<9}{value}")
    return 0


def run_roundtrip(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    check_output_path(args.output)
    audio, rate = read_audio_file(args.input)
    model, weights = load_model(args.model)
    _roundtrip(model, weights, audio, rate, args, origin=args.input)
    return 0


def _roundtrip(model, weights: str, audio, rate: int, args, origin: str) -> None:
    from .processing import write_audio

    seconds = len(audio) / rate
    start = time.perf_counter()
    data, report = compress_file(model, audio, rate, args.coarse, not getattr(args, "no_entropy", False), None)
    encoded = time.perf_counter()
    decoded, decoded_rate = model.decompress(data)
    finished = time.perf_counter()
    write_audio(args.output, decoded, decoded_rate)
    levels = args.coarse or model.config.num_coarse_quantizers
    print(f"input    {origin}")
    print(f"weights  {weights}")
    print(f"duration {seconds:.2f} s, {report.frames} frames, {levels} coarse levels sent")
    print(f"bitrate  {describe_rate(data, report, seconds)}")
    print(f"         entropy LM information {report.information_bits / seconds / 1000:.3f} kbps; raw codes would be "
          f"{model.config.coarse_bitrate(levels) / 1000:.2f} kbps")
    print(f"speed    real-time factor {(finished - start) / seconds:.3f} (encode {(encoded - start) / seconds:.3f}, "
          f"decode {(finished - encoded) / seconds:.3f}; coder on 1 thread)")
    print(f"output   {args.output} ({decoded_rate} Hz)")


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


def run_demo(args) -> int:
    """Speech file → LMCodec bitstream → speech again, with bitrate (all bytes), duration and real-time factor."""
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        source, origin = _demo_input(args.input, args.speech_dir, Path(workdir))
        audio, rate = read_audio_file(str(source))
    model, weights = load_model(args.model)
    _roundtrip(model, weights, audio, rate, args, origin=f"{source} ({origin})")
    return 0


# ---------------------------------------------------------------------------------------------------- parser
def _forward_to(module_name: str):
    """A handler that passes the remaining arguments to `lmcodec.training.<module_name>.main`."""

    def handler(args) -> int:
        import importlib

        module = importlib.import_module(f"lmcodec.training.{module_name}")
        try:
            return module.main(args.arguments)
        except (ValueError, FileNotFoundError) as error:
            raise LMCodecError(" ".join(str(error).split())) from None

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmcodec", description="LMCodec: low-bitrate speech codec.")
    commands = parser.add_subparsers(dest="command", required=True)
    model_help = ("checkpoint folder or Hugging Face repo id (default: the bundled trained checkpoint, "
                  "lmcodec.DEFAULT_CHECKPOINT)")

    encode = commands.add_parser("encode", help="audio file → .lmc stream")
    encode.add_argument("input", help="any audio file soundfile reads (wav, flac, ogg, mp3, aiff), any rate/channels")
    encode.add_argument("output", help="the .lmc stream to write")
    encode.add_argument("--model", help=model_help)
    encode.add_argument("--coarse", type=int, help="coarse levels to send (an operating point of the model)")
    encode.add_argument("--threads", type=int, default=1, help="torch threads outside the coder (default: 1)")
    encode.add_argument("--no-entropy", action="store_true", help="send raw 10-bit codes instead of range coding")
    encode.add_argument("--packet-frames", type=int, help="frames per packet (default: the model's, 1 s)")
    encode.add_argument("--format-version", type=int, choices=(2, 3), default=None,
                        help="3 (default) decodes on any machine; 2 writes the float-LM streams of earlier releases, "
                             "which decode only on the kind of CPU that wrote them (for compatibility and benchmarks)")
    encode.set_defaults(handler=run_encode)

    decode = commands.add_parser("decode", help=".lmc stream → audio file")
    decode.add_argument("input", help="the .lmc stream")
    decode.add_argument("output", help="audio file to write (.wav, .flac, ...)")
    decode.add_argument("--model", help=model_help)
    rate = decode.add_mutually_exclusive_group()
    rate.add_argument("--sample-rate", type=int, help="output sampling rate (default: 16000)")
    rate.add_argument("--original-rate", action="store_true", help="back to the input file's rate and length")
    decode.add_argument("--partial", action="store_true",
                        help="decode a damaged stream as far as possible (silence until the next sync point)")
    decode.add_argument("--fine-decoding", choices=FINE_DECODINGS,
                        help="how to fill in the levels that were not sent: sample, greedy or expected (the fine "
                             "LM; expected = probability-weighted codebook vectors) or coarse-only (no fine LM); "
                             "default: the checkpoint's config.fine_decoding")
    decode.add_argument("--sample", dest="fine_decoding", action="store_const", const="sample",
                        help="the same as --fine-decoding sample")
    decode.add_argument("--seed", type=int, help="seed for sampled fine decoding (default 0)")
    decode.set_defaults(handler=run_decode)

    info = commands.add_parser("info", help="describe an .lmc stream (no model needed)")
    info.add_argument("input")
    info.set_defaults(handler=run_info)

    for name, handler, help_text in (("roundtrip", run_roundtrip, "audio → stream → audio, with kbps and speed"),
                                     ("demo", run_demo, "round-trip real speech (or your file) and report")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("input", nargs="?" if name == "demo" else None, help="any audio file soundfile reads")
        if name == "roundtrip":
            command.add_argument("output", help="decoded audio file to write")
        else:
            command.add_argument("--output", default="outputs/demo.wav", help="decoded speech (outputs/demo.wav)")
            command.add_argument("--speech-dir", help="folder of real speech to take the default input from")
        command.add_argument("--model", help=model_help)
        command.add_argument("--coarse", type=int, help="coarse levels to send")
        command.add_argument("--threads", type=int, default=1, help="torch threads outside the coder (default: 1)")
        command.set_defaults(handler=handler)

    for name, module, help_text in (
        ("prepare-librilight", "prepare_librilight", "LibriLight-layout folder → Parquet shards for training"),
        ("train-codec", "train_codec", "train or fine-tune the codec with Accelerate (see --help)"),
        ("train-lm", "train_lm", "train the fine or entropy LM on a codec's codes (see --help)"),
        ("export-integer-lm", "export_integer_lm", "store a checkpoint's integer entropy model (portable coding)"),
    ):
        forward = commands.add_parser(name, help=help_text, add_help=False)
        forward.set_defaults(handler=_forward_to(module), forwards=True)

    from .training import evaluation

    evaluation.add_arguments(commands.add_parser(
        "evaluate", help="score LMCodec, its ablations, Codec2 and Opus on speech; writes a report"))

    from .training import compare

    compare.add_arguments(commands.add_parser(
        "compare", help="paired differences between two evaluations (a new checkpoint against the default's)"))

    from .hub_cards import push as hub_push

    hub_push.add_arguments(commands.add_parser(
        "push-to-hub", help="upload a checkpoint, its code and a model card to the Hugging Face Hub"))
    return parser


def quiet_libraries() -> None:
    """The command line prints its own summary: no library progress bars or advice on stderr."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def print_error(error: LMCodecError) -> int:
    """Print `error` as the command line's one-line message; returns the exit code 2."""
    print(f"lmcodec: error: {' '.join(str(error).split())}", file=sys.stderr)
    return 2


def run_subcommand_module(add_arguments, prog: str, description: str, argv: list[str] | None) -> int:
    """`python -m lmcodec.<module> ...` for a module that is also an `lmcodec` subcommand (its `add_arguments` sets
    the handler): the same parsing, quiet libraries and one-line errors as `lmcodec <subcommand> ...`."""
    args = add_arguments(argparse.ArgumentParser(prog=prog, description=description)).parse_args(argv)
    quiet_libraries()
    try:
        return args.handler(args)
    except LMCodecError as error:
        return print_error(error)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "forwards", False):
        args.arguments = extra  # everything after the subcommand goes to the training script's own parser
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    quiet_libraries()
    if args.command == "demo":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    if getattr(args, "threads", 1) < 1:
        print("lmcodec: error: --threads must be at least 1.", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except LMCodecError as error:
        return print_error(error)
    except KeyboardInterrupt:
        print("lmcodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`lmcodec info x.lmc | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
