"""Rate of real-time packet designs: every byte of every packet, on real speech, at 20, 40 and 60 ms packets.

For each design the script codes the coarse codes of every file of librispeech-test-other with the checkpoint's
integer entropy model and counts every byte of every packet (the stream description or file header goes out of band
and is counted separately). Designs:

- `file`: today's file mode (1 s packets, context over 6 s): the reference, with and without its 41-byte header;
- `container`: the version-3 container cut into P-frame packets (varint length + CRC-16 per packet), with the
  context running over 6 s (damage lasts up to 6 s) or reset every R frames;
- `datagram`: datagram mode (format version 4) with the options it offers: sequence modulus, check bits, start mix;
  `datagram, no fields` codes the same packets without the sequence field (measurement only), so the cost of the
  in-packet fields is measured exactly as the difference.

- `resets`: datagram mode at 40 ms with shorter context resets for lossy links (80 and 120 ms: after a loss at most
  one or two packets cannot be decoded), the sequence field wrapping after R / P packets or after 240 ms (6 packets,
  the UDP transport's jitter window).

    python benchmarks/bench_datagram.py --speech-dir DATA/speech [--files N] [--designs all|resets] [--json results.json]

DATA is the data root described in training/data_sources.md. Runs on the ONNX runtime, one thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def speech_codes(codec, folder: Path, files: int | None, num_coarse: int) -> list[tuple[np.ndarray, int]]:
    """(coarse codes [Nc, F], samples) of each file."""
    from lmcodec import load_audio

    out = []
    for path in sorted(folder.glob("*.flac"))[:files]:
        audio, _ = load_audio(path)
        out.append((codec.encode(audio, num_quantizers=num_coarse), len(audio)))
    return out


def run_container(codec, clips, packet_frames: int, sync_frames: int) -> dict:
    from lmcodec.compression import LMCodecStreamCompressor

    payload = framing = header = 0
    for codes, samples in clips:
        compressor = LMCodecStreamCompressor(codec, num_coarse_quantizers=codes.shape[0], packet_frames=packet_frames,
                                             sync_frames=sync_frames, num_samples=samples)
        compressor.header()
        compressor.push_codes(codes)
        compressor.flush()
        report = compressor.report
        payload, framing, header = payload + report.payload_bytes, framing + report.framing_bytes, \
            header + report.header_bytes
    return {"payload_bytes": payload, "packet_bytes": payload + framing, "header_bytes": header}


class _NoFields:
    """A DatagramCoder that codes only the codes (no sequence field, no check): measurement only."""

    @staticmethod
    def wrap(coder):
        original = coder._parts

        def parts(codes, tables, sequence_field):
            return original(codes, tables, sequence_field)[1:2]

        coder._parts = parts
        return coder


def run_datagram(codec, clips, packet_frames: int, sync_frames: int, verify: bool = False, no_fields: bool = False,
                 **options) -> dict:
    from lmcodec.datagram import DatagramDecoder, DatagramEncoder

    payload = packets = 0
    information = field_bits = 0.0
    for codes, _ in clips:
        encoder = DatagramEncoder(codec, packet_frames, sync_frames, num_coarse_quantizers=codes.shape[0], **options)
        if no_fields:
            _NoFields.wrap(encoder._coder)
        data = encoder.push_codes(codes) + encoder.flush()
        payload += sum(map(len, data))
        packets += len(data)
        information += encoder.report.information_bits
        field_bits += encoder.report.extra["field_bits"]
        if verify:
            decoder = DatagramDecoder(codec, encoder.description(), fine_decoding="coarse-only")
            decoded = np.concatenate([decoder.receive(packet).codes for packet in data])
            assert np.array_equal(decoded[: codes.shape[1]], codes.T), "a packet decoded to other codes"
    return {"packet_bytes": payload, "packets": packets, "information_bits": information, "field_bits": field_bits,
            "description_bytes": encoder.report.header_bytes or len(encoder.description())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "speech"))
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundled one)")
    parser.add_argument("--files", type=int, default=None, help="first N files only")
    parser.add_argument("--coarse", type=int, default=3)
    parser.add_argument("--designs", choices=("all", "resets"), default="all",
                        help="every design (default) or only the 40 ms reset periods (with the file-mode reference)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    import lmcodec
    from lmcodec.runtime import load_codec

    codec = load_codec(args.model or lmcodec.DEFAULT_CHECKPOINT, threads=1)
    folder = Path(args.speech_dir) / "librispeech-test-other"
    if not folder.is_dir():
        parser.error(f"{folder} not found; pass --speech-dir DATA/speech")
    start = time.time()
    clips = speech_codes(codec, folder, args.files, args.coarse)
    frames = sum(codes.shape[1] for codes, _ in clips)
    seconds = sum(samples for _, samples in clips) / 16000
    print(f"{len(clips)} files, {seconds:.2f} s, {frames} frames, Nc={args.coarse} ({time.time() - start:.0f} s)",
          flush=True)

    rows = []

    def record(packet_ms, design, figures):
        kbps = figures["packet_bytes"] * 8 / seconds / 1000
        rows.append({"packet_ms": packet_ms, "design": design, "kbps": kbps, **figures})
        print(f"{packet_ms:>3} ms  {design:<58} {kbps:.4f} kbps ({time.time() - start:.0f} s)", flush=True)

    reference = run_container(codec, clips, 50, 300)
    record(1000, "file mode: v3 container, 1 s packets, context 6 s (packets)", reference)
    rows[-1]["kbps_all_bytes"] = (reference["packet_bytes"] + reference["header_bytes"]) * 8 / seconds / 1000
    print(f"          all bytes with the 41-byte header per file: {rows[-1]['kbps_all_bytes']:.4f} kbps")
    for sync_frames in (4, 6, 12):
        per_segment = sync_frames // 2
        for modulus in dict.fromkeys((max(per_segment, 2), 6)):
            record(40, f"datagram, reset every {sync_frames} ({20 * sync_frames} ms), seq mod {modulus}, start mix",
                   run_datagram(codec, clips, 2, sync_frames, sequence_modulus=modulus))
    for packet_frames, sync_frames in ((1, 11), (2, 12), (3, 12)) if args.designs == "all" else ():
        ms = 20 * packet_frames
        per_segment = sync_frames // packet_frames
        if packet_frames < 3:
            record(ms, "v3 container, context 6 s (damage up to 6 s)", run_container(codec, clips, packet_frames, 300))
            record(ms, f"v3 container, reset every {sync_frames}", run_container(codec, clips, packet_frames,
                                                                                  sync_frames))
            record(ms, f"datagram, reset every {sync_frames}, no fields (data payload only)",
                   run_datagram(codec, clips, packet_frames, sync_frames, no_fields=True, start_mix=(0,) * args.coarse))
        record(ms, f"datagram, reset every {sync_frames}, no fields, start mix (data payload only)",
               run_datagram(codec, clips, packet_frames, sync_frames, no_fields=True))
        if packet_frames < 3:
            record(ms, f"datagram, reset every {sync_frames}, seq mod {per_segment}, no start mix",
                   run_datagram(codec, clips, packet_frames, sync_frames, start_mix=(0,) * args.coarse))
        record(ms, f"datagram, reset every {sync_frames}, seq mod {per_segment}, start mix (default)",
               run_datagram(codec, clips, packet_frames, sync_frames, verify=packet_frames < 3))
        record(ms, f"datagram, reset every {sync_frames}, seq mod {per_segment}, start mix, 1-bit check",
               run_datagram(codec, clips, packet_frames, sync_frames, check_bits=1))
        if packet_frames < 3:
            record(ms, f"datagram, reset every {sync_frames}, seq mod {per_segment}, start mix, 2-bit check",
                   run_datagram(codec, clips, packet_frames, sync_frames, check_bits=2))
            record(ms, f"datagram, reset every {sync_frames}, seq mod {2 * per_segment}, start mix",
                   run_datagram(codec, clips, packet_frames, sync_frames, sequence_modulus=2 * per_segment))
    if args.json:
        Path(args.json).write_text(json.dumps({"files": len(clips), "seconds": seconds, "frames": frames,
                                               "num_coarse": args.coarse, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
