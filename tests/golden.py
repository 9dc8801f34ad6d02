"""The golden bitstreams: a fixed tiny model and the streams it writes for a fixed signal.

Format version 3 takes the range coder's probabilities from the integer entropy model, so one entropy-coded golden
stream (`golden.lmc`) must decode, and re-encode byte for byte, on every machine; `golden-raw.lmc` is the same
signal's raw (entropy coding off) stream and `golden-raw-codes.npy` its coarse codes `[frames, Nc]`.

Datagram mode (format version 4) has its own goldens, made from the same codes: for each configuration in
`DATAGRAM_GOLDENS`, `datagram-<name>.desc` (the stream description) and `datagram-<name>.packets` (the packets, each
written after a one-byte length: a test-only framing, since datagrams are framed by their transport). Their names
keep them out of the `golden*.lmc` file streams.

Older streams are kept to show they still read: `golden-v2-raw.lmc` (raw codes, every machine) and the float-LM
streams `golden-v<N>-<cpu kind>.lmc` of versions 1 and 2, which decode only on the kind of CPU that wrote them
(float32 kernels round differently elsewhere; measured: such a stream written on one machine failed on an AVX2 EPYC).

`python -m tests.golden` (from the repo root) rewrites the version-3 streams with the checked-in model.
`python -m tests.golden --new-model` also rewrites the model and deletes the older streams: do that only together with
a FORMAT_VERSION bump or a deliberate model change, since the golden test exists to make such changes visible.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

import lmcodec
from lmcodec import bitstream
from tests.conftest import export_integer_entropy_model, random_codebooks, speech_like, tiny_config

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
STREAM = GOLDEN_DIR / "golden.lmc"
RAW_STREAM = GOLDEN_DIR / "golden-raw.lmc"
RAW_CODES = GOLDEN_DIR / "golden-raw-codes.npy"  # the coarse codes [frames, Nc] inside STREAM and RAW_STREAM
OLD_RAW_STREAM = GOLDEN_DIR / "golden-v2-raw.lmc"
GOLDEN_SEED = 1234
DATAGRAM_GOLDENS = {  # name → DatagramEncoder options: 20, 40 and 60 ms packets, the last with every option set
    "20ms": {"packet_frames": 1, "sync_frames": 11},
    "40ms": {"packet_frames": 2, "sync_frames": 12},
    "60ms-check": {"packet_frames": 3, "sync_frames": 12, "sequence_modulus": 8, "check_bits": 3,
                   "start_mix": (100, 7)},
}


def datagram_paths(name: str) -> tuple[Path, Path]:
    return GOLDEN_DIR / f"datagram-{name}.desc", GOLDEN_DIR / f"datagram-{name}.packets"


def join_datagrams(packets: list[bytes]) -> bytes:
    assert all(0 < len(packet) < 256 for packet in packets)
    return b"".join(bytes([len(packet)]) + packet for packet in packets)


def split_datagrams(data: bytes) -> list[bytes]:
    packets, position = [], 0
    while position < len(data):
        packets.append(data[position + 1 : position + 1 + data[position]])
        position += 1 + data[position]
    return packets


def make_datagrams(model, codes: np.ndarray, options: dict) -> tuple[bytes, list[bytes]]:
    """(description, packets) of the coarse codes `[frames, Nc]` in datagram mode with `options`."""
    from lmcodec.datagram import DatagramEncoder

    encoder = DatagramEncoder(model, **options)
    packets = encoder.push_codes(codes.T.astype(np.int64)) + encoder.flush()
    return encoder.description(), packets


def golden_signal():
    return speech_like(1.7, seed=21)


def cpu_kind() -> str:
    """`<machine>-<vendor>-<torch CPU capability>`, e.g. `x86_64-amd-avx2`: what the float32 kernels depend on."""
    vendor = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vendor = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(vendor, vendor.lower().replace(" ", "_"))
    return f"{platform.machine()}-{vendor}-{torch.backends.cpu.get_cpu_capability()}".lower()


def float_lm_streams() -> list[Path]:
    """The checked-in version-1/2 entropy-coded streams (float LM), one per CPU kind that wrote one."""
    return sorted(p for p in GOLDEN_DIR.glob("golden-v*.lmc") if p != OLD_RAW_STREAM)


def read_raw_codes(stream: bytes) -> np.ndarray:
    """A raw (not entropy-coded) stream → its coarse codes `[frames, Nc]`, each packet checked against its CRC."""
    header, packets = bitstream.split_stream(stream)
    assert not header.entropy_coded
    codes = [bitstream.unpack_codes(p.payload, header.bits_per_code, header.frames_in(p), header.num_coarse_quantizers)
             for p in packets]
    for packet, packet_codes in zip(packets, codes):
        packet.check_codes(packet_codes)
    return np.concatenate(codes)


def save_golden_model(model) -> None:
    """Weights and config only: the golden model must not drift with the code."""
    model.save_pretrained(GOLDEN_DIR)
    for name in GOLDEN_DIR.glob("*.py"):
        name.unlink()
    config = json.loads((GOLDEN_DIR / "config.json").read_text())
    config.pop("auto_map", None)
    (GOLDEN_DIR / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def make_golden_model() -> None:
    torch.manual_seed(GOLDEN_SEED)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval(), seed=GOLDEN_SEED)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for old in GOLDEN_DIR.glob("golden*"):
        old.unlink()
    save_golden_model(model)


def add_integer_entropy_model() -> None:
    """Give the checked-in model (float weights unchanged, so older streams still match it) its integer model."""
    model = lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()
    save_golden_model(export_integer_entropy_model(model, seed=GOLDEN_SEED))


def make_golden_streams() -> list[Path]:
    """Write the version-3 entropy-coded and raw streams (with the codes) from the checked-in model."""
    model = lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()
    signal = golden_signal()
    STREAM.write_bytes(model.compress(signal))
    RAW_STREAM.write_bytes(model.compress(signal, entropy_coding=False))
    np.save(RAW_CODES, read_raw_codes(RAW_STREAM.read_bytes()).astype(np.int16))
    written = [STREAM, RAW_STREAM, RAW_CODES]
    for name, options in DATAGRAM_GOLDENS.items():
        description, packets = make_datagrams(model, np.load(RAW_CODES), options)
        description_path, packets_path = datagram_paths(name)
        description_path.write_bytes(description)
        packets_path.write_bytes(join_datagrams(packets))
        written += [description_path, packets_path]
    return written


if __name__ == "__main__":
    if "--new-model" in sys.argv[1:]:
        make_golden_model()
    if "--add-integer-model" in sys.argv[1:] or "--new-model" in sys.argv[1:]:
        add_integer_entropy_model()
    for path in make_golden_streams():
        print(f"wrote {path}")
