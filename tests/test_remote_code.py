"""Checkpoints carry their own code: they load with trust_remote_code=True where `lmcodec` cannot be imported.

Tested as DESIGN.md says: a subprocess with `sys.modules["lmcodec"] = None`, a temporary HF_HOME, HF_HUB_OFFLINE=1 and a
working directory outside the repo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

import lmcodec
from tests.conftest import speech_like

REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["lmcodec"] = None  # the package must not be needed
    import numpy as np, torch
    from transformers import AutoFeatureExtractor, AutoModel
    checkpoint, audio_path, out_path = sys.argv[1:4]
    model = AutoModel.from_pretrained(checkpoint, trust_remote_code=True).eval()
    extractor = AutoFeatureExtractor.from_pretrained(checkpoint, trust_remote_code=True)
    audio = np.load(audio_path)
    batch = extractor(audio, sampling_rate=16000)
    codes = model.encode(batch["input_values"], batch["padding_mask"]).audio_codes
    values = model.decode(codes, batch["padding_mask"]).audio_values
    assert "lmcodec" not in type(model).__module__.split(".")[0], type(model).__module__
    stream = model.compress(audio)
    decoded, _ = model.decompress(stream)
    np.savez(out_path, codes=codes.numpy(), values=values.numpy(), model_class=type(model).__name__,
             extractor_class=type(extractor).__name__, stream=np.frombuffer(stream, dtype=np.uint8), decoded=decoded)
    """
)


def test_checkpoint_loads_with_remote_code_without_the_package(tiny_model, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    lmcodec.save_checkpoint(tiny_model, checkpoint)
    names = sorted(p.name for p in checkpoint.iterdir())
    for required in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_lmcodec.py",
                     "configuration_lmcodec.py", "feature_extraction_lmcodec.py", "quantizer.py", "frames.py",
                     "integer_entropy_model.py", "integer_export.py"):
        assert required in names, names
    auto_map = json.loads((checkpoint / "config.json").read_text())["auto_map"]
    assert set(auto_map) >= {"AutoConfig", "AutoModel"}

    audio = speech_like(0.9)
    np.save(tmp_path / "audio.npy", audio)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "remote.py").write_text(REMOTE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "remote.py", str(checkpoint), str(tmp_path / "audio.npy"), str(tmp_path / "out.npz")],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = np.load(tmp_path / "out.npz")
    assert str(remote["model_class"]) == "LMCodecModel"
    assert str(remote["extractor_class"]) == "LMCodecFeatureExtractor"

    batch = lmcodec.LMCodecFeatureExtractor()(audio, sampling_rate=16000)
    codes = tiny_model.encode(batch["input_values"], batch["padding_mask"]).audio_codes
    values = tiny_model.decode(codes, batch["padding_mask"]).audio_values
    np.testing.assert_array_equal(remote["codes"], codes.numpy())
    np.testing.assert_allclose(remote["values"], values.numpy(), atol=1e-6)
    # The remote copy writes the very same bitstream, and this package decodes it.
    assert remote["stream"].tobytes() == tiny_model.compress(audio)
    decoded, _ = tiny_model.decompress(remote["stream"].tobytes())
    np.testing.assert_allclose(remote["decoded"], decoded, atol=1e-6)


def test_auto_classes_load_a_checkpoint_after_import(tiny_model, tmp_path):
    from transformers import AutoFeatureExtractor, AutoModel

    lmcodec.save_checkpoint(tiny_model, tmp_path)
    model = AutoModel.from_pretrained(tmp_path)
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(model, lmcodec.LMCodecModel)
    assert isinstance(extractor, lmcodec.LMCodecFeatureExtractor)
    assert torch.equal(model.quantizer.codebooks, tiny_model.quantizer.codebooks)


# ------------------------------------------------------------------------------------------------ the bundled default
def test_a_saved_checkpoint_carries_every_code_file_it_claims(tiny_model, tmp_path):
    """A checkpoint that claims remote code (an `auto_map` in config.json or preprocessor_config.json) carries it."""
    from lmcodec.hub_cards.model_card import carries_code, claimed_code_files

    lmcodec.save_checkpoint(tiny_model, tmp_path)
    claims = claimed_code_files(tmp_path)
    assert set(claims) == {"config.json", "preprocessor_config.json"}
    assert {"configuration_lmcodec.py", "modeling_lmcodec.py"} <= set(claims["config.json"])
    assert all((tmp_path / name).is_file() for names in claims.values() for name in names)
    assert carries_code(tmp_path) and not carries_code(lmcodec.DEFAULT_CHECKPOINT)


