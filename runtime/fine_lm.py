"""Regenerating the fine RVQ levels with the exported fine-LM step graph: numpy + onnxruntime, no torch.

The numpy twin of `lmcodec.fine_generation.FineCodeGenerator`. One onnxruntime run per 20 ms frame
(`fine_lm_step_nc{Nc}.onnx`, written by `lmcodec.onnx_fine_lm.export_fine_lm_onnx`; its docstring lists the graph's
inputs and outputs); the key/value buffer lives here, one slot per frame of the sync period, and the context resets
every `sync_frames` frames.

    fine_lm = OnnxFineLM.from_directory(onnx_dir, num_coarse=3, weights_path="ckpt/model.safetensors")
    generator = OnnxFineCodeGenerator(fine_lm, mode="expected")
    codes, latent = generator.push_latent(coarse)      # coarse [Nc, f] → codes [Nq, f], latent [f, D]

Modes: "greedy" (argmax codes), "sample" (inverse-CDF draws from `softmax(logits / temperature)`; with `seed`, the
draws restart at every sync point from `numpy.random.default_rng(seed + sync period index)`, so a receiver that
starts at a sync point samples what one that decoded from the beginning does), "expected" (the greedy codes, and a
latent in which each fine level contributes the probability-weighted mean of its codebook vectors). For
"coarse-only" decoding no fine LM runs: `latent_of_codes(codebooks, coarse)`.

Weights come from the checkpoint's `model.safetensors` (float16 or float32 storage, cast to float32), checked
against the sha256 digests the export recorded, and enter the InferenceSession through
`SessionOptions.add_external_initializers` (the graph file holds only stubs named after the safetensors keys).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from safetensors import safe_open

from lmcodec.errors import LMCodecError

from .graphs import latent_of_codes, session_options  # noqa: F401 (latent_of_codes: re-exported)

MANIFEST_NAME = "fine_lm_onnx.json"
GRAPH_FORMAT = "lmcodec-fine-lm-step"
MODES = ("greedy", "sample", "expected")


class FineLMError(LMCodecError):
    """Bad input, missing or mismatched files: a one-line message naming the problem and the fix."""


def weight_digest(array: np.ndarray) -> str:
    """sha256 of a weight as the graph receives it: float32, C order, little-endian (as the export computes it)."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).hexdigest()


def load_weights(weights_path: str | os.PathLike, keys, digests: dict | None = None) -> dict[str, np.ndarray]:
    """The float32 arrays of `keys` from a safetensors file; with `digests` ({key: sha256}), checked against them."""
    path = Path(weights_path)
    if not path.is_file():
        raise FineLMError(f"weights file not found: {path}; pass the checkpoint's model.safetensors.")
    arrays = {}
    with safe_open(str(path), framework="numpy") as weights:
        available = set(weights.keys())
        for key in keys:
            if key not in available:
                raise FineLMError(f"{path} has no tensor {key!r}; it is not the checkpoint the fine-LM graph was "
                                  "exported from (re-export the graph from this checkpoint).")
            array = np.ascontiguousarray(weights.get_tensor(key), dtype=np.float32)
            if digests is not None and weight_digest(array) != digests[key]:
                raise FineLMError(f"tensor {key!r} of {path} differs from the one the fine-LM graph was exported "
                                  "with; re-export the graph from this checkpoint.")
            arrays[key] = array
    return arrays


