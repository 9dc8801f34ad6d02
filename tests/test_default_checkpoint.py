"""The bundled default checkpoint (`lmcodec.DEFAULT_CHECKPOINT`) and the tool that bundles it.

The default must be what its docs promise: float16 storage within the size budget, float32 compute, no code files,
loadable by `LMCodecModel` and `AutoModel` offline, lossless on real speech, and trained (it must sound like the input,
which random weights never do).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel

import lmcodec
from lmcodec.errors import LMCodecError
from lmcodec.hub_cards.model_card import claimed_code_files
from lmcodec.training.bundle_default import SIZE_BUDGET_BYTES, bundle_default_checkpoint, render_bundled_card
from tests.conftest import export_integer_entropy_model, speech_files, speech_like, tiny_config

DEFAULT = Path(lmcodec.DEFAULT_CHECKPOINT)


@pytest.fixture(scope="module")
def default_model() -> lmcodec.LMCodecModel:
    return lmcodec.LMCodecModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT).eval()


def stored_dtypes(folder: Path) -> set[torch.dtype]:
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        return {weights.get_tensor(name).dtype for name in weights.keys()}


def test_default_checkpoint_is_weights_and_configs_in_half_precision_within_budget():
    names = {path.name for path in DEFAULT.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    assert not any(name.endswith(".py") for name in names)  # the package's code loads it; no stale copies
    assert "auto_map" not in json.loads((DEFAULT / "config.json").read_text())  # so it claims no remote code for
    assert "config.json" not in claimed_code_files(DEFAULT)                      # AutoConfig / AutoModel
    assert sum(path.stat().st_size for path in DEFAULT.iterdir()) <= SIZE_BUDGET_BYTES
    assert torch.float16 in stored_dtypes(DEFAULT) and torch.float32 not in stored_dtypes(DEFAULT)


def test_default_checkpoint_loads_in_float32_through_auto_model(default_model):
    auto = AutoModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT)
    assert type(auto) is lmcodec.LMCodecModel and auto.dtype == torch.float32 and default_model.dtype == torch.float32
    facts = json.loads((DEFAULT / "training_facts.json").read_text())
    assert not facts.get("random_weights") and facts["steps"]["codec"] > 0


def test_default_checkpoint_is_trained_and_lossless_on_real_speech(default_model):
    path = speech_files("librispeech-test-other", 1)[0]
    audio, rate = lmcodec.load_audio(path, sampling_rate=16000)
    audio = audio[: 4 * rate]
    data = default_model.compress(audio, rate)
    decoded, decoded_rate = default_model.decompress(data)
    assert decoded_rate == 16000 and len(decoded) == len(audio)
    assert len(data) * 8 / (len(audio) / rate) <= 1500  # the default operating point, every byte counted
    # The receiver's coarse codes are the sender's: generating and decoding from them directly gives the same audio.
    levels = default_model.config.num_coarse_quantizers
    with torch.no_grad():
        coarse = default_model.encode(torch.from_numpy(audio).view(1, 1, -1), num_quantizers=levels).audio_codes
        decoding = default_model.config.fine_decoding  # the bundle's measured-best default
        full = coarse if decoding == "coarse-only" else default_model.generate_fine_codes(
            coarse, sync_frames=default_model.config.sync_frames, do_sample=decoding == "sample", seed=0)
        expected = default_model.decode(full).audio_values[0, 0, : len(audio)].numpy()
    np.testing.assert_allclose(decoded, expected, atol=1e-4)
    # Trained, not random: the decoded speech follows the input's envelope (random weights give ~0 correlation).
    frame = 320
    usable = len(audio) // frame * frame
    envelope = lambda signal: np.log(np.square(signal[:usable]).reshape(-1, frame).mean(axis=1) + 1e-6)  # noqa: E731
    assert np.corrcoef(envelope(audio), envelope(decoded))[0, 1] > 0.8


def test_bundling_stores_half_precision_without_code_and_replaces_the_folder(tmp_path):
    torch.manual_seed(0)
    model = lmcodec.LMCodecModel(tiny_config()).eval()
    source = tmp_path / "trained"
    lmcodec.save_checkpoint(model, source)
    destination = tmp_path / "default"
    destination.mkdir()
    (destination / "stale.py").write_text("old")
    shutil.copytree(DEFAULT / "onnx", destination / "onnx")  # graphs of other weights: exported anew, not carried
    stale_graphs = digests(destination / "onnx")
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"steps": {"codec": 10}, "hardware": "2 CPU cores"}))
    bundle_default_checkpoint(source, destination, training_facts=facts)
    names = {path.name for path in destination.iterdir()}
    assert names == {"config.json", "model.safetensors", "preprocessor_config.json", "training_facts.json",
                     "README.md", "onnx"}
    assert digests(destination / "onnx") != stale_graphs
    assert claimed_code_files(destination) == {}  # no code in the folder, so neither config claims any
    card = (destination / "README.md").read_text()
    assert "this folder carries no code of its own" in card and "`onnx/manifest.json`" in card  # rendered after export
    assert stored_dtypes(destination) <= {torch.float16, torch.bool, torch.int64, torch.int32}
    reloaded = lmcodec.LMCodecModel.from_pretrained(str(destination))
    assert reloaded.dtype == torch.float32
    for name, tensor in model.state_dict().items():
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(reloaded.state_dict()[name], expected), name


def test_bundling_refuses_values_beyond_half_precision(tmp_path):
    model = lmcodec.LMCodecModel(tiny_config()).eval()
    with torch.no_grad():
        model.quantizer.codebooks[0, 0, 0] = 1e6
    source = tmp_path / "trained"
    lmcodec.save_checkpoint(model, source)
    with pytest.raises(LMCodecError, match="float16's range"):
        bundle_default_checkpoint(source, tmp_path / "default")
    assert not (tmp_path / "default").exists() and [p.name for p in tmp_path.iterdir()] == ["trained"]


def test_assembling_takes_each_lm_from_its_checkpoint_and_refuses_other_codes(tmp_path):
    from lmcodec.training.assemble import assemble_checkpoint

    torch.manual_seed(0)
    codec = lmcodec.LMCodecModel(tiny_config(entropy_lm_depth=False)).eval()
    fine, entropy = (lmcodec.LMCodecModel(tiny_config(entropy_lm_depth=True)).eval() for _ in range(2))
    for model in (fine, entropy):  # the LMs were trained on the codec's codes: same encoder and quantizer
        model.encoder.load_state_dict(codec.encoder.state_dict())
        model.quantizer.load_state_dict(codec.quantizer.state_dict())
    export_integer_entropy_model(entropy)  # as train-lm --target entropy does: coding uses this integer twin
    for name, model in {"codec": codec, "fine": fine, "entropy": entropy}.items():
        lmcodec.save_checkpoint(model, tmp_path / name)
    assembled = assemble_checkpoint(tmp_path / "codec", tmp_path / "fine", tmp_path / "entropy")
    state = assembled.state_dict()
    assert any(name.startswith("integer_entropy_lm.") for name in state)
    for name, tensor in state.items():
        source = fine if name.startswith("fine_lm.") else entropy if "entropy_lm." in name else codec
        assert torch.equal(tensor, source.state_dict()[name]), name
    # the entropy LM's config comes with its weights, and the integer model with them
    assert assembled.config.entropy_lm_depth is True and assembled.config.integer_entropy_model
    audio = speech_like(1.0)  # entropy coding works (it needs the integer model) and decodes
    decoded, _ = assembled.decompress(assembled.compress(audio, sampling_rate=16000, entropy_coding=True),
                                      fine_decoding="coarse-only")
    assert abs(len(decoded) - len(audio)) < assembled.config.hop_length

    with torch.no_grad():
        fine.quantizer.codebooks.add_(1.0)
    lmcodec.save_checkpoint(fine, tmp_path / "fine")
    with pytest.raises(LMCodecError, match="trained on other codes: its quantizer.codebooks differs"):
        assemble_checkpoint(tmp_path / "codec", tmp_path / "fine", tmp_path / "entropy")


STREAMING_DECODE_TOLERANCE = 2e-4  # the README states this figure


@pytest.mark.slow
def test_streaming_decode_matches_one_shot_on_real_speech(default_model):
    """Frame-by-frame streaming decode of the bundled checkpoint equals one-shot `decode` within the tolerance the
    README states, with all 12 levels, on the test-other utterance that differs most of those measured."""
    import soundfile as sf

    files = speech_files("librispeech-test-other", 50)
    path = next((file for file in files if file.stem == "1998-15444-0000"), files[0])
    audio, _ = sf.read(path, dtype="float32")
    codes = default_model.encode(torch.from_numpy(audio)[None, None]).audio_codes
    one_shot = default_model.decode(codes).audio_values[0, 0].numpy()
    decoder = default_model.streaming_decoder()
    frames = [decoder.push(codes[0, :, index : index + 1]) for index in range(codes.shape[-1])]
    streamed = torch.cat([*frames, decoder.flush()]).numpy()
    assert streamed.shape == one_shot.shape
    assert np.abs(streamed - one_shot).max() <= STREAMING_DECODE_TOLERANCE


def digests(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_bundled_card_is_what_the_renderer_makes_of_the_folder(tmp_path):
    """README.md of the bundled default is the renderer's output for the folder as shipped (its files, weights,
    results.json and training_facts.json): re-rendering a copy (`bundle_default --card-only`) gives the same bytes and
    writes nothing else."""
    copy = tmp_path / "default_checkpoint"
    shutil.copytree(DEFAULT, copy)
    before = digests(copy)
    (copy / "README.md").unlink()
    render_bundled_card(copy)
    assert digests(copy) == before, "README.md is stale: python -m lmcodec.training.bundle_default --card-only"
    assert (copy / "README.md").stat().st_mode & 0o777 == 0o644


def test_rebundling_the_default_keeps_its_weights_and_its_onnx_graphs(tmp_path):
    """Bundling the bundled default again (new results, say) reproduces its weights byte for byte, carries its ONNX
    graphs over (they fit those weights) and lists them in the card; the runtime loads the result."""
    import lmcodec.runtime

    destination = bundle_default_checkpoint(DEFAULT, tmp_path / "default",
                                            training_facts=DEFAULT / "training_facts.json",
                                            results=DEFAULT / "results.json")
    mine, shipped = digests(destination), digests(DEFAULT)
    assert mine["model.safetensors"] == shipped["model.safetensors"]
    assert {name: digest for name, digest in mine.items() if name.startswith("onnx/")} == {
        name: digest for name, digest in shipped.items() if name.startswith("onnx/")}
    assert "`onnx/`" in (destination / "README.md").read_text()
    assert all(path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644) for path in destination.rglob("*"))
    codec = lmcodec.runtime.load_codec(destination)
    audio = speech_like(0.7)
    assert codec.compress(audio) == lmcodec.runtime.load_codec(DEFAULT).compress(audio)
