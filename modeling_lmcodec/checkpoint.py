"""Saving a complete checkpoint: the model's `save_pretrained` does not write the feature extractor's config."""

from __future__ import annotations

import os

from .feature_extraction_lmcodec import LMCodecFeatureExtractor


def save_checkpoint(model, directory: str | os.PathLike, feature_extractor: LMCodecFeatureExtractor | None = None,
                    **save_kwargs) -> None:
    """Write `config.json`, `model.safetensors`, `preprocessor_config.json` and the model's code (with `auto_map`)
    to `directory`, so both `AutoModel` and `AutoFeatureExtractor` load it, with or without `import lmcodec`. Files get
    the mode the umask gives (transformers writes the weights readable by their owner alone)."""
    if feature_extractor is None:
        feature_extractor = LMCodecFeatureExtractor(
            sampling_rate=model.config.sampling_rate, hop_length=model.config.hop_length
        )
    from .processing.files import give_default_modes

    model.save_pretrained(directory, **save_kwargs)
    feature_extractor.save_pretrained(directory)
    give_default_modes(directory)
