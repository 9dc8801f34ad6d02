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
