"""Audio files in and out: soundfile for I/O, soxr for resampling, atomic writes so no partial file is left."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from lmcodec.errors import LMCodecError
from lmcodec.frames import SAMPLING_RATE

from .files import atomic_output


def to_mono(audio: np.ndarray) -> np.ndarray:
    """`[T]` or soundfile-style `[T, C]` → float32 `[T]` (channels averaged)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Resample mono float audio `[T]` with soxr (high quality); returns float32 `[T * target_sr / orig_sr]`."""
    if orig_sr <= 0:
        raise LMCodecError(f"invalid sampling rate {orig_sr} Hz: it must be a positive number of samples per second.")
    audio = np.asarray(audio, dtype=np.float32)
    if orig_sr == target_sr:
        return audio
    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read any file soundfile reads → (float32 `[T, C]`, sampling rate), with one-line errors for bad paths."""
    path = Path(path)
    if not path.exists():
        raise LMCodecError(f"input file not found: {path} (check the path).")
    if path.is_dir():
        raise LMCodecError(f"input is a directory, not an audio file: {path} (pass a file such as speech.wav).")
    try:
        audio, sampling_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise LMCodecError(
            f"cannot read {path} as audio ({detail}); use a wav, flac, ogg, mp3 or aiff file."
        ) from None
    return audio, int(sampling_rate)


def load_audio(path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE) -> tuple[np.ndarray, int]:
    """Read an audio file, mix it to mono and resample it → (float32 `[T]`, `sampling_rate`).

    Any channel count and rate soundfile reads are accepted; empty files raise `LMCodecError`.
    """
    audio, file_rate = read_audio(path)
    if audio.shape[0] == 0:
        raise LMCodecError(f"{path} contains no audio samples (zero length); pass a non-empty recording.")
    return resample(to_mono(audio), file_rate, sampling_rate), sampling_rate


def write_audio(path: str | os.PathLike, audio: np.ndarray, sampling_rate: int, subtype: str | None = None) -> None:
    """Write mono float audio `[T]` (clipped to [-1, 1]) to `path` whole or not at all (`files.atomic_output`)."""
    path = Path(path)
    file_format = _format_for(path)
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    with atomic_output(path, example="out.wav") as temporary:
        try:
            sf.write(str(temporary), audio, sampling_rate, subtype=subtype, format=file_format)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
            raise LMCodecError(f"cannot write {path} ({str(error).splitlines()[0]}); use a .wav or .flac name.") from None


def _format_for(path: Path) -> str:
    extension = path.suffix.lower().lstrip(".") or "wav"
    formats = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "aiff": "AIFF", "aif": "AIFF", "mp3": "MP3"}
    if extension not in formats:
        raise LMCodecError(f"unsupported output format '.{extension}'; use .wav, .flac, .ogg, .aiff or .mp3.")
    return formats[extension]