def test_bundled_default_saved_as_its_card_says_loads_without_the_package(tmp_path):
    """The bundled folder carries no code (the package loads it); its card says how to get a copy that does. Saved that
    way, the copy loads with trust_remote_code=True where `lmcodec` cannot be imported (temporary HF_HOME, offline,
    outside the repository), runs the card's no-package example, and encodes, decodes and compresses exactly as the
    package's model of the bundled default does."""
    from tests.card_examples import python_blocks, run_python, section, workdir

    card = (Path(lmcodec.DEFAULT_CHECKPOINT) / "README.md").read_text()
    _, save, remote, _ = python_blocks(section(card, "How to use"))
    save_line = next(line for line in save.splitlines() if "lmcodec.save_checkpoint(" in line)
    folder = workdir(tmp_path, "with-package")
    run_python("import lmcodec\n" + save_line + "\n", folder)
    saved = folder / "lmcodec-with-code"
    assert (saved / "modeling_lmcodec.py").is_file() and "auto_map" in json.loads((saved / "config.json").read_text())

    elsewhere = workdir(tmp_path, "without-package")
    check = "assert not type(model).__module__.startswith('lmcodec') and codes.shape[1] == 12\n"
    run_python(remote.replace('"NAMESPACE/NAME"', json.dumps(str(saved))) + check, elsewhere, block=("lmcodec",))

    audio = speech_like(0.9, seed=3)
    np.save(tmp_path / "audio.npy", audio)
    run_python(REMOTE_SCRIPT, elsewhere, block=("lmcodec",),
               args=(str(saved), str(tmp_path / "audio.npy"), str(tmp_path / "out.npz")))
    remote_out = np.load(tmp_path / "out.npz")
    model = lmcodec.LMCodecModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT).eval()
    batch = lmcodec.LMCodecFeatureExtractor()(audio, sampling_rate=16000)
    with torch.no_grad():
        codes = model.encode(batch["input_values"], batch["padding_mask"]).audio_codes
        values = model.decode(codes, batch["padding_mask"]).audio_values
    np.testing.assert_array_equal(remote_out["codes"], codes.numpy())
    np.testing.assert_allclose(remote_out["values"], values.numpy(), atol=1e-5)
    assert remote_out["stream"].tobytes() == model.compress(audio)
    np.testing.assert_allclose(remote_out["decoded"], model.decompress(remote_out["stream"].tobytes())[0], atol=1e-5)


def test_bundled_cards_package_and_runtime_examples_run_in_fresh_processes(tiny_model, tmp_path):
    """The bundled card's examples with the package (LMCodecModel; the Auto classes after register_auto_classes) each
    in a fresh interpreter, the runtime's where torch cannot be imported; and `import lmcodec` after transformers
    registers the Auto classes by itself, for the bundled default and for a saved checkpoint."""
    from tests.card_examples import python_blocks, run_python, section, workdir

    card = (Path(lmcodec.DEFAULT_CHECKPOINT) / "README.md").read_text()
    (quick,) = python_blocks(section(card, "Quick start"))
    auto, _, _, runtime = python_blocks(section(card, "How to use"))
    assert "lmcodec.runtime.load_codec(lmcodec.DEFAULT_CHECKPOINT)" in runtime
    run_python(quick + "assert isinstance(data, bytes) and decoded.ndim == 1 and sampling_rate == 16000\n",
               workdir(tmp_path, "quick"))
    run_python(auto + "assert type(model) is lmcodec.LMCodecModel and codes.shape[1] == 3\n", workdir(tmp_path, "auto"))
    run_python(runtime + "assert isinstance(data, bytes) and decoded.ndim == 1\n"
                         "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n",
               workdir(tmp_path, "runtime"), block=("torch",))
    saved = tmp_path / "saved"
    lmcodec.save_checkpoint(tiny_model, saved)
    run_python(textwrap.dedent("""
        import transformers  # already imported: `import lmcodec` registers LMCodec with the Auto classes at once
        import lmcodec
        from transformers import AutoFeatureExtractor, AutoModel
        for checkpoint in (lmcodec.DEFAULT_CHECKPOINT, sys.argv[1]):
            model = AutoModel.from_pretrained(checkpoint)
            assert type(model) is lmcodec.LMCodecModel, type(model)
            assert type(AutoFeatureExtractor.from_pretrained(checkpoint)) is lmcodec.LMCodecFeatureExtractor
            assert type(lmcodec.LMCodecModel.from_pretrained(checkpoint)) is lmcodec.LMCodecModel
        """), workdir(tmp_path, "import-order"), args=(str(saved),))
