"""The entropy model's cost per 20 ms frame, float LM (format 2) against integer model (format 3), in one process.

    python benchmarks/bench_entropy_step.py [--model DIR] [--speech-dir DATA/speech] [--seconds 30]

DATA is the data root described in training/data_sources.md (default: data/ in the repository).

One torch thread. Codes of real speech (default 30 s of LibriSpeech test-other) at the checkpoint's operating point;
for each model: the receiver's step for all coarse levels of a frame (model only, no range coder), the sender's
cost per frame (the integer model computes a packet's tables at once), and whole in-process packet coding and
decoding with constriction (`EntropyCoder` / `IntegerEntropyCoder`). Every job runs once per round, `--repeats`
rounds, and the ratios are taken within each round, since a machine's speed drifts with other load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench_codec import speech_clip  # a sibling: a script's own folder is on sys.path


def best(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: lmcodec.DEFAULT_CHECKPOINT)")
    parser.add_argument("--speech-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "speech"),
                        help="the speech collection (default: data/speech in the repository; see "
                             "training/data_sources.md)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5, help="rounds (every job once per round)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import lmcodec
    from lmcodec.entropy_coding import EntropyCoder, IntegerEntropyCoder, align_weights, exact_coding

    model = lmcodec.LMCodecModel.from_pretrained(args.model or lmcodec.DEFAULT_CHECKPOINT).eval()
    align_weights(model)
    config = model.config
    num_coarse = config.num_coarse_quantizers
    audio, source = speech_clip(args.speech_dir, args.seconds)
    codes = model.encode(torch.from_numpy(audio)[None, None], num_quantizers=num_coarse).audio_codes[0].T.numpy()
    segments = [codes[start : start + config.sync_frames] for start in range(0, len(codes), config.sync_frames)]
    packets = [[segment[p : p + config.packet_frames] for p in range(0, len(segment), config.packet_frames)]
               for segment in segments]
    frames = len(codes)
    engine = model.integer_entropy_lm.engine()
    lm, books = model.entropy_lm, model.quantizer.codebooks

    def float_steps():
        for segment in segments:
            state = lm.start()
            for row in segment:
                current = torch.zeros(1, config.num_quantizers, dtype=torch.long)
                conditioned = lm.step(state, current, num_coarse, books)
                for level in range(num_coarse):
                    torch.softmax(lm.level_logits(conditioned, level), dim=-1).numpy()
                    current[0, level] = int(row[level])
                    conditioned = lm.condition(conditioned, level, current[:, level], books)
                lm.finish_frame(state, current)

    def integer_steps():
        for segment in segments:
            state = engine.start()
            for row in segment:
                conditioned = engine.step(state, num_coarse)
                for level in range(num_coarse):
                    engine.level_frequencies(conditioned, level)
                    conditioned = engine.condition(conditioned, level, row[level : level + 1])
                engine.finish_frame(state, row)

    def integer_sender():
        for segment in packets:
            state = engine.start()
            for packet in segment:
                engine.frequencies(state, packet, num_coarse)

    def coding(make_coder):
        payloads = []

        def encode():
            payloads.clear()
            for segment in packets:
                coder = make_coder()
                coder.start_segment()
                payloads.append([coder.encode_frames(packet) for packet in segment])

        def decode():
            for segment, coded in zip(packets, payloads):
                coder = make_coder()
                coder.start_segment()
                for packet, payload in zip(segment, coded):
                    assert np.array_equal(coder.decode_frames(payload, len(packet)), packet)

        return encode, decode

    float_encode, float_decode = coding(lambda: EntropyCoder(lm, books, config.num_quantizers, num_coarse, 2))
    integer_encode, integer_decode = coding(lambda: IntegerEntropyCoder(engine, num_coarse))
    jobs = (("float step", float_steps), ("integer step", integer_steps), ("integer sender (batched)", integer_sender),
            ("float compress", float_encode), ("integer compress", integer_encode),
            ("float decompress", float_decode), ("integer decompress", integer_decode))
    rounds = []  # every job once per round, so each float/integer pair sees the same machine load
    with exact_coding(model):
        for _ in range(args.repeats):
            rounds.append({name: best(function, 1) / frames * 1e3 for name, function in jobs})
    print(f"{frames} frames ({frames / config.frame_rate:.0f} s of {source}), {num_coarse} coarse levels, one thread; "
          f"ms per frame, median of {args.repeats} rounds (min-max):")
    for name, _ in jobs:
        values = [round_[name] for round_ in rounds]
        print(f"  {name:26s} {np.median(values):7.3f}  ({min(values):.3f}-{max(values):.3f})")
    ratios = {pair: [round_[f"integer {pair}"] / round_[f"float {pair}"] for round_ in rounds]
              for pair in ("step", "compress", "decompress")}
    print("integer / float, median of the per-round ratios (min-max): " + "; ".join(
        f"{pair} {np.median(values):.2f} ({min(values):.2f}-{max(values):.2f})" for pair, values in ratios.items())
        + " (target for the receiver's step: <= 0.5; compress and decompress include the range coder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
