"""The README's Python example runs as written."""

from __future__ import annotations

import re

from tests.conftest import REPO, SPEECH_DIR, speech_like


def speech_file(folder) -> None:
    """`folder/speech.flac`: a real recording when the speech folder is there, else a speech-like signal."""
    import shutil

    import soundfile as sf

    recordings = sorted((SPEECH_DIR / "librispeech-test-other").glob("*.flac"))
    if recordings:
        shutil.copy(recordings[0], folder / "speech.flac")
    else:
        sf.write(folder / "speech.flac", speech_like(3.0), 16000)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python example"
    speech_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace = {"__name__": "readme_example"}
    for block in blocks:  # every Python example, in order, sharing one namespace
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "my-lmcodec" / "preprocessor_config.json").exists()
