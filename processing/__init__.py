"""Turning user audio into model input and back: read any file soundfile reads, mix to mono, resample, write
(`audio_io`), and output files that appear whole or not at all (`files`). Names load on first use, so importing
`lmcodec.processing.files` does not load numpy or soundfile."""

from __future__ import annotations

import importlib

_AUDIO_NAMES = ("load_audio", "resample", "to_mono", "write_audio")


def __getattr__(name: str):
    if name not in _AUDIO_NAMES:
        raise AttributeError(f"module 'lmcodec.processing' has no attribute {name!r}")
    value = getattr(importlib.import_module(".audio_io", __name__), name)
    globals()[name] = value
    return value


__all__ = list(_AUDIO_NAMES)
