"""`RuntimeCodec`: the deployable codec, ONNX graphs driven from numpy; no torch, no transformers.

It is a backend of `lmcodec.compression` (the same container, packets, integer entropy model and damage handling as
the torch model: either decodes the other's streams) and offers the model's coding API:

    codec = lmcodec.runtime.load_codec(lmcodec.DEFAULT_CHECKPOINT)
    data = codec.compress(audio, sampling_rate=16000)          # bytes
    audio, rate = codec.decompress(data)                       # float32 [T], 16000
    codes = codec.encode(audio)                                # int64 [Nq, F] (audio at 16 kHz)
    audio = codec.decode(codes[:3])                            # float32 [F * 320]

Every pool on the coding path (onnxruntime's, numpy's BLAS) obeys `lmcodec.threads.limit_threads` (`load_codec`
calls it with `threads`).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from lmcodec.codec_settings import CodecSettings
from lmcodec.errors import LMCodecError
from lmcodec.fine_decoding import FineDecoding
from lmcodec.frames import SAMPLING_RATE, num_frames
from lmcodec.integer_entropy_model import IntegerEntropyModel
from lmcodec.range_coding import NO_INTEGER_MODEL_HINT, IntegerEntropyCoder

from .graphs import CodecGraphs

INTEGER_PREFIX = "integer_entropy_lm."  # safetensors keys of the integer entropy model's buffers
CODEBOOKS_KEY = "quantizer.codebooks"
TORCH_ONLY_HINT = "use the torch backend (`--backend torch`, or lmcodec.LMCodecModel)"


def integer_model_tensors(buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The integer entropy model's buffers as stored (`integer_entropy_lm.h__0__ln_1__weight`, ...) → the tensor
    names `IntegerEntropyModel` takes (`h.0.ln_1.weight`): module buffer names spell dots as double underscores."""
    return {name[len(INTEGER_PREFIX):].replace("__", "."): value for name, value in buffers.items()}


class RuntimeSender:
    """`push(samples float32 [T] at 16 kHz) -> codes int64 [K, f]` of the frames completed, `flush()` at the end:
    the encoder graph's fixed block loop, so codes do not depend on how the audio is split."""

    def __init__(self, graphs: CodecGraphs, num_quantizers: int):
        self.encoder = graphs.encoder
        self.num_quantizers = num_quantizers
        self._state = self.encoder.initial_states()
        self._pending = np.zeros(0, dtype=np.float32)
        self._samples_seen = 0
        self._frames_emitted = 0

    def _encode_pending(self, final: bool) -> np.ndarray:
        block = self.encoder.block_samples
        usable = self._pending.shape[0] // block * block
        codes = []
        for start in range(0, usable, block):
            block_codes, self._state = self.encoder.run(self._pending[start : start + block], self._state)
            codes.append(block_codes[: self.num_quantizers])
        self._pending = self._pending[usable:]
        codes = np.concatenate(codes, axis=1) if codes else np.zeros((self.num_quantizers, 0), dtype=np.int64)
        if final:
            codes = codes[:, : num_frames(self._samples_seen, self.encoder.hop_length) - self._frames_emitted]
        self._frames_emitted += codes.shape[1]
        return codes

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples_seen += samples.shape[0]
        self._pending = np.concatenate([self._pending, samples])
        return self._encode_pending(final=False)

    def flush(self) -> np.ndarray:
        if self._pending.shape[0]:
            self._pending = np.pad(self._pending, (0, -self._pending.shape[0] % self.encoder.block_samples))
        return self._encode_pending(final=True)


class RuntimeReceiver:
    """`push(coarse codes [Nc, f]) -> samples float32 [f * hop]` in [-1, 1]; `flush()` returns the samples the
    decoder's output delay still holds and restarts the decoder (the fine levels' context carries on)."""

    def __init__(self, codec: "RuntimeCodec", num_coarse: int, sync_frames: int, fine_decoding: str, seed: int,
                 start_frame: int):
        self.graphs = codec.graphs
        self.decoder = codec.graphs.decoder
        self.fine_decoding = fine_decoding
        self._fine = None if fine_decoding == "coarse-only" else codec.fine_code_generator(
            num_coarse, sync_frames, fine_decoding, seed, start_frame)
        self._restart_decoder()

    def _restart_decoder(self) -> None:
        self._state = self.decoder.initial_states()
        self._skip = self.decoder.output_delay  # samples the head emits before time 0
        self._started = False

    def push(self, coarse: np.ndarray) -> np.ndarray:
        coarse = np.asarray(coarse, dtype=np.int64)
        if coarse.shape[1] == 0:
            return np.zeros(0, dtype=np.float32)
        if self._fine is None:
            latent = self.graphs.latent(coarse)
        else:
            latent = self._fine.push_latent(coarse)[1]
        return self.push_latent(latent)

    def push_latent(self, latent: np.ndarray) -> np.ndarray:
        """A quantized latent `[f, D]` (e.g. a concealed frame's expected one) → samples `[f * hop]`; the fine levels'
        context does not see these frames."""
        latent = np.ascontiguousarray(latent, dtype=np.float32)
        if latent.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        samples, self._state = self.decoder.run(latent, self._state)
        self._started = True
        if self._skip:
            skipped = min(self._skip, samples.shape[0])
            samples, self._skip = samples[skipped:], self._skip - skipped
        return np.clip(samples, -1.0, 1.0)

    def flush(self) -> np.ndarray:
        if not self._started or self.decoder.output_delay == 0:
            self._restart_decoder()
            return np.zeros(0, dtype=np.float32)
        pending = np.clip(self.decoder.tail(self._state)[self._skip :], -1.0, 1.0)
        self._restart_decoder()
        return pending


