"""The checked-in golden stream still decodes, and the same model and signal still encode to it byte for byte.

If this fails after a deliberate change to the format or the coding path, bump FORMAT_VERSION and regenerate with
`python -m tests.golden`."""

from __future__ import annotations

import numpy as np

import lmcodec
from lmcodec import bitstream
from tests.golden import GOLDEN_DIR, golden_signal


def test_golden_stream_decodes_and_reencodes_identically():
    model = lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()
    golden = (GOLDEN_DIR / "golden.lmc").read_bytes()
    header, packets = bitstream.split_stream(golden)
    assert golden[4] == bitstream.FORMAT_VERSION == 1
    assert header.entropy_coded and header.num_samples == len(golden_signal())
    audio, rate = model.decompress(golden)
    assert rate == 16000 and len(audio) == header.num_samples and np.isfinite(audio).all()
    assert model.compress(golden_signal()) == golden
