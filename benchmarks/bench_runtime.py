"""Whole-process speed and memory of the `lmcodec` command line (ONNX runtime and torch backends) against Codec2, Opus,
Lyra v2 and transformers' EncodecModel, on 3 s, 11 s and 30 s of real speech, one thread everywhere.

Every command runs as its own process, `--runs` rounds after one warm-up round (every command once per round, so a
drift in the machine's speed touches all of them alike); figures are medians with the min–max beside them. Wall time
is the parent's clock from just before the start to just after the exit; CPU time (user + system) and peak RSS (the
maximum resident set size) come from GNU time (`time -f "%M %U %S"`), a small process that forks the command, so the
parent's memory does not leak into the figure. On a shared machine the CPU column is the steadier one.

- `lmcodec encode` / `decode --backend onnx|torch --threads 1` (the installed entry point), `c2enc` / `c2dec` 1300 on
  8 kHz input (resampled beforehand with soxr, as training/reference_codecs.py does), `opusenc` / `opusdec` at 6 kbps;
- Lyra v2 (`--lyra-dir`: its three TFLite models, driven in-process through ai-edge-litert, one thread per
  interpreter: encoder, quantizer at 16 levels = 3.2 kbps, decoder, once per 20 ms frame), as a whole process, its
  coding alone as a real-time factor, and its start-to-ready time;
- start-up: `python -c "import lmcodec.runtime"`, `lmcodec --help`, `lmcodec info`, and the time from process start
  until the codec of each backend is loaded (as the command line loads it);
- in one process each, 30 s: LMCodec's codec (the ONNX encoder and decoder graphs) against EncodecModel (default
  24 kHz configuration, random weights: the cost does not depend on them), and the whole codec path
  (`compress` + `decompress`, integer entropy model included) against Lyra v2;
- oversubscription: `lmcodec encode` of 30 s with one busy process pinned to the last processor, against the same
  command with OPENBLAS_NUM_THREADS=1, run in pairs (the ratio is taken pair by pair).

    python benchmarks/bench_runtime.py [--speech-dir DATA/speech] [--lyra-dir LYRA] [--runs 3] [--out FILE.json]

DATA is the data root described in training/data_sources.md (default: data/ in the repository). Without
`--lyra-dir` (or without ai-edge-litert) Lyra v2 is skipped and the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DURATIONS = (3, 11, 30)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
LYRA_LEVELS = 16  # 16 quantizer levels of 4 bits at 50 Hz = 3.2 kbps
LYRA_MODELS = ("soundstream_encoder.tflite", "quantizer.tflite", "lyragan.tflite")


# ------------------------------------------------------------------------------------------------ child processes
# Each prints one JSON line last; "ready_at" is the wall clock (time.time()) when its codec was loaded.
READY_CHILD = """
import json, sys, time
from lmcodec.threads import limit_threads
limit_threads(1)
from lmcodec.cli import open_codec
codec, _ = open_codec(None, sys.argv[1], 1)
if hasattr(codec, "graphs"):  # the runtime creates an InferenceSession when its graph first runs: ready to encode
    codec.graphs.encoder.inference
print(json.dumps({"ready_at": time.time()}))
"""


def child_lyra(lyra_dir: str, wav: str) -> dict:
    """Lyra v2 on one file: encoder, quantizer (LYRA_LEVELS levels sent, the rest -1) and decoder per 20 ms frame."""
    import numpy as np
    import soundfile
    from ai_edge_litert.interpreter import Interpreter

    def runner(name: str, signature: str):
        return Interpreter(model_path=str(Path(lyra_dir) / name), num_threads=1).get_signature_runner(signature)

    encoder = runner("soundstream_encoder.tflite", "serving_default")
    quantize, dequantize = runner("quantizer.tflite", "encode"), runner("quantizer.tflite", "decode")
    decoder = runner("lyragan.tflite", "serving_default")
    ready_at = time.time()
    audio, _ = soundfile.read(wav, dtype="float32")
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 1, 320)
    levels = np.int32(LYRA_LEVELS)

    def code():
        for frame in frames:
            features = encoder(input_audio=frame)["output_0"]
            indices = quantize(input_frames=features, num_quantizers=levels)["output_0"]
            indices[LYRA_LEVELS:] = -1
            decoder(input_audio=dequantize(encoding_indices=indices)["output_0"])

    return {"ready_at": ready_at, "coding": timed(code), "seconds": len(frames) * 320 / 16000}


def timed(function) -> dict:
    """{"wall": s, "cpu": s} of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def timed_median(function, repeats: int) -> dict:
    """Median wall and CPU seconds of `repeats` calls after one warm-up call: {"wall": s, "cpu": s}."""
    function()
    runs = [timed(function) for _ in range(repeats)]
    return {clock: statistics.median(run[clock] for run in runs) for clock in ("wall", "cpu")}


