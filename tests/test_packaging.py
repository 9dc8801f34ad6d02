"""The built wheel (not only the editable install) imports `lmcodec` and every subpackage in a fresh venv, and carries
its package data: the bundled default checkpoint (loadable from the installed files) and the model card templates.
Building it prints no warning caused by the project's own configuration (licence, package discovery, package data)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

from tests.conftest import REPO

SUBPACKAGES = ["lmcodec", "lmcodec.processing", "lmcodec.runtime", "lmcodec.training", "lmcodec.training.metrics",
               "lmcodec.hub_cards", "lmcodec.cli", "lmcodec.runtime.graphs", "lmcodec.runtime.fine_lm"]
SOURCES = ["pyproject.toml", "README.md", "modeling_lmcodec", "processing", "runtime", "training", "hub_cards"]
# What setuptools prints when the project's configuration is out of date or incomplete.
CONFIGURATION_WARNINGS = ["BuildBackendWarning", "SetuptoolsDeprecationWarning", "Package would be ignored",
                          "is absent from the `packages` configuration", "`project.license` as a TOML table"]


def copy_sources(folder):
    """A copy of what the package is built from in `folder/source` (the tree as it is, untracked files aside)."""
    source = folder / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    return source


@pytest.mark.slow
def test_wheel_installs_and_imports_every_subpackage(tmp_path):
    source = copy_sources(tmp_path)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(wheels),
         str(source)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    output = build.stdout + build.stderr
    assert not [warning for warning in CONFIGURATION_WARNINGS if warning in output], output[-5000:]
    wheel = next(wheels.glob("lmcodec-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    checkpoint = REPO / "modeling_lmcodec" / "default_checkpoint"
    bundled = {f"lmcodec/default_checkpoint/{path.relative_to(checkpoint).as_posix()}" for path in checkpoint.rglob("*")
               if path.is_file()}  # its onnx/ graphs included
    templates = {f"lmcodec/hub_cards/templates/{path.name}" for path in (REPO / "hub_cards" / "templates").glob("*.md")}
    assert {"lmcodec/default_checkpoint/model.safetensors", "lmcodec/default_checkpoint/onnx/manifest.json"} <= bundled
    assert len(templates) >= 2
    assert bundled | templates <= names, sorted(bundled | templates - names)

    environment = tmp_path / "venv"
    venv.create(environment, system_site_packages=True, with_pip=True)
    python = environment / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # Dependencies (torch, transformers, ...) come from the test's environment, but not its editable lmcodec:
    # a plain path line does not run that environment's .pth hooks.
    (environment / site_packages.split(str(environment) + "/", 1)[1] / "deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300)
    probe = (
        "import importlib, lmcodec\n"
        f"for name in {SUBPACKAGES!r}: importlib.import_module(name)\n"
        "from lmcodec.hub_cards.model_card import template_path\n"
        "assert template_path().is_file(), template_path()\n"
        "model = lmcodec.LMCodecModel.from_pretrained(lmcodec.DEFAULT_CHECKPOINT)\n"
        "assert lmcodec.DEFAULT_CHECKPOINT.startswith(lmcodec.__file__.rsplit('/', 1)[0])\n"
        "print(lmcodec.__file__)\n"
    )
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().startswith(str(environment)), result.stdout
