"""A runtime-only install: the built wheel with `--no-deps` plus requirements-runtime.txt in a fresh virtual
environment without torch, transformers or datasets. Its command line and Python API encode and decode real speech
with the bundled default, and torch is never imported on that path (the interpreter refuses to load it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv

import pytest

from tests.conftest import REPO, speech_files
from tests.test_packaging import copy_sources

PYTHON_API = textwrap.dedent("""
    import sys
    import numpy as np, soundfile as sf
    import lmcodec, lmcodec.runtime
    audio, rate = sf.read(sys.argv[1], dtype="float32")
    codec = lmcodec.runtime.load_codec(lmcodec.DEFAULT_CHECKPOINT)
    data = codec.compress(audio, rate)
    decoded, decoded_rate = codec.decompress(data)
    assert decoded_rate == 16000 and abs(len(decoded) - round(len(audio) * 16000 / rate)) <= 1
    assert 0.5 < len(data) * 8 / (len(audio) / rate) / 1000 < 2.0  # about 1.2 kbps
    loaded = [name for name in ("torch", "transformers", "datasets") if name in sys.modules]
    assert not loaded, loaded
    print("ok", len(data))
""")


@pytest.mark.slow
def test_runtime_only_install_codes_real_speech_without_torch(tmp_path):
    path = speech_files("librispeech-test-other", 1)[0]
    source = copy_sources(tmp_path)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, text=True, timeout=600)
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)  # no system site packages: only what is installed here
    python = environment / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(next(wheels.glob("*.whl")))],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REPO / "requirements-runtime.txt")],
                             capture_output=True, text=True, timeout=900)
    if install.returncode != 0 and "No matching distribution" in install.stderr + install.stdout:
        pytest.skip("the package index is unreachable: cannot install the runtime's requirements")
    assert install.returncode == 0, install.stderr[-2000:]
    for name in ("torch", "transformers", "datasets"):
        found = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True)
        assert found.returncode != 0, f"{name} is installed in the runtime-only environment"

    work = tmp_path / "work"
    work.mkdir()
    script = work / "api.py"
    script.write_text(PYTHON_API)
    result = subprocess.run([str(python), str(script), str(path)], cwd=work, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-2000:]
    lmcodec_cli = environment / "bin" / "lmcodec"
    for arguments in (["encode", str(path), "speech.lmc"], ["info", "speech.lmc"],
                      ["decode", "speech.lmc", "speech.wav"], ["roundtrip", str(path), "again.wav"]):
        result = subprocess.run([str(lmcodec_cli), *arguments], cwd=work, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (arguments, result.stderr[-2000:])
    assert (work / "speech.wav").stat().st_size > 0
    for arguments in (["decode", "speech.lmc", "x.wav", "--backend", "torch"],
                      ["decode", "speech.lmc", "y.wav", "--fine-decoding", "expected"]):
        result = subprocess.run([str(lmcodec_cli), *arguments], cwd=work, capture_output=True, text=True, timeout=300)
        if arguments[-1] == "torch":  # the torch backend needs torch: one line saying so, exit code 2
            assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert "torch" in result.stderr
        else:
            assert result.returncode == 0, result.stderr[-2000:]