class OnnxFineLM:
    """The fine-LM step graph of one operating point in an onnxruntime inference_session, with its weights.

    description: the export's description (`fine_lm_onnx.json`): its `graphs` entry for `num_coarse` names the file
    and the weight keys, `weights` holds their sha256."""

    def __init__(self, graph_path: str | os.PathLike, weights_path: str | os.PathLike, description: dict,
                 num_coarse: int, threads: int = 1, verify: bool = True):
        if description.get("format") != GRAPH_FORMAT:
            raise FineLMError(f"not a fine-LM step description (format {description.get('format')!r}); pass the "
                              f"{MANIFEST_NAME} written by export_fine_lm_onnx.")
        entries = [graph for graph in description["graphs"] if graph["num_coarse"] == num_coarse]
        if not entries:
            points = [graph["num_coarse"] for graph in description["graphs"]]
            raise FineLMError(f"no fine-LM graph for {num_coarse} coarse levels; exported: {points}.")
        graph_path = Path(graph_path)
        if not graph_path.is_file():
            raise FineLMError(f"fine-LM graph not found: {graph_path}; run export_fine_lm_onnx first.")
        self.graph = entries[0]
        if verify and "sha256" in self.graph and hashlib.sha256(graph_path.read_bytes()).hexdigest() != \
                self.graph["sha256"]:
            raise FineLMError(f"{graph_path} differs from the graph its description lists (sha256); re-export it.")
        self.num_coarse = num_coarse
        self.num_quantizers = description["num_quantizers"]
        self.codebook_dim = description["codebook_dim"]
        self.codebook_size = description["codebook_size"]
        self.cache_shape = (description["num_layers"], description["num_heads"], description["head_dim"])
        self.max_past = description["max_past"]
        self.default_sync_frames = description["sync_frames"]
        keys = list(self.graph["weights"])
        digests = {key: description["weights"][key]["sha256"] for key in keys} if verify else None
        weights = load_weights(weights_path, keys, digests)
        self.codebooks = weights["quantizer.codebooks"]
        options = session_options(threads)
        values = [ort.OrtValue.ortvalue_from_numpy(weights[key]) for key in keys]
        options.add_external_initializers(keys, values)
        self.inference_session = ort.InferenceSession(str(graph_path), options, providers=["CPUExecutionProvider"])
        del values
        self.output_names = [output.name for output in self.inference_session.get_outputs()]

    @classmethod
    def from_directory(cls, onnx_dir: str | os.PathLike, num_coarse: int,
                       weights_path: str | os.PathLike | None = None, threads: int = 1,
                       verify: bool = True) -> "OnnxFineLM":
        """Load `onnx_dir/fine_lm_onnx.json` and its graph for `num_coarse`, with weights from `weights_path`
        (default: `onnx_dir/model.safetensors`, i.e. graphs exported into the checkpoint folder)."""
        onnx_dir = Path(onnx_dir)
        manifest = onnx_dir / MANIFEST_NAME
        if not manifest.is_file():
            raise FineLMError(f"{manifest} not found; export the fine LM with export_fine_lm_onnx(model, "
                              f"'{onnx_dir}') first.")
        description = json.loads(manifest.read_text())
        files = {graph["num_coarse"]: graph["file"] for graph in description.get("graphs", [])}
        if num_coarse not in files:
            raise FineLMError(f"no fine-LM graph for {num_coarse} coarse levels in {onnx_dir}; exported: "
                              f"{sorted(files)}.")
        weights = onnx_dir / "model.safetensors" if weights_path is None else weights_path
        return cls(onnx_dir / files[num_coarse], weights, description, num_coarse, threads, verify)

    def step(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.inference_session.run(self.output_names, feeds)))


