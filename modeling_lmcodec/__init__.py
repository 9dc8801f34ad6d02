"""LMCodec: a low-bitrate causal neural speech codec as a Hugging Face model package.

Importing `lmcodec` registers `LMCodecConfig`, `LMCodecModel` and `LMCodecFeatureExtractor` with transformers'
`AutoConfig`, `AutoModel` and `AutoFeatureExtractor`.
"""

from pathlib import Path

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from .checkpoint import save_checkpoint
from .configuration_lmcodec import LMCodecConfig
from .errors import LMCodecError
from .feature_extraction_lmcodec import LMCodecFeatureExtractor
from .modeling_lmcodec import (
    LMCodecDecoderOutput,
    LMCodecEncoderOutput,
    LMCodecModel,
    LMCodecOutput,
    LMCodecPreTrainedModel,
)
from .processing import load_audio
from .training.metrics import metric_path

__version__ = "0.1.0"

DEFAULT_CHECKPOINT = str(Path(__file__).resolve().parent / "default_checkpoint")
"""The trained checkpoint bundled with the package (float16 storage, float32 compute): pass it to
`LMCodecModel.from_pretrained`, `AutoModel.from_pretrained` or `--model`; the command line uses it by default."""

AutoConfig.register(LMCodecConfig.model_type, LMCodecConfig, exist_ok=True)
AutoModel.register(LMCodecConfig, LMCodecModel, exist_ok=True)
AutoFeatureExtractor.register(LMCodecConfig, LMCodecFeatureExtractor, exist_ok=True)

# Saved checkpoints carry their code and an `auto_map`, so they load with `trust_remote_code=True` without lmcodec.
LMCodecConfig.register_for_auto_class("AutoConfig")
LMCodecModel.register_for_auto_class("AutoModel")
LMCodecFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "DEFAULT_CHECKPOINT",
    "LMCodecConfig",
    "LMCodecDecoderOutput",
    "LMCodecEncoderOutput",
    "LMCodecError",
    "LMCodecFeatureExtractor",
    "LMCodecModel",
    "LMCodecOutput",
    "LMCodecPreTrainedModel",
    "load_audio",
    "metric_path",
    "save_checkpoint",
]
