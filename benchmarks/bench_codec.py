"""Codec speed and memory: LMCodec's codec against transformers' EncodecModel on the same 30 s of real speech.

Each system runs in its own process with one torch thread; the script prints encode and decode real-time factors
(seconds of compute per second of audio; lower is faster), peak resident memory, and the ratio. LMCodec is the
bundled default checkpoint (its configuration, e.g. the 40 ms synthesis window, sets the cost); EncodecModel uses its
default 24 kHz configuration with random weights: the architecture's cost does not depend on the weights.

    python benchmarks/bench_codec.py [--speech-dir DATA/speech] [--seconds 30] [--repeats 3]

DATA is the data root described in training/data_sources.md (default: data/ in the repository); without its
librispeech-test-other folder a synthetic stand-in is used and the output says so.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def speech_clip(speech_dir: str | None, seconds: float) -> tuple[np.ndarray, str]:
    """`seconds` of real speech from librispeech-test-other (concatenated utterances), or a synthetic stand-in."""
    from lmcodec import load_audio

    folder = Path(speech_dir) / "librispeech-test-other" if speech_dir else None
    if folder is not None and folder.is_dir():
        pieces, total = [], 0
        for path in sorted(folder.glob("*.flac")):
            audio, _ = load_audio(path)
            pieces.append(audio)
            total += len(audio)
            if total >= seconds * 16000:
                break
        return np.concatenate(pieces)[: int(seconds * 16000)], f"real speech ({folder.name})"
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    voiced = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(6 * np.pi * t) ** 2)
    return (0.1 * voiced + 0.01 * rng.standard_normal(t.shape)).astype(np.float32), "synthetic (speech folder absent)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(system: str, speech_dir: str | None, seconds: float, repeats: int) -> dict:
    """Run in a child process: best-of-`repeats` encode and decode times of one system on one thread."""
    import torch

    torch.set_num_threads(1)
    audio, source = speech_clip(speech_dir, seconds)
    if system == "lmcodec":
        from lmcodec import DEFAULT_CHECKPOINT, LMCodecModel

        model = LMCodecModel.from_pretrained(DEFAULT_CHECKPOINT).eval()  # the shipped configuration and weights
        inputs = torch.from_numpy(audio).view(1, 1, -1)

        def encode():
            return model.encode(inputs).audio_codes

        def decode(codes):
            return model.decode(codes).audio_values
    else:
        import soxr
        from transformers import EncodecConfig, EncodecModel

        model = EncodecModel(EncodecConfig()).eval()
        inputs = torch.from_numpy(soxr.resample(audio, 16000, 24000)).view(1, 1, -1)

        def encode():
            return model.encode(inputs, bandwidth=1.5)

        def decode(encoded):
            return model.decode(encoded.audio_codes, encoded.audio_scales).audio_values
    codec = [model.encoder, model.decoder] if system == "lmcodec" else [model]  # the LMs play no part here
    parameters = sum(p.numel() for part in codec for p in part.parameters())
    memory_after_load = peak_rss_mb()
    encode_times, decode_times = [], []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            codes = encode()
            encode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            decode(codes)
            decode_times.append(time.perf_counter() - start)
    return {
        "system": system,
        "source": source,
        "seconds": len(audio) / 16000,
        "parameters_m": parameters / 1e6,
        "encode_rtf": min(encode_times) / (len(audio) / 16000),
        "decode_rtf": min(decode_times) / (len(audio) / 16000),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_over_load_mb": peak_rss_mb() - memory_after_load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "speech"),
                        help="the speech collection (default: data/speech in the repository; see "
                             "training/data_sources.md)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["lmcodec", "encodec"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.speech_dir, args.seconds, args.repeats)))
        return
    results = {}
    for system in ("lmcodec", "encodec"):
        command = [sys.executable, __file__, "--child", system, "--speech-dir", args.speech_dir,
                   "--seconds", str(args.seconds), "--repeats", str(args.repeats)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[system] = json.loads(output.strip().splitlines()[-1])
    print(f"audio: {results['lmcodec']['seconds']:.1f} s of {results['lmcodec']['source']}, 1 torch thread, "
          f"best of {args.repeats}")
    print(f"{'system':<28}{'params':>9}{'encode RTF':>12}{'decode RTF':>12}{'total RTF':>11}{'peak RSS':>11}"
          f"{'RSS over load':>15}")
    names = {"lmcodec": "LMCodec codec (bundled)", "encodec": "EncodecModel 24 kHz"}
    for system, row in results.items():
        total = row["encode_rtf"] + row["decode_rtf"]
        print(f"{names[system]:<28}{row['parameters_m']:>8.2f}M{row['encode_rtf']:>12.4f}{row['decode_rtf']:>12.4f}"
              f"{total:>11.4f}{row['peak_rss_mb']:>9.0f}MB{row['peak_rss_over_load_mb']:>13.0f}MB")
    lm, enc = results["lmcodec"], results["encodec"]
    speedup = (enc["encode_rtf"] + enc["decode_rtf"]) / (lm["encode_rtf"] + lm["decode_rtf"])
    print(f"LMCodec codec is {speedup:.1f}x faster per second of audio than EncodecModel (target: >= 5x)")


if __name__ == "__main__":
    main()
