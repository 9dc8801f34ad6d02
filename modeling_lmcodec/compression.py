"""Audio ⇄ LMCodec bitstream: the stream compressor and decompressor behind `compress` / `decompress`.

Sender: streaming encoder (coarse levels only) → packets of `packet_frames` frames → each packet's codes range-coded
with the integer entropy model (or bit-packed raw) → container bytes (`bitstream.py`). Receiver: packets → coarse
codes (checked against each packet's CRC) → fine levels (as `fine_decoding` says) → streaming decoder → audio.
Offline `compress` and `decompress` are these same classes fed everything at once, so streaming output equals
offline output.

This module needs only numpy (and constriction for entropy coding). What runs the codec is a *backend*: the torch
model (`torch_backend.TorchCodecBackend`, used when an `LMCodecModel` is passed) or the ONNX runtime
(`lmcodec.runtime`). A backend provides:

- `settings`: a `CodecSettings`;
- `sender(num_quantizers)`: `push(samples float32 [T] at the model rate) -> codes int64 [K, f]`, `flush() -> [K, f]`;
- `receiver(num_coarse, sync_frames, fine_decoding, seed, start_frame)`: `push(coarse codes [Nc, f]) -> samples
  float32 [f * hop_length]` in [-1, 1], `flush() -> samples` (what the decoder's output delay still holds; the next
  push starts a new decoder stream while the fine levels' context carries on), and `push_latent(latent float32
  [f, D]) -> samples` (a concealed frame's expected latent, decoded without the fine levels);
- `codebooks`: the quantizer's codebooks `[Nq, K, D]` float32;
- `entropy_coder(num_coarse, format_version)`: the range coder (`range_coding.IntegerEntropyCoder` for version 3);
- `fingerprint_arrays(format_version, entropy_coded) -> dict[name, array]`: the tensors the stream depends on;
- `coding_context()`: a context manager around every coding call (the torch backend pins it to one exact thread).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from .bitstream import (
    FORMAT_VERSION,
    Packet,
    PacketReader,
    StreamFraming,
    StreamHeader,
    TruncatedStreamError,
    as_numpy,
    crc16_codes,
    encode_packet,
    fingerprint,
    pack_codes,
    unpack_codes,
)
from .errors import LMCodecError
from .fine_decoding import resolve_fine_decoding
from .frames import num_frames
from .range_coding import NO_INTEGER_MODEL_HINT

def as_backend(codec):
    """A coding backend: `codec` itself if it is one, else the torch backend of an `LMCodecModel`."""
    if hasattr(codec, "receiver") and hasattr(codec, "settings"):
        return codec
    from .torch_backend import TorchCodecBackend

    return TorchCodecBackend.of(codec)


def model_fingerprint(codec, format_version: int = FORMAT_VERSION, entropy_coded: bool = True) -> bytes:
    """8 bytes identifying what the bits depend on: the codebooks, the entropy model and the code layout. From
    format version 3 on the entropy model is the integer one (its tensors hashed exactly), and raw streams depend on
    no entropy model; versions 1 and 2 hash the float entropy LM, so their streams still match the checkpoints that
    wrote them. Both backends give the same 8 bytes for the same checkpoint."""
    backend = as_backend(codec)
    settings = backend.settings
    items = {
        "num_quantizers": settings.num_quantizers,
        "codebook_size": settings.codebook_size,
        "codebook_dim": settings.codebook_dim,
        "entropy_lm_depth": settings.entropy_lm_depth,
        "entropy_lm_config": dict(settings.entropy_lm_fields),
    }
    return fingerprint(backend.fingerprint_arrays(format_version, entropy_coded), items)


def _resampler(from_rate: int, to_rate: int):
    """A streaming soxr resampler, or None when the rates match."""
    if from_rate == to_rate:
        return None
    try:
        import soxr
    except ImportError:
        raise LMCodecError(
            f"audio at {from_rate} Hz must be resampled to {to_rate} Hz, which needs the 'soxr' package "
            "(pip install soxr), or pass 16 kHz audio."
        ) from None
    return soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")


def _as_mono_float32(samples) -> np.ndarray:
    array = np.asarray(as_numpy(samples))
    if array.ndim != 1:
        raise LMCodecError(f"audio must be 1-D mono samples, got shape {array.shape}; mix to mono first.")
    if array.dtype.kind not in "fiu":
        raise LMCodecError(f"audio has dtype {array.dtype}; pass float samples in [-1, 1].")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise LMCodecError("audio contains NaN or infinite samples; clean the signal first.")
    return array


@dataclass
class CodingReport:
    """Byte accounting of one stream: what the bitrate figures are made of."""

    header_bytes: int = 0
    payload_bytes: int = 0
    framing_bytes: int = 0
    packets: int = 0
    frames: int = 0
    information_bits: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes + self.framing_bytes


class LMCodecStreamCompressor:
    """`header() -> bytes`, then `push(samples) -> list[bytes]` of finished packets, and `flush()` at the end."""

    def __init__(self, codec, sampling_rate: int | None = None, num_coarse_quantizers: int | None = None,
                 entropy_coding: bool = True, packet_frames: int | None = None, sync_frames: int | None = None,
                 num_samples: int | None = None, format_version: int = FORMAT_VERSION):
        """`codec`: an `LMCodecModel` or a runtime backend. `sampling_rate`: the rate of the audio pushed (default:
        the model's). `format_version` 1 or 2 writes the float-LM streams of earlier releases, which decode only on
        the same kind of machine (kept for compatibility tests); the default, version 3, decodes anywhere."""
        self.backend = as_backend(codec)
        config = self.backend.settings
        sampling_rate = sampling_rate or config.sampling_rate
        self.num_coarse = config.check_num_coarse(num_coarse_quantizers or config.num_coarse_quantizers)
        self.packet_frames = packet_frames or config.packet_frames
        self.sync_frames = sync_frames or config.sync_frames
        if self.sync_frames > config.max_sync_frames:
            raise LMCodecError(f"sync_frames must be at most {config.max_sync_frames} for this model.")
        self.header_info = StreamHeader(
            entropy_coded=entropy_coding,
            model_sampling_rate=config.sampling_rate,
            original_sampling_rate=sampling_rate,
            num_samples=num_samples,
            hop_length=config.hop_length,
            num_coarse_quantizers=self.num_coarse,
            num_quantizers=config.num_quantizers,
            codebook_size=config.codebook_size,
            sync_period_frames=self.sync_frames,
            packet_length_frames=self.packet_frames,
            model_fingerprint=model_fingerprint(self.backend, format_version, entropy_coding),
            format_version=format_version,
        )
        self._resampler = _resampler(sampling_rate, config.sampling_rate)
        self._encoder = self.backend.sender(self.num_coarse)
        self._coder = self.backend.entropy_coder(self.num_coarse, format_version) if entropy_coding else None
        self._pending = np.zeros((0, self.num_coarse), dtype=np.int64)
        self.report = CodingReport()
        self._header_sent = False
        self._finished = False

    def header(self) -> bytes:
        data = self.header_info.to_bytes()
        if not self._header_sent:
            self.report.header_bytes = len(data)
            self._header_sent = True
        return data

    def _packet(self, codes: np.ndarray, final: bool) -> bytes:
        """codes `[f, Nc]` of one packet → its container bytes."""
        index = self.report.packets
        first_frame = index * self.packet_frames
        if self._coder is not None:
            if first_frame % self.sync_frames == 0:
                self._coder.start_segment()
            payload = self._coder.encode_frames(codes)
            self.report.information_bits = self._coder.information_bits
        else:
            payload = pack_codes(codes, self.header_info.bits_per_code)
        frames = codes.shape[0] if final and codes.shape[0] != self.packet_frames else None
        data = encode_packet(payload, crc16_codes(codes), frames=frames)
        self.report.packets += 1
        self.report.frames += codes.shape[0]
        self.report.payload_bytes += len(payload)
        self.report.framing_bytes += len(data) - len(payload)
        return data

    def _drain(self, final: bool) -> list[bytes]:
        packets = []
        while self._pending.shape[0] >= self.packet_frames or (final and self._pending.shape[0]):
            codes, self._pending = self._pending[: self.packet_frames], self._pending[self.packet_frames :]
            packets.append(self._packet(codes, final and not self._pending.shape[0]))
        return packets

    def push(self, samples) -> list[bytes]:
        """Add audio (1-D, at the `sampling_rate` given) and return the packets completed by it."""
        if self._finished:
            raise LMCodecError("this stream compressor was flushed; create a new one for the next stream.")
        audio = _as_mono_float32(samples)
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        with self.backend.coding_context():
            codes = self._encoder.push(audio)
            self._pending = np.concatenate([self._pending, codes.T])
            return self._drain(final=False)

    def push_codes(self, coarse_codes) -> list[bytes]:
        """Add already computed coarse codes `[Nc, f]` (instead of audio) and return the packets completed by them."""
        if self._finished:
            raise LMCodecError("this stream compressor was flushed; create a new one for the next stream.")
        codes = np.asarray(as_numpy(coarse_codes), dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] != self.num_coarse:
            raise LMCodecError(f"coarse codes must have shape [{self.num_coarse}, frames], got {codes.shape}.")
        codebook_size = self.backend.settings.codebook_size
        if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
            raise LMCodecError(f"codes must lie in 0..{codebook_size - 1}.")
        self._pending = np.concatenate([self._pending, codes.T])
        with self.backend.coding_context():
            return self._drain(final=False)

    def flush(self) -> list[bytes]:
        """End the stream: encode the last partial frame and return the remaining packets."""
        if self._finished:
            raise LMCodecError("this stream compressor was already flushed.")
        self._finished = True
        with self.backend.coding_context():
            pieces = []
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                pieces.append(self._encoder.push(tail))
            pieces.append(self._encoder.flush())
            self._pending = np.concatenate([self._pending, *(codes.T for codes in pieces)])
            return self._drain(final=True)


class LMCodecStreamDecompressor:
    """Built from a stream's header; `push(bytes)` → decoded samples (float32, model rate), `finish()` at the end.

    With `partial=True` damage does not raise: a packet that fails (checksum, range decoder, framing) becomes silence,
    and so does every packet after it until one decodes as the start of a sync period (tried on each packet, so a
    dropped packet is survived too); `lost` lists the silenced frame ranges.
    """

    def __init__(self, codec, header: bytes, do_sample: bool | None = None, seed: int | None = None,
                 partial: bool = False, fine_decoding: str | None = None):
        """`codec`: an `LMCodecModel` or a runtime backend; `fine_decoding` as in `fine_decoding.py` (default: the
        checkpoint's; `do_sample` is its deprecated alias)."""
        self.backend = as_backend(codec)
        self.header_info, consumed = StreamHeader.from_bytes(header)
        self._check_compatible(self.header_info)
        self._leftover = bytes(header[consumed:])
        info = self.header_info
        self.num_coarse = info.num_coarse_quantizers
        self._reader = PacketReader()
        self._coder = (self.backend.entropy_coder(self.num_coarse, info.format_version) if info.entropy_coded
                       else None)
        try:
            self.fine_decoding = resolve_fine_decoding(self.backend.settings.fine_decoding, fine_decoding, do_sample)
        except ValueError as error:
            raise LMCodecError(str(error)) from None
        self._seed = 0 if seed is None else seed  # sampled decoding is reproducible by default
        self._restart_receiver()
        self.partial = partial
        self.frames_done = 0  # frames decoded or silenced so far
        self.samples_emitted = 0
        self.lost: list[tuple[int, int, str]] = []  # (first frame, frames, reason)
        self._damaged = False
        self._damage_reason = ""
        self._reader_failed = False

    def _restart_receiver(self, start_frame: int = 0) -> None:
        """Fresh fine-LM context and decoder state at sync point `start_frame` (at the start, and when decoding
        resumes after damage; sampled fine codes then continue exactly as an undamaged decode would)."""
        self._receiver = self.backend.receiver(self.num_coarse, self.header_info.sync_period_frames,
                                               self.fine_decoding, self._seed, start_frame)

    def _check_compatible(self, info: StreamHeader) -> None:
        config = self.backend.settings
        if (info.num_quantizers, info.codebook_size, info.model_sampling_rate, info.hop_length) != (
            config.num_quantizers, config.codebook_size, config.sampling_rate, config.hop_length
        ):
            raise LMCodecError(
                f"stream was made for {info.num_quantizers} levels × {info.codebook_size} codes at "
                f"{info.model_sampling_rate} Hz, but this model has {config.num_quantizers} × {config.codebook_size} "
                f"at {config.sampling_rate} Hz; decode with the model that encoded it."
            )
        if info.entropy_model == "integer" and not self.backend.has_integer_entropy_model:
            raise LMCodecError(f"stream is entropy-coded with an integer entropy model, but {NO_INTEGER_MODEL_HINT}; "
                               "decode it with the checkpoint that encoded it.")
        if info.model_fingerprint != model_fingerprint(self.backend, info.format_version, info.entropy_coded):
            raise LMCodecError(
                "stream was made by a different model (fingerprint mismatch); decode it with the checkpoint that "
                "encoded it (lmcodec decode --model DIR)."
            )
        config.check_num_coarse(info.num_coarse_quantizers)

    def _decode_codes(self, packet: Packet, frames: int, segment_start: bool) -> np.ndarray:
        """One packet's payload → its coarse codes `[frames, Nc]`, verified against the packet's CRC."""
        if self._coder is not None:
            if segment_start:
                self._coder.start_segment()
            codes = self._coder.decode_frames(packet.payload, frames)
        else:
            codes = unpack_codes(packet.payload, self.header_info.bits_per_code, frames, self.num_coarse)
        packet.check_codes(codes)
        return codes

    def _synthesize(self, codes: np.ndarray) -> np.ndarray:
        """Coarse codes `[f, Nc]` → fine levels (unless coarse-only) → samples `[f * hop_length]`."""
        return self._receiver.push(np.ascontiguousarray(codes.T))

    def _flush_decoder(self) -> np.ndarray:
        """The samples the decoder still holds back (its output delay; none for the default decoder)."""
        return self._receiver.flush()

    def _silence(self, frames: int, reason: str) -> np.ndarray:
        """`frames` frames of silence, after whatever the decoder still held of the audio before them."""
        held = self._flush_decoder()
        if frames <= 0:
            return held
        if self.lost and self.lost[-1][0] + self.lost[-1][1] == self.frames_done and self.lost[-1][2] == reason:
            first, count, _ = self.lost[-1]
            self.lost[-1] = (first, count + frames, reason)
        else:
            self.lost.append((self.frames_done, frames, reason))
        self.frames_done += frames
        return np.concatenate([held, np.zeros(frames * self.backend.settings.hop_length, dtype=np.float32)])

    def decode_packet(self, packet: Packet, true_first_frame: int | None = None) -> np.ndarray:
        """Decode one packet into samples (before trimming to the stream length). `true_first_frame`, when the
        caller knows it (a whole file), places audio correctly after packets were dropped."""
        info = self.header_info
        try:
            frames = info.frames_in(packet)
        except LMCodecError:  # a damaged frame count: its frames are unknown, count a full packet as lost
            if not self.partial:
                raise
            self._damaged = True
            self._damage_reason = f"packet {packet.index} damaged, silent until the next sync point"
            return self._silence(info.packet_length_frames, self._damage_reason)
        sync = info.sync_period_frames
        if not self._damaged:
            try:
                codes = self._decode_codes(packet, frames, segment_start=self.frames_done % sync == 0)
            except LMCodecError:
                if not self.partial:
                    raise
                self._damaged = True
                self._damage_reason = f"packet {packet.index} damaged, silent until the next sync point"
                return self._silence(frames, self._damage_reason)
            self.frames_done += frames
            return self._synthesize(codes)
        try:  # after damage: does this packet start a sync period?
            codes = self._decode_codes(packet, frames, segment_start=True)
        except LMCodecError:
            return self._silence(frames, self._damage_reason)
        self._damaged = False
        resume_at = true_first_frame or self.frames_done
        self._restart_receiver(start_frame=resume_at)
        gap = self._silence(resume_at - self.frames_done, "dropped packets")
        self.frames_done += frames
        return np.concatenate([gap, self._synthesize(codes)])

    def _trim(self, samples: np.ndarray) -> np.ndarray:
        total = self.header_info.num_samples
        if total is not None:
            samples = samples[: max(total - self.samples_emitted, 0)]
        self.samples_emitted += len(samples)
        return samples

    def push(self, data: bytes) -> np.ndarray:
        """Feed stream bytes (any split); returns the samples of every packet completed by them."""
        if self._leftover:
            data, self._leftover = self._leftover + bytes(data), b""
        if self._reader_failed:
            return np.zeros(0, dtype=np.float32)
        try:
            packets = self._reader.feed(data)
        except LMCodecError:
            if not self.partial:
                raise
            self._reader_failed, packets = True, []
        outputs = []
        with self.backend.coding_context():
            for packet in packets:
                outputs.append(self._trim(self.decode_packet(packet)))
        return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)

    def finish(self) -> np.ndarray:
        """End of the stream. Raises if it was cut short (unless `partial`: then the missing tail is silence)."""
        expected = self.header_info.num_frames
        try:
            if not self._reader_failed:
                self._reader.close()
            if expected is not None and self.frames_done < expected:
                raise TruncatedStreamError(
                    f"stream is truncated: {self.frames_done} of {expected} frames present; the file was cut short "
                    "— re-send it or decode with --partial"
                )
        except LMCodecError:
            if not self.partial:
                raise
            if expected is not None:
                return self._trim(self._silence(expected - self.frames_done, "stream truncated or unreadable"))
        return self._trim(self._flush_decoder())

    def describe_losses(self) -> str:
        """One line saying what was lost, in seconds and frames (empty when nothing was)."""
        rate = self.backend.settings.frame_rate
        parts = [f"{first / rate:.2f}-{(first + count) / rate:.2f} s ({reason})" for first, count, reason in self.lost]
        total = sum(count for _, count, _ in self.lost) / rate
        return f"lost {total:.2f} s of audio: " + "; ".join(parts) if parts else ""


def compress(codec, audio, sampling_rate: int | None = None, num_coarse_quantizers: int | None = None,
             entropy_coding: bool = True, packet_frames: int | None = None,
             format_version: int = FORMAT_VERSION) -> tuple[bytes, CodingReport]:
    """Whole audio → stream bytes and their accounting (the stream compressor fed everything at once)."""
    backend = as_backend(codec)
    audio = _as_mono_float32(audio)
    if audio.size == 0:
        raise LMCodecError("audio is empty (zero samples); pass at least one sample.")
    sampling_rate = sampling_rate or backend.settings.sampling_rate
    num_samples = round(len(audio) * backend.settings.sampling_rate / sampling_rate)
    compressor = LMCodecStreamCompressor(backend, sampling_rate, num_coarse_quantizers, entropy_coding,
                                         packet_frames, num_samples=num_samples, format_version=format_version)
    parts = [compressor.header(), *compressor.push(audio), *compressor.flush()]
    return b"".join(parts), compressor.report


def compress_codes(codec, coarse_codes, num_samples: int | None = None, entropy_coding: bool = True,
                   packet_frames: int | None = None, format_version: int = FORMAT_VERSION,
                   return_report: bool = False):
    """Coarse codes → stream bytes (and the `CodingReport` when `return_report`), without running the codec's
    encoder. `coarse_codes`: `[Nc, F]`, or `model.encode(...).audio_codes[:, :Nc]` as it comes (`[1, Nc, F]`).
    `num_samples` (the audio length the header announces) defaults to F whole frames."""
    backend = as_backend(codec)
    codes = np.asarray(as_numpy(coarse_codes))
    if codes.ndim == 3 and codes.shape[0] == 1:
        codes = codes[0]
    if codes.ndim != 2:
        raise LMCodecError(f"coarse codes must have shape [Nc, frames] (or [1, Nc, frames]), got {codes.shape}.")
    hop = backend.settings.hop_length
    num_samples = codes.shape[1] * hop if num_samples is None else num_samples
    if num_frames(num_samples, hop) != codes.shape[1]:
        raise LMCodecError(f"{num_samples} samples make {num_frames(num_samples, hop)} frames, not {codes.shape[1]}.")
    compressor = LMCodecStreamCompressor(backend, backend.settings.sampling_rate, codes.shape[0], entropy_coding,
                                         packet_frames, num_samples=num_samples, format_version=format_version)
    data = b"".join([compressor.header(), *compressor.push_codes(codes), *compressor.flush()])
    return (data, compressor.report) if return_report else data


def decompress_codes(codec, data: bytes) -> np.ndarray:
    """Stream bytes → the coarse codes `[Nc, F]` they carry (each packet checked against its CRC; no audio made)."""
    backend = as_backend(codec)
    data = bytes(data)
    header, offset = StreamHeader.from_bytes(data)
    decompressor = LMCodecStreamDecompressor(backend, data[:offset], fine_decoding="coarse-only")
    reader = PacketReader()
    packets = reader.feed(data[offset:])
    reader.close()
    header.check_packets(packets)
    codes, frames_done = [], 0
    with backend.coding_context() if header.entropy_model == "float" else nullcontext():
        for packet in packets:
            frames = header.frames_in(packet)
            codes.append(decompressor._decode_codes(packet, frames, frames_done % header.sync_period_frames == 0))
            frames_done += frames
    return np.concatenate(codes).T if codes else np.zeros((header.num_coarse_quantizers, 0), dtype=np.int64)


def decompress(codec, data: bytes, do_sample: bool | None = None, seed: int | None = None,
               partial: bool = False, fine_decoding: str | None = None) -> tuple[np.ndarray, int, str]:
    """Whole stream bytes → (audio float32 `[T]`, model sampling rate, description of losses).

    `partial=True` decodes around damage (see `LMCodecStreamDecompressor`); otherwise any damage raises."""
    backend = as_backend(codec)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LMCodecError(f"decompress takes the stream's bytes, got {type(data).__name__}.")
    data = bytes(data)
    header, offset = StreamHeader.from_bytes(data)
    decompressor = LMCodecStreamDecompressor(backend, data[:offset], do_sample=do_sample, seed=seed, partial=partial,
                                             fine_decoding=fine_decoding)
    if not partial:
        audio = [decompressor.push(data[offset:]), decompressor.finish()]
    else:
        audio = _decode_whole_file_partially(decompressor, header, data[offset:])
    audio = np.concatenate(audio)
    if header.num_samples is not None:
        audio = np.concatenate([audio, np.zeros(max(header.num_samples - len(audio), 0), dtype=np.float32)])
    return audio, backend.settings.sampling_rate, decompressor.describe_losses()


def _decode_whole_file_partially(decompressor: LMCodecStreamDecompressor, header: StreamHeader,
                                 body: bytes) -> list[np.ndarray]:
    """Decode every packet that can be read, resynchronising after damage of any kind.

    Packets are read in order; one that fails (its codes CRC, the range decoder, or its framing: a damaged length
    field misframes everything after it; a packet missing shows as the next one failing) starts a scan of the following bytes for the next packet that decodes as
    the start of a sync period (`StreamFraming.candidates`). When the header knows the stream's length, each
    candidate's place is known by counting whole packets back from the end of the file, so only sync points are
    tried and the audio after the damage keeps its time; otherwise its place is estimated from the bytes skipped.
    What is lost — damaged, missing or cut off — is silence, listed in `decompressor.lost`."""
    framing = StreamFraming(header, body)
    sync = header.sync_period_frames
    rate = decompressor.backend.settings.frame_rate
    outputs: list[np.ndarray] = []
    offset, index, restart = 0, 0, False

    def silence(frames: int, reason: str) -> None:
        nonlocal restart
        if frames > 0:
            outputs.append(decompressor._trim(decompressor._silence(frames, reason)))
            restart = True

    def decode(packet: Packet, frames: int, segment_start: bool, canonical: bool = False):
        try:
            codes = decompressor._decode_codes(packet, frames, segment_start)
        except LMCodecError:
            return None
        if canonical and not _reencodes_to(decompressor, codes, packet.payload):
            return None
        return codes

    def play(codes: np.ndarray) -> None:
        nonlocal restart
        if restart:
            decompressor._restart_receiver(start_frame=decompressor.frames_done)
            restart = False
        decompressor.frames_done += codes.shape[0]
        outputs.append(decompressor._trim(decompressor._synthesize(codes)))

    with decompressor.backend.coding_context():
        while offset < len(body):
            parsed = framing.packet_at(offset, index)
            reason = f"packet {index} unreadable"
            if parsed is not None:
                packet, end, frames = parsed
                segment_start = decompressor.frames_done % sync == 0
                codes = decode(packet, frames, segment_start)
                if codes is not None:
                    play(codes)
                    offset, index = end, index + 1
                    continue
            # Damage at packet `index`: find the next packet that decodes as a sync period's start.
            damaged_at, damaged_offset = decompressor.frames_done, offset
            done = decompressor.frames_done
            bytes_per_frame = offset / max(done, 1)
            found = None
            for candidate, packet, end, frames, first in framing.candidates(offset, damaged_at + 1):
                if first is None:  # its place is not known from the end: estimate it from the bytes skipped
                    estimate = damaged_at + (candidate - damaged_offset) / max(bytes_per_frame, 1e-9)
                    first = max(round(estimate / sync), damaged_at // sync + 1) * sync
                codes = decode(packet, frames, True, canonical=framing.first_frame(candidate) is None)
                if codes is not None:
                    found = candidate, end, first, codes
                    break
            if found is None:
                break
            _, end, first, codes = found
            silence(first - decompressor.frames_done,
                    f"{reason}, resynchronised at the sync point at {first / rate:.2f} s")
            play(codes)
            offset, index = end, first // header.packet_length_frames + 1
        expected = header.num_frames
        if expected is not None and decompressor.frames_done < expected:
            status, _ = framing.describe_damage()
            cut = status.startswith("truncated")
            silence(expected - decompressor.frames_done,
                    f"stream truncated after {decompressor.frames_done / rate:.2f} s" if cut
                    else f"packet {index} damaged, nothing readable after it")
    decompressor._reader_failed = True  # the packets were framed here, not by the decompressor's reader
    outputs.append(decompressor.finish())
    return outputs


def _reencodes_to(decompressor: LMCodecStreamDecompressor, codes: np.ndarray, payload: bytes) -> bool:
    """Whether `codes`, coded from a sync point as the sender does, give exactly `payload` (raw: always)."""
    coder = decompressor._coder
    if coder is None:
        return True
    check = decompressor.backend.entropy_coder(decompressor.num_coarse, decompressor.header_info.format_version)
    check.start_segment()
    try:
        return check.encode_frames(codes) == bytes(payload)
    except LMCodecError:
        return False
