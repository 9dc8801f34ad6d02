"""Loading a checkpoint as an `LMCodecModel` from a local folder or a Hub repo id, with one-line errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import LMCodecError

HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _looks_like_local_path(source: str) -> bool:
    """True for what can only be a path: `./x`, `../x`, `/x`, `~/x`, `C:\\x`, or more than one folder level."""
    return (source.startswith((".", "/", "~", os.sep)) or (os.altsep is not None and os.altsep in source)
            or source.count("/") > 1 or not HUB_REPO_ID.match(source))


def describe_source(source: str | os.PathLike | None) -> str:
    """How a report names the weights `load_model(source)` loads."""
    return "default checkpoint (lmcodec.DEFAULT_CHECKPOINT)" if not source else f"checkpoint {source}"


def resolve_checkpoint(source: str | os.PathLike | None) -> str:
    """The folder or Hub repo id to load: the bundled default for None; one-line errors for a missing folder, a
    folder that is not a checkpoint and a bundled default missing from a broken install."""
    from . import DEFAULT_CHECKPOINT

    if not source:
        if not (Path(DEFAULT_CHECKPOINT) / "model.safetensors").is_file():
            raise LMCodecError(f"the bundled default checkpoint is missing from {DEFAULT_CHECKPOINT}; reinstall lmcodec "
                               "or pass --model with a checkpoint folder or Hub repo id.")
        return DEFAULT_CHECKPOINT
    source = os.fspath(source)
    folder = Path(source).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise LMCodecError(f"{source} is a file, not a checkpoint folder; pass the folder written by "
                               "lmcodec.save_checkpoint.")
        if not (folder / "config.json").is_file():
            raise LMCodecError(f"{source} is not an LMCodec checkpoint folder (no config.json); pass the folder "
                               "written by lmcodec.save_checkpoint.")
        return str(folder)
    if _looks_like_local_path(source):
        raise LMCodecError(f"no such checkpoint folder: {source} (check the path, or pass a Hub repo id such as "
                           "owner/name).")
    return source


def load_model(source: str | os.PathLike | None = None):
    """The checkpoint at `source` (a local folder or a Hub repo id; None: the bundled default) as an
    `lmcodec.LMCodecModel` in eval mode, whatever code the folder holds."""
    from . import LMCodecModel

    location = resolve_checkpoint(source)
    try:
        return LMCodecModel.from_pretrained(location).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LMCodecError(f"cannot load model {source}: {detail}") from None
