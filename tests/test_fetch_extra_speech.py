"""`training/fetch_extra_speech.sh DEST`: the extra training corpora's recipe, run against local stand-ins for the
three public repositories (git repositories on disk; a stand-in `sox` that marks the files it trims)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "training" / "fetch_extra_speech.sh"
FAKE_SOX = '#!/bin/sh\n# sox IN OUT silence ...: mark the output as trimmed\n{ printf "trimmed "; cat "$1"; } > "$2"\n'

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                                reason="needs git and bash")


def git_repository(path, files: dict[str, bytes]) -> str:
    """A git repository at `path` holding `files` (relative path → bytes) in one commit; returns its file:// URL."""
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)

    def git(*args):
        subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c",
                        "init.defaultBranch=main", *args], cwd=path, check=True, capture_output=True)
    git("init", "-q")
    git("config", "uploadpack.allowFilter", "true")
    git("add", "-A")
    git("commit", "-q", "-m", "corpus")
    return f"file://{path}"


@pytest.fixture
def sources(tmp_path):
    repositories = tmp_path / "repositories"
    environment = {
        "SPEECHOCEAN762_REPO": git_repository(repositories / "speechocean762", {
            "README.md": b"corpus", "WAVE/SPEAKER0001/000010011.WAV": b"so-1", "WAVE/SPEAKER0056/000560016.WAV": b"so-2",
            "WAVE/.DS_Store": b"finder", "scripts/text": b"not audio"}),
        "NPVCC2016_REPO": git_repository(repositories / "npvcc2016", {
            "npVCC2016/trains/SF1/100001.wav": b"vcc-1", "npVCC2016/evals/TM3/200001.wav": b"vcc-2"}),
        "PICOVOICE_REPO": git_repository(repositories / "picovoice", {
            "data/speech/clean/a.wav": b"pico-a", "data/speech/clean/b.wav": b"pico-b",
            "data/noise/kitchen.wav": b"noise", "benchmark/engine.py": b"code"}),
    }
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "sox").write_text(FAKE_SOX)
    (tools / "sox").chmod(0o755)
    environment["PATH"] = f"{tools}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, **environment}


def test_fetches_each_corpus_folder_trims_picovoice_and_records_sources(sources, tmp_path):
    destination = tmp_path / "data" / "speech-extra"
    result = subprocess.run(["bash", str(SCRIPT), str(destination)], env=sources, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    files = sorted(str(path.relative_to(destination)) for path in destination.rglob("*") if path.is_file())
    assert files == ["SOURCES.tsv", "npvcc2016/evals/TM3/200001.wav", "npvcc2016/trains/SF1/100001.wav",
                     "picovoice-intent/a.wav", "picovoice-intent/b.wav", "speechocean762/SPEAKER0001/000010011.WAV",
                     "speechocean762/SPEAKER0056/000560016.WAV"]  # the audio folders only, no download left behind
    assert (destination / "speechocean762/SPEAKER0001/000010011.WAV").read_bytes() == b"so-1"  # as published
    assert (destination / "picovoice-intent/a.wav").read_bytes() == b"trimmed pico-a"  # silence trimmed (sox)
    rows = [line.split("\t") for line in (destination / "SOURCES.tsv").read_text().splitlines()]
    assert rows[0] == ["folder", "corpus", "license", "repository", "commit", "audio folder"]
    assert [row[0] for row in rows[1:]] == ["speechocean762", "npvcc2016", "picovoice-intent"]
    assert [row[2] for row in rows[1:]] == [
        "CC BY 4.0 (OpenSLR SLR101; free for commercial and non-commercial use)", "CC BY 4.0", "Apache-2.0"]
    assert rows[3][3] == sources["PICOVOICE_REPO"] and len(rows[3][4]) == 40 and rows[3][5] == "data/speech/clean/"
    assert "picovoice-intent: 2 files in" in result.stderr

    # Run again into the same folder: every corpus is replaced, not merged or trimmed twice.
    again = subprocess.run(["bash", str(SCRIPT), str(destination)], env=sources, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert (destination / "picovoice-intent/a.wav").read_bytes() == b"trimmed pico-a"


def test_without_a_destination_it_prints_its_usage(sources):
    result = subprocess.run(["bash", str(SCRIPT)], env=sources, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage: bash training/fetch_extra_speech.sh DEST" in result.stderr


def test_audio_kept_in_git_lfs_needs_git_lfs(sources, tmp_path):
    if subprocess.run(["git", "lfs", "version"], capture_output=True).returncode == 0:
        pytest.skip("git-lfs is installed here, so the script would fetch the (stand-in) LFS files")
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 4\n"
    lfs = git_repository(tmp_path / "lfs", {"WAVE/SPEAKER0001/000010011.WAV": pointer})
    destination = tmp_path / "extra"
    result = subprocess.run(["bash", str(SCRIPT), str(destination)], env={**sources, "SPEECHOCEAN762_REPO": lfs},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert f"{lfs} keeps its audio in git LFS; install git-lfs and run this again" in result.stderr
    assert not (destination / "speechocean762").exists() and not (destination / ".download").exists()
