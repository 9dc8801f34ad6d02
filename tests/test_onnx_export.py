"""ONNX export of the encoder and decoder steps (lmcodec.onnx_export) and their torch-free runtime
(lmcodec.runtime.graphs) on tiny codecs: codes equal torch's, audio within 1e-4 of torch's, weights only in model.safetensors, wrong weights
refused, and no torch in a process that only uses the runtime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import lmcodec
from lmcodec.onnx_export import export_onnx, main
from lmcodec.runtime.graphs import WEIGHTS_LOCATION, load_graphs

from tests.conftest import REPO, random_codebooks, speech_like, tiny_config

# The decoders exported: the original head; the bundled default's longer synthesis window (output delay of 320
# samples); four-times overlap with noise phases (a frame counter in the state).
DECODERS = {
    "plain": {},
    "delay": {"decoder_window_length": 640},
    "noise": {"decoder_head_overlap": 4, "decoder_phase": "noise"},
}


def _checkpoint(folder, seed: int = 0, **overrides) -> lmcodec.LMCodecModel:
    torch.manual_seed(seed)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config(**overrides)).eval(), seed=seed,
                             integer_entropy_model=False)
    lmcodec.save_checkpoint(model, folder)
    return model


@pytest.fixture(scope="module", params=list(DECODERS))
def exported(request, tmp_path_factory):
    """(model, checkpoint folder) of a tiny codec whose graphs `main([CHECKPOINT])` wrote to CHECKPOINT/onnx."""
    folder = tmp_path_factory.mktemp(f"onnx-{request.param}")
    model = _checkpoint(folder, **DECODERS[request.param])
    assert main([str(folder)]) == 0
    return model, folder


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx-plain-encoder")
    model = _checkpoint(folder)
    export_onnx(model, folder / "onnx")
    return model, folder


def _torch_codes(model, audio: np.ndarray) -> np.ndarray:
    return model.encode(torch.from_numpy(audio)[None, None]).audio_codes[0].numpy()


def test_encoder_codes_equal_torch_encode(plain):
    model, folder = plain
    graphs = load_graphs(folder)
    audio = speech_like(1.37, seed=3)  # 69 frames: 35 blocks, the last one half padding
    expected = _torch_codes(model, audio)
    state, blocks = graphs.encoder.initial_states(), []
    padded = np.pad(audio, (0, -len(audio) % 640))
    for start in range(0, len(padded), 640):
        codes, state = graphs.encoder.run(padded[start : start + 640], state)
        assert codes.shape == (4, 2) and codes.dtype == np.int64
        blocks.append(codes)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1)[:, : expected.shape[1]], expected)
    np.testing.assert_array_equal(graphs.encoder.encode(audio), expected)


def test_encoder_streaming_over_blocks_equals_one_shot_exactly(plain):
    """Pushing audio in chunks of any size through the block loop gives exactly the one-shot codes."""
    _, folder = plain
    encoder = load_graphs(folder).encoder
    audio = speech_like(1.1, seed=5)
    one_shot = encoder.encode(audio)
    rng = np.random.default_rng(0)
    state, pending, codes, position = encoder.initial_states(), np.zeros(0, np.float32), [], 0
    while position < len(audio):
        size = int(rng.integers(1, 1500))
        pending = np.concatenate([pending, audio[position : position + size]])
        position += size
        while len(pending) >= encoder.block_samples:
            block_codes, state = encoder.run(pending[: encoder.block_samples], state)
            codes.append(block_codes)
            pending = pending[encoder.block_samples :]
    if len(pending):
        block_codes, state = encoder.run(np.pad(pending, (0, encoder.block_samples - len(pending))), state)
        codes.append(block_codes)
    np.testing.assert_array_equal(np.concatenate(codes, axis=1)[:, : one_shot.shape[1]], one_shot)


def _stepped(decoder, latent: np.ndarray, sizes) -> np.ndarray:
    """Decode `latent [F, D]` in chunks of the given frame counts, as a host does: drop the first `output_delay`
    samples, end with the tail, clip."""
    state, pieces, start = decoder.initial_states(), [], 0
    for size in sizes:
        samples, state = decoder.run(latent[start : start + size], state)
        assert samples.shape == (size * decoder.hop_length,)
        pieces.append(samples)
        start += size
    assert start == latent.shape[0]
    samples = np.concatenate(pieces + [decoder.tail(state)])[decoder.output_delay :]
    return np.clip(samples, -1.0, 1.0)


def _chunks(frames: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes = [1, 1, 1]  # f = 1 steps, including the first (the delayed stream start)
    while sum(sizes) < frames:
        sizes.append(int(rng.integers(1, 9)))
    sizes[-1] -= sum(sizes) - frames
    return [size for size in sizes if size]


def test_decoder_steps_match_torch_decode(exported):
    model, folder = exported
    graphs = load_graphs(folder)
    assert graphs.decoder.output_delay == model.decoder.output_delay
    codes = _torch_codes(model, speech_like(1.0, seed=1))
    expected = model.decode(torch.from_numpy(codes)[None]).audio_values[0, 0].numpy()
    latent = graphs.latent(codes)
    torch_latent = model.quantizer.decode(torch.from_numpy(codes)[None])[0].numpy()
    np.testing.assert_allclose(latent, torch_latent, rtol=0, atol=1e-6)
    stepped = _stepped(graphs.decoder, latent, _chunks(codes.shape[1]))
    assert stepped.shape == expected.shape
    assert np.abs(stepped - expected).max() <= 1e-4
    # fewer levels: the latent of the first two
    expected = model.decode(torch.from_numpy(codes[:2])[None]).audio_values[0, 0].numpy()
    assert np.abs(graphs.decoder.decode(graphs.latent(codes[:2])) - expected).max() <= 1e-4


def test_decoder_stepping_equals_one_shot_within_onnx(exported):
    """Frame by frame and in one call the decoder gives the same audio (float rounding of different kernel sizes
    aside: measured below 1e-6)."""
    model, folder = exported
    decoder = load_graphs(folder).decoder
    latent = load_graphs(folder).latent(_torch_codes(model, speech_like(0.6, seed=2)))
    one_shot = decoder.decode(latent)
    frame_by_frame = _stepped(decoder, latent, [1] * latent.shape[0])
    assert np.abs(frame_by_frame - one_shot).max() <= 1e-5


def test_graphs_hold_no_checkpoint_weights(plain):
    import onnx

    model, folder = plain
    keys = set(model.state_dict())
    manifest = json.loads((folder / "onnx" / "manifest.json").read_text())
    for graph, spec in manifest["graphs"].items():
        proto = onnx.load(str(folder / "onnx" / spec["file"]), load_external_data=False)
        named = [t for t in proto.graph.initializer if t.name in keys]
        assert sorted(t.name for t in named) == [w["name"] for w in spec["weights"]]
        for tensor in named:
            assert tensor.data_location == onnx.TensorProto.EXTERNAL and not tensor.raw_data
            assert {e.key: e.value for e in tensor.external_data}["location"] == WEIGHTS_LOCATION
        embedded = sum(len(t.raw_data) + 4 * len(t.float_data) for t in proto.graph.initializer)
        assert embedded < 16_000, (graph, embedded)  # DFT tables and windows only
    assert any(w["name"] == "quantizer.codebooks" for w in manifest["graphs"]["encoder_step"]["weights"])


def test_bundled_default_graphs_match_its_weights_and_hold_none():
    """The default checkpoint's graphs load with its weights (a retrained default needs `lmcodec export-onnx`), are
    tiny next to model.safetensors, and give torch's codes on a signal made in code."""
    folder = REPO / "modeling_lmcodec" / "default_checkpoint"
    weights = (folder / "model.safetensors").stat().st_size
    for name in ("encoder_step.onnx", "decoder_step.onnx"):
        assert (folder / "onnx" / name).stat().st_size < weights / 100
    graphs = load_graphs(folder)
    model = lmcodec.LMCodecModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    audio = speech_like(0.64, seed=4)
    codes = graphs.encoder.encode(audio)
    np.testing.assert_array_equal(codes[:3], _torch_codes(model, audio)[:3])


