"""The reference codecs packet by packet, so that a loss pattern can be applied to them: Opus through libopus and
Codec2 1300 through its command-line tools, both in 40 ms packets.

- Opus: the system's libopus (`libopus.so.0`) through ctypes, no Ogg container: 16 kHz mono, the VOIP
  application, the voice signal hint, hard CBR (`OPUS_SET_VBR(0)`), one 40 ms frame per packet. A lost packet is
  decoded by Opus's own concealment (`opus_decode` with no data), or, with in-band FEC, from the next packet's
  low-bitrate redundancy (`decode_fec=1`) when that packet arrives. The decoded audio is moved earlier by the
  encoder's lookahead, so packet k's audio sits where the input's packet k was.
- Codec2 1300: `c2enc` / `c2dec` (through `reference_codecs`) on 8 kHz audio; one 52-bit frame, padded to 7 bytes,
  per 40 ms, so one frame per packet. A lost frame is either left out of the decoder's input and its 40 ms of
  output set to silence ("zeroed"), or replaced by the last received frame's bytes ("repeated").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from lmcodec.errors import LMCodecError
from lmcodec.processing import resample

from .reference_codecs import CODEC2_RATE, SAMPLING_RATE, fit_length, run_tool, to_pcm16

PACKET_SECONDS = 0.04
PACKET_SAMPLES = round(PACKET_SECONDS * SAMPLING_RATE)  # 640 at 16 kHz
CODEC2_MODE = "1300"
CODEC2_FRAME_BYTES = 7  # 52 bits, padded to whole bytes
CODEC2_FRAME_SAMPLES = round(PACKET_SECONDS * CODEC2_RATE)  # 320 at 8 kHz
OPUS_MAX_PACKET = 1500

# opus_defines.h
OPUS_APPLICATION_VOIP = 2048
OPUS_SIGNAL_VOICE = 3001
OPUS_SET_BITRATE = 4002
OPUS_GET_BITRATE = 4003
OPUS_SET_VBR = 4006
OPUS_GET_VBR = 4007
OPUS_SET_INBAND_FEC = 4012
OPUS_GET_INBAND_FEC = 4013
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_GET_PACKET_LOSS_PERC = 4015
OPUS_SET_SIGNAL = 4024
OPUS_GET_LOOKAHEAD = 4027


def packet_count(num_samples: int) -> int:
    """How many 40 ms packets carry `num_samples` of 16 kHz audio (the last one completed with silence)."""
    return -(-num_samples // PACKET_SAMPLES)


# ---------------------------------------------------------------------------------------------------- Opus
@lru_cache(maxsize=1)
def libopus() -> ctypes.CDLL:
    """The system's libopus, with the signatures used here; a one-line error when it is not installed."""
    name = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        library = ctypes.CDLL(name)
    except OSError:
        raise LMCodecError("libopus not found (apt-get install libopus0).") from None
    pointer, integer, samples = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int16)
    library.opus_get_version_string.restype = ctypes.c_char_p
    library.opus_encoder_create.restype = pointer
    library.opus_encoder_create.argtypes = [ctypes.c_int32, integer, integer, ctypes.POINTER(integer)]
    library.opus_encode.restype = ctypes.c_int32
    library.opus_encode.argtypes = [pointer, samples, integer, ctypes.c_char_p, ctypes.c_int32]
    library.opus_encoder_destroy.argtypes = [pointer]
    library.opus_decoder_create.restype = pointer
    library.opus_decoder_create.argtypes = [ctypes.c_int32, integer, ctypes.POINTER(integer)]
    library.opus_decode.restype = integer
    library.opus_decode.argtypes = [pointer, ctypes.c_char_p, ctypes.c_int32, samples, integer, integer]
    library.opus_decoder_destroy.argtypes = [pointer]
    library.opus_encoder_ctl.restype = integer
    return library


def libopus_version() -> str:
    return libopus().opus_get_version_string().decode()


