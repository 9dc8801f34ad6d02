"""The golden bitstreams: a fixed tiny model and the streams it writes for a fixed signal.

Exact decoding is promised for the same torch version and CPU kind (DESIGN.md): float32 matrix kernels round
differently on other instruction sets (measured: a stream written on an earlier CI machine does not decode on an AVX2
EPYC). So there is one entropy-coded golden stream per CPU kind, named after it (`golden-x86_64-amd-avx2.lmc`), and
one raw (entropy coding off) stream whose codes every machine must read. Streams of an older format version are kept
as `golden-v1-<kind>.lmc`: they must still decode.

`python -m tests.golden` (from the repo root) adds or rewrites this machine's streams with the checked-in model.
`python -m tests.golden --new-model` also rewrites the model and deletes every other machine's stream: do that only
together with a FORMAT_VERSION bump or a deliberate model change, since the golden test exists to make such changes
visible.
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
from tests.conftest import random_codebooks, speech_like, tiny_config

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
RAW_STREAM = GOLDEN_DIR / "golden-raw.lmc"
RAW_CODES = GOLDEN_DIR / "golden-raw-codes.npy"  # the coarse codes [frames, Nc] inside RAW_STREAM


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


def entropy_coded_stream(kind: str | None = None, version: int | None = None) -> Path:
    """This machine's (or `kind`'s) entropy-coded golden stream in the current format, or in an older `version`
    (kept to show that older streams still decode)."""
    prefix = "golden-" if version in (None, bitstream.FORMAT_VERSION) else f"golden-v{version}-"
    return GOLDEN_DIR / f"{prefix}{kind or cpu_kind()}.lmc"


def read_raw_codes(stream: bytes) -> np.ndarray:
    """A raw (not entropy-coded) stream → its coarse codes `[frames, Nc]`, each packet checked against its CRC."""
    header, packets = bitstream.split_stream(stream)
    assert not header.entropy_coded
    codes = [bitstream.unpack_codes(p.payload, header.bits_per_code, header.frames_in(p), header.num_coarse_quantizers)
             for p in packets]
    for packet, packet_codes in zip(packets, codes):
        packet.check_codes(packet_codes)
    return np.concatenate(codes)


def make_golden_model() -> None:
    torch.manual_seed(1234)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval(), seed=1234)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for old in GOLDEN_DIR.glob("golden*"):
        old.unlink()
    model.save_pretrained(GOLDEN_DIR)  # weights and config only: the golden model must not drift with the code
    for name in GOLDEN_DIR.glob("*.py"):
        name.unlink()
    config = json.loads((GOLDEN_DIR / "config.json").read_text())
    config.pop("auto_map", None)
    (GOLDEN_DIR / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def make_golden_streams() -> list[Path]:
    """Write this machine's entropy-coded stream and the raw stream (with its codes) from the checked-in model."""
    model = lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()
    signal = golden_signal()
    entropy_coded_stream().write_bytes(model.compress(signal))
    RAW_STREAM.write_bytes(model.compress(signal, entropy_coding=False))
    np.save(RAW_CODES, read_raw_codes(RAW_STREAM.read_bytes()).astype(np.int16))
    return [entropy_coded_stream(), RAW_STREAM, RAW_CODES]


if __name__ == "__main__":
    if "--new-model" in sys.argv[1:]:
        make_golden_model()
    for path in make_golden_streams():
        print(f"wrote {path}")
