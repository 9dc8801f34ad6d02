"""The fine LM as an ONNX step graph (lmcodec.onnx_fine_lm) driven by numpy (lmcodec.runtime.fine_lm), against the
torch FineCodeGenerator it replaces in the deployable runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import lmcodec  # noqa: E402
from lmcodec.onnx_fine_lm import STRIPPED_LOCATION, _graphs, export_fine_lm_onnx, graph_file_name  # noqa: E402
from lmcodec.runtime.fine_lm import (  # noqa: E402
    FineLMError,
    OnnxFineCodeGenerator,
    OnnxFineLM,
    latent_of_codes,
    session_options,
)
from tests.conftest import random_codebooks, speech_files, tiny_config  # noqa: E402

SYNC = 16  # frames per sync period in these tests (the tiny config's is 40)
FRAMES = 3 * SYNC + 5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model saved as a checkpoint (float32 safetensors) with its fine-LM graphs exported beside it."""
    torch.manual_seed(0)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval(), integer_entropy_model=False)
    folder = tmp_path_factory.mktemp("fine_lm_onnx")
    model.save_pretrained(folder)
    description = export_fine_lm_onnx(model, folder)
    return model, folder, description


def coarse_codes(num_coarse: int, frames: int = FRAMES, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 64, (1, num_coarse, frames), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("num_coarse", [2, 3])
def test_greedy_codes_equal_torch_across_sync_periods(exported, num_coarse):
    model, folder, _ = exported
    coarse = coarse_codes(num_coarse)
    expected = model.generate_fine_codes(coarse, sync_frames=SYNC)[0].numpy()
    lm = OnnxFineLM.from_directory(folder, num_coarse)
    codes = OnnxFineCodeGenerator(lm, sync_frames=SYNC).push(coarse[0].numpy())
    assert codes.dtype == np.int64 and codes.shape == (4, FRAMES)
    np.testing.assert_array_equal(codes, expected)
    # Streaming in pieces (across sync points) is the same computation.
    generator = OnnxFineCodeGenerator(lm, sync_frames=SYNC)
    pieces = [generator.push(coarse[0, :, a:b].numpy()) for a, b in [(0, 7), (7, SYNC + 1), (SYNC + 1, SYNC + 2),
                                                                     (SYNC + 2, FRAMES)]]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), expected)
    # Resuming at a sync point (start_frame) continues exactly like the uninterrupted stream.
    resumed = OnnxFineCodeGenerator(lm, sync_frames=SYNC, start_frame=2 * SYNC).push(coarse[0, :, 2 * SYNC:].numpy())
    np.testing.assert_array_equal(resumed, expected[:, 2 * SYNC:])


@pytest.mark.parametrize("num_coarse", [2, 3])
def test_latents_match_torch(exported, num_coarse):
    model, folder, _ = exported
    coarse = coarse_codes(num_coarse, seed=2)
    lm = OnnxFineLM.from_directory(folder, num_coarse)
    for mode in ("greedy", "expected"):
        torch_codes, torch_latent = model.fine_code_generator(
            num_coarse, sync_frames=SYNC, expected=mode == "expected").push_latent(coarse)
        codes, latent = OnnxFineCodeGenerator(lm, mode=mode, sync_frames=SYNC).push_latent(coarse[0].numpy())
        np.testing.assert_array_equal(codes, torch_codes[0].numpy())
        assert latent.dtype == np.float32 and latent.shape == (FRAMES, 8)
        np.testing.assert_allclose(latent, torch_latent[0].numpy(), rtol=0, atol=1e-4)
    # Coarse-only decoding needs no fine LM: the coarse levels' codebook vectors.
    torch_coarse = model.quantizer.decode(coarse)[0].numpy()
    np.testing.assert_allclose(latent_of_codes(lm.codebooks, coarse[0].numpy()), torch_coarse, atol=1e-5)