def child_lmcodec(wav: str, repeats: int) -> dict:
    """The runtime on one file: the codec graphs alone (encode all levels, decode the coarse ones), and the whole
    path (compress, decompress)."""
    import lmcodec.runtime
    import soundfile

    codec = lmcodec.runtime.load_codec(None, threads=1)
    audio, _ = soundfile.read(wav, dtype="float32")
    coarse = codec.settings.num_coarse_quantizers
    codes = codec.encode(audio)
    data = codec.compress(audio)
    return {"seconds": len(audio) / 16000,
            "encode": timed_median(lambda: codec.encode(audio), repeats),
            "decode": timed_median(lambda: codec.decode(codes[:coarse]), repeats),
            "compress": timed_median(lambda: codec.compress(audio), repeats),
            "decompress": timed_median(lambda: codec.decompress(data), repeats)}


def child_encodec(wav: str, repeats: int) -> dict:
    """transformers' EncodecModel (default 24 kHz configuration, random weights) at 1.5 kbps on one file."""
    import soundfile
    import soxr
    import torch
    from transformers import EncodecConfig, EncodecModel

    torch.set_num_threads(1)
    audio, _ = soundfile.read(wav, dtype="float32")
    model = EncodecModel(EncodecConfig()).eval()
    inputs = torch.from_numpy(soxr.resample(audio, 16000, 24000)).view(1, 1, -1)
    with torch.inference_mode():
        encoded = model.encode(inputs, bandwidth=1.5)
        return {"seconds": len(audio) / 16000,
                "encode": timed_median(lambda: model.encode(inputs, bandwidth=1.5), repeats),
                "decode": timed_median(lambda: model.decode(encoded.audio_codes, encoded.audio_scales), repeats)}


# ------------------------------------------------------------------------------------------------ measuring
@dataclass
class Measure:
    """Every run of one measurement: wall seconds, peak RSS (MB), CPU seconds (user + system), and figures the child
    printed."""

    wall_s: list = field(default_factory=list)
    peak_mb: list = field(default_factory=list)
    cpu_s: list = field(default_factory=list)
    reported: list = field(default_factory=list)


