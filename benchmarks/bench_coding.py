"""Bitstream benchmark: whole-process `lmcodec encode` / `lmcodec decode` speed and memory, and where the bits go.

Prints, for one checkpoint (default: the bundled trained checkpoint, or --model DIR):
- real-time factors of whole processes (start-up and model load included) on 30 s of real speech, format 3 (integer
  entropy model) against format 2 (float LM), and what process start-up costs;
- peak resident memory of encode and decode for a 10-minute input;
- bits per second with and without entropy coding, the entropy LM's cross-entropy against the coded rate, and the
  framing overhead;
- total kbps against packet length (0.1, 0.5, 1 and 2 s).

    python benchmarks/bench_coding.py [--model DIR] [--speech-dir DATA/speech] [--long-minutes 10]

DATA is the data root described in training/data_sources.md (default: data/ in the repository).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench_codec import speech_clip  # a sibling: a script's own folder is on sys.path

MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, code)\n"
)


def run_measured(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one command, each in a fresh measuring process."""
    output = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True)
    seconds, peak, code = output.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"command failed: {' '.join(command)}")
    return float(seconds), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: lmcodec.DEFAULT_CHECKPOINT)")
    parser.add_argument("--speech-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "speech"),
                        help="the speech collection (default: data/speech in the repository; see "
                             "training/data_sources.md)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs per format (median reported)")
    args = parser.parse_args()

    import torch

    import lmcodec
    from lmcodec import bitstream
    from lmcodec.loading import describe_source, load_model

    lmcodec_cli = str(Path(sys.executable).parent / "lmcodec")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model, weights = load_model(args.model), describe_source(args.model)
        checkpoint = args.model or lmcodec.DEFAULT_CHECKPOINT
        audio, source = speech_clip(args.speech_dir, args.seconds)
        sf.write(work / "speech.wav", audio, 16000, subtype="FLOAT")
        seconds = len(audio) / 16000
        print(f"model: {weights}; audio: {seconds:.0f} s of {source}; operating point "
              f"{model.config.num_coarse_quantizers} coarse levels; 2-core machine")

        # Format 3 (integer entropy model) against format 2 (the float LM of earlier releases), alternately, so
        # both see the same machine load; medians of --repeats runs.
        runs = {(step, version): [] for step in ("encode", "decode") for version in (3, 2)}
        for _ in range(args.repeats):
            for version in (3, 2):
                stream = str(work / f"s{version}.lmc")
                runs["encode", version].append(run_measured(
                    [lmcodec_cli, "encode", str(work / "speech.wav"), stream, "--model", checkpoint,
                     "--format-version", str(version)])[0])
                runs["decode", version].append(run_measured(
                    [lmcodec_cli, "decode", stream, str(work / "d.wav"), "--model", checkpoint])[0])
        median = {key: float(np.median(values)) for key, values in runs.items()}
        encode_time, decode_time = median["encode", 3], median["decode", 3]
        print(f"whole-process real-time factor ({seconds:.0f} s, start-up and model load included; median of "
              f"{args.repeats}): format 3 encode {encode_time / seconds:.3f}, decode {decode_time / seconds:.3f}; "
              f"format 2 encode {median['encode', 2] / seconds:.3f}, decode {median['decode', 2] / seconds:.3f}; "
              f"format 3 / format 2: encode {encode_time / median['encode', 2]:.2f}, decode "
              f"{decode_time / median['decode', 2]:.2f} (target <= 0.6 each)")
        start_up = {name: float(np.median([run_measured([sys.executable, "-c", code])[0] for _ in range(3)]))
                    for name, code in (("python", "pass"), ("import torch", "import torch"),
                                       ("import transformers' PreTrainedModel",
                                        "from transformers import PreTrainedModel"),
                                       ("import lmcodec", "import lmcodec"))}
        print("process start-up, median of 3 (s): " + ", ".join(f"{k} {v:.2f}" for k, v in start_up.items()))

        long_audio = np.tile(audio, int(np.ceil(args.long_minutes * 60 / seconds)))[: int(args.long_minutes * 960000)]
        sf.write(work / "long.wav", long_audio, 16000, subtype="FLOAT")
        long_encode, encode_peak = run_measured([lmcodec_cli, "encode", str(work / "long.wav"), str(work / "l.lmc"),
                                                 "--model", checkpoint])
        long_decode, decode_peak = run_measured([lmcodec_cli, "decode", str(work / "l.lmc"), str(work / "ld.wav"),
                                                 "--model", checkpoint])
        minutes = len(long_audio) / 16000 / 60
        print(f"{minutes:.0f}-minute input: peak RSS encode {encode_peak:.0f} MB, decode {decode_peak:.0f} MB "
              f"(target < 1500 MB); real-time factors {long_encode / (minutes * 60):.3f} / "
              f"{long_decode / (minutes * 60):.3f}")

        torch.set_num_threads(1)
        data, report = model.compress(audio, return_report=True)
        raw, raw_report = model.compress(audio, entropy_coding=False, return_report=True)
        coded = len(data) * 8 / seconds
        print(f"bits per second, all bytes: entropy-coded {coded:.0f}, raw codes {len(raw) * 8 / seconds:.0f} "
              f"(saving {100 * (1 - len(data) / len(raw)):.1f} %)")
        payload = report.payload_bytes * 8 / seconds
        information = report.information_bits / seconds
        print(f"entropy LM cross-entropy {information:.0f} bit/s; coded payload {payload:.0f} bit/s "
              f"({100 * (payload / information - 1):+.2f} %); header + framing "
              f"{(report.header_bytes + report.framing_bytes) * 8 / seconds:.0f} bit/s")
        rows = []
        for packet_seconds in (0.1, 0.5, 1.0, 2.0):
            frames = round(packet_seconds * model.config.frame_rate)
            if model.config.sync_frames % frames:
                continue
            stream, stream_report = model.compress(audio, packet_frames=frames, return_report=True)
            packets = len(bitstream.split_stream(stream)[1])
            termination = (stream_report.payload_bytes * 8 - stream_report.information_bits) / packets
            rows.append((packet_seconds, len(stream) * 8 / seconds / 1000,
                         stream_report.framing_bytes * 8 / seconds / 1000, termination))
        print("packet length → total kbps (framing kbps; payload bits beyond the cross-entropy per packet, i.e. the "
              "range coder's flush): " + ", ".join(
                  f"{p:.1f} s → {kbps:.3f} ({framing:.3f}; {flush:.1f} bit)" for p, kbps, framing, flush in rows))
        print(json.dumps({"encode_rtf": encode_time / seconds, "decode_rtf": decode_time / seconds,
                          "encode_rtf_v2": median["encode", 2] / seconds, "decode_rtf_v2": median["decode", 2] / seconds,
                          "start_up_seconds": start_up,
                          "encode_peak_mb": encode_peak, "decode_peak_mb": decode_peak, "coded_bps": coded,
                          "raw_bps": len(raw) * 8 / seconds, "information_bps": information}))


if __name__ == "__main__":
    main()
