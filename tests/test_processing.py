"""lmcodec.load_audio / write_audio: formats, channel mixing, resampling, errors, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import lmcodec
from lmcodec.processing import resample, write_audio


def tone(seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.mark.parametrize("extension, subtype", [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"),
                                                ("aiff", "PCM_16")])
def test_reads_common_formats_at_any_rate_and_channel_count(tmp_path, extension, subtype):
    path = tmp_path / f"clip.{extension}"
    stereo = np.stack([tone(0.5, 44100), tone(0.5, 44100, 220.0)], axis=1)
    sf.write(path, stereo, 44100, subtype=subtype)
    audio, rate = lmcodec.load_audio(path)
    assert rate == 16000
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) <= 1


def test_resampling_keeps_the_frequency():
    audio = resample(tone(1.0, 48000, 1000.0), 48000, 16000)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 1000.0) < 2.0


def test_mp3_is_read_when_libsndfile_supports_it(tmp_path):
    path = tmp_path / "clip.mp3"
    try:
        sf.write(path, tone(0.5, 16000), 16000, format="MP3")
    except (sf.LibsndfileError, ValueError, TypeError):
        pytest.skip("this libsndfile build cannot write MP3")
    audio, rate = lmcodec.load_audio(path)
    assert rate == 16000 and len(audio) > 7000


def test_missing_file_directory_and_non_audio(tmp_path):
    with pytest.raises(lmcodec.LMCodecError, match="input file not found"):
        lmcodec.load_audio(tmp_path / "missing.wav")
    with pytest.raises(lmcodec.LMCodecError, match="is a directory"):
        lmcodec.load_audio(tmp_path)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(lmcodec.LMCodecError, match="cannot read .* as audio"):
        lmcodec.load_audio(text)


def test_zero_length_audio_is_rejected(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(lmcodec.LMCodecError, match="zero length"):
        lmcodec.load_audio(path)


def test_write_is_atomic_and_clips(tmp_path):
    path = tmp_path / "out.wav"
    write_audio(path, np.array([2.0, -2.0, 0.5], dtype=np.float32), 16000, subtype="FLOAT")
    audio, _ = sf.read(path)
    np.testing.assert_allclose(audio, [1.0, -1.0, 0.5])
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_write_errors_leave_nothing_behind(tmp_path):
    with pytest.raises(lmcodec.LMCodecError, match="does not exist"):
        write_audio(tmp_path / "missing" / "out.wav", np.zeros(10), 16000)
    with pytest.raises(lmcodec.LMCodecError, match="unsupported output format"):
        write_audio(tmp_path / "out.xyz", np.zeros(10), 16000)
    assert list(tmp_path.iterdir()) == []
