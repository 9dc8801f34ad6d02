"""Reference codecs for the evaluation: Codec2 and Opus, run through their Debian command-line tools.

- Codec2 (`apt-get install codec2`: `c2enc` / `c2dec`) codes 8 kHz 16-bit raw speech. The 16 kHz input is
  resampled to 8 kHz (soxr), coded, decoded and resampled back to 16 kHz for scoring. The bitrate is measured from
  the headerless encoded file (`.bin`), in which every frame is padded to whole bytes: 700C's 28-bit frames take
  4 bytes (0.8 kbps measured for 0.7 nominal) and 1300's 52-bit frames 7 bytes (1.4 kbps).
- Opus (`apt-get install opus-tools`: `opusenc` / `opusdec`) codes the 16 kHz input as 16-bit PCM with
  `--hard-cbr` (a constant bitrate), `--speech` and `--padding 0` (no 512 bytes reserved for tags); `opusdec
  --rate 16000` decodes it. The bitrate is measured from the whole `.opus` file, so it includes the Ogg container
  (page headers, lacing values, the OpusHead and OpusTags packets): at 6 kbps that adds about 0.5 to 0.8 kbps.

Every codec is a `ReferenceCodec` with `code(audio) -> CodedAudio`; `find_reference_codecs` returns those whose
binaries are on PATH and one line for each family that is missing (missing codecs are skipped, never fatal).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from lmcodec.errors import LMCodecError
from lmcodec.processing import resample
from lmcodec.frames import SAMPLING_RATE

FAMILIES = ("codec2", "opus")
CODEC2_RATE = 8000
CODEC2_MODES = ("700C", "1200", "1300", "3200")
OPUS_BITRATES = (6, 8, 12)  # kbps; 6 is the lowest opusenc accepts
APT_PACKAGES = {"codec2": "codec2", "opus": "opus-tools"}


@dataclass
class CodedAudio:
    """What a system returns for one utterance: the decoded 16 kHz audio, the size of the coded file (None when no
    file is made), the size without entropy coding (LMCodec only) and the encode + decode wall time in seconds."""

    audio: np.ndarray
    num_bytes: int | None
    num_bytes_without_entropy_coding: int | None = None
    seconds: float = 0.0


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples → little-endian 16-bit integers (clipped), what the command-line codecs read."""
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad `audio` to exactly `length` samples."""
    audio = np.asarray(audio, dtype=np.float32)[:length]
    return np.pad(audio, (0, length - len(audio)))


def run_tool(command: list[str]) -> None:
    """Run one codec command; a failure raises a one-line LMCodecError with the tool's last stderr line."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout or "").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        raise LMCodecError(f"{command[0]} failed ({' '.join(command)}): {detail}")


@dataclass(frozen=True)
class ReferenceCodec:
    """One reference operating point: its family ("codec2" / "opus"), mode and nominal bitrate."""

    family: str
    mode: str
    nominal_kbps: float

    @property
    def name(self) -> str:
        return f"Codec2 {self.mode}" if self.family == "codec2" else f"Opus {self.mode} kbps"

    @property
    def slug(self) -> str:
        return f"{self.family}-{self.mode.lower()}"

    @property
    def binaries(self) -> tuple[str, str]:
        return ("c2enc", "c2dec") if self.family == "codec2" else ("opusenc", "opusdec")

    @property
    def description(self) -> str:
        if self.family == "codec2":
            return (f"Codec2 mode {self.mode} (c2enc/c2dec) on 8 kHz 16-bit input, resampled back to 16 kHz; "
                    "kbps from the headerless .bin file (frames padded to whole bytes)")
        return (f"Opus at {self.mode} kbps (opusenc --hard-cbr --speech --padding 0, opusdec --rate 16000) on 16 kHz "
                "16-bit input; kbps from the whole .opus file, Ogg container overhead included")

    def code(self, audio: np.ndarray) -> CodedAudio:
        """Encode and decode 16 kHz mono float audio with the command-line tools (in a temporary folder)."""
        with tempfile.TemporaryDirectory(prefix="lmcodec-ref-") as folder:
            work = Path(folder)
            if self.family == "codec2":
                return self._codec2(audio, work)
            return self._opus(audio, work)

    def _codec2(self, audio: np.ndarray, work: Path) -> CodedAudio:
        source, coded, decoded = work / "in.raw", work / "coded.bin", work / "out.raw"
        to_pcm16(resample(audio, SAMPLING_RATE, CODEC2_RATE)).tofile(source)
        run_tool(["c2enc", self.mode, str(source), str(coded)])
        run_tool(["c2dec", self.mode, str(coded), str(decoded)])
        narrowband = np.fromfile(decoded, dtype="<i2").astype(np.float32) / 32768.0
        return CodedAudio(fit_length(resample(narrowband, CODEC2_RATE, SAMPLING_RATE), len(audio)),
                          coded.stat().st_size)

    def _opus(self, audio: np.ndarray, work: Path) -> CodedAudio:
        source, coded, decoded = work / "in.wav", work / "coded.opus", work / "out.wav"
        sf.write(source, to_pcm16(audio), SAMPLING_RATE, subtype="PCM_16")
        run_tool(["opusenc", "--quiet", "--bitrate", self.mode, "--hard-cbr", "--speech", "--padding", "0",
                  str(source), str(coded)])
        run_tool(["opusdec", "--quiet", "--rate", str(SAMPLING_RATE), str(coded), str(decoded)])
        output, _ = sf.read(decoded, dtype="float32", always_2d=True)
        return CodedAudio(fit_length(output.mean(axis=1), len(audio)), coded.stat().st_size)


def all_reference_codecs() -> list[ReferenceCodec]:
    """Every reference operating point the evaluation knows, cheapest first within each family."""
    codec2 = [ReferenceCodec("codec2", mode, 0.7 if mode == "700C" else int(mode) / 1000) for mode in CODEC2_MODES]
    opus = [ReferenceCodec("opus", str(kbps), float(kbps)) for kbps in OPUS_BITRATES]
    return codec2 + opus


def find_reference_codecs(families=FAMILIES) -> tuple[list[ReferenceCodec], list[str]]:
    """(the codecs of `families` whose binaries are on PATH, one line per family that is missing)."""
    found, missing = [], []
    for family in families:
        codecs = [codec for codec in all_reference_codecs() if codec.family == family]
        absent = [binary for binary in codecs[0].binaries if shutil.which(binary) is None]
        if absent:
            missing.append(f"{codecs[0].name.split()[0]} skipped: {' and '.join(absent)} not found on PATH "
                           f"(apt-get install {APT_PACKAGES[family]})")
        else:
            found.extend(codecs)
    return found, missing


__all__ = ["APT_PACKAGES", "FAMILIES", "SAMPLING_RATE", "CodedAudio", "ReferenceCodec", "all_reference_codecs",
           "find_reference_codecs"]