def run_process(command: list[str], env: dict, measure: Measure | None = None) -> tuple[float, str]:
    """Run `command` under GNU time; add its wall time, peak RSS and CPU time to `measure`. → (wall s, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started_at, start = time.time(), time.perf_counter()
        result = subprocess.run([shutil.which("time"), "-f", "%M %U %S", "-o", report.name, *command], check=False,
                                env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr.strip()[-2000:]}")
        peak_kb, user, system = report.read().split()[-3:]
    if measure is not None:
        measure.wall_s.append(wall)
        measure.peak_mb.append(int(peak_kb) / 1024)
        measure.cpu_s.append(float(user) + float(system))
        line = (result.stdout.strip().splitlines() or [""])[-1]
        if line.startswith("{"):
            figures = json.loads(line)
            if "ready_at" in figures:
                figures["ready_s"] = figures.pop("ready_at") - started_at
            measure.reported.append(figures)
        elif match := re.search(r"real-time factor ([0-9.]+)", result.stdout):
            measure.reported.append({"coding_rtf": float(match.group(1))})
    return wall, result.stdout


def clean_environment(**extra: str) -> dict:
    """The environment without any thread-count variable (lmcodec's `--threads` must suffice), plus `extra`."""
    env = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    env.update(extra)
    return env


ONE_THREAD = {name: "1" for name in THREAD_VARIABLES}  # for the systems without a thread option of their own


# ------------------------------------------------------------------------------------------------ the work
def make_clips(speech_dir: Path, folder: Path) -> dict[int, dict[str, Path]]:
    """Concatenated librispeech-test-other utterances cut to each duration: 16-bit wav at 16 kHz and raw 16-bit at
    8 kHz (Codec2's input), written to `folder`."""
    import numpy as np
    import soundfile
    from lmcodec.processing import resample

    files = sorted((speech_dir / "librispeech-test-other").glob("*.flac"))
    pieces, total = [], 0
    for path in files:
        audio, rate = soundfile.read(str(path), dtype="float32")
        assert rate == 16000 and audio.ndim == 1, path
        pieces.append(audio)
        total += len(audio)
        if total >= max(DURATIONS) * 16000:
            break
    else:
        sys.exit(f"less than {max(DURATIONS)} s of speech in {speech_dir}/librispeech-test-other")
    speech = np.concatenate(pieces)
    clips = {}
    for seconds in DURATIONS:
        clip = speech[: seconds * 16000]
        wav, raw = folder / f"speech{seconds}.wav", folder / f"speech{seconds}_8k.raw"
        soundfile.write(str(wav), clip, 16000, subtype="PCM_16")
        narrowband = np.clip(resample(clip, 16000, 8000), -1, 1)
        np.round(narrowband * 32767).astype("<i2").tofile(raw)
        clips[seconds] = {"wav": wav, "raw": raw}
    return clips


def coding_commands(clips: dict, folder: Path, lyra_dir: str | None) -> dict[str, dict[int, list[str]]]:
    """{row name: {seconds: command}} of every whole-process coding measurement."""
    lmcodec = str(Path(sys.executable).with_name("lmcodec"))
    rows: dict[str, dict[int, list[str]]] = {}
    for backend in ("onnx", "torch"):
        rows[f"`lmcodec encode --backend {backend}`"] = {
            s: [lmcodec, "encode", str(c["wav"]), str(folder / f"{backend}{s}.lmc"), "--backend", backend,
                "--threads", "1"] for s, c in clips.items()}
        rows[f"`lmcodec decode --backend {backend}`"] = {
            s: [lmcodec, "decode", str(folder / f"{backend}{s}.lmc"), str(folder / f"{backend}{s}.wav"), "--backend",
                backend, "--threads", "1"] for s, c in clips.items()}
    rows["`c2enc 1300` (8 kHz input)"] = {
        s: ["c2enc", "1300", str(c["raw"]), str(folder / f"c2_{s}.bin")] for s, c in clips.items()}
    rows["`c2dec 1300`"] = {
        s: ["c2dec", "1300", str(folder / f"c2_{s}.bin"), str(folder / f"c2_{s}.raw")] for s, c in clips.items()}
    rows["`opusenc` 6 kbps"] = {
        s: ["opusenc", "--quiet", "--bitrate", "6", "--hard-cbr", "--speech", "--padding", "0", str(c["wav"]),
            str(folder / f"opus{s}.opus")] for s, c in clips.items()}
    rows["`opusdec`"] = {
        s: ["opusdec", "--quiet", "--rate", "16000", str(folder / f"opus{s}.opus"), str(folder / f"opus{s}.wav")]
        for s, c in clips.items()}
    if lyra_dir:
        rows["Lyra v2 process (encode + quantize + decode)"] = {
            s: [sys.executable, __file__, "--child", "lyra", lyra_dir, str(c["wav"])] for s, c in clips.items()}
    return rows


def startup_commands(folder: Path) -> dict[str, list[str]]:
    """{row name: command} of the start-up measurements (no audio coded)."""
    lmcodec = str(Path(sys.executable).with_name("lmcodec"))
    return {
        '`python -c "pass"` (the interpreter alone)': [sys.executable, "-c", "pass"],
        '`python -c "import lmcodec.runtime"`': [sys.executable, "-c", "import lmcodec.runtime"],
        "`lmcodec --help`": [lmcodec, "--help"],
        "`lmcodec info` (11 s stream)": [lmcodec, "info", str(folder / "onnx11.lmc")],
        "start to ready, onnx backend (codec loaded, encoder graph built)": [sys.executable, "-c", READY_CHILD,
                                                                            "onnx"],
        "start to ready, torch backend (model loaded)": [sys.executable, "-c", READY_CHILD, "torch"],
    }


def is_lmcodec(name: str) -> bool:
    return "lmcodec" in name or "backend" in name


def measure_rounds(coding: dict, startup: dict, runs: int) -> dict[str, Measure]:
    """One warm-up round, then `runs` rounds of every command once each."""
    results: dict[str, Measure] = {}
    jobs = [(f"{name} @{seconds}s", command)
            for name, by_clip in coding.items() for seconds, command in by_clip.items()]
    jobs += list(startup.items())
    for round_number in range(runs + 1):
        for key, command in jobs:
            env = clean_environment() if is_lmcodec(key) else clean_environment(**ONE_THREAD)
            run_process(command, env, results.setdefault(key, Measure()) if round_number else None)
        print(f"round {round_number}/{runs} done (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
    return results


def measure_in_process(clips: dict, repeats: int) -> dict[str, Measure]:
    """30 s in one process each: LMCodec's runtime and EncodecModel (Lyra v2's coding time comes with its rows)."""
    wav = str(clips[max(DURATIONS)]["wav"])
    results = {}
    for system in ("lmcodec", "encodec"):
        env = clean_environment() if system == "lmcodec" else clean_environment(**ONE_THREAD)
        results[system] = Measure()
        run_process([sys.executable, __file__, "--child", system, wav, str(repeats)], env, results[system])
    return results


def measure_oversubscription(clips: dict, folder: Path, runs: int) -> dict[str, Measure]:
    """30 s encode beside one busy process: plain, then with OPENBLAS_NUM_THREADS=1, in pairs."""
    lmcodec = str(Path(sys.executable).with_name("lmcodec"))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(busy.pid, {cpus[-1]})
        results = {}
        for backend in ("onnx", "torch"):
            command = [lmcodec, "encode", str(clips[max(DURATIONS)]["wav"]), str(folder / f"busy_{backend}.lmc"),
                       "--backend", backend, "--threads", "1"]
            plain, pinned = Measure(), Measure()
            run_process(command, clean_environment())  # warm-up
            for _ in range(runs):
                run_process(command, clean_environment(), plain)
                run_process(command, clean_environment(OPENBLAS_NUM_THREADS="1"), pinned)
            results[f"busy {backend}"], results[f"busy {backend} OPENBLAS_NUM_THREADS=1"] = plain, pinned
    finally:
        busy.kill()
        busy.wait()
    return results


# ------------------------------------------------------------------------------------------------ reporting
def spread(values: list[float], unit: str = " s", digits: int = 2) -> str:
    """'median (min–max)'."""
    if not values:
        return "—"
    median = statistics.median(values)
    return f"{median:.{digits}f}{unit} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(value: float, limit: float, below: bool = True) -> str:
    return "met" if (value <= limit if below else value >= limit) else "**missed**"


def derive(results: dict[str, Measure], in_process: dict[str, Measure], busy: dict[str, Measure],
           lyra: bool) -> dict:
    """The figures the targets are about; in-process real-time factors by the wall clock and by CPU time."""
    longest = max(DURATIONS)
    lm, enc = in_process["lmcodec"].reported[0], in_process["encodec"].reported[0]
    figures = {}
    for clock in ("wall", "cpu"):
        rtf = {"codec": (lm["encode"][clock] + lm["decode"][clock]) / lm["seconds"],
               "whole_path": (lm["compress"][clock] + lm["decompress"][clock]) / lm["seconds"],
               "encodec": (enc["encode"][clock] + enc["decode"][clock]) / enc["seconds"]}
        rtf["encodec_over_codec"] = rtf["encodec"] / rtf["codec"]
        rtf["encodec_over_whole_path"] = rtf["encodec"] / rtf["whole_path"]
        if lyra:
            runs = results[f"Lyra v2 process (encode + quantize + decode) @{longest}s"].reported
            rtf["lyra"] = median([r["coding"][clock] / r["seconds"] for r in runs])
            rtf["lyra_over_whole_path"] = rtf["lyra"] / rtf["whole_path"]
        figures[f"in_process_{clock}"] = rtf
    for backend in ("onnx", "torch"):
        for step in ("encode", "decode"):
            runs = results[f"`lmcodec {step} --backend {backend}` @{longest}s"]
            figures[f"{backend}_{step}_rtf_whole_process"] = median(runs.wall_s) / longest
            figures[f"{backend}_{step}_rtf_coding"] = median([r["coding_rtf"] for r in runs.reported])
        plain, pinned = busy[f"busy {backend}"], busy[f"busy {backend} OPENBLAS_NUM_THREADS=1"]
        figures[f"{backend}_busy_wall_ratios"] = [a / b for a, b in zip(plain.wall_s, pinned.wall_s)]
        figures[f"{backend}_busy_cpu_ratios"] = [a / b for a, b in zip(plain.cpu_s, pinned.cpu_s)]
    return figures


def table(results: dict[str, Measure], in_process: dict[str, Measure], busy: dict[str, Measure], coding: dict,
          startup: dict, figures: dict) -> str:
    """The Markdown table: whole processes on each clip, start-up, in-process real-time factors, oversubscription."""
    longest = max(DURATIONS)
    lines = ["| measurement (one thread) | " + " | ".join(f"{s} s of speech" for s in DURATIONS)
             + f" | RTF at {longest} s: whole process (coding alone) | CPU at {longest} s | peak RSS at {longest} s "
               "| target |",
             "|---" * (len(DURATIONS) + 5) + "|"]
    blank = " | ".join("" for _ in DURATIONS[1:])
    for name in coding:
        runs = [results[f"{name} @{s}s"] for s in DURATIONS]
        last = runs[-1]
        rtf = f"{median(last.wall_s) / longest:.3f}"
        coding_rtf = [r["coding_rtf"] if "coding_rtf" in r else r["coding"]["wall"] / r["seconds"]
                      for r in last.reported]
        if coding_rtf:
            rtf += f" ({median(coding_rtf):.3f})"
        target = ""
        if name in ("`lmcodec encode --backend onnx`", "`lmcodec decode --backend onnx`"):
            target = (f"11 s ≤ 1.0 s: {verdict(median(results[f'{name} @11s'].wall_s), 1.0)}; RTF ≤ 0.06: "
                      f"{verdict(median(last.wall_s) / longest, 0.06)}")
            if "decode" in name:
                target += f"; RSS ≤ 200 MB: {verdict(median(last.peak_mb), 200)}"
        lines.append(f"| {name} | " + " | ".join(spread(r.wall_s) for r in runs)
                     + f" | {rtf} | {median(last.cpu_s):.2f} s | {median(last.peak_mb):.0f} MB | {target} |")
    lyra_key = f"Lyra v2 process (encode + quantize + decode) @{DURATIONS[0]}s"
    ready_rows = [(name, results[name], f"{median(results[name].cpu_s):.2f} s") for name in startup]
    if lyra_key in results:  # from the Lyra processes of the shortest clip (their CPU time includes the coding)
        ready_rows.append(("start to ready, Lyra v2 (three interpreters loaded)", results[lyra_key], ""))
    for name, measure, cpu in ready_rows:
        value = spread([r["ready_s"] for r in measure.reported] if measure.reported else measure.wall_s)
        target = f"≤ 0.3 s: {verdict(median(measure.wall_s), 0.3)}" if "import lmcodec.runtime" in name else ""
        lines.append(f"| {name} | {value} | {blank} | | {cpu} | {median(measure.peak_mb):.0f} MB | {target} |")
    wall, cpu = figures["in_process_wall"], figures["in_process_cpu"]
    lm, enc = in_process["lmcodec"], in_process["encodec"]
    encodec_target = (f"≥ 10× LMCodec's codec: {wall['encodec_over_codec']:.1f}× (CPU "
                      f"{cpu['encodec_over_codec']:.1f}×), {verdict(wall['encodec_over_codec'], 10, below=False)}; "
                      f"the whole path {wall['encodec_over_whole_path']:.1f}×")
    rows = [("LMCodec codec in one process: ONNX encoder + decoder graphs", "codec", lm, ""),
            ("EncodecModel 24 kHz in one process (encode + decode, 1.5 kbps)", "encodec", enc, encodec_target),
            ("LMCodec whole path in one process: `compress` + `decompress`", "whole_path", lm, "")]
    if "lyra" in wall:
        lyra_target = (f"LMCodec's whole path no slower: {wall['lyra_over_whole_path']:.2f}× Lyra's speed (CPU "
                       f"{cpu['lyra_over_whole_path']:.2f}×), "
                       f"{verdict(wall['lyra_over_whole_path'], 1.0, below=False)}")
        rows.append(("Lyra v2 in one process (encode + quantize + decode, 3.2 kbps)", "lyra",
                     results[f"Lyra v2 process (encode + quantize + decode) @{longest}s"], lyra_target))
    for name, key, measure, target in rows:
        lines.append(f"| {name} | {blank} | | {wall[key]:.4f} | RTF {cpu[key]:.4f} | {median(measure.peak_mb):.0f} MB "
                     f"| {target} |")
    for backend in ("onnx", "torch"):
        plain, pinned = busy[f"busy {backend}"], busy[f"busy {backend} OPENBLAS_NUM_THREADS=1"]
        ratios, cpu_ratios = figures[f"{backend}_busy_wall_ratios"], figures[f"{backend}_busy_cpu_ratios"]
        lines.append(f"| `lmcodec encode --backend {backend}` beside a busy process: plain / OPENBLAS_NUM_THREADS=1 "
                     f"| {blank} | {spread(plain.wall_s)} / {spread(pinned.wall_s)} | ratio {median(ratios):.2f} "
                     f"({min(ratios):.2f}–{max(ratios):.2f}) | {median(plain.cpu_s):.2f} / "
                     f"{median(pinned.cpu_s):.2f} s, ratio {median(cpu_ratios):.2f} | {median(plain.peak_mb):.0f} MB "
                     f"| within 10 %: {verdict(abs(median(ratios) - 1), 0.10)} |")
    return "\n".join(lines)


def conditions(load_at_start: tuple, runs: int) -> dict:
    """CPU, processors, load, versions."""
    import numpy
    import onnxruntime

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    return {"cpu": model, "avx512": " avx512f" in flags, "processors": os.cpu_count(),
            "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "runs": runs,
            "python": sys.version.split()[0], "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech-dir", default=str(REPO / "data" / "speech"),
                        help="the speech collection (default: data/speech; see training/data_sources.md)")
    parser.add_argument("--lyra-dir", help="folder with Lyra v2's three .tflite models (skipped without it)")
    parser.add_argument("--runs", type=int, default=3, help="measured rounds after the warm-up (>= 3)")
    parser.add_argument("--out", help="write every figure to this JSON file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 3 and not args.child:
        parser.error("--runs must be at least 3 (medians of fewer runs say little)")
    if args.child:
        kind, *rest = args.child
        functions = {"lyra": child_lyra, "lmcodec": lambda wav, n: child_lmcodec(wav, int(n)),
                     "encodec": lambda wav, n: child_encodec(wav, int(n))}
        print(json.dumps(functions[kind](*rest)))
        return
    if shutil.which("time") is None:
        sys.exit("GNU time is needed for peak memory: apt-get install time")
    missing = [tool for tool in ("c2enc", "c2dec", "opusenc", "opusdec") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{', '.join(missing)} not found: apt-get install codec2 opus-tools")
    lyra_dir = args.lyra_dir
    if not lyra_dir or not all((Path(lyra_dir) / name).is_file() for name in LYRA_MODELS):
        print(f"Lyra v2 skipped: pass --lyra-dir, a folder with {', '.join(LYRA_MODELS)}", file=sys.stderr)
        lyra_dir = None
    else:
        try:
            import ai_edge_litert  # noqa: F401
        except ImportError:
            print("Lyra v2 skipped: pip install ai-edge-litert", file=sys.stderr)
            lyra_dir = None
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as workdir:
        folder = Path(workdir)
        clips = make_clips(Path(args.speech_dir), folder)
        coding, startup = coding_commands(clips, folder, lyra_dir), startup_commands(folder)
        results = measure_rounds(coding, startup, args.runs)
        in_process = measure_in_process(clips, args.runs)
        busy = measure_oversubscription(clips, folder, args.runs)
    figures = derive(results, in_process, busy, lyra_dir is not None)
    facts = conditions(load_at_start, args.runs)
    print(table(results, in_process, busy, coding, startup, figures))
    print()
    print(f"- CPU: {facts['cpu']} ({facts['processors']} processors, AVX-512: {'yes' if facts['avx512'] else 'no'})")
    print(f"- load average at start: {' / '.join(f'{v:.2f}' for v in load_at_start)} (1 / 5 / 15 min); at end: "
          f"{' / '.join(f'{v:.2f}' for v in facts['load_average_at_end'])}")
    print(f"- {args.runs} measured rounds after one warm-up round; medians (min–max); {facts['date_utc']} UTC; "
          f"Python {facts['python']}, numpy {facts['numpy']}, onnxruntime {facts['onnxruntime']}")
    if lyra_dir is None:
        print("- Lyra v2 skipped (no --lyra-dir or no ai-edge-litert)")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "conditions": facts, "figures": figures,
            "processes": {name: asdict(measure) for name, measure in results.items()},
            "in_process": {name: asdict(measure) for name, measure in in_process.items()},
            "oversubscription": {name: asdict(measure) for name, measure in busy.items()}}, indent=1))


if __name__ == "__main__":
    main()