def test_graphs_of_other_weights_are_refused(plain, tmp_path):
    _, folder = plain
    other = tmp_path / "other"
    _checkpoint(other, seed=1)  # same settings, other weights
    shutil.copytree(folder / "onnx", other / "onnx")
    with pytest.raises(lmcodec.LMCodecError, match=r"exported from other weights .*lmcodec export-onnx") as error:
        load_graphs(other)
    message = str(error.value)
    assert "\n" not in message and "other weights" in message and f"lmcodec export-onnx {other}" in message
    # other settings with the same weights
    config = json.loads((other / "config.json").read_text())
    shutil.rmtree(other / "onnx")
    shutil.copytree(folder / "onnx", other / "onnx")
    shutil.copy(folder / "model.safetensors", other / "model.safetensors")
    load_graphs(other)
    config["layer_norm_eps"] = 1e-3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(lmcodec.LMCodecError, match=r"layer_norm_eps.*lmcodec export-onnx"):
        load_graphs(other)
    shutil.rmtree(other / "onnx")
    with pytest.raises(lmcodec.LMCodecError, match=r"no ONNX graphs.*lmcodec export-onnx"):
        load_graphs(other)


def test_harmonic_decoder_is_refused_with_one_line(tmp_path):
    model = lmcodec.LMCodecModel(tiny_config(num_harmonics=4)).eval()
    with pytest.raises(lmcodec.LMCodecError, match="num_harmonics") as error:
        export_onnx(model, tmp_path)
    assert "\n" not in str(error.value)


RUNTIME_SCRIPT = textwrap.dedent(
    """
    import sys
    checkpoint = sys.argv[1]
    import numpy as np
    from lmcodec.runtime.graphs import load_graphs
    graphs = load_graphs(checkpoint)
    t = np.arange(16000) / 16000
    codes = graphs.encoder.encode((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32))
    audio = graphs.decoder.decode(graphs.latent(codes[:2]))
    assert audio.shape == (16000,) and np.isfinite(audio).all()
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers"))
    print("heavy modules:", loaded)
    """
)


def test_runtime_runs_without_torch(plain, tmp_path):
    _, folder = plain
    result = subprocess.run([sys.executable, "-c", RUNTIME_SCRIPT, str(folder)], check=False, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("heavy modules: []"), result.stdout


def test_step_inputs_of_the_wrong_shape_get_one_line_errors(plain):
    _, folder = plain
    graphs = load_graphs(folder)
    with pytest.raises(lmcodec.LMCodecError, match="640 samples"):
        graphs.encoder.run(np.zeros(600, np.float32), graphs.encoder.initial_states())
    with pytest.raises(lmcodec.LMCodecError, match=r"shape \[frames, 8\]"):
        graphs.decoder.run(np.zeros((2, 7), np.float32), graphs.decoder.initial_states())
    samples, state = graphs.decoder.run(np.zeros((0, 8), np.float32), graphs.decoder.initial_states())
    assert samples.shape == (0,) and set(state) == set(graphs.decoder.initial_states())