def test_sampling_is_seeded_and_restarts_at_sync_points(exported):
    _, folder, _ = exported
    lm = OnnxFineLM.from_directory(folder, 2)
    coarse = coarse_codes(2)[0].numpy()

    def sample(codes, seed=3, **options):
        return OnnxFineCodeGenerator(lm, mode="sample", sync_frames=SYNC, seed=seed, temperature=1.5,
                                     **options).push(codes)

    first = sample(coarse)
    np.testing.assert_array_equal(sample(coarse), first)
    assert not np.array_equal(sample(coarse, seed=4), first)
    np.testing.assert_array_equal(first[:2], coarse)
    greedy = OnnxFineCodeGenerator(lm, sync_frames=SYNC).push(coarse)
    assert (first[2:] != greedy[2:]).mean() > 0.2  # the untrained LM is near uniform: samples mostly differ
    # A receiver starting at the second sync point draws what the uninterrupted one drew there ...
    np.testing.assert_array_equal(sample(coarse[:, SYNC:], start_frame=SYNC), first[:, SYNC:])
    # ... and each period depends only on its own coarse codes.
    changed = coarse.copy()
    changed[:, :SYNC] = (changed[:, :SYNC] + 1) % 64
    again = sample(changed)
    assert not np.array_equal(again[:, :SYNC], first[:, :SYNC])
    np.testing.assert_array_equal(again[:, SYNC:], first[:, SYNC:])
    # Without a seed, draws come from the given numpy Generator.
    np.testing.assert_array_equal(
        OnnxFineCodeGenerator(lm, mode="sample", sync_frames=SYNC, temperature=1.5,
                              generator=np.random.default_rng(3)).push(coarse[:, :SYNC]), first[:, :SYNC])


def test_in_graph_sampling_is_the_inverse_cdf_of_the_tempered_softmax(exported):
    """Uniforms on a regular grid through the graph's inverse CDF reproduce torch's probabilities of the first fine
    level (whose logits do not depend on codes chosen in the frame) to within the grid step."""
    model, folder, _ = exported
    lm = OnnxFineLM.from_directory(folder, 2)
    temperature = 0.7
    coarse = np.array([5, 9])
    with torch.no_grad():
        state = model.fine_lm.start()
        frame = torch.zeros(1, 4, dtype=torch.long)
        frame[0, :2] = torch.from_numpy(coarse)
        conditioned = model.fine_lm.step(state, frame, 2, model.quantizer.codebooks)
        probabilities = torch.softmax(model.fine_lm.level_logits(conditioned, 2)[0] / temperature, -1).numpy()
    generator = OnnxFineCodeGenerator(lm, mode="sample", sync_frames=SYNC, temperature=temperature)
    feeds = dict(generator.feeds)
    feeds["coarse_codes"] = coarse.astype(np.int64)
    grid = 4000
    counts = np.zeros(64)
    for index in range(grid):
        feeds["uniforms"] = np.array([(index + 0.5) / grid, 0.5], dtype=np.float32)
        counts[lm.step(feeds)["codes"][2]] += 1
    np.testing.assert_allclose(counts / grid, probabilities, atol=1.5 / grid)


def test_weights_are_not_embedded_and_are_supplied_from_safetensors(exported, tmp_path):
    model, folder, description = exported
    from safetensors.numpy import load_file, save_file

    stored = load_file(str(folder / "model.safetensors"))
    assert [graph["file"] for graph in description["graphs"]] == [graph_file_name(2), graph_file_name(3)]
    assert json.loads((folder / "fine_lm_onnx.json").read_text()) == description
    for graph in description["graphs"]:
        proto = onnx.load(str(folder / graph["file"]), load_external_data=False)
        assert proto.opset_import[0].version >= 17
        assert [value.name for value in proto.graph.input] == [entry["name"] for entry in graph["inputs"]]
        assert [value.name for value in proto.graph.output] == [entry["name"] for entry in graph["outputs"]]
        names = sorted(initializer.name for initializer in proto.graph.initializer)
        assert names == graph["weights"] and "quantizer.codebooks" in names
        assert all(name in stored and (name.startswith("fine_lm.") or name == "quantizer.codebooks")
                   for name in names)
        for initializer in proto.graph.initializer:
            assert initializer.data_location == onnx.TensorProto.EXTERNAL and not initializer.raw_data
            assert {entry.key: entry.value for entry in initializer.external_data}["location"] == STRIPPED_LOCATION
            assert list(initializer.dims) == list(stored[initializer.name].shape)
        for subgraph in _graphs(proto.graph):  # nor hidden in constants, in the graph or in its If branches
            assert subgraph is proto.graph or not subgraph.initializer
            for node in subgraph.node:
                for attribute in node.attribute:
                    if attribute.type == onnx.AttributeProto.TENSOR:
                        assert np.prod(attribute.t.dims) <= 16, node.name
    for key, entry in description["weights"].items():
        assert entry["shape"] == list(stored[key].shape) and len(entry["sha256"]) == 64

    # Without the weights the graph does not load (rather than computing with garbage).
    with pytest.raises(Exception, match="[Ee]xternal data"):
        ort.InferenceSession(str(folder / graph_file_name(2)), session_options())
    # A checkpoint whose weights differ is refused, naming the tensor.
    changed = dict(stored)
    changed["fine_lm.head_bias"] = changed["fine_lm.head_bias"] + 1
    save_file(changed, str(tmp_path / "model.safetensors"))
    with pytest.raises(FineLMError, match="fine_lm.head_bias"):
        OnnxFineLM.from_directory(folder, 2, weights_path=tmp_path / "model.safetensors")


