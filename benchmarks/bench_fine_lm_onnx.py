"""The fine LM as an ONNX step graph (lmcodec.runtime.fine_lm) against torch's FineCodeGenerator, on one thread.

Codes of real speech: the first LibriSpeech test-other recordings, concatenated to at least `--seconds` of audio,
encoded by the bundled default with 3 levels (the first Nc levels feed each operating point). Per operating point:
time of one `push_latent` over all frames (median of `--repeats`, both in this process, alternating), wall clock
as RTF and ms per frame and this process's CPU time per frame (steadier on a shared machine); greedy code agreement ONNX vs torch (all fine codes, and frames whose fine codes all agree); the largest
|difference| of the "expected" latent.

    .venv/bin/python benchmarks/bench_fine_lm_onnx.py [--speech-dir data/speech] [--out results.json]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

import lmcodec
from lmcodec.onnx_fine_lm import export_fine_lm_onnx
from lmcodec.runtime.fine_lm import OnnxFineCodeGenerator, OnnxFineLM


def speech_codes(model, folder: Path, seconds: float) -> tuple[torch.Tensor, float, list[str]]:
    pieces, total, names = [], 0.0, []
    for path in sorted(folder.glob("*.flac")):
        audio, rate = soundfile.read(path, dtype="float32")
        if rate != model.config.sampling_rate:
            raise SystemExit(f"{path} is {rate} Hz; expected {model.config.sampling_rate}")
        pieces.append(audio)
        names.append(path.name)
        total += len(audio) / rate
        if total >= seconds:
            break
    audio = np.concatenate(pieces)
    codes = model.encode(torch.from_numpy(audio)[None, None], num_quantizers=3).audio_codes
    return codes, len(audio) / model.config.sampling_rate, names


def timed(function) -> tuple[float, float, object]:
    """(wall seconds, this process's CPU seconds, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    checkpoint = Path(lmcodec.DEFAULT_CHECKPOINT)
    model = lmcodec.LMCodecModel.from_pretrained(checkpoint).float().eval()
    codes, duration, names = speech_codes(model, Path(args.speech_dir) / "librispeech-test-other", args.seconds)
    frames = codes.shape[-1]
    report = {"load_average_at_start": os.getloadavg()[0], "audio_seconds": round(duration, 3), "frames": frames,
              "files": names, "threads": 1,
              "repeats": args.repeats, "sync_frames": model.config.sync_frames, "torch": torch.__version__,
              "onnxruntime": __import__("onnxruntime").__version__, "operating_points": {}}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        export_fine_lm_onnx(model, folder)
        report["export_seconds"] = round(time.perf_counter() - start, 1)
        for nc in model.config.operating_points:
            coarse = codes[:, :nc]
            start = time.perf_counter()
            lm = OnnxFineLM.from_directory(folder, nc, weights_path=checkpoint / "model.safetensors", threads=1)
            session_seconds = time.perf_counter() - start
            row = {"session_seconds": round(session_seconds, 3)}
            for mode in ("greedy", "expected", "sample"):
                expected, sampled = mode == "expected", mode == "sample"
                times = {"torch": [], "onnx": []}
                for _ in range(args.repeats):  # alternating, so both see the same machine state
                    *seconds, (torch_codes, torch_latent) = timed(lambda: model.fine_code_generator(
                        nc, expected=expected, do_sample=sampled, seed=0).push_latent(coarse))
                    times["torch"].append(seconds)
                    *seconds, (onnx_codes, onnx_latent) = timed(lambda: OnnxFineCodeGenerator(
                        lm, mode=mode, seed=0).push_latent(coarse[0].numpy()))
                    times["onnx"].append(seconds)
                entry = {}
                for side, pairs in times.items():
                    wall = statistics.median(pair[0] for pair in pairs)
                    cpu = statistics.median(pair[1] for pair in pairs)
                    entry[f"{side}_rtf"] = round(wall / duration, 4)
                    entry[f"{side}_ms_per_frame"] = round(1000 * wall / frames, 3)
                    entry[f"{side}_cpu_ms_per_frame"] = round(1000 * cpu / frames, 3)
                entry["speedup_wall"] = round(entry["torch_rtf"] / entry["onnx_rtf"], 2)
                entry["speedup_cpu"] = round(entry["torch_cpu_ms_per_frame"] / entry["onnx_cpu_ms_per_frame"], 2)
                if not sampled:  # sampled codes come from different random generators: no agreement expected
                    agree = torch_codes[0, nc:].numpy() == onnx_codes[nc:]
                    entry["code_agreement"] = round(float(agree.mean()), 5)
                    entry["frame_agreement"] = round(float(agree.all(axis=0).mean()), 5)
                    entry["first_disagreeing_frame"] = None if agree.all() else int(np.argmin(agree.all(axis=0)))
                    entry["max_abs_latent_difference"] = float(np.abs(onnx_latent - torch_latent[0].numpy()).max())
                row[mode] = entry
                print(f"Nc={nc} {mode:8s} ms/frame wall (cpu): torch {entry['torch_ms_per_frame']:.3f} "
                      f"({entry['torch_cpu_ms_per_frame']:.3f})  onnx {entry['onnx_ms_per_frame']:.3f} "
                      f"({entry['onnx_cpu_ms_per_frame']:.3f})  RTF torch {entry['torch_rtf']:.4f} onnx "
                      f"{entry['onnx_rtf']:.4f}" + ("" if sampled else f"  agreement {entry['code_agreement']:.4f}"
                                                   f"  max|dlatent| {entry['max_abs_latent_difference']:.2e}"),
                      flush=True)
            report["operating_points"][str(nc)] = row
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