class RuntimeCodec:
    """A checkpoint's ONNX graphs, codebooks and integer entropy model: a `compression` backend with the model's
    `compress` / `decompress` / `encode` / `decode` and streaming API."""

    def __init__(self, checkpoint: str | Path, graphs: CodecGraphs, config: dict,
                 integer_buffers: dict[str, np.ndarray]):
        self.checkpoint = str(checkpoint)
        self.graphs = graphs
        self.config = config
        self.settings = CodecSettings.from_config(config)
        self._integer_buffers = integer_buffers
        self._engine = IntegerEntropyModel(integer_model_tensors(integer_buffers)) if integer_buffers else None
        self._fine_lms: dict = {}  # num_coarse → OnnxFineLM, loaded on first use

    # ------------------------------------------------------------------ the backend interface (compression.py)
    @property
    def has_integer_entropy_model(self) -> bool:
        return self._engine is not None

    @property
    def codebooks(self) -> np.ndarray:
        """The quantizer's codebooks `[Nq, K, D]` float32."""
        return self.graphs.codebooks

    def sender(self, num_quantizers: int) -> RuntimeSender:
        return RuntimeSender(self.graphs, num_quantizers)

    def receiver(self, num_coarse: int, sync_frames: int, fine_decoding: str, seed: int,
                 start_frame: int = 0) -> RuntimeReceiver:
        return RuntimeReceiver(self, num_coarse, sync_frames, fine_decoding, seed, start_frame)

    def entropy_coder(self, num_coarse: int, format_version: int):
        from lmcodec.bitstream import FIRST_INTEGER_MODEL_VERSION

        if format_version < FIRST_INTEGER_MODEL_VERSION:
            raise LMCodecError(f"streams of format version {format_version} are coded with the float entropy LM; "
                               f"{TORCH_ONLY_HINT}.")
        if self._engine is None:
            raise LMCodecError(f"entropy coding needs the integer entropy model: {NO_INTEGER_MODEL_HINT}.")
        return IntegerEntropyCoder(self._engine, num_coarse, format_version)

    def fingerprint_arrays(self, format_version: int, entropy_coded: bool) -> dict:
        from lmcodec.bitstream import FIRST_INTEGER_MODEL_VERSION

        if format_version < FIRST_INTEGER_MODEL_VERSION:
            raise LMCodecError(f"streams of format version {format_version} are coded with the float entropy LM; "
                               f"{TORCH_ONLY_HINT}.")
        arrays = {CODEBOOKS_KEY: self.graphs.codebooks}
        if entropy_coded:
            arrays.update(self._integer_buffers)
        return arrays

    def coding_context(self):
        return nullcontext()  # the runtime's arithmetic does not depend on threads: nothing to pin

    def fine_code_generator(self, num_coarse: int, sync_frames: int, fine_decoding: str, seed: int,
                            start_frame: int = 0):
        """The fine LM graph's generator for `fine_decoding` ("expected", "greedy" or "sample"), seeded as the torch
        model's (its sampled codes follow numpy's generator, so they differ from torch's; the bits do not)."""
        from lmcodec.threads import coding_threads

        from .fine_lm import MANIFEST_NAME, OnnxFineCodeGenerator, OnnxFineLM

        onnx_dir = Path(self.checkpoint) / "onnx"
        if not (onnx_dir / MANIFEST_NAME).is_file():
            raise LMCodecError(f"fine_decoding {fine_decoding!r} needs the fine LM's graphs, which {onnx_dir} lacks; "
                               f"re-export with `lmcodec export-onnx {self.checkpoint}`, decode with "
                               f"fine_decoding='coarse-only', or {TORCH_ONLY_HINT}.")
        if num_coarse not in self._fine_lms:
            self._fine_lms[num_coarse] = OnnxFineLM.from_directory(
                onnx_dir, num_coarse, weights_path=Path(self.checkpoint) / "model.safetensors",
                threads=coding_threads())
        return OnnxFineCodeGenerator(self._fine_lms[num_coarse], mode=fine_decoding, sync_frames=sync_frames,
                                     seed=seed, start_frame=start_frame)

    # ------------------------------------------------------------------ the coding API
    def compress(self, audio, sampling_rate: int = SAMPLING_RATE, num_coarse_quantizers: int | None = None,
                 entropy_coding: bool = True, packet_frames: int | None = None, return_report: bool = False):
        """Mono audio `[T]` at `sampling_rate` → stream bytes (and the `CodingReport` with `return_report`)."""
        from lmcodec.compression import compress

        data, report = compress(self, audio, sampling_rate, num_coarse_quantizers, entropy_coding, packet_frames)
        return (data, report) if return_report else data

    def decompress(self, data: bytes, fine_decoding: FineDecoding | None = None, seed: int | None = None,
                   partial: bool = False, return_losses: bool = False):
        """Stream bytes → (audio float32 `[T]`, sampling rate) (and a line on what was lost with `return_losses`)."""
        from lmcodec.compression import decompress

        audio, rate, losses = decompress(self, data, seed=seed, partial=partial, fine_decoding=fine_decoding)
        return (audio, rate, losses) if return_losses else (audio, rate)

    def stream_compressor(self, sampling_rate: int = SAMPLING_RATE, num_coarse_quantizers: int | None = None,
                          entropy_coding: bool = True, packet_frames: int | None = None):
        """Live compression: `c.header() -> bytes`, `c.push(samples) -> list[bytes]`, `c.flush() -> list[bytes]`."""
        from lmcodec.compression import LMCodecStreamCompressor

        return LMCodecStreamCompressor(self, sampling_rate, num_coarse_quantizers, entropy_coding, packet_frames)

    def stream_decompressor(self, header: bytes, fine_decoding: FineDecoding | None = None, seed: int | None = None,
                            partial: bool = False):
        """Live decompression: `d.push(stream bytes) -> samples`, `d.finish() -> samples`."""
        from lmcodec.compression import LMCodecStreamDecompressor

        return LMCodecStreamDecompressor(self, header, seed=seed, partial=partial, fine_decoding=fine_decoding)

    def datagram_encoder(self, packet_frames: int = 2, sync_frames: int = 12, sampling_rate: int = SAMPLING_RATE,
                         num_coarse_quantizers: int | None = None, **options):
        """Real-time packets for UDP / RTP: `e.description() -> bytes` (out of band), `e.push(samples) ->
        list[bytes]`, `e.flush()` (see `lmcodec.datagram.DatagramEncoder`)."""
        from lmcodec.datagram import DatagramEncoder

        return DatagramEncoder(self, packet_frames, sync_frames, sampling_rate, num_coarse_quantizers, **options)

    def datagram_decoder(self, description: bytes, fine_decoding: str | None = None, seed: int | None = None,
                         **options):
        """The receiver of a datagram stream: `d.push(packet or None) -> samples`, `d.lost(count)`, `d.finish()`,
        `d.report` (see `lmcodec.datagram.DatagramDecoder`)."""
        from lmcodec.datagram import DatagramDecoder

        return DatagramDecoder(self, description, fine_decoding=fine_decoding, seed=seed, **options)

    def encode(self, audio: np.ndarray, num_quantizers: int | None = None) -> np.ndarray:
        """16 kHz mono audio `[T]` → codes `[K, ceil(T / hop)]` (K: all levels unless `num_quantizers`)."""
        levels = num_quantizers or self.settings.num_quantizers
        if not 1 <= levels <= self.settings.num_quantizers:
            raise LMCodecError(f"num_quantizers must be between 1 and {self.settings.num_quantizers}, got {levels}.")
        return self.graphs.encoder.encode(audio)[:levels]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes `[K, F]` (the first K levels) → audio float32 `[F * hop]` in [-1, 1], from those levels alone."""
        return self.graphs.decoder.decode(self.graphs.latent(codes))


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise LMCodecError(f"cannot read {path}; pass an LMCodec checkpoint folder.") from None


def read_integer_buffers(folder: Path) -> dict[str, np.ndarray]:
    """The integer entropy model's buffers from `model.safetensors` (empty when the checkpoint has none)."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="numpy") as file:
        names = [name for name in file.keys() if name.startswith(INTEGER_PREFIX)]
        buffers = {name: file.get_tensor(name) for name in names}
    version = buffers.get(f"{INTEGER_PREFIX}format__version")
    return buffers if version is not None and int(version.reshape(-1)[0]) != 0 else {}