def check_opus(code: int, what: str) -> int:
    if code < 0:
        raise LMCodecError(f"libopus: {what} failed with error {code}.")
    return code


def encoder_set(encoder, request: int, value: int) -> None:
    check_opus(libopus().opus_encoder_ctl(ctypes.c_void_p(encoder), ctypes.c_int(request), ctypes.c_int32(value)),
               f"opus_encoder_ctl({request}, {value})")


def encoder_get(encoder, request: int) -> int:
    value = ctypes.c_int32(0)
    check_opus(libopus().opus_encoder_ctl(ctypes.c_void_p(encoder), ctypes.c_int(request), ctypes.byref(value)),
               f"opus_encoder_ctl({request})")
    return value.value


def opus_encoder(kbps: float, fec: bool, loss_percent: int):
    """A 16 kHz mono VOIP encoder at `kbps`, hard CBR, voice; in-band FEC on or off, told `loss_percent`."""
    error = ctypes.c_int(0)
    encoder = libopus().opus_encoder_create(SAMPLING_RATE, 1, OPUS_APPLICATION_VOIP, ctypes.byref(error))
    check_opus(error.value if encoder else -1, "opus_encoder_create")
    settings = ((OPUS_SET_BITRATE, round(kbps * 1000)), (OPUS_SET_VBR, 0), (OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE),
                (OPUS_SET_INBAND_FEC, int(fec)), (OPUS_SET_PACKET_LOSS_PERC, int(loss_percent)))
    for request, value in settings:
        encoder_set(encoder, request, value)
    return encoder


@lru_cache(maxsize=1)
def opus_lookahead() -> int:
    """The encoder's lookahead in samples at 16 kHz (how much later its decoded audio comes out)."""
    encoder = opus_encoder(6, False, 0)
    try:
        return encoder_get(encoder, OPUS_GET_LOOKAHEAD)
    finally:
        libopus().opus_encoder_destroy(encoder)


def opus_encode(audio: np.ndarray, kbps: float, fec: bool = False, loss_percent: int = 0) -> list[bytes]:
    """16 kHz float audio → one Opus packet per 40 ms (the last completed with silence)."""
    count = packet_count(len(audio))
    pcm = to_pcm16(fit_length(audio, count * PACKET_SAMPLES)).reshape(count, PACKET_SAMPLES)
    encoder, buffer = opus_encoder(kbps, fec, loss_percent), ctypes.create_string_buffer(OPUS_MAX_PACKET)
    try:
        packets = []
        for frame in np.ascontiguousarray(pcm):
            samples = frame.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
            size = check_opus(libopus().opus_encode(encoder, samples, PACKET_SAMPLES, buffer, OPUS_MAX_PACKET),
                              "opus_encode")
            packets.append(buffer.raw[:size])
        return packets
    finally:
        libopus().opus_encoder_destroy(encoder)


class OpusDecoder:
    """A 16 kHz mono libopus decoder: `decode(packet)`, `conceal()` (Opus's PLC) and `recover(next_packet)` (the
    lost packet's audio from the next packet's FEC data), each → 40 ms of float32 audio."""

    def __init__(self):
        error = ctypes.c_int(0)
        self._state = libopus().opus_decoder_create(SAMPLING_RATE, 1, ctypes.byref(error))
        check_opus(error.value if self._state else -1, "opus_decoder_create")
        self._pcm = np.zeros(PACKET_SAMPLES, dtype=np.int16)

    def _run(self, data: bytes | None, fec: int) -> np.ndarray:
        pointer = self._pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        count = check_opus(libopus().opus_decode(self._state, data, len(data) if data else 0, pointer,
                                                 PACKET_SAMPLES, fec), "opus_decode")
        if count != PACKET_SAMPLES:
            raise LMCodecError(f"libopus decoded {count} samples for a 40 ms packet ({PACKET_SAMPLES}).")
        return self._pcm.astype(np.float32) / 32768.0

    def decode(self, packet: bytes) -> np.ndarray:
        return self._run(packet, 0)

    def conceal(self) -> np.ndarray:
        return self._run(None, 0)

    def recover(self, next_packet: bytes) -> np.ndarray:
        return self._run(next_packet, 1)

    def __del__(self):
        if getattr(self, "_state", None):
            libopus().opus_decoder_destroy(self._state)
            self._state = None


