"""The checked-in datagram goldens (format version 4) decode to the committed codes and re-encode byte for byte.

They come from the fixed tiny model of the file goldens and the same codes (`golden-raw-codes.npy`), so every
machine must reproduce them exactly: the datagram mode's probabilities come from the integer entropy model. If a
test here fails after a deliberate change to the datagram layout, bump DATAGRAM_FORMAT_VERSION and regenerate with
`python -m tests.golden` (see tests/golden.py)."""

from __future__ import annotations

import numpy as np
import pytest

import lmcodec
from lmcodec import bitstream
from lmcodec.datagram import DatagramDecoder
from tests.golden import (
    DATAGRAM_GOLDENS,
    GOLDEN_DIR,
    RAW_CODES,
    RAW_STREAM,
    datagram_paths,
    golden_signal,
    make_datagrams,
    split_datagrams,
)


@pytest.fixture(scope="module")
def golden_model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


def golden(name: str) -> tuple[bytes, list[bytes]]:
    description, packets = datagram_paths(name)
    return description.read_bytes(), split_datagrams(packets.read_bytes())


def test_every_configuration_has_its_goldens_and_nothing_else_is_there():
    names = {path.name for path in GOLDEN_DIR.glob("datagram-*")}
    assert names == {path.name for name in DATAGRAM_GOLDENS for path in datagram_paths(name)}


@pytest.mark.parametrize("name", DATAGRAM_GOLDENS)
def test_golden_datagrams_decode_and_reencode_identically_on_every_machine(golden_model, name):
    description, packets = golden(name)
    options = DATAGRAM_GOLDENS[name]
    info = bitstream.DatagramDescription.from_bytes(description)
    assert description[4] == bitstream.DATAGRAM_FORMAT_VERSION == info.format_version == 4
    assert (info.packet_length_frames, info.sync_period_frames) == (options["packet_frames"], options["sync_frames"])
    assert info.check_bits == options.get("check_bits", 0)
    codes = np.load(RAW_CODES).astype(np.int64)  # [frames, Nc]
    frames = len(packets) * info.packet_length_frames
    assert frames - info.packet_length_frames < len(codes) <= frames
    decoder = DatagramDecoder(golden_model, description, fine_decoding="coarse-only")
    results = [decoder.receive(packet) for packet in packets]
    assert [result.status for result in results] == ["decoded"] * len(packets)
    assert [result.sequence_number for result in results] == list(range(len(packets)))
    decoded = np.concatenate([result.codes for result in results])
    np.testing.assert_array_equal(decoded[: len(codes)], codes)
    np.testing.assert_array_equal(decoded[len(codes) :], np.repeat(codes[-1:], frames - len(codes), axis=0))
    assert make_datagrams(golden_model, codes, options) == (description, packets)


def test_golden_datagrams_decode_to_the_audio_of_the_file_stream(golden_model):
    """Without losses a datagram receiver hears what a file decoder hears (same codes, same fine LM and decoder)."""
    description, packets = golden("40ms")
    decoder = DatagramDecoder(golden_model, description)  # the golden model samples its fine levels, seeded
    audio = np.concatenate([decoder.push(packet) for packet in packets] + [decoder.finish()])
    reference, _ = golden_model.decompress(RAW_STREAM.read_bytes())
    assert len(audio) == len(packets) * 2 * 320 and len(reference) == len(golden_signal())
    np.testing.assert_allclose(audio[: len(reference)], reference, atol=1e-5)
