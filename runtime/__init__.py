"""The deployable LMCodec runtime: a checkpoint's exported ONNX graphs driven from numpy, with the same bitstream and
integer entropy model as the torch model; it never imports torch or transformers.

    import lmcodec.runtime
    codec = lmcodec.runtime.load_codec(lmcodec.DEFAULT_CHECKPOINT)   # or a folder written by `lmcodec export-onnx`
    data = codec.compress(audio, sampling_rate=16000)
    audio, rate = codec.decompress(data)

Installed by `pip install "lmcodec[runtime]"`-style dependency sets (numpy, onnxruntime, constriction, soundfile,
soxr, safetensors); docs/onnx.md describes the graphs for hosts in other languages.
"""

from __future__ import annotations

import os
from pathlib import Path

ONNX_FOLDER = "onnx"
MANIFEST_NAME = "manifest.json"


def has_graphs(location: str | os.PathLike) -> bool:
    """Whether the checkpoint folder `location` ships ONNX graphs (`onnx/manifest.json`)."""
    return (Path(location) / ONNX_FOLDER / MANIFEST_NAME).is_file()


def load_codec(source: str | os.PathLike | None = None, threads: int = 1):
    """A `RuntimeCodec` for the checkpoint at `source`: a folder with ONNX graphs, a Hub repo id (downloaded with
    huggingface_hub), or None for the bundled default. Every thread pool on its coding path uses `threads`."""
    from lmcodec.errors import LMCodecError
    from lmcodec.loading import resolve_checkpoint
    from lmcodec.threads import limit_threads

    limit_threads(threads)
    location = resolve_checkpoint(source)
    if not Path(location).is_dir():
        from huggingface_hub import snapshot_download

        location = snapshot_download(location)
    if not has_graphs(location):
        raise LMCodecError(f"{location} has no ONNX graphs; export them with `lmcodec export-onnx {location}` "
                           "(needs the torch package), or use lmcodec.LMCodecModel.")
    from .codec import RuntimeCodec, read_config, read_integer_buffers
    from .graphs import load_graphs

    folder = Path(location)
    return RuntimeCodec(folder, load_graphs(folder, threads=threads), read_config(folder),
                        read_integer_buffers(folder))


def __getattr__(name: str):
    if name == "RuntimeCodec":
        from .codec import RuntimeCodec

        return RuntimeCodec
    raise AttributeError(f"module 'lmcodec.runtime' has no attribute {name!r}")


__all__ = ["RuntimeCodec", "has_graphs", "load_codec"]
