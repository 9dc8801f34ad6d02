"""Torch-free loading of a checkpoint's exported ONNX step graphs (numpy, onnxruntime and safetensors.numpy only).

A checkpoint folder holds its weights once, in `model.safetensors`, and its graphs in `onnx/` (written by
`lmcodec export-onnx CHECKPOINT`): `encoder_step.onnx`, `decoder_step.onnx` and `manifest.json`. The graphs carry
no checkpoint weights: their weight initializers are named after the safetensors keys and marked as external data;
`load_graphs` reads those keys, casts them to float32 and hands them to onnxruntime when it creates the
InferenceSessions.
The manifest records a fingerprint of the weights each graph was exported from; other weights are refused.

Shapes (bundled default: Nq = 12 levels of K = 1024 codes, D = 64, hop = 320 samples, block = 640 samples):

    EncoderStep.run(block [640] float32, state) -> (codes [Nq, 2] int64, state)
    DecoderStep.run(latent [f, D] float32, state) -> (samples [f * hop] float32, state)   (f >= 1, unclipped,
        running `output_delay` samples behind the frames; `tail(state)` gives the last `output_delay` samples)
    CodecGraphs.latent(codes [k, f]) -> latent [f, D] float32: the sum over levels of codebooks[level, code]

States are dicts {input name: array}, zeros at stream start (`initial_states()`). docs/onnx.md describes the graphs
for hosts in other languages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from lmcodec.bitstream import fingerprint
from lmcodec.errors import LMCodecError
from lmcodec.frames import num_frames

ONNX_FOLDER = "onnx"  # inside the checkpoint folder (as lmcodec.runtime.has_graphs looks for it; not imported from
MANIFEST_NAME = "manifest.json"  # there: lmcodec.runtime imports this module, so that would be an import cycle)
WEIGHTS_NAME = "model.safetensors"
FORMAT = "lmcodec-onnx"
FORMAT_VERSION = 1
# The external-data location the graphs' weight initializers point to: no such file exists; the weights are supplied
# when the InferenceSession is created (AddExternalInitializers); an InferenceSession created without them fails
# naming this location.
WEIGHTS_LOCATION = "LMCODEC_WEIGHTS_FROM_MODEL_SAFETENSORS"
ENCODER, DECODER = "encoder_step", "decoder_step"


def weights_fingerprint(weights: Mapping) -> str:
    """The project's model fingerprint (`lmcodec.bitstream.fingerprint`: SHA-256 over the tensors' names, shapes and
    float32 values, first 8 bytes) of a graph's weights, as hex. numpy arrays and torch tensors give the same."""
    return fingerprint(dict(weights), {}).hex()


def _fix(checkpoint: Path) -> str:
    return f"re-export them with `lmcodec export-onnx {checkpoint}`"


def read_manifest(checkpoint_dir: str | Path, onnx_dir: str | Path | None = None) -> dict:
    """The manifest of a checkpoint's graphs (`CHECKPOINT/onnx/manifest.json` unless `onnx_dir` is given)."""
    checkpoint = Path(checkpoint_dir)
    path = (checkpoint / ONNX_FOLDER if onnx_dir is None else Path(onnx_dir)) / MANIFEST_NAME
    if not path.is_file():
        raise LMCodecError(f"no ONNX graphs for {checkpoint} ({path} is missing); export them with "
                           f"`lmcodec export-onnx {checkpoint}`.")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LMCodecError(f"cannot read {path} ({type(error).__name__}); {_fix(checkpoint)}.") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise LMCodecError(f"{path} is not an {FORMAT} manifest of version {FORMAT_VERSION}; {_fix(checkpoint)}.")
    return manifest