def opus_receive(packets: list[bytes], lost: np.ndarray, use_fec: bool) -> np.ndarray:
    """Decode `packets` where `lost` is False; a lost packet is recovered from the next packet's FEC data when
    `use_fec` and that packet arrived, else concealed → 16 kHz float32, moved earlier by the encoder's lookahead."""
    decoder, pieces = OpusDecoder(), []
    for index, packet in enumerate(packets):
        if not lost[index]:
            pieces.append(decoder.decode(packet))
        elif use_fec and index + 1 < len(packets) and not lost[index + 1]:
            pieces.append(decoder.recover(packets[index + 1]))
        else:
            pieces.append(decoder.conceal())
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return fit_length(audio[opus_lookahead():], len(audio))


def opus_bandwidth(packet: bytes) -> str:
    """The audio bandwidth an Opus packet's TOC byte announces (RFC 6716, 3.1)."""
    config = packet[0] >> 3
    if config < 12:  # SILK only: NB, MB, WB in groups of 4
        return ("narrowband", "mediumband", "wideband")[config // 4]
    if config < 16:  # hybrid: SWB, FB
        return ("super-wideband", "fullband")[(config - 12) // 2]
    return ("narrowband", "wideband", "super-wideband", "fullband")[(config - 16) // 4]


# ---------------------------------------------------------------------------------------------------- Codec2
def codec2_encode(audio: np.ndarray) -> list[bytes]:
    """16 kHz float audio → one Codec2 1300 frame (7 bytes) per 40 ms packet (the last completed with silence)."""
    count = packet_count(len(audio))
    narrowband = fit_length(resample(audio, SAMPLING_RATE, CODEC2_RATE), count * CODEC2_FRAME_SAMPLES)
    with tempfile.TemporaryDirectory(prefix="lmcodec-c2-") as folder:
        source, coded = Path(folder) / "in.raw", Path(folder) / "coded.bin"
        to_pcm16(narrowband).tofile(source)
        run_tool(["c2enc", CODEC2_MODE, str(source), str(coded)])
        data = coded.read_bytes()
    if len(data) != count * CODEC2_FRAME_BYTES:
        raise LMCodecError(f"c2enc {CODEC2_MODE} wrote {len(data)} bytes for {count} frames of 40 ms "
                           f"({count * CODEC2_FRAME_BYTES} expected).")
    return [data[start:start + CODEC2_FRAME_BYTES] for start in range(0, len(data), CODEC2_FRAME_BYTES)]


def codec2_decode(frames: list[bytes]) -> np.ndarray:
    """Codec2 1300 frames → 8 kHz float32 audio `[len(frames), 320]` (one row per frame)."""
    if not frames:
        return np.zeros((0, CODEC2_FRAME_SAMPLES), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="lmcodec-c2-") as folder:
        coded, decoded = Path(folder) / "coded.bin", Path(folder) / "out.raw"
        coded.write_bytes(b"".join(frames))
        run_tool(["c2dec", CODEC2_MODE, str(coded), str(decoded)])
        narrowband = np.fromfile(decoded, dtype="<i2").astype(np.float32) / 32768.0
    return narrowband.reshape(len(frames), CODEC2_FRAME_SAMPLES)


def codec2_decoder_input(frames: list[bytes], lost: np.ndarray, repeat: bool) -> tuple[list[bytes], list[int]]:
    """(the frames the receiver hands to the decoder, the packet index each one's output fills). A lost frame is
    skipped, or with `repeat` replaced by the last received frame (skipped when none was received yet)."""
    sent, positions, last = [], [], None
    for index, (frame, is_lost) in enumerate(zip(frames, lost)):
        if not is_lost:
            last = frame
        chosen = frame if not is_lost else (last if repeat else None)
        if chosen is not None:
            sent.append(chosen)
            positions.append(index)
    return sent, positions


def codec2_receive(frames: list[bytes], lost: np.ndarray, repeat: bool) -> np.ndarray:
    """Decode the received Codec2 frames (lost ones repeated or zeroed, see `codec2_decoder_input`) → 16 kHz float32
    audio of `len(frames)` packets, exactly silent over every packet whose frame was not decoded."""
    sent, positions = codec2_decoder_input(frames, lost, repeat)
    narrowband = np.zeros((len(frames), CODEC2_FRAME_SAMPLES), dtype=np.float32)
    narrowband[positions] = codec2_decode(sent)
    wideband = fit_length(resample(narrowband.reshape(-1), CODEC2_RATE, SAMPLING_RATE), len(frames) * PACKET_SAMPLES)
    silent = np.ones(len(frames), dtype=bool)
    silent[positions] = False
    wideband.reshape(len(frames), PACKET_SAMPLES)[silent] = 0.0
    return wideband


class RangeBits:
    """The start of an Opus range decoder (RFC 6716, 4.1), reading equiprobable bits: enough for a SILK header."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0
        self.rng = 128
        self.rem = self._byte()
        self.val = self.rng - 1 - (self.rem >> 1)
        self._normalize()

    def _byte(self) -> int:
        value = self.data[self.offset] if self.offset < len(self.data) else 0
        self.offset += 1
        return value

    def _normalize(self) -> None:
        while self.rng <= 1 << 23:
            self.rng <<= 8
            symbol, self.rem = self.rem, self._byte()
            symbol = ((symbol << 8) | self.rem) >> 1
            self.val = ((self.val << 8) + (255 & ~symbol)) & ((1 << 31) - 1)

    def bit(self) -> int:
        """One bit coded with probability 1/2 (`ec_dec_bit_logp(1)`)."""
        half = self.rng >> 1
        one = self.val < half
        if not one:
            self.val -= half
        self.rng = half if one else self.rng - half
        self._normalize()
        return int(one)


def single_frame(packet: bytes) -> bytes:
    """The one compressed frame of an Opus packet of frame count code 0, or code 3 with one frame and padding (what
    a CBR encoder writes; RFC 6716, 3.2)."""
    code = packet[0] & 0x03
    if code == 0:
        return packet[1:]
    if code != 3 or len(packet) < 2 or packet[1] & 0x3F != 1:
        raise LMCodecError(f"not an Opus packet of one frame (TOC byte {packet[0]:#04x}).")
    offset, padding = 2, 0
    if packet[1] & 0x40:  # padding: its length in bytes of 255 (254 each, go on) and a last one
        while packet[offset] == 255:
            padding, offset = padding + 254, offset + 1
        padding, offset = padding + packet[offset], offset + 1
    return packet[offset:len(packet) - padding]


def opus_has_lbrr(packet: bytes) -> bool:
    """Whether a mono SILK-only Opus packet of one 40 ms frame carries in-band FEC: its SILK header's LBRR flag,
    after the two 20 ms frames' voice-activity flags (RFC 6716, 4.2.3-4.2.4)."""
    config = packet[0] >> 3
    if config >= 12 or config % 4 != 2 or packet[0] & 0x04:
        raise LMCodecError(f"not a mono SILK-only 40 ms Opus packet (TOC byte {packet[0]:#04x}).")
    bits = RangeBits(single_frame(packet))
    bits.bit(), bits.bit()  # voice activity of the two 20 ms frames
    return bool(bits.bit())