def test_bad_input_gets_clear_errors(exported):
    _, folder, _ = exported
    lm = OnnxFineLM.from_directory(folder, 2)
    generator = OnnxFineCodeGenerator(lm, sync_frames=SYNC)
    with pytest.raises(FineLMError, match=r"shape \[2, frames\]"):
        generator.push(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(FineLMError, match=r"in \[0, 64\)"):
        generator.push(np.full((2, 4), 64))
    with pytest.raises(FineLMError, match="unknown fine decoding mode"):
        OnnxFineCodeGenerator(lm, mode="coarse-only")
    with pytest.raises(FineLMError, match="temperature must be > 0"):
        OnnxFineCodeGenerator(lm, mode="sample", temperature=0)
    with pytest.raises(FineLMError, match="sync_frames must be between 1 and"):
        OnnxFineCodeGenerator(lm, sync_frames=41)
    with pytest.raises(FineLMError, match="no fine-LM graph for 1 coarse levels"):
        OnnxFineLM.from_directory(folder, 1)
    with pytest.raises(lmcodec.LMCodecError, match="not an operating point"):
        export_fine_lm_onnx(exported[0], folder / "other", num_coarse=1)
    assert generator.push(np.zeros((2, 0), dtype=np.int64)).shape == (4, 0)


TORCH_FREE_SCRIPT = textwrap.dedent(
    """
    import sys
    for name in ("torch", "transformers"):
        sys.modules[name] = None  # the runtime must not need them: importing either would fail here
    import numpy as np
    module_path, folder, coarse_path, out_path = sys.argv[1:5]
    import lmcodec.runtime.fine_lm as runtime
    assert runtime.__file__ == module_path, (runtime.__file__, module_path)
    lm = runtime.OnnxFineLM.from_directory(folder, 3)
    codes = runtime.OnnxFineCodeGenerator(lm, sync_frames=16).push(np.load(coarse_path))
    np.save(out_path, codes)
    """
)


def test_runtime_runs_without_torch(exported, tmp_path):
    model, folder, _ = exported
    coarse = coarse_codes(3, seed=5)
    np.save(tmp_path / "coarse.npy", coarse[0].numpy())
    (tmp_path / "script.py").write_text(TORCH_FREE_SCRIPT)
    module = Path(__file__).resolve().parents[1] / "runtime" / "fine_lm.py"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    subprocess.run([sys.executable, str(tmp_path / "script.py"), str(module), str(folder), str(tmp_path / "coarse.npy"),
                    str(tmp_path / "codes.npy")], check=True, cwd=tmp_path, env=env, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"),
                                  model.generate_fine_codes(coarse, sync_frames=SYNC)[0].numpy())


@pytest.mark.slow
def test_default_checkpoint_on_real_speech(tmp_path):
    """The bundled default (float16 storage): its exported graph agrees with torch on codes of real speech."""
    import soundfile

    path = speech_files("librispeech-test-other", 1)[0]
    model = lmcodec.LMCodecModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT).float().eval()
    audio, _ = soundfile.read(path, dtype="float32")
    coarse = model.encode(torch.from_numpy(audio[: 16000 * 3])[None, None], num_quantizers=3).audio_codes
    export_fine_lm_onnx(model, tmp_path, num_coarse=3)
    weight_bytes = sum(4 * parameter.numel() for parameter in model.fine_lm.parameters())
    assert (tmp_path / "fine_lm_step_nc3.onnx").stat().st_size < weight_bytes / 20
    lm = OnnxFineLM.from_directory(tmp_path, 3, weights_path=Path(lmcodec.DEFAULT_CHECKPOINT) / "model.safetensors")
    torch_codes, torch_latent = model.fine_code_generator(3, sync_frames=100, expected=True).push_latent(coarse)
    codes, latent = OnnxFineCodeGenerator(lm, mode="expected", sync_frames=100).push_latent(coarse[0].numpy())
    assert (codes == torch_codes[0].numpy()).mean() > 0.99
    np.testing.assert_allclose(latent, torch_latent[0].numpy(), atol=1e-4)
