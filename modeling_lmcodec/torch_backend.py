"""The torch model as a coding backend of `compression.py` (the other backend is the ONNX runtime, `lmcodec.runtime`).

`TorchCodecBackend.of(model)` adapts an `LMCodecModel`: its streaming encoder as the sender, its fine LM and
streaming decoder as the receiver, its integer entropy model (or, for format versions 1-2, its float entropy LM) as
the range coder's probabilities, all in numpy at the boundary.
"""

from __future__ import annotations

import numpy as np
import torch

from .bitstream import FIRST_INTEGER_MODEL_VERSION
from .codec_settings import CodecSettings
from .entropy_coding import EntropyCoder, align_weights, exact_coding
from .errors import LMCodecError
from .range_coding import NO_INTEGER_MODEL_HINT, IntegerEntropyCoder


class TorchSender:
    """`push(samples float32 [T]) -> codes int64 [K, f]`, `flush()`: the model's streaming encoder in numpy."""

    def __init__(self, model, num_quantizers: int):
        self._encoder = model.streaming_encoder(num_quantizers=num_quantizers)

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self._encoder.push(samples).numpy()

    def flush(self) -> np.ndarray:
        return self._encoder.flush().numpy()


class TorchReceiver:
    """`push(coarse codes [Nc, f]) -> samples float32 [f * hop_length]`: fine levels as `fine_decoding` says, then
    the streaming decoder; `flush()` returns what the decoder's output delay holds and restarts the decoder."""

    def __init__(self, model, num_coarse: int, sync_frames: int, fine_decoding: str, seed: int, start_frame: int):
        self.fine_decoding = fine_decoding
        self._fine = None if fine_decoding == "coarse-only" else model.fine_code_generator(
            num_coarse, sync_frames, do_sample=fine_decoding == "sample", seed=seed, start_frame=start_frame,
            expected=fine_decoding == "expected")
        self._decoder = model.streaming_decoder()

    def push(self, coarse: np.ndarray) -> np.ndarray:
        codes = torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.int64)).unsqueeze(0)
        if self._fine is None:
            return self._decoder.push(codes[0]).numpy()
        if self.fine_decoding == "expected":  # expected codebook vectors: a latent, not codes
            return self._decoder.push_latent(self._fine.push_latent(codes)[1][0]).numpy()
        return self._decoder.push(self._fine.push(codes)[0]).numpy()

    def push_latent(self, latent: np.ndarray) -> np.ndarray:
        """A quantized latent `[f, D]` (e.g. a concealed frame's expected one) → samples `[f * hop]`; the fine levels'
        context does not see these frames."""
        return self._decoder.push_latent(torch.from_numpy(np.ascontiguousarray(latent, dtype=np.float32))).numpy()

    def flush(self) -> np.ndarray:
        return self._decoder.flush().cpu().numpy()


class TorchCodecBackend:
    """An `LMCodecModel` seen by `compression.py` (see its docstring for the interface)."""

    def __init__(self, model):
        self.model = model

    @classmethod
    def of(cls, model) -> "TorchCodecBackend":
        if not hasattr(model, "streaming_encoder"):
            raise LMCodecError(f"expected an LMCodecModel or a runtime codec, got {type(model).__name__}.")
        return cls(model)

    @property
    def settings(self) -> CodecSettings:
        return CodecSettings.from_config(self.model.config)

    @property
    def has_integer_entropy_model(self) -> bool:
        return self.model.integer_entropy_lm is not None

    @property
    def codebooks(self) -> np.ndarray:
        """The quantizer's codebooks `[Nq, K, D]` float32."""
        return self.model.quantizer.codebooks.detach().float().cpu().numpy()

    def sender(self, num_quantizers: int) -> TorchSender:
        return TorchSender(self.model, num_quantizers)

    def receiver(self, num_coarse: int, sync_frames: int, fine_decoding: str, seed: int,
                 start_frame: int = 0) -> TorchReceiver:
        return TorchReceiver(self.model, num_coarse, sync_frames, fine_decoding, seed, start_frame)

    def entropy_coder(self, num_coarse: int, format_version: int):
        """The integer model's coder (version 3; LMCodecError naming the fix when the checkpoint has none) or the
        float LM's (versions 1-2, exact only on the same kind of machine)."""
        model = self.model
        if format_version >= FIRST_INTEGER_MODEL_VERSION:
            if model.integer_entropy_lm is None:
                raise LMCodecError(f"entropy coding needs the integer entropy model: {NO_INTEGER_MODEL_HINT}.")
            return IntegerEntropyCoder(model.integer_entropy_lm.engine(), num_coarse, format_version)
        align_weights(model)  # exact float decoding needs the same weight alignment on both sides (entropy_coding)
        return EntropyCoder(model.entropy_lm, model.quantizer.codebooks, model.config.num_quantizers, num_coarse,
                            format_version)

    def fingerprint_arrays(self, format_version: int, entropy_coded: bool) -> dict:
        model = self.model
        tensors = {"quantizer.codebooks": model.quantizer.codebooks}
        if format_version >= FIRST_INTEGER_MODEL_VERSION:
            if entropy_coded and model.integer_entropy_lm is not None:
                integer = model.integer_entropy_lm.state_dict()
                tensors.update({f"integer_entropy_lm.{name}": value for name, value in integer.items()})
        else:
            tensors.update({f"entropy_lm.{name}": value for name, value in model.entropy_lm.state_dict().items()})
        return tensors

    def coding_context(self):
        return exact_coding(self.model)
