"""Audio ⇄ LMCodec bitstream: the stream compressor and decompressor behind `compress` / `decompress`.

Sender: streaming encoder (coarse levels only) → packets of `packet_frames` frames → each packet's codes range-coded
with the entropy LM (or bit-packed raw) → container bytes (`bitstream.py`). Receiver: packets → coarse codes (checked
against each packet's CRC) → fine LM regenerates the fine levels → streaming decoder → audio. Offline `compress` and
`decompress` are these same classes fed everything at once, so streaming output equals offline output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .bitstream import (
    Packet,
    PacketReader,
    StreamHeader,
    TruncatedStreamError,
    crc16_codes,
    encode_packet,
    pack_codes,
    unpack_codes,
)
from .bitstream import model_fingerprint as fingerprint_of
from .entropy_coding import EntropyCoder, exact_coding
from .errors import LMCodecError


# Entropy-LM settings that change its function (bookkeeping such as `_name_or_path` must not count).
FINGERPRINT_LM_FIELDS = ("n_embd", "n_layer", "n_head", "n_inner", "n_positions", "activation_function",
                         "layer_norm_epsilon", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
                         "reorder_and_upcast_attn")


def model_fingerprint(model) -> bytes:
    """8 bytes identifying what the bits depend on: the codebooks, the entropy LM and the code layout."""
    tensors = {"quantizer.codebooks": model.quantizer.codebooks}
    tensors.update({f"entropy_lm.{name}": value for name, value in model.entropy_lm.state_dict().items()})
    config = model.config
    items = {
        "num_quantizers": config.num_quantizers,
        "codebook_size": config.codebook_size,
        "codebook_dim": config.codebook_dim,
        "entropy_lm_depth": config.entropy_lm_depth,
        "entropy_lm_config": {key: getattr(config.entropy_lm_config, key) for key in FINGERPRINT_LM_FIELDS},
    }
    return fingerprint_of(tensors, items)


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
    if torch.is_tensor(samples):
        samples = samples.detach().cpu().numpy()
    array = np.asarray(samples)
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

    def __init__(self, model, sampling_rate: int = 16000, num_coarse_quantizers: int | None = None,
                 entropy_coding: bool = True, packet_frames: int | None = None, sync_frames: int | None = None,
                 num_samples: int | None = None):
        config = model.config
        self.model = model
        self.num_coarse = model._check_num_coarse(num_coarse_quantizers or config.num_coarse_quantizers)
        self.packet_frames = packet_frames or config.packet_frames
        self.sync_frames = sync_frames or config.sync_frames
        if self.sync_frames > config.entropy_lm_config.n_positions:
            raise LMCodecError(f"sync_frames must be at most {config.entropy_lm_config.n_positions} for this model.")
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
            model_fingerprint=model_fingerprint(model),
        )
        self._resampler = _resampler(sampling_rate, config.sampling_rate)
        self._encoder = model.streaming_encoder(num_quantizers=self.num_coarse)
        self._coder = EntropyCoder(model.entropy_lm, model.quantizer.codebooks, config.num_quantizers,
                                   self.num_coarse) if entropy_coding else None
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
        with exact_coding(self.model):
            codes = self._encoder.push(audio)
            self._pending = np.concatenate([self._pending, codes.numpy().T])
            return self._drain(final=False)

    def flush(self) -> list[bytes]:
        """End the stream: encode the last partial frame and return the remaining packets."""
        if self._finished:
            raise LMCodecError("this stream compressor was already flushed.")
        self._finished = True
        with exact_coding(self.model):
            pieces = []
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                pieces.append(self._encoder.push(tail))
            pieces.append(self._encoder.flush())
            self._pending = np.concatenate([self._pending, *(codes.numpy().T for codes in pieces)])
            return self._drain(final=True)


class LMCodecStreamDecompressor:
    """Built from a stream's header; `push(bytes)` → decoded samples (float32, model rate), `finish()` at the end."""

    def __init__(self, model, header: bytes, do_sample: bool = False, seed: int | None = None, partial: bool = False):
        self.model = model
        self.header_info, consumed = StreamHeader.from_bytes(header)
        self._check_compatible(self.header_info)
        self._leftover = bytes(header[consumed:])
        info = self.header_info
        self.num_coarse = info.num_coarse_quantizers
        self._reader = PacketReader()
        self._coder = EntropyCoder(model.entropy_lm, model.quantizer.codebooks, info.num_quantizers,
                                   self.num_coarse) if info.entropy_coded else None
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._fine = model.fine_code_generator(self.num_coarse, info.sync_period_frames, do_sample=do_sample,
                                               generator=generator)
        self._decoder = model.streaming_decoder()
        self.partial = partial
        self.frames_decoded = 0
        self.samples_emitted = 0
        self.lost_frames: list[tuple[int, int]] = []

    def _check_compatible(self, info: StreamHeader) -> None:
        config = self.model.config
        if (info.num_quantizers, info.codebook_size, info.model_sampling_rate) != (
            config.num_quantizers, config.codebook_size, config.sampling_rate
        ):
            raise LMCodecError(
                f"stream was made for {info.num_quantizers} levels × {info.codebook_size} codes at "
                f"{info.model_sampling_rate} Hz, but this model has {config.num_quantizers} × {config.codebook_size} "
                f"at {config.sampling_rate} Hz; decode with the model that encoded it."
            )
        if info.model_fingerprint != model_fingerprint(self.model):
            raise LMCodecError(
                "stream was made by a different model (fingerprint mismatch); decode it with the checkpoint that "
                "encoded it (lmcodec decode --model DIR)."
            )
        self.model._check_num_coarse(info.num_coarse_quantizers)

    def _packet_frames(self, packet: Packet) -> int:
        if packet.frames is not None:
            return packet.frames
        return self.header_info.packet_length_frames

    def _decode_packet(self, packet: Packet) -> np.ndarray:
        """One packet → decoded samples."""
        info = self.header_info
        frames = self._packet_frames(packet)
        first_frame = packet.index * info.packet_length_frames
        if self._coder is not None:
            if first_frame % info.sync_period_frames == 0:
                self._coder.start_segment()
            codes = self._coder.decode_frames(packet.payload, frames)
        else:
            codes = unpack_codes(packet.payload, info.bits_per_code, frames, self.num_coarse)
        packet.check_codes(codes)
        coarse = torch.from_numpy(codes.T.copy()).unsqueeze(0)
        full = self._fine.push(coarse)
        samples = self._decoder.push(full[0]).numpy()
        self.frames_decoded += frames
        return samples

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
        outputs = []
        with exact_coding(self.model):
            for packet in self._reader.feed(data):
                outputs.append(self._trim(self._decode_packet(packet)))
        return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)

    def finish(self) -> np.ndarray:
        """End of the stream: raises if it was cut inside a packet or is shorter than its header says."""
        self._reader.close()
        total = self.header_info.num_samples
        if total is not None and self.samples_emitted < total:
            expected = -(-total // self.model.config.hop_length)
            raise TruncatedStreamError(
                f"stream is truncated: {self.frames_decoded} of {expected} frames present; the file was cut short "
                "— re-send it or decode with --partial"
            )
        return np.zeros(0, dtype=np.float32)


def compress(model, audio, sampling_rate: int = 16000, num_coarse_quantizers: int | None = None,
             entropy_coding: bool = True, packet_frames: int | None = None) -> tuple[bytes, CodingReport]:
    """Whole audio → stream bytes and their accounting (the stream compressor fed everything at once)."""
    audio = _as_mono_float32(audio)
    if audio.size == 0:
        raise LMCodecError("audio is empty (zero samples); pass at least one sample.")
    num_samples = round(len(audio) * model.config.sampling_rate / sampling_rate)
    compressor = LMCodecStreamCompressor(model, sampling_rate, num_coarse_quantizers, entropy_coding,
                                         packet_frames, num_samples=num_samples)
    parts = [compressor.header(), *compressor.push(audio), *compressor.flush()]
    return b"".join(parts), compressor.report


def decompress(model, data: bytes, do_sample: bool = False, seed: int | None = None) -> tuple[np.ndarray, int]:
    """Whole stream bytes → (audio float32 `[T]`, model sampling rate)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LMCodecError(f"decompress takes the stream's bytes, got {type(data).__name__}.")
    header, offset = StreamHeader.from_bytes(bytes(data))
    decompressor = LMCodecStreamDecompressor(model, bytes(data[:offset]), do_sample=do_sample, seed=seed)
    audio = decompressor.push(bytes(data[offset:]))
    decompressor.finish()
    expected = header.num_samples if header.num_samples is not None else len(audio)
    audio = np.concatenate([audio, np.zeros(max(expected - len(audio), 0), dtype=np.float32)])
    return audio, model.config.sampling_rate


__all__ = ["LMCodecStreamCompressor", "LMCodecStreamDecompressor", "compress", "decompress", "CodingReport"]
