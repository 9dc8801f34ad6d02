"""What the integer entropy model costs in rate: the same codes coded by the float LM (format 2) and the integer model
(format 3), every byte counted, on real speech.

    python benchmarks/bench_integer_rate.py [--speech-dir DATA/speech] [--model DIR] [--max-files N]

DATA is the data root described in training/data_sources.md (default: data/ in the repository).

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
    parser.add_argument("--speech-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "speech"),
                        help="the speech collection (default: data/speech in the repository; see "
                             "training/data_sources.md)")
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
    results["approximations"] = approximation_costs(model, files)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


@torch.no_grad()
def approximation_costs(model, files) -> dict:
    """Cross-entropy (bits per code) of the float LM with one approximation at a time, on sync-period windows of the
    files' codes at the default operating point: what each part of the integer model costs."""
    import copy

    from lmcodec.integer_entropy_model import FREQUENCY_BITS, frequency_table
    from lmcodec.integer_export import _exp_table, float_reference, LOGIT_EXP_BITS, LOGIT_FRACTION_BITS

    num_coarse, window = model.config.num_coarse_quantizers, model.config.sync_frames
    windows = []
    for path in files:
        audio, _ = lmcodec_load(path)
        codes = model.encode(torch.from_numpy(audio)[None, None]).audio_codes[0]
        windows += [codes[:, start : start + window] for start in range(0, codes.shape[1] - window + 1, window)]
    codes = torch.stack(windows)  # [B, Nq, window]
    targets = codes.transpose(1, 2)[:, :, :num_coarse].numpy()[..., None]

    def bits(log_probs: np.ndarray) -> float:
        return float(-np.take_along_axis(log_probs, targets, -1).mean() / np.log(2))

    def float_log_probs(lm) -> np.ndarray:
        logits = float_reference(lm, model.quantizer.codebooks, codes, num_coarse)
        return torch.log_softmax(logits.double(), -1).numpy()

    reference = float_log_probs(model.entropy_lm)
    int8 = copy.deepcopy(model.entropy_lm)
    for name, parameter in int8.named_parameters():  # per-output-channel symmetric int8, as the export does
        if parameter.dim() < 2 or any(part in name for part in ("wpe", "wte", "embedding", "segment_start", "bias")):
            continue
        weight = parameter.data
        channels = weight.transpose(-1, -2) if name.endswith(("head_codes", "depth_mlp.0.weight", "depth_mlp.2.weight")) \
            else weight
        scale = channels.abs().amax(dim=-2, keepdim=True).clamp(min=1e-12) / 127
        channels.copy_(torch.round(channels / scale).clamp(-127, 127) * scale)
    table_only = np.log(frequency_table(np.round(reference * 2**LOGIT_FRACTION_BITS).astype(np.int64),
                                        _exp_table(LOGIT_FRACTION_BITS, LOGIT_EXP_BITS).astype(np.int64),
                                        FREQUENCY_BITS) / 2**FREQUENCY_BITS)
    engine = model.integer_entropy_lm.engine()
    integer = np.stack([np.log(engine.frequencies(engine.start(), row[:num_coarse].T.numpy(), num_coarse)
                               / 2**FREQUENCY_BITS) for row in codes])
    costs = {"windows": len(windows), "float_bits_per_code": bits(reference)}
    for name, log_probs in (("int8_weights_only", float_log_probs(int8)), ("frequency_table_only", table_only),
                            ("integer_model", integer)):
        costs[name] = 100 * (bits(log_probs) / costs["float_bits_per_code"] - 1)
    print(f"approximation costs on {len(windows)} windows of {window} frames, Nc={num_coarse} (cross-entropy against "
          f"the float LM's {costs['float_bits_per_code']:.4f} bits/code): int8 weights alone "
          f"{costs['int8_weights_only']:+.3f} %, 1/256-nat logits + exp table + 2^20 frequency table alone "
          f"{costs['frequency_table_only']:+.3f} %, whole integer model {costs['integer_model']:+.3f} %")
    return costs


def lmcodec_load(path):
    import lmcodec

    return lmcodec.load_audio(path)


if __name__ == "__main__":
    sys.exit(main())
