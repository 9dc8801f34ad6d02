"""LMCodec: a low-bitrate causal neural speech codec as a Hugging Face model package.

Importing `lmcodec` is cheap: names load on first use (PEP 562). The torch-side names (`LMCodecConfig`,
`LMCodecModel`, `LMCodecFeatureExtractor`, ...) import torch and transformers and register the three classes with
transformers' `AutoConfig`, `AutoModel` and `AutoFeatureExtractor`; so does `lmcodec.register_auto_classes()`,
and importing `lmcodec` when transformers is already imported. `lmcodec.runtime` codes without torch.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .errors import LMCodecError

__version__ = "0.1.0"

DEFAULT_CHECKPOINT = str(Path(__file__).resolve().parent / "default_checkpoint")
"""The trained checkpoint bundled with the package (float16 storage, float32 compute; ONNX graphs for the runtime):
pass it to `LMCodecModel.from_pretrained`, `AutoModel.from_pretrained`, `lmcodec.runtime.load_codec` or `--model`;
the command line uses it by default."""

# name → module that defines it; the torch-side modules register the Auto classes when first loaded.
_LAZY_NAMES = {
    "LMCodecConfig": ".configuration_lmcodec",
    "LMCodecFeatureExtractor": ".feature_extraction_lmcodec",
    "LMCodecModel": ".modeling_lmcodec",
    "LMCodecPreTrainedModel": ".modeling_lmcodec",
    "LMCodecOutput": ".modeling_lmcodec",
    "LMCodecEncoderOutput": ".modeling_lmcodec",
    "LMCodecDecoderOutput": ".modeling_lmcodec",
    "save_checkpoint": ".checkpoint",
    "load_model": ".loading",
    "load_audio": ".processing",
    "metric_path": ".training.metrics",
}
_TORCH_NAMES = {name for name, module in _LAZY_NAMES.items() if module in (
    ".configuration_lmcodec", ".feature_extraction_lmcodec", ".modeling_lmcodec", ".checkpoint", ".loading")}
_registered = False


def register_auto_classes() -> None:
    """Register LMCodec with transformers' Auto classes (loads torch and transformers; idempotent). Saved
    checkpoints then carry their code and an `auto_map`, so they load with `trust_remote_code=True` anywhere."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    from .configuration_lmcodec import LMCodecConfig
    from .feature_extraction_lmcodec import LMCodecFeatureExtractor
    from .modeling_lmcodec import LMCodecModel

    AutoConfig.register(LMCodecConfig.model_type, LMCodecConfig, exist_ok=True)
    AutoModel.register(LMCodecConfig, LMCodecModel, exist_ok=True)
    AutoFeatureExtractor.register(LMCodecConfig, LMCodecFeatureExtractor, exist_ok=True)
    LMCodecConfig.register_for_auto_class("AutoConfig")
    LMCodecModel.register_for_auto_class("AutoModel")
    LMCodecFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    _registered = True


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'lmcodec' has no attribute {name!r}")
    if name in _TORCH_NAMES:
        register_auto_classes()
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_NAMES])


if sys.modules.get("transformers") is not None:  # already in the Hugging Face world: make AutoModel know LMCodec right away
    register_auto_classes()

__all__ = ["DEFAULT_CHECKPOINT", "LMCodecError", "register_auto_classes", *_LAZY_NAMES]
