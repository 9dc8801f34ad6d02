"""The exported ONNX step graphs against the torch model, on the bundled default checkpoint and real speech.

Prints (one torch thread, one onnxruntime thread):
- real-time factors (compute seconds per audio second, medians of `--repeats` interleaved runs on the same 30 s) of
  the encoder (block loop, all levels) and the decoder (one call for the whole clip, and frame by frame);
- the start-up time and peak resident memory of a process that only imports `lmcodec.runtime.graphs`, loads the
  graphs and decodes the clip (torch never imported), next to a process doing the same with torch;
- how often the ONNX encoder's codes equal torch's on every librispeech-test-other file (frames whose 12 levels all
  agree, and whose first 3 agree), and the largest audio difference of the two decoders from the same codes.

    python benchmarks/bench_onnx.py [--speech-dir DATA/speech] [--checkpoint DIR] [--seconds 30]

DATA is the data root described in training/data_sources.md (default: data/ in the repository).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]

PEAK_RSS = '''
def peak_rss_mb():  # VmHWM: ru_maxrss would report the forking parent's peak after fork + exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
'''

# A process that touches only the runtime (torch is never imported).
RUNTIME_CHILD = PEAK_RSS + """
import sys, time
start = time.perf_counter()
checkpoint, codes_path, mode = sys.argv[1:4]
import numpy as np
from lmcodec.runtime.graphs import load_graphs
imported = time.perf_counter()
graphs = load_graphs(checkpoint, threads=1)
loaded = time.perf_counter()
codes = np.load(codes_path)
latent = graphs.latent(codes)
if mode == "whole":
    audio = graphs.decoder.decode(latent)
else:
    state = graphs.decoder.initial_states()
    for frame in range(latent.shape[0]):
        _, state = graphs.decoder.run(latent[frame : frame + 1], state)
assert "torch" not in sys.modules
print({"import_s": imported - start, "load_s": loaded - imported, "decode_s": time.perf_counter() - loaded,
       "peak_rss_mb": peak_rss_mb()})
"""

TORCH_CHILD = PEAK_RSS + """
import sys, time
start = time.perf_counter()
checkpoint, codes_path, mode = sys.argv[1:4]
import numpy as np, torch
torch.set_num_threads(1)
from lmcodec import LMCodecModel
imported = time.perf_counter()
model = LMCodecModel.from_pretrained(checkpoint, dtype=torch.float32).eval()
loaded = time.perf_counter()
codes = torch.from_numpy(np.load(codes_path))
with torch.no_grad():
    if mode == "whole":
        model.decode(codes[None])
    else:
        decoder = model.streaming_decoder()
        for frame in range(codes.shape[1]):
            decoder.push(codes[:, frame : frame + 1])
print({"import_s": imported - start, "load_s": loaded - imported, "decode_s": time.perf_counter() - loaded,
       "peak_rss_mb": peak_rss_mb()})
"""


def read(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert rate == 16000, (path, rate)
    return audio.mean(axis=1)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def child(script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    return eval(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech-dir", default=str(REPO / "data" / "speech"))
    parser.add_argument("--checkpoint", default=str(REPO / "modeling_lmcodec" / "default_checkpoint"))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from lmcodec import LMCodecModel
    from lmcodec.runtime.graphs import load_graphs

    files = sorted((Path(args.speech_dir) / "librispeech-test-other").glob("*.flac"))
    if not files:
        sys.exit(f"no .flac files in {args.speech_dir}/librispeech-test-other")
    model = LMCodecModel.from_pretrained(args.checkpoint, dtype=torch.float32).eval()
    graphs = load_graphs(args.checkpoint, threads=1)

    clip = np.concatenate([read(path) for path in files[:10]])[: int(args.seconds * 16000)]
    seconds = len(clip) / 16000
    assert seconds >= args.seconds - 1e-6, "not enough speech"
    codes = model.encode(torch.from_numpy(clip)[None, None]).audio_codes  # [1, 12, F]
    latent = graphs.latent(codes[0].numpy())

    def onnx_steps(frames: int):
        state = graphs.decoder.initial_states()
        for start in range(0, latent.shape[0], frames):
            _, state = graphs.decoder.run(latent[start : start + frames], state)

    def torch_steps():
        decoder = model.streaming_decoder()
        for frame in range(codes.shape[-1]):
            decoder.push(codes[0, :, frame : frame + 1])

    runs = {
        "encode torch (block loop, 12 levels)": lambda: model.encode(torch.from_numpy(clip)[None, None]),
        "encode onnx (block loop, 12 levels)": lambda: graphs.encoder.encode(clip),
        "decode torch, whole clip": lambda: model.decode(codes),
        "decode onnx, whole clip (f = F)": lambda: graphs.decoder.decode(latent),
        "decode torch, frame by frame": torch_steps,
        "decode onnx, frame by frame (f = 1)": lambda: onnx_steps(1),
        "decode onnx, f = 2": lambda: onnx_steps(2),
        "decode onnx, f = 50": lambda: onnx_steps(50),
    }
    times = {name: [] for name in runs}
    with torch.no_grad():
        for name, run in runs.items():  # warm-up
            run()
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append(timed(run))
    print(f"Real-time factors on {seconds:.0f} s of librispeech-test-other, 1 thread, median of {args.repeats} "
          "interleaved runs:")
    for name, values in times.items():
        print(f"  {name:40s} RTF {statistics.median(values) / seconds:.4f}  "
              f"(runs: {', '.join(f'{v:.3f}' for v in values)} s)")

    with tempfile.TemporaryDirectory() as folder:
        codes_path = Path(folder) / "codes.npy"
        np.save(codes_path, codes[0].numpy())
        print("One process that loads and decodes the clip (peak RSS, start-up), 3 runs each:")
        for label, script, extra in (("runtime only (no torch)", RUNTIME_CHILD, [args.checkpoint]),
                                     ("torch model", TORCH_CHILD, [args.checkpoint])):
            for mode in ("whole", "frames"):
                results = [child(script, *extra, str(codes_path), mode) for _ in range(3)]
                median = {key: statistics.median(r[key] for r in results) for key in results[0]}
                print(f"  {label:24s} {mode:6s} import {median['import_s']:.3f} s, load {median['load_s']:.3f} s, "
                      f"decode {median['decode_s']:.2f} s, peak RSS {median['peak_rss_mb']:.0f} MB")

    all_levels = first_three = frames = 0
    differences, level_agreement = [], np.zeros(codes.shape[1])
    with torch.no_grad():
        for path in files:
            audio = read(path)
            expected = model.encode(torch.from_numpy(audio)[None, None]).audio_codes[0]
            got = graphs.encoder.encode(audio)
            equal = got == expected.numpy()
            all_levels += int(equal.all(axis=0).sum())
            first_three += int(equal[:3].all(axis=0).sum())
            level_agreement += equal.sum(axis=1)
            frames += equal.shape[1]
            reference = model.decode(expected[None]).audio_values[0, 0].numpy()
            differences.append(float(np.abs(graphs.decoder.decode(graphs.latent(expected.numpy())) - reference).max()))
    print(f"Codes on all {len(files)} test-other files ({frames} frames): ONNX equals torch on all 12 levels in "
          f"{all_levels / frames:.5f} of frames, on the first 3 in {first_three / frames:.5f}")
    print("  per level:", json.dumps([round(v, 5) for v in (level_agreement / frames).tolist()]))
    print(f"Decoder from the same codes: max |ONNX - torch| {max(differences):.2e} "
          f"(median over files {statistics.median(differences):.2e})")


if __name__ == "__main__":
    main()
