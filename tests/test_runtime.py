"""The deployable runtime (`lmcodec.runtime`): the same bitstream as the torch model in both directions, streaming
equal to one-shot coding, the command line on either backend, and no torch on the runtime's path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import lmcodec  # noqa: E402
import lmcodec.datagram  # noqa: E402
import lmcodec.runtime  # noqa: E402
from lmcodec.cli import main  # noqa: E402
from lmcodec.onnx_export import export_onnx  # noqa: E402
from tests.conftest import random_codebooks, speech_files, speech_like, tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(torch model, checkpoint folder with its ONNX graphs) of a tiny codec with an integer entropy model and the
    bundled default's longer synthesis window (an output delay to carry across packets)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("runtime")
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config(decoder_window_length=640)).eval())
    lmcodec.save_checkpoint(model, folder)
    export_onnx(model, folder / "onnx")
    return model, folder


@pytest.fixture(scope="module")
def codec(checkpoint):
    return lmcodec.runtime.load_codec(checkpoint[1])


def test_both_backends_write_the_same_bytes_and_read_each_others_streams(checkpoint, codec):
    model, _ = checkpoint
    audio = speech_like(2.3, 22050, seed=3)
    from_runtime, from_torch = codec.compress(audio, 22050), model.compress(audio, 22050)
    assert from_runtime == from_torch
    torch_audio, rate = model.decompress(from_runtime)
    runtime_audio, runtime_rate = codec.decompress(from_torch)
    assert rate == runtime_rate == 16000 and torch_audio.shape == runtime_audio.shape
    np.testing.assert_allclose(runtime_audio, torch_audio, atol=1e-4)
    for decoding in ("expected", "greedy"):  # the fine LM's graphs: the same codes, the audio within rounding
        np.testing.assert_allclose(codec.decompress(from_torch, fine_decoding=decoding)[0],
                                   model.decompress(from_torch, fine_decoding=decoding)[0], atol=1e-4,
                                   err_msg=decoding)


@pytest.mark.parametrize("concealment", lmcodec.datagram.CONCEALMENTS)
def test_both_backends_write_the_same_datagrams_and_read_each_others(checkpoint, codec, concealment):
    """Including the concealed packet: the LM's expected latent goes through each backend's decoder alike."""
    model, _ = checkpoint
    audio = speech_like(1.3, 22050, seed=5)
    sent = {}
    for name, backend in (("runtime", codec), ("torch", model)):
        encoder = backend.datagram_encoder(packet_frames=2, sync_frames=12, sampling_rate=22050, check_bits=1)
        sent[name] = (encoder.description(), encoder.push(audio[:10000]) + encoder.push(audio[10000:]) +
                      encoder.flush())
    assert sent["runtime"] == sent["torch"]
    description, packets = sent["torch"]
    heard = {}
    for name, backend in (("runtime", codec), ("torch", model)):
        decoder = backend.datagram_decoder(description, fine_decoding="coarse-only", concealment=concealment)
        heard[name] = np.concatenate([decoder.push(None if n == 5 else packet) for n, packet in enumerate(packets)]
                                     + [decoder.finish()])
        assert decoder.report.packets_lost == 1 and decoder.report.packets_undecodable == 0  # 6: a segment start
    assert len(heard["runtime"]) == len(packets) * 2 * 320
    np.testing.assert_allclose(heard["runtime"], heard["torch"], atol=1e-4)

def test_sampled_fine_decoding_is_reproducible(codec, checkpoint):
    data = codec.compress(speech_like(1.5, seed=4))
    first = codec.decompress(data, fine_decoding="sample", seed=3)[0]
    assert np.array_equal(first, codec.decompress(data, fine_decoding="sample", seed=3)[0])
    assert not np.array_equal(first, codec.decompress(data, fine_decoding="sample", seed=4)[0])


def test_runtime_streaming_equals_one_shot_exactly(codec):
    audio = speech_like(2.7, seed=5)
    one_shot = codec.compress(audio)
    compressor = codec.stream_compressor()
    parts, position, rng = [compressor.header()], 0, np.random.default_rng(0)
    while position < len(audio):
        size = int(rng.integers(1, 3000))
        parts.extend(compressor.push(audio[position : position + size]))
        position += size
    parts.extend(compressor.flush())
    streamed = b"".join(parts)
    assert streamed[41:] == one_shot[41:]  # the payload; the header of a live stream has no length
    decompressor = codec.stream_decompressor(one_shot[:41])
    pieces = [decompressor.push(one_shot[start : start + 7]) for start in range(41, len(one_shot), 7)]
    pieces.append(decompressor.finish())
    np.testing.assert_array_equal(np.concatenate(pieces), codec.decompress(one_shot)[0])


def test_codes_api_matches_the_model(checkpoint, codec):
    model, _ = checkpoint
    audio = speech_like(1.1, seed=6)
    codes = codec.encode(audio)
    expected = model.encode(torch.from_numpy(audio)[None, None]).audio_codes[0].numpy()
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_allclose(codec.decode(codes[:2]), model.decode(torch.from_numpy(codes[:2])[None])
                               .audio_values[0, 0].numpy(), atol=1e-4)


def test_command_line_on_either_backend(checkpoint, tmp_path, capsys):
    _, folder = checkpoint
    source = tmp_path / "in.wav"
    import soundfile as sf

    sf.write(source, speech_like(1.6, seed=7), 16000)
    streams = {}
    for backend in ("auto", "onnx", "torch"):
        streams[backend] = tmp_path / f"{backend}.lmc"
        assert main(["encode", str(source), str(streams[backend]), "--model", str(folder), "--backend", backend]) == 0
    assert streams["auto"].read_bytes() == streams["onnx"].read_bytes() == streams["torch"].read_bytes()
    decoded = {}
    for backend in ("onnx", "torch"):
        decoded[backend] = tmp_path / f"{backend}.wav"
        assert main(["decode", str(streams["torch"]), str(decoded[backend]), "--model", str(folder),
                     "--backend", backend]) == 0
    np.testing.assert_allclose(sf.read(decoded["onnx"])[0], sf.read(decoded["torch"])[0], atol=1e-4)
    assert main(["roundtrip", str(source), str(tmp_path / "rt.wav"), "--model", str(folder)]) == 0
    assert "ONNX runtime" in capsys.readouterr().out


def test_onnx_backend_without_graphs_is_a_one_line_error(checkpoint, tmp_path, capsys):
    model, _ = checkpoint
    import soundfile as sf

    folder = tmp_path / "no-graphs"
    lmcodec.save_checkpoint(model, folder)
    sf.write(tmp_path / "in.wav", speech_like(0.5, seed=9), 16000)
    assert main(["encode", str(tmp_path / "in.wav"), str(tmp_path / "x.lmc"), "--model", str(folder),
                 "--backend", "onnx"]) == 2
    assert "has no ONNX graphs; run `lmcodec export-onnx" in capsys.readouterr().err


TORCH_BLOCKED = textwrap.dedent("""
    import runpy, sys
    for name in ("torch", "transformers", "datasets"):
        sys.modules[name] = None  # importing any of them fails: the runtime path must not need them
    sys.argv = ["lmcodec", *sys.argv[1:]]
    from lmcodec.cli import main
    code = main(sys.argv[1:])
    assert not [name for name in ("torch", "transformers", "datasets") if sys.modules.get(name) is not None]
    sys.exit(code)
