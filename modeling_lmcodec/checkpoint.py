"""Saving a complete checkpoint: the model's `save_pretrained` does not write the feature extractor's config, nor
the ONNX graphs the runtime needs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .feature_extraction_lmcodec import LMCodecFeatureExtractor


def save_checkpoint(model, directory: str | os.PathLike, feature_extractor: LMCodecFeatureExtractor | None = None,
                    onnx: bool | None = None, **save_kwargs) -> None:
    """Write `config.json`, `model.safetensors`, `preprocessor_config.json` and the model's code (with `auto_map`)
    to `directory`, so both `AutoModel` and `AutoFeatureExtractor` load it, with or without `import lmcodec`. Files get
    the mode the umask gives (transformers writes the weights readable by their owner alone).

    `onnx=True` also exports the runtime's ONNX graphs to `directory/onnx` (needs the `export` extra). By default
    (None) graphs already in `directory/onnx` are exported again, so they always match the weights written."""
    directory = Path(directory)
    graphs = directory / "onnx"
    onnx = graphs.is_dir() if onnx is None else onnx
    if feature_extractor is None:
        feature_extractor = LMCodecFeatureExtractor(
            sampling_rate=model.config.sampling_rate, hop_length=model.config.hop_length
        )
    from .processing.files import give_default_modes

    model.save_pretrained(directory, **save_kwargs)
    feature_extractor.save_pretrained(directory)
    give_default_modes(directory)
    if onnx:
        import torch

        from .onnx_export import export_onnx

        shutil.rmtree(graphs, ignore_errors=True)
        export_onnx(model.to(torch.float32) if model.dtype != torch.float32 else model, graphs)
