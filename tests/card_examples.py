"""Running a model card's examples as a reader would: each Python block in a fresh interpreter (nothing imported or
registered before it), offline, with a temporary HF_HOME, in a working directory outside the repository that holds a
`speech.flac`, and optionally with modules blocked (`sys.modules[name] = None`: `lmcodec` for the remote-code example,
`torch` for the runtime's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import soundfile as sf

from tests.conftest import REPO, speech_like


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def section(text: str, title: str) -> str:
    """The body of the `## title` section of a card (up to the next `## ` heading)."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def workdir(tmp_path: Path, name: str = "reader") -> Path:
    """A fresh folder outside the repository with a 1.3 s `speech.flac` at 22.05 kHz (the examples resample it)."""
    folder = tmp_path / name
    folder.mkdir()
    assert REPO not in folder.resolve().parents
    sf.write(folder / "speech.flac", speech_like(1.3, 22050, seed=5), 22050)
    return folder


def run_python(code: str, cwd: Path, block: tuple[str, ...] = (), args: tuple[str, ...] = (),
               timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter in `cwd` (offline, temporary HF_HOME beside it, `block`ed modules
    importable by no one); fails the test with the tail of stderr unless it exits 0."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in block)
    script = cwd / f"example_{len(list(cwd.glob('example_*.py')))}.py"
    script.write_text(prelude + textwrap.dedent(code))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HF_ENDPOINT")}
    env.update(HF_HOME=str(cwd.parent / f"hf_home_{cwd.name}"), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    done = subprocess.run([sys.executable, script.name, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{script.name} failed:\n{script.read_text()}\n{done.stderr[-4000:]}"
    return done