""")


def test_command_line_runs_on_the_runtime_without_torch(checkpoint, tmp_path):
    _, folder = checkpoint
    import soundfile as sf

    sf.write(tmp_path / "in.flac", speech_like(1.2, seed=8), 16000)
    script = tmp_path / "blocked.py"
    script.write_text(TORCH_BLOCKED)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for arguments in (["encode", "in.flac", "s.lmc"], ["info", "s.lmc"], ["decode", "s.lmc", "out.wav"],
                      ["decode", "s.lmc", "expected.wav", "--fine-decoding", "expected"]):
        result = subprocess.run([sys.executable, str(script), *arguments, *(["--model", str(folder)]
                                if arguments[0] != "info" else [])], cwd=tmp_path, env=environment,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out.wav").is_file() and (tmp_path / "expected.wav").is_file()


@pytest.mark.slow
def test_bundled_default_on_real_speech_matches_torch():
    """The bundled default's graphs on a real recording: the same bytes as the torch model, and decoded audio
    within 1e-4 of torch's from the same stream."""
    import soundfile as sf

    path = speech_files("librispeech-test-other", 1)[0]
    audio, rate = sf.read(path, dtype="float32")
    audio = audio[: rate * 4]
    codec = lmcodec.runtime.load_codec(None)
    model = lmcodec.LMCodecModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT).eval()
    data = codec.compress(audio, rate)
    assert data == model.compress(audio, rate)
    np.testing.assert_allclose(codec.decompress(data)[0], model.decompress(data)[0], atol=1e-4)


def test_save_checkpoint_keeps_graphs_and_weights_consistent(checkpoint, tmp_path):
    model, _ = checkpoint
    folder = tmp_path / "saved"
    lmcodec.save_checkpoint(model, folder, onnx=True)
    assert lmcodec.runtime.has_graphs(folder)
    other = random_codebooks(lmcodec.LMCodecModel(tiny_config(decoder_window_length=640)).eval(), seed=1)
    lmcodec.save_checkpoint(other, folder)  # the folder has graphs: they are exported again with the new weights
    codec = lmcodec.runtime.load_codec(folder)
    audio = speech_like(0.9, seed=10)
    assert codec.compress(audio) == other.compress(audio)
