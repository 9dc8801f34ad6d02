"""The checked-in golden streams still read, decode and re-encode byte for byte.

If a test here fails after a deliberate change to the format or the coding path, bump FORMAT_VERSION and regenerate
with `python -m tests.golden --new-model` (see tests/golden.py). The version-3 stream has no per-machine variants:
its probabilities come from the integer entropy model, so every machine must decode it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec import bitstream
from lmcodec.compression import compress_codes, decompress_codes, model_fingerprint
from tests.golden import (
    GOLDEN_DIR,
    OLD_RAW_STREAM,
    RAW_CODES,
    RAW_STREAM,
    STREAM,
    cpu_kind,
    float_lm_streams,
    golden_signal,
    read_raw_codes,
)


@pytest.fixture(scope="module")
def golden_model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


def test_every_golden_stream_has_its_format_version_and_model(golden_model):
    streams = sorted(GOLDEN_DIR.glob("golden*.lmc"))
    assert {STREAM, RAW_STREAM, OLD_RAW_STREAM} <= set(streams) and float_lm_streams(), streams
    for path in streams:
        header, packets = bitstream.split_stream(path.read_bytes())
        version = int(path.name[len("golden-v")]) if path.name.startswith("golden-v") else bitstream.FORMAT_VERSION
        assert header.format_version == path.read_bytes()[4] == version, path.name
        assert header.entropy_coded == (path not in (RAW_STREAM, OLD_RAW_STREAM)), path.name
        assert header.entropy_model == ("none" if not header.entropy_coded else "integer" if version >= 3 else "float")
        assert header.num_samples == len(golden_signal()) and packets, path.name
        assert header.model_fingerprint == model_fingerprint(golden_model, version, header.entropy_coded), path.name


def test_raw_golden_streams_read_the_same_codes_on_every_machine(golden_model):
    """Raw codes involve no float arithmetic in the reader, so this holds whatever the CPU (version 2 too)."""
    for path in (RAW_STREAM, OLD_RAW_STREAM):
        codes = read_raw_codes(path.read_bytes())
        np.testing.assert_array_equal(codes, np.load(RAW_CODES))
        np.testing.assert_array_equal(decompress_codes(golden_model, path.read_bytes()).T, codes)
    audio, rate = golden_model.decompress(RAW_STREAM.read_bytes())
    assert rate == 16000 and len(audio) == len(golden_signal()) and np.isfinite(audio).all()


def test_the_golden_stream_decodes_and_reencodes_identically_on_every_machine(golden_model):
    golden = STREAM.read_bytes()
    codes = np.load(RAW_CODES).T  # [Nc, F]
    np.testing.assert_array_equal(decompress_codes(golden_model, golden), codes)
    assert compress_codes(golden_model, codes, num_samples=len(golden_signal())) == golden
    entropy_decoded, rate = golden_model.decompress(golden)
    raw_decoded, _ = golden_model.decompress(RAW_STREAM.read_bytes())
    np.testing.assert_array_equal(entropy_decoded, raw_decoded)
    # From audio, where this machine's float encoder finds the committed codes (it did on every machine so far).
    encoded = golden_model.encode(torch.from_numpy(golden_signal())[None, None], num_quantizers=codes.shape[0])
    if np.array_equal(encoded.audio_codes[0].numpy(), codes):
        assert golden_model.compress(golden_signal()) == golden
        assert golden_model.compress(golden_signal(), entropy_coding=False) == RAW_STREAM.read_bytes()


@pytest.mark.parametrize("path", float_lm_streams(), ids=lambda path: path.name)
def test_float_lm_streams_decode_where_written_and_fail_clearly_elsewhere(golden_model, path):
    """Versions 1-2 took their probabilities from the float LM: on the CPU kind that wrote them they still decode
    to the committed codes; on any other kind they either decode exactly the same (the float arithmetic happened to
    agree) or stop with a clear error — never with other codes."""
    old = path.read_bytes()
    try:
        codes = decompress_codes(golden_model, old)
    except lmcodec.LMCodecError as error:
        assert cpu_kind() not in path.name, f"{path.name} must decode on {cpu_kind()}: {error}"
        assert "range decoder failed" in str(error) or "checksum" in str(error)
        return
    np.testing.assert_array_equal(codes, np.load(RAW_CODES).T)


def test_version_3_spends_no_more_than_version_2(golden_model):
    """Same payload spelling as version 2 (shortest decodable prefix); version 1 wrote whole words."""
    v1 = [p for p in float_lm_streams() if p.name.startswith("golden-v1-")]
    assert v1 and len(STREAM.read_bytes()) < len(v1[0].read_bytes())
