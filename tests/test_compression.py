"""compress / decompress and their streaming forms: exact coarse codes, streaming == offline, honest accounting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec import bitstream
from lmcodec.compression import compress
from lmcodec.entropy_coding import EntropyCoder, exact_coding
from tests.conftest import speech_like


def coarse_codes_of(model, audio, levels):
    return model.encode(torch.from_numpy(audio).view(1, 1, -1), num_quantizers=levels).audio_codes[0]


@pytest.mark.parametrize("entropy_coding", [True, False])
@pytest.mark.parametrize("levels", [2, 3])
def test_coarse_codes_survive_the_round_trip_exactly(tiny_model, entropy_coding, levels):
    audio = speech_like(1.23)
    data, report = tiny_model.compress(audio, num_coarse_quantizers=levels, entropy_coding=entropy_coding,
                                       return_report=True)
    header, packets = bitstream.split_stream(data)
    assert header.num_coarse_quantizers == levels and header.entropy_coded == entropy_coding
    assert report.total_bytes == len(data)
    decoded, rate = tiny_model.decompress(data)
    assert rate == 16000 and decoded.shape == audio.shape and decoded.dtype == np.float32
    assert np.abs(decoded).max() <= 1.0

    # The receiver's coarse codes are the sender's: decoding them directly gives the same audio, for every way of
    # filling in the levels that were not sent (the default, config.fine_decoding, is coarse-only; sampling uses
    # seed 0).
    coarse = coarse_codes_of(tiny_model, audio, levels).unsqueeze(0)
    sync = header.sync_period_frames
    direct = {"sample": tiny_model.generate_fine_codes(coarse, sync_frames=sync, do_sample=True, seed=0),
              "greedy": tiny_model.generate_fine_codes(coarse, sync_frames=sync),
              "coarse-only": coarse}
    assert tiny_model.config.fine_decoding == "coarse-only"
    for decoding, codes in direct.items():
        expected = tiny_model.decode(codes).audio_values[0, 0, : len(audio)].numpy()
        got = decoded if decoding == "coarse-only" else tiny_model.decompress(data, fine_decoding=decoding)[0]
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=decoding)


def test_streaming_compression_equals_offline(tiny_model):
    audio = speech_like(2.1, seed=2)
    offline = tiny_model.compress(audio)
    compressor = tiny_model.stream_compressor()
    parts = [compressor.header()]
    rng = np.random.default_rng(0)
    position = 0
    while position < len(audio):
        size = int(rng.integers(50, 4000))
        parts.extend(compressor.push(audio[position : position + size]))
        position += size
    parts.extend(compressor.flush())
    streamed = b"".join(parts)
    # A live stream does not know its length up front; everything after the header is identical.
    header_size = bitstream.HEADER_SIZE
    assert streamed[header_size:] == offline[header_size:]

    decompressor = tiny_model.stream_decompressor(streamed[:header_size])
    pieces = [decompressor.push(streamed[i : i + 7]) for i in range(header_size, len(streamed), 7)]
    decompressor.finish()
    live = np.concatenate(pieces)
    offline_audio, _ = tiny_model.decompress(offline)
    np.testing.assert_allclose(live[: len(offline_audio)], offline_audio, atol=1e-5)


def test_decoder_with_an_output_delay_decodes_files_and_live_streams_like_offline_decode():
    """A 40 ms synthesis window holds 320 samples back: decompress, and a live decompressor's pushes plus finish(),
    still give exactly the offline decode of the coarse codes, at the stream's length."""
    from tests.conftest import random_codebooks, tiny_config

    torch.manual_seed(0)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config(decoder_window_length=640)).eval())
    audio = speech_like(1.37, seed=5)
    data = model.compress(audio)
    decoded, _ = model.decompress(data, fine_decoding="coarse-only")
    coarse = coarse_codes_of(model, audio, model.config.num_coarse_quantizers).unsqueeze(0)
    expected = model.decode(coarse).audio_values[0, 0, : len(audio)].numpy()
    assert decoded.shape == audio.shape
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    decompressor = model.stream_decompressor(data[: bitstream.HEADER_SIZE], fine_decoding="coarse-only")
    pieces = [decompressor.push(data[i : i + 13]) for i in range(bitstream.HEADER_SIZE, len(data), 13)]
    live = np.concatenate(pieces + [decompressor.finish()])
    np.testing.assert_array_equal(live, decoded)


