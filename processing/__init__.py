"""Turning user audio into model input and back: read any file soundfile reads, mix to mono, resample, write."""

from .audio_io import load_audio, resample, to_mono, write_audio

__all__ = ["load_audio", "resample", "to_mono", "write_audio"]
