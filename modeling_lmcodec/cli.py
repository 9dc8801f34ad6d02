"""The `lmcodec` command line. Every bad input ends in one line on stderr and exit code 2, never a traceback, and
no partial output file is left behind (outputs are written to a temporary file, then renamed).

Nothing is imported at the top but the standard library and the package's light modules, so `lmcodec --help` and
`lmcodec info` start at once; `encode`, `decode` and `roundtrip` load the ONNX runtime when the checkpoint has
graphs (no torch), and the torch model otherwise or with `--backend torch`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import __version__
from .console import Progress, print_error, quiet_libraries
from .errors import LMCodecError
from .fine_decoding import FINE_DECODINGS
from .processing.files import check_output_path, read_stream_file, write_bytes_atomically

DEMO_SENTENCE = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
DEMO_SPEECH_SUBFOLDER = "librispeech-test-other"  # speakers never seen in training
CHUNK_SECONDS = 1.0  # audio pushed per step, so long files show progress and memory stays flat
BACKENDS = ("auto", "onnx", "torch")
PACKET_MILLISECONDS = (20, 40, 60)  # datagram packets for `lmcodec send`: 1-3 frames
SYNC_MILLISECONDS = (80, 120, 240)  # datagram context resets (a multiple of the packet's duration)
# What `pip install lmcodec` adds to the runtime's own requirements (requirements-runtime.txt).
FULL_PACKAGE_DEPENDENCIES = ("torch", "transformers", "datasets", "accelerate", "evaluate", "onnx", "onnxscript")


# ---------------------------------------------------------------------------------------------------- helpers
def open_codec(model: str | None, backend: str = "auto", threads: int = 1):
    """(coding backend, description of its weights) for `--model` and `--backend`: "auto" takes the ONNX runtime
    when the checkpoint folder has graphs and the torch model otherwise."""
    from .loading import describe_source, resolve_checkpoint

    if backend not in BACKENDS:
        raise LMCodecError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    location = resolve_checkpoint(model)
    if backend != "torch":
        if _has_graphs(location):
            from .runtime import load_codec

            return load_codec(location, threads=threads), f"{describe_source(model)}, ONNX runtime"
        if backend == "onnx":
            raise LMCodecError(f"{location} has no ONNX graphs; run `lmcodec export-onnx {location}` or use "
                               "--backend torch.")
    import importlib.util

    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise LMCodecError(f"the torch backend needs {' and '.join(missing)}, which this installation lacks; use "
                           "--backend onnx on a checkpoint with ONNX graphs, or install the full package.")
    from .loading import load_model
    from .torch_backend import TorchCodecBackend

    return TorchCodecBackend.of(load_model(location)), f"{describe_source(model)}, torch"


def _has_graphs(location: str) -> bool:
    """Whether the checkpoint folder `location` ships ONNX graphs for the runtime (a Hub id: not known yet)."""
    try:
        from .runtime import has_graphs
    except ImportError:  # the runtime's dependencies are not installed
        return False
    return has_graphs(location)


def read_audio_file(path: str) -> tuple["np.ndarray", int]:  # noqa: F821
    """Any file soundfile reads → (mono float32 at the file's rate, rate)."""
    from .processing import to_mono
    from .processing.audio_io import read_audio

    audio, rate = read_audio(path)
    if audio.shape[0] == 0:
        raise LMCodecError(f"{path} contains no audio samples (zero length); pass a non-empty recording.")
    return to_mono(audio), rate


def compress_file(codec, audio, rate: int, coarse: int | None, entropy: bool, packet_frames: int | None,
                  description: str = "encoding", format_version: int | None = None):
    """(stream bytes, CodingReport), pushing one second at a time (with a progress bar for long inputs)."""
    from .bitstream import FORMAT_VERSION
    from .compression import LMCodecStreamCompressor, as_backend

    backend = as_backend(codec)
    compressor = LMCodecStreamCompressor(backend, rate, coarse, entropy, packet_frames,
                                         num_samples=round(len(audio) * backend.settings.sampling_rate / rate),
                                         format_version=format_version or FORMAT_VERSION)
    parts, step = [compressor.header()], int(CHUNK_SECONDS * rate)
    with Progress(len(audio) / rate, description) as bar:
        for start in range(0, len(audio), step):
            parts.extend(compressor.push(audio[start : start + step]))
            bar.advance(min(step, len(audio) - start) / rate)
    parts.extend(compressor.flush())
    return b"".join(parts), compressor.report


def decompress_with_progress(codec, data: bytes, header, fine_decoding: str | None, seed: int | None):
    """`decompress(codec, data)`, fed in pieces so long streams show a progress bar."""
    import numpy as np

    from .bitstream import HEADER_SIZE
    from .compression import LMCodecStreamDecompressor

    decompressor = LMCodecStreamDecompressor(codec, data[:HEADER_SIZE], fine_decoding=fine_decoding, seed=seed)
    rate = decompressor.backend.settings.sampling_rate
    total_seconds = (header.num_samples or 0) / rate
    body, pieces = data[HEADER_SIZE:], []
    step = max(1, len(body) // max(int(total_seconds), 1))  # about one second of stream per piece
    with Progress(total_seconds, "decoding") as bar:
        for start in range(0, len(body), step):
            pieces.append(decompressor.push(body[start : start + step]))
            bar.advance(len(pieces[-1]) / rate)
        pieces.append(decompressor.finish())
    return np.concatenate(pieces)


def describe_rate(data: bytes, report, seconds: float) -> str:
    kbps = len(data) * 8 / seconds / 1000
    overhead = (report.header_bytes + report.framing_bytes) * 8 / seconds / 1000
    return (f"{len(data)} bytes = {kbps:.3f} kbps (all bytes; header {report.header_bytes} B, packet framing "
            f"{report.framing_bytes} B in {report.packets} packets = {overhead:.3f} kbps of overhead)")


class ChoicesOf:
    """A module's tuple of choices, imported when argparse first needs it (a value to check, help to show), so that
    building the parser stays light and new choices appear without touching the command line."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def values(self) -> tuple:
        import importlib

        return tuple(getattr(importlib.import_module(self.module), self.name))

    def __contains__(self, value) -> bool:
        return value in self.values()

    def __iter__(self):
        return iter(self.values())


# ---------------------------------------------------------------------------------------------------- commands
def run_encode(args) -> int:
    check_output_path(args.output, example="speech.lmc")
    audio, rate = read_audio_file(args.input)
    codec, _ = open_codec(args.model, args.backend, args.threads)
    start = time.perf_counter()
    data, report = compress_file(codec, audio, rate, args.coarse, not args.no_entropy, args.packet_frames,
                                 format_version=args.format_version)
    elapsed = time.perf_counter() - start
    write_bytes_atomically(args.output, data, example="speech.lmc")
    seconds = len(audio) / rate
    print(f"{args.output}: {seconds:.2f} s, {describe_rate(data, report, seconds)}; real-time factor "
          f"{elapsed / seconds:.3f}")
    return 0


def _output_rate(args, header) -> tuple[int, int | None]:
    """(rate to write, exact length in samples or None)."""
    if args.original_rate:
        length = None
        if header.num_samples is not None:
            length = round(header.num_samples * header.original_sampling_rate / header.model_sampling_rate)
        return header.original_sampling_rate, length
    return args.sample_rate or header.model_sampling_rate, None


def run_decode(args) -> int:
    import numpy as np

    from .bitstream import StreamHeader
    from .compression import decompress
    from .processing import resample, write_audio

    check_output_path(args.output)
    data = read_stream_file(args.input)
    header, _ = StreamHeader.from_bytes(data)
    codec, _ = open_codec(args.model, args.backend, args.threads)
    start = time.perf_counter()
    rate = header.model_sampling_rate
    if args.partial:
        audio, rate, losses = decompress(codec, data, partial=True, fine_decoding=args.fine_decoding, seed=args.seed)
    else:
        audio, losses = decompress_with_progress(codec, data, header, args.fine_decoding, args.seed), ""
    elapsed = time.perf_counter() - start
    target_rate, length = _output_rate(args, header)
    audio = resample(audio, rate, target_rate)
    if length is not None:
        audio = np.concatenate([audio, np.zeros(max(length - len(audio), 0), np.float32)])[:length]
    write_audio(args.output, audio, target_rate)
    seconds = len(audio) / target_rate
    print(f"{args.output}: {seconds:.2f} s at {target_rate} Hz; real-time factor {elapsed / max(seconds, 1e-9):.3f}")
    if losses:
        print(f"lmcodec: warning: {losses}", file=sys.stderr)
    return 0


def sync_frames_of(sync_ms: int, packet_ms: int, frame_rate: float) -> int:
    """`--sync-ms` in frames, or a one-line error unless it is a multiple of `--packet-ms`."""
    if sync_ms % packet_ms:
        raise LMCodecError(f"--sync-ms must be a multiple of --packet-ms ({packet_ms}), got {sync_ms}.")
    return round(sync_ms * frame_rate / 1000)


def run_send(args) -> int:
    """A file, sent over UDP as a live source would: one datagram per packet, paced by a monotonic clock."""
    from .processing import resample
    from .transport import LossInjector, parse_address, send_stream

    destination = parse_address(args.to)
    injector = LossInjector(args.loss_rate, args.burst, args.reorder, args.reorder_ms, args.seed)
    audio, rate = read_audio_file(args.input)
    codec, _ = open_codec(args.model, args.backend, args.threads)
    settings = codec.settings
    audio = resample(audio, rate, settings.sampling_rate)
    packet_frames = round(args.packet_ms * settings.frame_rate / 1000)
    sync_frames = sync_frames_of(args.sync_ms, args.packet_ms, settings.frame_rate)
    report = send_stream(codec, audio, destination, packet_frames, injector if injector.active else None,
                         sync_frames=sync_frames)
    print(f"sent {args.input} to {args.to}: {report.describe()}")
    return 0


def _check_receive_options(args) -> None:
    if not 0 <= args.jitter_ms <= 2000:
        raise LMCodecError(f"--jitter-ms must be from 0 to 2000 ms, got {args.jitter_ms:g}.")
    if not args.timeout > 0:
        raise LMCodecError(f"--timeout must be a positive number of seconds, got {args.timeout:g}.")


def run_receive(args) -> int:
    """Receive one stream on a UDP port through the jitter buffer, write it, report losses, bitrate and latency."""
    from .processing import write_audio
    from .transport import StreamReceiver, check_port, open_receiver_socket, receive_stream, warm_up

    check_output_path(args.output)
    port = check_port(args.port)
    _check_receive_options(args)
    where = f"{args.bind}:{port}"
    with open_receiver_socket(args.bind, port) as sock:  # bound first: a port in use fails before any loading
        codec, _ = open_codec(args.model, args.backend, args.threads)
        warm_up(codec, fine_decoding=args.fine_decoding)
        receiver = StreamReceiver(codec, args.jitter_ms / 1000, args.conceal, args.fine_decoding)
        if sys.stderr.isatty():
            print(f"lmcodec: listening on {where}", file=sys.stderr)
        receive_stream(receiver, sock, args.timeout, where=where)
    rate = receiver.decoder.backend.settings.sampling_rate
    write_audio(args.output, receiver.audio(), rate)
    print(f"{args.output}: {receiver.seconds:.2f} s at {rate} Hz; {receiver.decoder.report.describe()}, concealed "
          f"with {receiver.decoder.concealment}; {receiver.describe_control()}; {receiver.describe_rate()}; "
          f"{receiver.latency().describe()}")
    if receiver.ended_by_silence:
        print("lmcodec: warning: no end-of-stream datagram arrived, so the stream was taken as ended after its last "
              "packet received: packets lost at its very end are not counted and its length is whole packets",
              file=sys.stderr)
    return 0


def run_info(args) -> int:
    from .bitstream import HEADER_SIZE, BitstreamError, StreamFraming, StreamHeader, split_stream

    data = read_stream_file(args.input)
    header, _ = StreamHeader.from_bytes(data)
    try:
        header, packets = split_stream(data)
    except BitstreamError:  # damaged or cut: say which, and where the packets resume (the framing alone)
        packets = None
    status, _ = StreamFraming(header, data[HEADER_SIZE:]).describe_damage()
    if packets is None and status == "complete":  # e.g. a short packet that is not the last: framing ends early
        status = "damaged: the packets do not frame as the header announces"
    frames = sum(header.frames_in(packet) for packet in packets) if packets is not None else header.num_frames
    samples = header.num_samples if header.num_samples is not None else (frames or 0) * header.hop_length
    seconds = max(samples / header.model_sampling_rate, 1e-9)
    rows = [
        ("format", f"LMCodec stream, version {data[4]}, " + {
            "integer": "entropy-coded with the integer entropy model (decodes on any machine)",
            "float": "entropy-coded with the float LM (decodes only on the kind of CPU that wrote it)",
            "none": "raw codes"}[header.entropy_model]),
        ("duration", f"{seconds:.3f} s ({frames if frames is not None else 'unknown'} frames of {header.hop_length} "
                     f"samples at {header.model_sampling_rate} Hz; original file {header.original_sampling_rate} Hz)"),
        ("levels", f"{header.num_coarse_quantizers} coarse sent of {header.num_quantizers}, "
                   f"{header.codebook_size} codes each"),
        ("packets", (f"{len(packets)}" if packets is not None else "?") + f" of {header.packet_length_frames} "
                    f"frames; sync every {header.sync_period_frames} frames"),
        ("size", f"{len(data)} bytes = {len(data) * 8 / seconds / 1000:.3f} kbps"),
    ]
    if packets is not None:
        framing = len(data) - HEADER_SIZE - sum(len(packet.payload) for packet in packets)
        rows.append(("overhead", f"header {HEADER_SIZE} B, packet framing {framing} B "
                                 f"({(HEADER_SIZE + framing) * 8 / seconds / 1000:.3f} kbps)"))
    rows += [("model", header.model_fingerprint.hex()), ("status", status)]
    for name, value in rows:
        print(f"{name:<9}{value}")
    return 0


def run_roundtrip(args) -> int:
    check_output_path(args.output)
    audio, rate = read_audio_file(args.input)
    codec, weights = open_codec(args.model, args.backend, args.threads)
    _roundtrip(codec, weights, audio, rate, args, origin=args.input)
    return 0


def _roundtrip(codec, weights: str, audio, rate: int, args, origin: str) -> None:
    from .compression import decompress
    from .processing import write_audio

    seconds = len(audio) / rate
    start = time.perf_counter()
    data, report = compress_file(codec, audio, rate, args.coarse, not getattr(args, "no_entropy", False), None)
    encoded = time.perf_counter()
    decoded, decoded_rate, _ = decompress(codec, data)
    finished = time.perf_counter()
    write_audio(args.output, decoded, decoded_rate)
    settings = codec.settings
    levels = args.coarse or settings.num_coarse_quantizers
    threads = "thread" if args.threads == 1 else "threads"
    print(f"input    {origin}")
    print(f"weights  {weights}")
    print(f"duration {seconds:.2f} s, {report.frames} frames, {levels} coarse levels sent")
    print(f"bitrate  {describe_rate(data, report, seconds)}")
    print(f"         entropy LM information {report.information_bits / seconds / 1000:.3f} kbps; raw codes would be "
          f"{settings.coarse_bitrate(levels) / 1000:.2f} kbps")
    print(f"speed    real-time factor {(finished - start) / seconds:.3f} (encode {(encoded - start) / seconds:.3f}, "
          f"decode {(finished - encoded) / seconds:.3f}; {args.threads} {threads})")
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
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        source, origin = _demo_input(args.input, args.speech_dir, Path(workdir))
        audio, rate = read_audio_file(str(source))
    codec, weights = open_codec(args.model, args.backend, args.threads)
    _roundtrip(codec, weights, audio, rate, args, origin=f"{source} ({origin})")
    return 0


# ---------------------------------------------------------------------------------------------------- parser
FORWARDED = (  # subcommands whose module parses its own arguments (imported only when the subcommand runs)
    ("evaluate", "lmcodec.training.evaluation",
     "score LMCodec, its ablations, Codec2 and Opus on speech; writes a report"),
    ("compare", "lmcodec.training.compare",
     "paired differences between two evaluations (a new checkpoint against the default's)"),
    ("simulate-loss", "lmcodec.simulate_loss",
     "send a file as real-time datagram packets through simulated packet loss; write what is heard"),
    ("export-onnx", "lmcodec.onnx_export", "write a checkpoint's ONNX graphs for the runtime"),
    ("prepare-librilight", "lmcodec.training.prepare_librilight",
     "LibriLight-layout folder → Parquet shards for training"),
    ("train-codec", "lmcodec.training.train_codec", "train or fine-tune the codec with Accelerate (see --help)"),
    ("train-lm", "lmcodec.training.train_lm", "train the fine or entropy LM on a codec's codes (see --help)"),
    ("export-integer-lm", "lmcodec.training.export_integer_lm",
     "store a checkpoint's integer entropy model (portable coding)"),
    ("push-to-hub", "lmcodec.hub_cards.push",
     "upload a checkpoint, its code, graphs and a model card to the Hugging Face Hub"),
)


def _forward_to(module_name: str):
    """A handler that passes the remaining arguments to `<module_name>.main`."""

    def handler(args) -> int:
        import importlib

        module = importlib.import_module(module_name)
        try:
            return module.main(args.arguments)
        except (ValueError, FileNotFoundError) as error:
            raise LMCodecError(" ".join(str(error).split())) from None

    return handler


def _add_coding_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--model", help="checkpoint folder or Hugging Face repo id (default: the bundled trained "
                                         "checkpoint, lmcodec.DEFAULT_CHECKPOINT)")
    command.add_argument("--backend", choices=BACKENDS, default="auto",
                         help="onnx: the ONNX runtime (no torch); torch: the PyTorch model; auto (default): onnx "
                              "when the checkpoint has graphs")
    command.add_argument("--threads", type=int, default=1,
                         help="threads for every pool on the coding path: BLAS, torch, onnxruntime (default: 1)")


def _add_transport_commands(commands) -> None:
    send = commands.add_parser("send", help="send an audio file over UDP in real time (datagram mode), optionally "
                                            "through injected loss and reordering")
    send.add_argument("input", help="any audio file soundfile reads; sent as a live 16 kHz capture")
    send.add_argument("--to", required=True, metavar="HOST:PORT", help="where `lmcodec receive` listens")
    send.add_argument("--packet-ms", type=int, choices=PACKET_MILLISECONDS, default=40,
                      help="audio per datagram (default 40)")
    send.add_argument("--sync-ms", type=int, default=240, choices=SYNC_MILLISECONDS,
                      help="the entropy LM's context resets this often (default 240); after a loss, received audio "
                           "decodes again within this minus one packet; 120 or 80 ms cost a few per cent more bits")
    loss = send.add_argument_group("injected network trouble (for testing)")
    loss.add_argument("--loss-rate", type=float, default=0.0,
                      help="fraction of packets dropped, Gilbert-Elliott bursts (default 0); the description and end "
                           "datagrams are dropped at this rate too, independently")
    loss.add_argument("--burst", type=float, default=1.0, help="mean loss burst in packets (default 1)")
    loss.add_argument("--reorder", type=float, default=0.0,
                      help="fraction of packets delayed by --reorder-ms, so later ones overtake them (default 0)")
    loss.add_argument("--reorder-ms", type=float, default=50.0, help="delay of a reordered packet (default 50)")
    loss.add_argument("--seed", type=int, default=0, help="seed of the injected loss and reordering (default 0)")
    _add_coding_options(send)
    send.set_defaults(handler=run_send)

    receive = commands.add_parser("receive", help="receive one UDP datagram stream through a jitter buffer into an "
                                                  "audio file; reports losses, bitrate and latency")
    receive.add_argument("--port", required=True, help="UDP port to listen on")
    receive.add_argument("output", help="audio file to write (.wav, .flac, ...) at 16 kHz")
    receive.add_argument("--bind", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    receive.add_argument("--jitter-ms", type=float, default=80.0,
                         help="playout delay: how long a packet is awaited after its expected arrival (default 80)")
    receive.add_argument("--conceal", choices=ChoicesOf("lmcodec.datagram", "CONCEALMENTS"), metavar="KIND",
                         help="how lost packets are filled: %(choices)s (default: DatagramDecoder's)")
    receive.add_argument("--fine-decoding", choices=FINE_DECODINGS,
                         help="how to fill in the levels that were not sent (default: the checkpoint's)")
    receive.add_argument("--timeout", type=float, default=30.0,
                         help="seconds to wait for the stream to start (default 30)")
    _add_coding_options(receive)
    receive.set_defaults(handler=run_receive)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmcodec", description="LMCodec: low-bitrate speech codec.")
    parser.add_argument("--version", action="version", version=f"lmcodec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    encode = commands.add_parser("encode", help="audio file → .lmc stream")
    encode.add_argument("input", help="any audio file soundfile reads (wav, flac, ogg, mp3, aiff), any rate/channels")
    encode.add_argument("output", help="the .lmc stream to write")
    _add_coding_options(encode)
    encode.add_argument("--coarse", type=int, help="coarse levels to send (an operating point of the model)")
    encode.add_argument("--no-entropy", action="store_true", help="send raw 10-bit codes instead of range coding")
    encode.add_argument("--packet-frames", type=int, help="frames per packet (default: the model's, 1 s)")
    encode.add_argument("--format-version", type=int, choices=(2, 3), default=None,
                        help="3 (default) decodes on any machine; 2 writes the float-LM streams of earlier releases, "
                             "which decode only on the kind of CPU that wrote them (for compatibility and benchmarks)")
    encode.set_defaults(handler=run_encode)

    decode = commands.add_parser("decode", help=".lmc stream → audio file")
    decode.add_argument("input", help="the .lmc stream")
    decode.add_argument("output", help="audio file to write (.wav, .flac, ...)")
    _add_coding_options(decode)
    rate = decode.add_mutually_exclusive_group()
    rate.add_argument("--sample-rate", type=int, help="output sampling rate (default: 16000)")
    rate.add_argument("--original-rate", action="store_true", help="back to the input file's rate and length")
    decode.add_argument("--partial", action="store_true",
                        help="decode a damaged stream as far as possible: what is lost is silence, from the damage to "
                             "the next sync point where the packets resume (also after a damaged length field)")
    decode.add_argument("--fine-decoding", choices=FINE_DECODINGS,
                        help="how to fill in the levels that were not sent: coarse-only (no fine LM), or the fine "
                             "LM's expected (probability-weighted codebook vectors), greedy or sampled codes; "
                             "default: the checkpoint's config.fine_decoding")
    decode.add_argument("--sample", dest="fine_decoding", action="store_const", const="sample",
                        help="the same as --fine-decoding sample")
    decode.add_argument("--seed", type=int, help="seed for sampled fine decoding (default 0)")
    decode.set_defaults(handler=run_decode)

    info = commands.add_parser("info", help="describe an .lmc stream, and whether it is complete, damaged or "
                                            "truncated (no model needed)")
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
        _add_coding_options(command)
        command.add_argument("--coarse", type=int, help="coarse levels to send")
        command.set_defaults(handler=handler)

    _add_transport_commands(commands)

    for name, module, help_text in FORWARDED:
        forward = commands.add_parser(name, help=help_text, add_help=False)
        forward.set_defaults(handler=_forward_to(module), forwards=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "forwards", False):
        args.arguments = extra  # everything after the subcommand goes to the module's own parser
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    quiet_libraries()
    if getattr(args, "threads", 1) < 1:
        return print_error(LMCodecError("--threads must be at least 1."))
    from .threads import limit_threads

    limit_threads(getattr(args, "threads", 1))
    try:
        return args.handler(args)
    except LMCodecError as error:
        return print_error(error)
    except ModuleNotFoundError as error:  # a runtime-only installation running a command of the full package
        if error.name not in FULL_PACKAGE_DEPENDENCIES:
            raise
        return print_error(LMCodecError(f"lmcodec {args.command} needs {error.name}, which this installation "
                                        "lacks; install the full package (pip install lmcodec)."))
    except KeyboardInterrupt:
        print("lmcodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`lmcodec info x.lmc | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
