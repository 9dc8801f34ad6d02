"""Output files that appear whole or not at all: checked before any work, written to a temporary file beside the
target, then renamed into place with the permissions the user's umask gives a new file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lmcodec.errors import LMCodecError


def check_output_path(path: str | os.PathLike, example: str = "out.wav") -> Path:
    """Fail before any work if `path` cannot be written: its folder must exist and be writable, and it must not be a
    directory (`example` is the kind of file name the error suggests instead)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise LMCodecError(f"cannot write {target}: it is a directory; give a file name such as "
                           f"{target / example}.")
    if not folder.is_dir():
        raise LMCodecError(f"cannot write {target}: folder {folder} does not exist (create it first).")
    if not os.access(folder, os.W_OK):
        raise LMCodecError(f"cannot write {target}: folder {folder} is not writable (choose another location).")
    return target


def new_file_mode() -> int:
    """The mode `open()` would give a new file: 0o666 without the bits of the process's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_output(path: str | os.PathLike, example: str = "out.wav") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it is renamed to `path` (mode from the umask), on
    any error it is removed, so no partial file is ever left behind."""
    target = check_output_path(path, example)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=folder)
    except OSError as error:
        raise LMCodecError(f"cannot write {target}: {error.strerror} (choose a writable location).") from None
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, new_file_mode())
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise LMCodecError(f"cannot write {target}: {error.strerror or error} (choose a writable location).") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def give_default_modes(folder: str | os.PathLike) -> None:
    """Give the files directly in `folder` the mode a new file gets under the umask (libraries that write through a
    private temporary file leave theirs readable by the owner alone)."""
    for path in Path(folder).iterdir():
        if path.is_file():
            os.chmod(path, new_file_mode())


def write_bytes_atomically(path: str | os.PathLike, data: bytes, example: str = "out.lmc") -> None:
    """Write `data` to `path` whole or not at all (see `atomic_output`)."""
    with atomic_output(path, example) as temporary:
        temporary.write_bytes(data)


def write_text_atomically(path: str | os.PathLike, text: str, example: str = "out.txt") -> None:
    """Write `text` (UTF-8) to `path` whole or not at all (see `atomic_output`)."""
    with atomic_output(path, example) as temporary:
        temporary.write_text(text, encoding="utf-8")


def read_stream_file(path: str | os.PathLike) -> bytes:
    """The bytes of an .lmc stream file, with one-line errors for a missing file or a folder."""
    file = Path(path)
    if not file.exists():
        raise LMCodecError(f"input file not found: {file} (check the path).")
    if file.is_dir():
        raise LMCodecError(f"input is a directory, not an .lmc stream: {file}.")
    return file.read_bytes()