class OnnxFineCodeGenerator:
    """Stateful fine-level generation for one stream (numpy in, numpy out): the contract of `FineCodeGenerator`.

    `push(coarse [Nc, f]) -> codes [Nq, f]` (int64, levels < Nc copied) and `push_latent(coarse) -> (codes,
    latent [f, D])`, carrying the key/value buffer between calls and resetting it every `sync_frames` frames
    (default: the checkpoint's). `start_frame`: the absolute frame index of the first pushed frame, to resume a
    stream (at a sync point; elsewhere the context starts empty there, as `FineCodeGenerator` does). Sampling draws
    from `generator` (a `numpy.random.Generator`, default a fresh one) unless `seed` is set."""

    def __init__(self, fine_lm: OnnxFineLM, mode: str = "greedy", sync_frames: int | None = None,
                 temperature: float = 1.0, seed: int | None = None, generator: np.random.Generator | None = None,
                 start_frame: int = 0):
        if mode not in MODES:
            raise FineLMError(f"unknown fine decoding mode {mode!r}; use one of {', '.join(MODES)} (coarse-only "
                              "decoding needs no fine LM: latent_of_codes).")
        if not temperature > 0:
            raise FineLMError(f"temperature must be > 0, got {temperature}; use mode='greedy' for greedy decoding.")
        sync_frames = fine_lm.default_sync_frames if sync_frames is None else int(sync_frames)
        if not 1 <= sync_frames <= fine_lm.max_past:
            raise FineLMError(f"sync_frames must be between 1 and the fine LM's context of {fine_lm.max_past} "
                              f"frames, got {sync_frames}.")
        if start_frame < 0:
            raise FineLMError(f"start_frame must be >= 0, got {start_frame}.")
        self.lm = fine_lm
        self.mode = mode
        self.sync_frames = sync_frames
        self.seed = seed
        self.generator = generator if generator is not None or mode != "sample" else np.random.default_rng()
        self.frames_done = start_frame
        self.position = None  # frames since the context started (None: not started yet)
        fine = fine_lm.num_quantizers - fine_lm.num_coarse
        layers, heads, head_dim = fine_lm.cache_shape
        # Slot `position` of the buffer holds that frame's keys/values; later slots are masked inside the graph.
        self.keys = np.zeros((layers, heads, sync_frames, head_dim), dtype=np.float32)
        self.values = np.zeros_like(self.keys)
        self.feeds = {
            "coarse_codes": np.zeros(fine_lm.num_coarse, dtype=np.int64),
            "previous_fine_codes": np.zeros(fine, dtype=np.int64),
            "past_keys": self.keys,
            "past_values": self.values,
            "position": np.zeros((), dtype=np.int64),
            "uniforms": np.zeros(fine, dtype=np.float32),
            "temperature": np.array(temperature, dtype=np.float32),
            "greedy": np.array(mode != "sample"),
            "compute_expected": np.array(mode == "expected"),
        }

    def _check(self, coarse_codes) -> np.ndarray:
        coarse = np.asarray(coarse_codes)
        if coarse.ndim != 2 or coarse.shape[0] != self.lm.num_coarse:
            raise FineLMError(f"coarse codes must have shape [{self.lm.num_coarse}, frames], got "
                              f"{list(coarse.shape)}.")
        if not np.issubdtype(coarse.dtype, np.integer):
            raise FineLMError(f"coarse codes must be integers, got {coarse.dtype}.")
        if coarse.size and (coarse.min() < 0 or coarse.max() >= self.lm.codebook_size):
            raise FineLMError(f"coarse codes must be in [0, {self.lm.codebook_size}), got values from "
                              f"{coarse.min()} to {coarse.max()}.")
        return coarse.astype(np.int64)

    def push(self, coarse_codes) -> np.ndarray:
        """coarse_codes `[Nc, f]` → all levels `[Nq, f]` (int64)."""
        return self.push_latent(coarse_codes)[0]

    def push_latent(self, coarse_codes) -> tuple[np.ndarray, np.ndarray]:
        """coarse_codes `[Nc, f]` → (all levels `[Nq, f]`, the decoder's latent `[f, D]`: the sum of the levels'
        codebook vectors; in "expected" mode the coarse vectors plus each fine level's expected vector)."""
        coarse = self._check(coarse_codes)
        frames = coarse.shape[1]
        codes = np.zeros((self.lm.num_quantizers, frames), dtype=np.int64)
        latent = np.zeros((frames, self.lm.codebook_dim), dtype=np.float32)
        feeds, nc = self.feeds, self.lm.num_coarse
        expected = self.mode == "expected"
        for frame in range(frames):
            if self.position is None or self.frames_done % self.sync_frames == 0:  # a sync point (or a resume)
                self.position = 0
                feeds["previous_fine_codes"][:] = 0
                if self.mode == "sample" and self.seed is not None:
                    self.generator = np.random.default_rng(self.seed + self.frames_done // self.sync_frames)
            feeds["coarse_codes"][:] = coarse[:, frame]
            position = self.position
            feeds["position"][...] = position
            if self.mode == "sample":
                feeds["uniforms"][:] = self.generator.random(feeds["uniforms"].shape[0], dtype=np.float32)
            out = self.lm.step(feeds)
            self.keys[:, :, position] = out["new_keys"][:, :, 0]
            self.values[:, :, position] = out["new_values"][:, :, 0]
            codes[:, frame] = out["codes"]
            feeds["previous_fine_codes"][:] = out["codes"][nc:]
            latent[frame] = out["coarse_latent"] + out["expected_fine_latent"] if expected else out["latent"]
            self.frames_done += 1
            self.position += 1
        return codes, latent


__all__ = ["FineLMError", "OnnxFineCodeGenerator", "OnnxFineLM", "latent_of_codes", "load_weights",
           "session_options", "weight_digest"]
