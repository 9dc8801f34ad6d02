"""The repository as shipped: nothing in it points outside it (machine paths, folders beside the clone, work notes)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

# What must not appear in shipped files: machine paths, links to folders beside the repository, and work-log words.
OUTSIDE = r"\bsessions?\b|/work/|\.\./shared|issue [0-9]"
# Where naming the shared speech folder beside the repository is allowed (CI and the tests read it from there).
ALLOWED = ("tests", "Makefile", ".ci")


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
def test_nothing_shipped_points_outside_the_repository():
    result = subprocess.run(["git", "grep", "-n", "-I", "-i", "-E", OUTSIDE, "--", ".",
                             *(f":!{path}" for path in ALLOWED)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr  # 1: no match
    # onnxruntime's API names its objects sessions (InferenceSession, SessionOptions, session config keys)
    lines = [line for line in result.stdout.splitlines() if not any(
        name in line for name in ("InferenceSession", "SessionOptions", "add_session_config_entry"))]
    assert not lines, "\n".join(lines)
