"""Exporting the fine LM's per-frame step to ONNX for the torch-free runtime (`lmcodec.runtime.fine_lm`).

Imported lazily (not from `__init__`): it needs the `onnx` and `onnxscript` packages (the `export` extra).

One graph per operating point, `fine_lm_step_nc{Nc}.onnx` (opset 18, float32, batch 1). It runs one frame of
`FineCodeGenerator`: the frame's input embedding (`LMCodecFrameLM._input_embeddings`), the GPT-2 backbone over a
fixed-size key/value buffer, then the fine levels Nc..Nq-1 unrolled, each `level_logits` → choose a code → `condition`
on it (the depth module). Choosing is greedy (argmax) or inverse-CDF sampling from `softmax(logits / temperature)`
with one uniform number per fine level supplied by the caller.

| input | type, shape | meaning |
|---|---|---|
| `coarse_codes` | int64 `[Nc]` | the frame's coarse codes |
| `previous_fine_codes` | int64 `[Nq - Nc]` | the previous frame's fine codes (ignored at `position` 0) |
| `past_keys`, `past_values` | float32 `[n_layer, n_head, S, head_dim]` | key/value buffer; slots `< position` are used |
| `position` | int64 `[]` | frame index within the sync period (0 = a sync point: empty context) |
| `uniforms` | float32 `[Nq - Nc]` | one number in [0, 1) per fine level (sampling only) |
| `temperature` | float32 `[]` | sampling temperature (> 0) |
| `greedy` | bool `[]` | true: argmax codes (the uniforms are ignored) |
| `compute_expected` | bool `[]` | false: skip the expected latent (`expected_fine_latent` is then zeros) |

| output | type, shape | meaning |
|---|---|---|
| `codes` | int64 `[Nq]` | all levels of the frame (coarse copied, fine chosen) |
| `latent` | float32 `[D]` | sum of the codebook vectors of `codes` |
| `coarse_latent` | float32 `[D]` | sum of the coarse levels' codebook vectors |
| `expected_fine_latent` | float32 `[D]` | sum over fine levels of `softmax(logits) @ codebook` ("expected" decoding; zeros unless `compute_expected`) |
| `new_keys`, `new_values` | float32 `[n_layer, n_head, 1, head_dim]` | this frame's keys/values: store them at slot `position` |

S (the buffer length) is dynamic; a driver allocates `sync_frames` slots (at most `n_positions`) and writes each
frame's keys/values into slot `position` itself, so the graph never copies the whole cache. Masked slots get
probability exactly 0, so the attention equals torch's over the `position + 1` frames it has.

Weights are not in the file. Each initializer is named after its key in the checkpoint's `model.safetensors`
(`fine_lm.*`, `quantizer.codebooks`) and stored as an external-data stub (dtype float32, true shape, location
`STRIPPED_LOCATION`, a file that never exists, so an InferenceSession created without the weights fails instead of reading
garbage). The runtime supplies them with `SessionOptions.add_external_initializers` (onnxruntime checks name, shape
and dtype). `SessionOptions.add_initializer` cannot serve here: it only overrides initializers whose data the file
holds, and onnxruntime validates an external-data path before any override.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import LMCodecError
from .frame_lm import level_roles

OPSET = 18
STRIPPED_LOCATION = "weights-not-embedded--supplied-when-the-InferenceSession-is-created"
GRAPH_FORMAT = "lmcodec-fine-lm-step"
GRAPH_VERSION = 1
MANIFEST_NAME = "fine_lm_onnx.json"
MAX_CONSTANT_VALUES = 16  # larger tensors in the graph file must be checkpoint weights (stripped)

INPUTS = ("coarse_codes", "previous_fine_codes", "past_keys", "past_values", "position", "uniforms", "temperature",
          "greedy", "compute_expected")
OUTPUTS = ("codes", "latent", "coarse_latent", "expected_fine_latent", "new_keys", "new_values")


def graph_file_name(num_coarse: int) -> str:
    return f"fine_lm_step_nc{num_coarse}.onnx"


def _argmax(logits: torch.Tensor, uniform: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    return torch.argmax(logits, dim=-1, keepdim=True)


def _inverse_cdf_sample(logits: torch.Tensor, uniform: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """The first code whose cumulative probability under `softmax(logits / temperature)` exceeds `uniform` (in
    [0, 1), scaled by the total so rounding cannot run past the end): a draw from that distribution."""
    cdf = torch.cumsum(torch.softmax(logits / temperature, dim=-1), dim=-1)
    drawn = (cdf <= uniform * cdf[-1]).to(torch.long).sum(dim=-1, keepdim=True)
    return torch.clamp(drawn, max=logits.shape[-1] - 1)


def _expected_vector(logits: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1) @ codebook


def _zero_vector(logits: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    return torch.zeros(codebook.shape[-1], dtype=codebook.dtype)


class FineLMStep(nn.Module):
    """One fine-LM frame step for one operating point, written with plain tensor ops for the ONNX exporter.

    Holds the model's `fine_lm` and `quantizer` under those attribute names, so the exported initializers carry
    the checkpoint's parameter names. Every piece that `FineCodeGenerator` uses is called as is (input embeddings,
    GPT-2 blocks' layers, `level_logits`, `condition`); only the cached attention is spelled out."""

    def __init__(self, model, num_coarse: int):
        super().__init__()
        config = model.config
        if num_coarse not in config.operating_points:
            raise LMCodecError(f"{num_coarse} coarse levels is not an operating point of this checkpoint; "
                               f"use one of {list(config.operating_points)}.")
        self.fine_lm = model.fine_lm
        self.quantizer = model.quantizer
        self.num_coarse = num_coarse
        self.num_quantizers = config.num_quantizers
        backbone = self.fine_lm.backbone.config
        self.num_layers = backbone.n_layer
        self.num_heads = backbone.n_head
        self.head_dim = backbone.n_embd // backbone.n_head
        if getattr(backbone, "add_cross_attention", False):
            raise LMCodecError("the fine LM's GPT-2 has cross-attention; the ONNX step does not support it.")

    def _attention(self, block, hidden: torch.Tensor, past_keys: torch.Tensor, past_values: torch.Tensor,
                   keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """GPT-2 self-attention of one new frame `[1, 1, W]` over the buffer `[H, S, d]` (slots where `keep`) plus
        itself. Returns (output `[1, 1, W]`, key `[H, 1, d]`, value `[H, 1, d]`)."""
        attention = block.attn
        query, key, value = attention.c_attn(hidden).split(attention.split_size, dim=2)
        query = query.view(self.num_heads, 1, self.head_dim)  # [H, 1, d] (batch 1, one frame)
        key = key.view(self.num_heads, 1, self.head_dim)
        value = value.view(self.num_heads, 1, self.head_dim)
        scores_past = torch.matmul(query, past_keys.transpose(-1, -2)) * attention.scaling  # [H, 1, S]
        scores_past = torch.where(keep, scores_past, torch.full_like(scores_past, float("-inf")))
        score_self = torch.matmul(query, key.transpose(-1, -2)) * attention.scaling  # [H, 1, 1]
        weights = torch.softmax(torch.cat([scores_past, score_self], dim=-1), dim=-1)
        past_length = past_keys.shape[1]
        output = torch.matmul(weights[..., :past_length], past_values) + weights[..., past_length:] * value
        output = attention.c_proj(output.reshape(1, 1, self.num_heads * self.head_dim))
        return output, key, value

    def forward(self, coarse_codes, previous_fine_codes, past_keys, past_values, position, uniforms, temperature,
                greedy, compute_expected):
        lm = self.fine_lm
        books = self.quantizer.codebooks
        nc, nq = self.num_coarse, self.num_quantizers
        num_coarse = torch.full((1,), nc, dtype=torch.long)
        roles = level_roles(lm.target, num_coarse, nq)
        # The same input embedding as LMCodecFrameLM.step: this frame's coarse codes, the previous frame's fine ones.
        current_codes = torch.cat([coarse_codes, torch.zeros_like(previous_fine_codes)]).unsqueeze(0)  # [1, Nq]
        previous_codes = torch.cat([torch.zeros_like(coarse_codes), previous_fine_codes]).unsqueeze(0)
        current = lm._code_vectors(current_codes, books).unsqueeze(1)  # [1, 1, Nq, D]
        previous = lm._code_vectors(previous_codes, books).unsqueeze(1)
        at_start = (position == 0).to(current.dtype).reshape(1, 1)
        embeddings = lm._input_embeddings(current, previous, at_start, roles, num_coarse)  # [1, 1, W]
        # GPT-2, one frame at `position` (LMCodecFrameLM._backbone_step, with an explicit key/value buffer).
        backbone = lm.backbone
        hidden = embeddings + backbone.wpe(position.reshape(1, 1))
        slots = torch.arange(past_keys.shape[2], dtype=torch.long)
        keep = (slots < position).reshape(1, 1, -1)  # [1, 1, S]
        new_keys, new_values = [], []
        for index, block in enumerate(backbone.h):
            attended, key, value = self._attention(block, block.ln_1(hidden), past_keys[index], past_values[index],
                                                   keep)
            hidden = hidden + attended
            hidden = hidden + block.mlp(block.ln_2(hidden))
            new_keys.append(key)
            new_values.append(value)
        conditioned = backbone.ln_f(hidden)[:, 0]  # [1, W]
        # The fine levels, unrolled: logits → code (argmax or inverse-CDF sample) → condition the next level.
        codes = [coarse_codes]
        expected = torch.zeros(books.shape[-1], dtype=books.dtype)
        for index, level in enumerate(range(nc, nq)):
            logits = lm.level_logits(conditioned, level)[0]  # [K]
            # Each choice is an ONNX `If`: the branch not taken costs nothing (about 2 µs per If).
            code = torch.cond(greedy, _argmax, _inverse_cdf_sample, (logits, uniforms[index], temperature))  # [1]
            expected = expected + torch.cond(compute_expected, _expected_vector, _zero_vector, (logits, books[level]))
            if level < nq - 1:
                conditioned = lm.condition(conditioned, level, code, books)
            codes.append(code)
        codes = torch.cat(codes)  # [Nq]
        vectors = books[torch.arange(nq), codes]  # [Nq, D]
        return (codes, vectors.sum(dim=0), vectors[:nc].sum(dim=0), expected,
                torch.stack(new_keys), torch.stack(new_values))

    def example_inputs(self, past_length: int) -> tuple[torch.Tensor, ...]:
        fine = self.num_quantizers - self.num_coarse
        cache = torch.zeros(self.num_layers, self.num_heads, past_length, self.head_dim)
        return (torch.zeros(self.num_coarse, dtype=torch.long), torch.zeros(fine, dtype=torch.long), cache,
                cache.clone(), torch.tensor(1, dtype=torch.long), torch.full((fine,), 0.5), torch.tensor(1.0),
                torch.tensor(True), torch.tensor(True))


def _value_info(value) -> dict:
    from onnx import TensorProto, helper

    tensor = value.type.tensor_type
    shape = [dim.dim_param if dim.HasField("dim_param") else dim.dim_value for dim in tensor.shape.dim]
    return {"name": value.name, "dtype": helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
            if tensor.elem_type != TensorProto.BOOL else "bool", "shape": shape}


def _drop_trace_metadata(proto) -> None:
    """Remove the exporter's per-node stack traces and names (local paths, most of the file's size)."""
    for graph in _graphs(proto.graph):
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
        for value in list(graph.value_info) + list(graph.input) + list(graph.output):
            del value.metadata_props[:]
        for initializer in graph.initializer:
            del initializer.metadata_props[:]
    del proto.metadata_props[:]
    proto.doc_string = ""


def _graphs(graph):
    """`graph` and every subgraph (the branches of `If` nodes), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g.ByteSize():
                yield from _graphs(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graphs(subgraph)


def _strip_weights(proto, weight_names: set[str]) -> list[str]:
    """Replace the initializers named after checkpoint keys by external-data stubs; refuse any other tensor of more
    than a few values (a weight the exporter derived by folding, transposing or slicing would hide there)."""
    from onnx import AttributeProto, TensorProto

    stripped = []
    for graph in _graphs(proto.graph):
        for initializer in graph.initializer:
            if initializer.name in weight_names and graph is proto.graph:
                if initializer.data_type != TensorProto.FLOAT:
                    raise LMCodecError(f"weight {initializer.name} exported as ONNX type {initializer.data_type}, "
                                       "not float32; export a float32 model.")
                dims = list(initializer.dims)
                initializer.ClearField("raw_data")
                initializer.ClearField("float_data")
                initializer.data_location = TensorProto.EXTERNAL
                del initializer.external_data[:]
                length = 4 * int(np.prod(dims, dtype=np.int64))
                for key, value in (("location", STRIPPED_LOCATION), ("offset", "0"), ("length", str(length))):
                    entry = initializer.external_data.add()
                    entry.key, entry.value = key, value
                stripped.append(initializer.name)
            elif np.prod(initializer.dims, dtype=np.int64) > MAX_CONSTANT_VALUES:
                raise LMCodecError(f"the exported graph holds a tensor {initializer.name!r} of shape "
                                   f"{list(initializer.dims)} that is not a checkpoint weight; the exporter derived "
                                   "it from a weight (folded, transposed or sliced).")
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == AttributeProto.TENSOR and np.prod(attribute.t.dims,
                                                                       dtype=np.int64) > MAX_CONSTANT_VALUES:
                    raise LMCodecError(f"the exported graph's node {node.name!r} holds a constant of shape "
                                       f"{list(attribute.t.dims)}; the exporter folded a weight into it.")
    return stripped


def export_fine_lm_onnx(model, out_dir: str | os.PathLike, num_coarse: int | None = None,
                        check: bool = True) -> dict:
    """Write `fine_lm_step_nc{Nc}.onnx` to `out_dir` for `num_coarse` (default: every operating point) and
    `fine_lm_onnx.json` (the returned description). The model must be the float32 model whose weights the
    checkpoint's `model.safetensors` holds (float16 storage casts to the same float32 values).

    Returns `{"format", "version", "opset", "graphs": [{"file", "num_coarse", "sha256", "inputs", "outputs",
    "weights"}],
    "weights": {key: {"shape", "sha256"}}, ...}`: each graph's inputs and outputs with dtypes and shapes (S is the
    symbolic key/value buffer length), the safetensors keys it needs and a sha256 of each
    (`lmcodec.runtime.fine_lm.weight_digest`)."""
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise LMCodecError("exporting to ONNX needs the onnx and onnxscript packages: pip install 'lmcodec[export]'."
                           ) from error
    from lmcodec.runtime.fine_lm import weight_digest  # one definition: the runtime checks against it
    if model.dtype != torch.float32:
        raise LMCodecError(f"export a float32 model (got {model.dtype}); call model.float() first.")
    config = model.config
    points = list(config.operating_points) if num_coarse is None else [num_coarse]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {name: tensor for name, tensor in model.state_dict().items()
             if name.startswith("fine_lm.") or name == "quantizer.codebooks"}
    was_training = model.training
    model.eval()
    graphs, used = [], set()
    try:
        for point in points:
            step = FineLMStep(model, point).eval()
            past = torch.export.Dim("past", min=2, max=config.fine_lm_config.n_positions)
            shapes = {name: None for name in INPUTS}
            shapes["past_keys"] = shapes["past_values"] = {2: past}
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*axis name: past will not be used")
                warnings.filterwarnings("ignore", message=".*LeafSpec", category=FutureWarning)
                program = torch.onnx.export(
                    step, step.example_inputs(min(config.sync_frames, config.fine_lm_config.n_positions)),
                    dynamo=True, input_names=list(INPUTS), output_names=list(OUTPUTS), opset_version=OPSET,
                    dynamic_shapes=shapes, optimize=False, verbose=False)
            proto = program.model_proto
            _drop_trace_metadata(proto)
            for value in proto.graph.input:  # name the dynamic buffer length
                for dim in value.type.tensor_type.shape.dim:
                    if dim.HasField("dim_param"):
                        dim.dim_param = "S"
            for value in proto.graph.output:
                for dim in value.type.tensor_type.shape.dim:
                    if dim.HasField("dim_param") and value.name not in ("new_keys", "new_values"):
                        dim.dim_param = "S"
            if check:
                onnx.checker.check_model(proto)
            needed = _strip_weights(proto, set(state))
            used.update(needed)
            for key, value in (("lmcodec.format", GRAPH_FORMAT), ("lmcodec.version", str(GRAPH_VERSION)),
                               ("lmcodec.num_coarse", str(point)), ("lmcodec.weights", "model.safetensors"),
                               ("lmcodec.weight_keys", json.dumps(sorted(needed)))):
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
            name = graph_file_name(point)
            onnx.save_model(proto, str(out_dir / name), save_as_external_data=False)
            graphs.append({"file": name, "num_coarse": point,
                           "sha256": hashlib.sha256((out_dir / name).read_bytes()).hexdigest(),
                           "inputs": [_value_info(value) for value in proto.graph.input],
                           "outputs": [_value_info(value) for value in proto.graph.output],
                           "weights": sorted(needed)})
    finally:
        model.train(was_training)
    backbone = config.fine_lm_config
    description = {
        "format": GRAPH_FORMAT, "version": GRAPH_VERSION, "opset": OPSET, "dtype": "float32", "batch": 1,
        "num_quantizers": config.num_quantizers, "codebook_size": config.codebook_size,
        "codebook_dim": config.codebook_dim, "num_layers": backbone.n_layer, "num_heads": backbone.n_head,
        "head_dim": backbone.n_embd // backbone.n_head, "max_past": backbone.n_positions,
        "sync_frames": config.sync_frames, "weights_file": "model.safetensors", "graphs": graphs,
        "weights": {key: {"shape": list(state[key].shape),
                          "sha256": weight_digest(state[key].detach().cpu().float().numpy())} for key in sorted(used)},
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(description, indent=1) + "\n")
    return description


__all__ = ["FineLMStep", "export_fine_lm_onnx", "graph_file_name"]
