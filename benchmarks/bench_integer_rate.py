"""What the integer entropy model costs in rate: the same codes coded by the float LM (format 2) and the integer model
(format 3), every byte counted, on real speech.

    python benchmarks/bench_integer_rate.py --speech-dir ../shared/data/speech [--model DIR] [--max-files N]

For each file of librispeech-test-other and each operating point, the codec's coarse codes are computed once and
written as a raw stream, a version-2 stream and a version-3 stream (`lmcodec.compression.compress_codes`); the
script prints bits per second of each (whole-stream bytes × 8 / duration), the two models' cross-entropies and the
approximations' share of the difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech-dir", default="../shared/data/speech")
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundled one)")
    parser.add_argument("--max-files", type=int, default=0, help="0: all 50")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import lmcodec
    from lmcodec.compression import compress_codes

    folder = Path(args.speech_dir) / "librispeech-test-other"
    files = sorted(folder.glob("*.flac"))[: args.max_files or None]
    if not files:
        print(f"no speech in {folder}", file=sys.stderr)
        return 2
    model = lmcodec.LMCodecModel.from_pretrained(args.model or lmcodec.DEFAULT_CHECKPOINT).eval()
    results = {}
    for num_coarse in model.config.operating_points:
        totals = {"seconds": 0.0, "raw": 0, "float": 0, "integer": 0, "float_info": 0.0, "integer_info": 0.0,
                  "float_time": 0.0, "integer_time": 0.0}
        for path in files:
            audio, rate = lmcodec.load_audio(path)
            codes = model.encode(torch.from_numpy(audio)[None, None], num_quantizers=num_coarse).audio_codes[0]
            totals["seconds"] += len(audio) / rate
            totals["raw"] += len(compress_codes(model, codes, len(audio), entropy_coding=False))
            for kind, version in (("float", 2), ("integer", 3)):
                started = time.perf_counter()
                data, report = compress_codes(model, codes, len(audio), format_version=version, return_report=True)
                totals[f"{kind}_time"] += time.perf_counter() - started
                totals[kind] += len(data)
                totals[f"{kind}_info"] += report.information_bits
        seconds = totals["seconds"]
        row = {
            "files": len(files), "seconds": round(seconds, 2),
            "raw_bps": totals["raw"] * 8 / seconds,
            "float_v2_bps": totals["float"] * 8 / seconds,
            "integer_v3_bps": totals["integer"] * 8 / seconds,
            "float_cross_entropy_bps": totals["float_info"] / seconds,
            "integer_cross_entropy_bps": totals["integer_info"] / seconds,
            "float_coding_ms_per_frame": 1e3 * totals["float_time"] / (seconds * 50),
            "integer_coding_ms_per_frame": 1e3 * totals["integer_time"] / (seconds * 50),
        }
        row["integer_vs_float_percent"] = 100 * (row["integer_v3_bps"] / row["float_v2_bps"] - 1)
        row["saving_vs_raw_percent"] = 100 * (1 - row["integer_v3_bps"] / row["raw_bps"])
        results[f"Nc={num_coarse}"] = row
        print(f"Nc={num_coarse}: {len(files)} files, {seconds:.1f} s | all bytes: raw {row['raw_bps']:.1f} bit/s, "
              f"float (v2) {row['float_v2_bps']:.1f}, integer (v3) {row['integer_v3_bps']:.1f} "
              f"({row['integer_vs_float_percent']:+.2f} %; {row['saving_vs_raw_percent']:.1f} % below raw) | "
              f"cross-entropy: float {row['float_cross_entropy_bps']:.1f}, integer "
              f"{row['integer_cross_entropy_bps']:.1f} bit/s | coding ms/frame (sender, in-process): float "
              f"{row['float_coding_ms_per_frame']:.2f}, integer {row['integer_coding_ms_per_frame']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