def test_resampled_input(tiny_model):
    audio = speech_like(1.0, sampling_rate=22050)
    data = tiny_model.compress(audio, sampling_rate=22050)
    header, _ = bitstream.split_stream(data)
    assert header.original_sampling_rate == 22050 and header.num_samples == 16000
    decoded, rate = tiny_model.decompress(data)
    assert rate == 16000 and len(decoded) == 16000


def test_entropy_coding_off_costs_exactly_the_raw_bits(tiny_model):
    audio = speech_like(2.0)
    data, report = tiny_model.compress(audio, entropy_coding=False, return_report=True)
    frames = 100
    assert report.payload_bytes == sum(bitstream.packed_size(n, 2, 6) for n in [10] * (frames // 10))


def test_another_model_is_refused(tiny_model):
    data = tiny_model.compress(speech_like(0.5))
    other = lmcodec.LMCodecModel(tiny_model.config).eval()
    with pytest.raises(lmcodec.LMCodecError, match="different model"):
        other.decompress(data)


def test_half_precision_model_is_refused_with_a_clear_message(tiny_model):
    with pytest.raises(lmcodec.LMCodecError, match="float32 on the CPU"):
        tiny_model.to(torch.float16).compress(speech_like(0.3))
    assert tiny_model.integer_entropy_lm.h__0__attn__c_attn__weight.dtype == torch.int8  # .to() leaves it integer


def misalign(tensor: torch.Tensor) -> torch.Tensor:
    """The same values 4 bytes past a 64-byte boundary, as weights mapped from a safetensors file can be."""
    storage = torch.empty(tensor.numel() + 1, dtype=tensor.dtype)
    shifted = storage[1:].view(tensor.shape)
    shifted.copy_(tensor)
    return shifted


def test_float_coding_does_not_depend_on_where_the_weights_lie_in_memory(tiny_model):
    """CPU matrix kernels round differently for unaligned weights (measured on an AVX2 EPYC), so the float coder of
    versions 1-2 moves any misaligned weight into aligned memory before coding; the stream is the aligned model's."""
    signal = speech_like(1.0, seed=3)
    expected, _ = compress(tiny_model, signal, format_version=2)
    for parameter in tiny_model.parameters():
        parameter.data = misalign(parameter.data)
    assert all(p.data_ptr() % 64 for p in tiny_model.parameters())
    assert compress(tiny_model, signal, format_version=2)[0] == expected
    assert not any(p.data_ptr() % 64 for p in tiny_model.parameters())
    assert lmcodec.entropy_coding.align_weights(tiny_model) == 0  # done once, in place


def test_integer_coding_needs_no_alignment(tiny_model):
    """Version 3 computes its probabilities in integers: misaligned float weights change nothing, and nothing is
    moved to make it so."""
    signal = speech_like(1.0, seed=3)
    expected = tiny_model.compress(signal)
    for parameter in tiny_model.parameters():
        parameter.data = misalign(parameter.data)
    assert tiny_model.compress(signal) == expected
    assert all(p.data_ptr() % 64 for p in tiny_model.parameters())


def test_version_2_streams_are_still_written_on_request_and_decode(tiny_model):
    signal = speech_like(1.0, seed=4)
    old, _ = compress(tiny_model, signal, format_version=2)
    assert bitstream.split_stream(old)[0].entropy_model == "float"
    np.testing.assert_array_equal(tiny_model.decompress(old)[0], tiny_model.decompress(tiny_model.compress(signal))[0])


def test_entropy_coding_without_an_integer_model_names_the_fix():
    from tests.conftest import random_codebooks, tiny_config

    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval(), integer_entropy_model=False)
    with pytest.raises(lmcodec.LMCodecError, match=r"no integer entropy model; export one with "
                       r"model.export_integer_entropy_model"):
        model.compress(speech_like(0.3))
    assert model.decompress(model.compress(speech_like(0.3), entropy_coding=False))[0].shape == (4800,)


def decode_payload(model, payload: bytes, frames: int, format_version: int) -> np.ndarray | None:
    """A fresh receiver's codes `[frames, Nc]` for one payload at a sync point, or None if the coder refuses."""
    coder = EntropyCoder(model.entropy_lm, model.quantizer.codebooks, model.config.num_quantizers,
                         model.config.num_coarse_quantizers, format_version)
    with exact_coding(model):
        coder.start_segment()
        try:
            return coder.decode_frames(payload, frames)
        except lmcodec.LMCodecError:
            return None


def test_version_2_payloads_are_the_shortest_that_decode(tiny_model):
    """Format 2 cuts the range coder's flushed words to the shortest byte string that decodes (format 1 wrote whole
    little-endian words): no payload one byte shorter, rounded down or up, decodes to the same codes."""
    codes = tiny_model.encode(torch.from_numpy(speech_like(1.0, seed=5))[None, None], num_quantizers=2).audio_codes
    frames = codes[0].T.numpy()[:25]
    payloads = {}
    for version in (1, 2):
        coder = EntropyCoder(tiny_model.entropy_lm, tiny_model.quantizer.codebooks,
                             tiny_model.config.num_quantizers, 2, version)
        with exact_coding(tiny_model):
            coder.start_segment()
            payloads[version] = coder.encode_frames(frames)
        np.testing.assert_array_equal(decode_payload(tiny_model, payloads[version], 25, version), frames)
    shortest = payloads[2]
    assert len(shortest) < len(payloads[1])
    prefix = int.from_bytes(shortest[:-1], "big")
    for value in (prefix, prefix + 1):
        if 0 < value < 256 ** (len(shortest) - 1):
            shorter = value.to_bytes(len(shortest) - 1, "big")
            decoded = decode_payload(tiny_model, shorter, 25, 2)
            assert decoded is None or not np.array_equal(decoded, frames)


def test_thread_count_is_restored(tiny_model):
    threads = torch.get_num_threads()
    tiny_model.compress(speech_like(0.3))
    assert torch.get_num_threads() == threads


DECODE_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch, lmcodec
    torch.set_num_threads(int(sys.argv[3]))
    model = lmcodec.LMCodecModel.from_pretrained(sys.argv[1]).eval()
    audio, _ = model.decompress(open(sys.argv[2], "rb").read())
    np.save(sys.argv[4], audio)
    """
)


def test_decoding_in_processes_with_different_thread_counts_is_identical(tiny_model, tmp_path):
    lmcodec.save_checkpoint(tiny_model, tmp_path / "model")
    torch.set_num_threads(2)
    (tmp_path / "stream.lmc").write_bytes(tiny_model.compress(speech_like(1.5, seed=7)))
    (tmp_path / "decode.py").write_text(DECODE_SCRIPT)
    outputs = []
    for threads in (1, 2):
        out = tmp_path / f"audio_{threads}.npy"
        subprocess.run([sys.executable, str(tmp_path / "decode.py"), str(tmp_path / "model"),
                        str(tmp_path / "stream.lmc"), str(threads), str(out)], check=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
        outputs.append(np.load(out))
    assert np.array_equal(outputs[0], outputs[1])


def test_expected_fine_decoding_uses_the_probability_weighted_codebook_vectors(tiny_model):
    """`fine_decoding="expected"`: each fine level adds Σ_k p_k · codebook[level, k] under the fine LM (the greedy code
    conditions the next level); checked against a direct computation, and streaming equals offline."""
    audio = speech_like(0.9, seed=6)
    data = tiny_model.compress(audio)
    decoded, _ = tiny_model.decompress(data, fine_decoding="expected")
    coarse = coarse_codes_of(tiny_model, audio, 2).unsqueeze(0)  # [1, Nc, F]
    lm, books, config = tiny_model.fine_lm, tiny_model.quantizer.codebooks, tiny_model.config
    latent = tiny_model.quantizer.decode(coarse)  # [1, F, D]
    with torch.no_grad():
        state, previous = lm.start(), None
        for frame in range(coarse.shape[-1]):
            if frame % config.sync_frames == 0:
                state = lm.start()
            codes = torch.zeros(1, config.num_quantizers, dtype=torch.long)
            codes[:, :2] = coarse[:, :, frame]
            conditioned = lm.step(state, codes, 2, books)
            for level in range(2, config.num_quantizers):
                logits = lm.level_logits(conditioned, level)
                latent[:, frame] += torch.softmax(logits, -1) @ books[level]
                codes[:, level] = logits.argmax(-1)
                conditioned = lm.condition(conditioned, level, codes[:, level], books)
            lm.finish_frame(state, codes)
        expected = tiny_model.decode_latent(latent).clamp(-1, 1)[0, : len(audio)].numpy()
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    greedy, _ = tiny_model.decompress(data, fine_decoding="greedy")
    assert not np.allclose(decoded, greedy, atol=1e-4)  # it is not the greedy codes' audio
    decompressor = tiny_model.stream_decompressor(data[: bitstream.HEADER_SIZE], fine_decoding="expected")
    live = np.concatenate([decompressor.push(data[i : i + 11]) for i in range(bitstream.HEADER_SIZE, len(data), 11)])
    np.testing.assert_allclose(live[: len(decoded)], decoded, atol=1e-5)
