"""The checked-in golden streams still read, decode and re-encode byte for byte.

If a test here fails after a deliberate change to the format or the coding path, bump FORMAT_VERSION and regenerate
with `python -m tests.golden --new-model`. If only the exact-decoding test skips, this machine's CPU kind has no
golden stream yet: `python -m tests.golden` adds one (see tests/golden.py)."""

from __future__ import annotations

import numpy as np
import pytest

import lmcodec
from lmcodec import bitstream
from lmcodec.compression import model_fingerprint
from tests.golden import GOLDEN_DIR, RAW_CODES, RAW_STREAM, cpu_kind, entropy_coded_stream, golden_signal, read_raw_codes


@pytest.fixture(scope="module")
def golden_model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


def test_every_golden_stream_has_this_format_version_and_model(golden_model):
    streams = sorted(GOLDEN_DIR.glob("golden*.lmc"))
    assert RAW_STREAM in streams and len(streams) >= 2, streams
    for path in streams:
        header, packets = bitstream.split_stream(path.read_bytes())
        version = int(path.name[len("golden-v")]) if path.name.startswith("golden-v") else bitstream.FORMAT_VERSION
        assert header.format_version == path.read_bytes()[4] == version, path.name
        assert header.entropy_coded == (path != RAW_STREAM), path.name
        assert header.num_samples == len(golden_signal()) and packets, path.name
        assert header.model_fingerprint == model_fingerprint(golden_model), path.name


def test_raw_golden_stream_reads_the_same_codes_on_every_machine(golden_model):
    """Raw codes involve no float arithmetic in the reader, so this holds whatever the CPU."""
    codes = read_raw_codes(RAW_STREAM.read_bytes())
    np.testing.assert_array_equal(codes, np.load(RAW_CODES))
    audio, rate = golden_model.decompress(RAW_STREAM.read_bytes())
    assert rate == 16000 and len(audio) == len(golden_signal()) and np.isfinite(audio).all()


def test_golden_stream_of_this_cpu_kind_decodes_and_reencodes_identically(golden_model):
    path = entropy_coded_stream()
    if not path.exists():
        pytest.skip(f"no golden stream for this CPU kind ({cpu_kind()}); `python -m tests.golden` adds {path.name}")
    golden = path.read_bytes()
    entropy_decoded, rate = golden_model.decompress(golden)
    raw_decoded, _ = golden_model.decompress(RAW_STREAM.read_bytes())
    assert rate == 16000
    np.testing.assert_array_equal(entropy_decoded, raw_decoded)  # the range coder gave back exactly the raw codes
    assert golden_model.compress(golden_signal()) == golden
    assert golden_model.compress(golden_signal(), entropy_coding=False) == RAW_STREAM.read_bytes()


def test_older_format_streams_of_this_cpu_kind_still_decode(golden_model):
    """Version 1 wrote the range coder's words little-endian; version 2 readers must still decode such streams."""
    path = entropy_coded_stream(version=1)
    if not path.exists():
        pytest.skip(f"no version-1 golden stream for this CPU kind ({cpu_kind()})")
    old = path.read_bytes()
    assert bitstream.split_stream(old)[0].format_version == 1
    decoded, _ = golden_model.decompress(old)
    np.testing.assert_array_equal(decoded, golden_model.decompress(RAW_STREAM.read_bytes())[0])
    assert len(golden_model.compress(golden_signal())) < len(old)  # version 2 spends fewer bits on each flush