class StepGraph:
    """One step graph: its onnxruntime InferenceSession (`inference`) and manifest entry (`spec`: inputs, outputs,
    states, weights). `inference` may also be a `functools.partial` that creates the InferenceSession: it is called
    on first use, so a process that only encodes never builds the decoder's (about 0.05 s of CPU and its memory)."""

    def __init__(self, inference, spec: dict):
        self._inference = inference
        self.spec = spec
        self.states = spec["states"]  # [{"input", "output", "shape", "dtype"}], in graph input order
        self._outputs = [o["name"] for o in spec["outputs"]] + [s["output"] for s in self.states]

    def initial_states(self) -> dict[str, np.ndarray]:
        """Zero states `{input name: array}` for the start of a stream."""
        return {s["input"]: np.zeros(s["shape"], dtype=s["dtype"]) for s in self.states}

    @property
    def inference(self):
        if isinstance(self._inference, partial):  # created on first use; the weights it held are released
            self._inference = self._inference()
        return self._inference

    def _run(self, feeds: dict, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        feeds.update(state)
        values = self.inference.run(self._outputs, feeds)
        return values[0], {s["input"]: value for s, value in zip(self.states, values[1:])}


class EncoderStep(StepGraph):
    """One step of the encoder's fixed block loop, RVQ search of all levels included."""

    def __init__(self, inference, spec: dict):
        super().__init__(inference, spec)
        self.block_samples = int(spec["block_samples"])
        self.frames_per_block = int(spec["frames_per_block"])
        self.hop_length = self.block_samples // self.frames_per_block

    def run(self, block: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """block `[block_samples]` float32 → (codes `[Nq, frames_per_block]` int64 of all levels, new state)."""
        samples = np.asarray(block, dtype=np.float32)
        if samples.shape != (self.block_samples,):
            raise LMCodecError(f"an encoder step takes {self.block_samples} samples, got shape {list(samples.shape)}; "
                               "zero-pad the last block.")
        samples = samples.reshape(1, self.block_samples)
        codes, state = self._run({"samples": samples}, state)
        return codes[0], state

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """A whole signal `[T]` → codes `[Nq, ceil(T / hop)]`, zero-padded to whole blocks as `LMCodecModel.encode`
        does."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        frames = num_frames(samples.shape[0], self.hop_length)
        padded = np.pad(samples, (0, -samples.shape[0] % self.block_samples))
        state, codes = self.initial_states(), []
        for start in range(0, padded.shape[0], self.block_samples):
            block_codes, state = self.run(padded[start : start + self.block_samples], state)
            codes.append(block_codes)
        levels = self.spec["outputs"][0]["shape"][1]
        return np.concatenate(codes, axis=1)[:, :frames] if codes else np.zeros((levels, 0), dtype=np.int64)


class DecoderStep(StepGraph):
    """The decoder (`LMCodecDecoder.forward`): latent frames → unclipped samples, `output_delay` samples behind."""

    def __init__(self, inference, spec: dict):
        super().__init__(inference, spec)
        self.hop_length = int(spec["hop_length"])
        self.output_delay = int(spec["output_delay"])
        self.pending_state = spec["pending_state"]  # the state holding the head's not yet emitted samples

    def run(self, latent: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """latent `[f, D]` float32 → (samples `[f * hop]` float32, new state). A stream's first
        `output_delay` samples lie before time 0: drop them; `tail(state)` ends the stream."""
        latent = np.asarray(latent, dtype=np.float32)
        dim = self.spec["inputs"][0]["shape"][2]
        if latent.ndim != 2 or latent.shape[1] != dim:
            raise LMCodecError(f"latent must have shape [frames, {dim}], got {list(latent.shape)}.")
        if latent.shape[0] == 0:
            return np.zeros(0, dtype=np.float32), dict(state)
        samples, state = self._run({"latent": latent[None]}, state)
        return samples[0], state

    def tail(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """The last `output_delay` samples of a stream `[output_delay]` (the overlap-add tail after its last frame)."""
        return state[self.pending_state][0, : self.output_delay]

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """The latent `[F, D]` of a whole signal → samples `[F * hop]` aligned with it, clipped to [-1, 1]
        (as `LMCodecModel.decode`)."""
        if latent.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        samples, state = self.run(latent, self.initial_states())
        samples = np.concatenate([samples, self.tail(state)])[self.output_delay :]
        return np.clip(samples, -1.0, 1.0)


@dataclass
class CodecGraphs:
    """What `load_graphs` returns: both step graphs, the manifest and the codebooks `[Nq, K, D]` float32."""

    encoder: EncoderStep
    decoder: DecoderStep
    manifest: dict
    codebooks: np.ndarray

    def latent(self, codes: np.ndarray) -> np.ndarray:
        """codes `[k, f]` (levels 0..k-1) → latent `[f, D]` float32, the sum over levels of codebooks[level, code]."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or not 1 <= codes.shape[0] <= self.codebooks.shape[0]:
            raise LMCodecError(f"codes must have shape [levels, frames] with 1 to {self.codebooks.shape[0]} levels, "
                               f"got {list(codes.shape)}.")
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebooks.shape[1]):
            raise LMCodecError(f"codes must lie in [0, {self.codebooks.shape[1]}), got values outside that range.")
        return latent_of_codes(self.codebooks, codes)


def latent_of_codes(codebooks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """codes `[k, f]` (levels 0..k-1, unchecked) → the decoder's latent `[f, D]` float32: the codebook vectors of the
    levels summed in level order ("coarse-only" decoding when k = Nc)."""
    codes = np.asarray(codes)
    latent = codebooks[0, codes[0]].copy()
    for level in range(1, codes.shape[0]):
        latent += codebooks[level, codes[level]]
    return latent


def _check_config(checkpoint: Path, manifest: dict) -> None:
    """The codec settings the graphs were exported with must be those of the checkpoint's config.json."""
    path = checkpoint / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        raise LMCodecError(f"cannot read {path}; pass an LMCodec checkpoint folder.") from None
    for key, value in manifest["config"].items():
        if key in config and config[key] != value:
            raise LMCodecError(f"the ONNX graphs of {checkpoint} were exported with {key}={value!r} but its "
                               f"config.json has {config[key]!r}; {_fix(checkpoint)}.")


def _weights_path(checkpoint: Path, manifest: dict) -> Path:
    return checkpoint / manifest.get("weights_file", WEIGHTS_NAME)


def _read_tensors(path: Path, names) -> dict[str, np.ndarray]:
    """float32 copies of the tensors `names` of the safetensors file `path`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as file:
        return {name: np.ascontiguousarray(file.get_tensor(name), dtype=np.float32) for name in names}


def _read_weights(checkpoint: Path, manifest: dict) -> dict[str, np.ndarray]:
    """The weights the graphs name, as float32 arrays, each graph's checked against its fingerprint."""
    from safetensors import safe_open

    path = _weights_path(checkpoint, manifest)
    if not path.is_file():
        raise LMCodecError(f"{path} is missing; pass a complete LMCodec checkpoint folder.")
    names = {manifest["codebooks"]} | {w["name"] for spec in manifest["graphs"].values() for w in spec["weights"]}
    with safe_open(str(path), framework="numpy") as file:
        missing = sorted(names - set(file.keys()))
    if missing:
        raise LMCodecError(f"{path} lacks {missing[0]} that the ONNX graphs need; {_fix(checkpoint)}.")
    weights = _read_tensors(path, names)
    for graph, spec in manifest["graphs"].items():
        if weights_fingerprint({w["name"]: weights[w["name"]] for w in spec["weights"]}) != spec["weights_fingerprint"]:
            raise LMCodecError(f"the ONNX graph {graph} of {checkpoint} was exported from other weights than {path}; "
                               f"{_fix(checkpoint)}.")
    return weights


def session_options(threads: int | None = None):
    """onnxruntime options: `threads` intra-op threads (default: `lmcodec.threads.coding_threads()`, 1 unless set)
    that never spin idle, one inter-op thread, sequential execution."""
    import onnxruntime as ort
    from lmcodec.threads import coding_threads

    threads = coding_threads() if threads is None else threads
    if threads < 1:
        raise LMCodecError(f"threads must be >= 1, got {threads}.")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for pool in ("intra_op", "inter_op"):  # idle threads sleep instead of spinning:
        options.add_session_config_entry(f"session.{pool}.allow_spinning", "0")  # an InferenceSession config key
    options.log_severity_level = 3
    return options


def _inference_session(path: Path, spec: dict, weights: dict[str, np.ndarray], threads: int | None):
    import onnxruntime as ort

    options = session_options(threads)
    names = [w["name"] for w in spec["weights"]]
    values = [ort.OrtValue.ortvalue_from_numpy(weights[name]) for name in names]
    options.add_external_initializers(names, values)  # copied into the InferenceSession: `weights` may be freed
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _deferred_inference_session(path: Path, spec: dict, weights_path: Path, threads: int):
    """`_inference_session` with the graph's weights read again from `weights_path` (checked by `load_graphs`), so
    nothing is held for a graph a process never runs."""
    names = [w["name"] for w in spec["weights"]]
    return _inference_session(path, spec, _read_tensors(weights_path, names), threads)


def load_graphs(checkpoint_dir: str | Path, threads: int | None = None, onnx_dir: str | Path | None = None
                ) -> CodecGraphs:
    """Load `CHECKPOINT/onnx` (or `onnx_dir`) with the weights of `CHECKPOINT/model.safetensors`: two onnxruntime
    InferenceSessions with `threads` intra-op threads each (default: `lmcodec.threads.coding_threads()`, 1 unless
    set; each created when its graph first runs), the manifest and the codebooks. Graphs exported from other weights
    or settings are refused with a one-line `LMCodecError` naming the fix."""
    from lmcodec.threads import coding_threads

    checkpoint = Path(checkpoint_dir)
    folder = checkpoint / ONNX_FOLDER if onnx_dir is None else Path(onnx_dir)
    manifest = read_manifest(checkpoint, folder)
    _check_config(checkpoint, manifest)
    weights = _read_weights(checkpoint, manifest)
    session_options(threads)  # a bad thread count is refused here, not at the first run
    threads = coding_threads() if threads is None else threads  # the count in force at load time
    inference_sessions = {}
    for graph in (ENCODER, DECODER):
        spec = manifest["graphs"][graph]
        path = folder / spec["file"]
        if not path.is_file():
            raise LMCodecError(f"{path} is missing; {_fix(checkpoint)}.")
        inference_sessions[graph] = partial(_deferred_inference_session, path, spec,
                                            _weights_path(checkpoint, manifest), threads)
    return CodecGraphs(
        encoder=EncoderStep(inference_sessions[ENCODER], manifest["graphs"][ENCODER]),
        decoder=DecoderStep(inference_sessions[DECODER], manifest["graphs"][DECODER]),
        manifest=manifest,
        codebooks=weights[manifest["codebooks"]],
    )


__all__ = ["CodecGraphs", "DecoderStep", "EncoderStep", "latent_of_codes", "load_graphs", "read_manifest",
           "weights_fingerprint"]
