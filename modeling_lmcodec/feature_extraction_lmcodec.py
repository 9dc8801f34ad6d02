"""Feature extractor for LMCodec: raw mono 16 kHz audio → padded `input_values` and `padding_mask`."""

from __future__ import annotations

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import logging

from .errors import LMCodecError
from .frames import SAMPLING_RATE, padded_length

logger = logging.get_logger(__name__)

MAX_CHANNELS = 16  # a 2-D input with more "channels" than this is almost certainly [samples, channels]


class LMCodecFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Prepares audio for [`LMCodecModel`]: converts to float32 mono, batches clips of different lengths, zero-pads each
    to the longest clip rounded up to whole code frames (`hop_length` samples), and returns `input_values`
    `[batch, 1, samples]` with `padding_mask` `[batch, samples]` (1 = real audio, 0 = padding).

    Accepted input: a 1-D array or tensor (one mono clip); a 2-D array or tensor `[channels, samples]` (one
    multi-channel clip, channels first, averaged to mono); or a list of those (a batch). Audio must already be at
    `sampling_rate` (16 kHz): resample first, e.g. with `lmcodec.load_audio(path)` for files.

    Args:
        feature_size (`int`, *optional*, defaults to 1):
            Channels of the model input (mono).
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate the model expects, in Hz.
        padding_value (`float`, *optional*, defaults to 0.0):
            Value used for padding.
        hop_length (`int`, *optional*, defaults to 320):
            Samples per code frame; padded lengths are multiples of it.

    Example:

    ```python
    >>> import numpy as np
    >>> from lmcodec import LMCodecFeatureExtractor

    >>> extractor = LMCodecFeatureExtractor()
    >>> batch = extractor([np.zeros(16000), np.zeros(8000)], sampling_rate=16000)
    >>> batch["input_values"].shape, batch["padding_mask"].shape
    (torch.Size([2, 1, 16000]), torch.Size([2, 16000]))
    ```"""

    model_input_names = ["input_values", "padding_mask"]

    def __init__(self, feature_size: int = 1, sampling_rate: int = SAMPLING_RATE, padding_value: float = 0.0,
                 hop_length: int = 320, **kwargs):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.hop_length = hop_length

    def _to_mono_clip(self, clip, index: int) -> np.ndarray:
        """One clip (1-D, or 2-D channels first) → float32 `[T]`."""
        if hasattr(clip, "detach"):
            clip = clip.detach().cpu().numpy()
        clip = np.asarray(clip)
        if clip.dtype.kind not in "fiu":
            raise LMCodecError(f"audio clip {index} has dtype {clip.dtype}; pass numeric samples (float in [-1, 1]).")
        clip = clip.astype(np.float32)
        if clip.ndim == 2:
            if clip.shape[0] > MAX_CHANNELS and clip.shape[1] <= MAX_CHANNELS:
                raise LMCodecError(
                    f"audio clip {index} has shape {clip.shape}, which looks like [samples, channels]; "
                    "pass channels first (audio.T)."
                )
            clip = clip.mean(axis=0)
        elif clip.ndim != 1:
            raise LMCodecError(
                f"audio clip {index} has shape {clip.shape}; pass [samples] or [channels, samples] per clip."
            )
        if clip.shape[0] == 0:
            raise LMCodecError(f"audio clip {index} is empty (zero samples); pass at least one sample.")
        if not np.isfinite(clip).all():
            raise LMCodecError(f"audio clip {index} contains NaN or infinite samples; clean the signal first.")
        return clip

    def __call__(self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = "pt") -> BatchFeature:
        """
        Args:
            raw_audio (`np.ndarray`, `torch.Tensor`, or a list of them):
                One clip (`[samples]` or `[channels, samples]`) or a list of clips of any lengths.
            sampling_rate (`int`, *optional*):
                Sampling rate of `raw_audio`; it must equal `self.sampling_rate`. Pass it to catch mistakes.
            return_tensors (`str`, *optional*, defaults to `"pt"`):
                `"pt"` for torch tensors, `"np"` for numpy arrays.

        Returns:
            [`BatchFeature`] with `input_values` `[batch, 1, padded_samples]` and `padding_mask` `[batch,
            padded_samples]`.
        """
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{self.__class__.__name__}()`. "
                "Failing to do so can result in silent errors that might be hard to debug."
            )
        elif sampling_rate != self.sampling_rate:
            raise LMCodecError(
                f"audio sampled at {sampling_rate} Hz but the model expects {self.sampling_rate} Hz; resample first, "
                f"e.g. soxr.resample(audio, {sampling_rate}, {self.sampling_rate}) or lmcodec.load_audio(path)."
            )
        if isinstance(raw_audio, (list, tuple)) and len(raw_audio) == 0:
            raise LMCodecError("no audio given (empty list); pass one clip or a list of clips.")
        is_batch = isinstance(raw_audio, (list, tuple)) and not np.isscalar(raw_audio[0])
        clips = [self._to_mono_clip(clip, i) for i, clip in enumerate(raw_audio if is_batch else [raw_audio])]

        target = padded_length(max(len(clip) for clip in clips), self.hop_length)
        input_values = np.full((len(clips), 1, target), self.padding_value, dtype=np.float32)
        padding_mask = np.zeros((len(clips), target), dtype=np.int64)
        for row, clip in enumerate(clips):
            input_values[row, 0, : len(clip)] = clip
            padding_mask[row, : len(clip)] = 1
        return BatchFeature({"input_values": input_values, "padding_mask": padding_mask}, tensor_type=return_tensors)


__all__ = ["LMCodecFeatureExtractor"]
