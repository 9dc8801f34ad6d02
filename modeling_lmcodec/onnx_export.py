"""ONNX export of the codec's streaming encoder step and decoder step (torch side; docs/onnx.md describes the graphs).

`export_onnx(model, out_dir)` writes `encoder_step.onnx`, `decoder_step.onnx` and `manifest.json` (float32, batch 1,
opset 18). The graphs hold no checkpoint weights: every weight initializer is named after its `model.safetensors` key
and marked as external data at a location that does not exist (`WEIGHTS_LOCATION`); the runtime
(`lmcodec.runtime.graphs`) supplies the weights, cast to float32, when it creates the InferenceSessions. Only computed
constants (DFT bases with the analysis / synthesis windows folded in, the noise-phase table) stay embedded.

Complex tensors do not export, so the STFT and inverse STFT are rewritten here as real matrix products with DFT bases;
the rest reuses the model's own modules and weights. The torch model is not changed: training and `encode` keep their
numerics. Not imported by `lmcodec/__init__.py` (it needs onnx and onnxscript: the `export` extra).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .errors import LMCodecError
from .frames import ENCODER_BLOCK_FRAMES

OPSET = 18
# The settings the graphs depend on beyond the weights; the runtime compares them with the checkpoint's config.json.
CONFIG_KEYS = (
    "sampling_rate", "stft_window_length", "stft_hop_length", "frame_downsampling", "hidden_size", "intermediate_size",
    "kernel_size", "layer_norm_eps", "num_encoder_stft_layers", "num_encoder_frame_layers", "num_decoder_frame_layers",
    "num_decoder_stft_layers", "codebook_dim", "codebook_size", "num_quantizers", "decoder_head_overlap",
    "decoder_window_length", "decoder_phase", "num_harmonics",
)
# Initializers the exporter creates itself (shapes, scalars) stay embedded; anything larger must be a known constant.
SMALL_CONSTANT_ELEMENTS = 64


# ---------------------------------------------------------------------------------------------------- building blocks
def _convnext_block(layer, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`LMCodecConvNeXtBlock.forward` with a given state, valid for any length: the depthwise conv is a sum over the
    kernel taps of shifted slices (the short-input path of the torch block, without its length-dependent branch)."""
    padded = torch.cat([state, x], dim=1)
    steps = x.shape[1]
    context = layer.context
    new_state = padded[:, steps:]
    weight = layer.depthwise.weight[:, 0]  # [C, k]
    h = padded[:, 0:steps] * weight[:, 0]
    for tap in range(1, context + 1):
        h = h + padded[:, tap : tap + steps] * weight[:, tap]
    h = h + layer.depthwise.bias
    h = layer.pointwise_out(F.gelu(layer.pointwise_in(layer.norm(h)), approximate="tanh"))
    return x + layer.layer_scale * h, new_state


def _stack(stack, x: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    new_states = []
    for layer, state in zip(stack.layers, states):
        x, state = _convnext_block(layer, x, state)
        new_states.append(state)
    return x, new_states


def dft_tables(length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of `2 pi m / length` for m = 0 .. length - 1, `[length]` each (computed in float64)."""
    angle = torch.arange(length, dtype=torch.float64) * (2 * math.pi / length)
    return torch.cos(angle).float(), torch.sin(angle).float()


def _dft_index(bins: int, length: int) -> torch.Tensor:
    """`[bins, length]` int64 `(k * t) mod length`: where the DFT's `exp(-2 pi i k t / length)` sits in the tables.
    Built with arange in the graph (folded once when the InferenceSession is created), so no large constant is
    stored."""
    k = torch.arange(bins, dtype=torch.int64)
    t = torch.arange(length, dtype=torch.int64)
    return (k[:, None] * t[None, :]) % length


def rfft_basis(cos: torch.Tensor, sin: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """`[N, 2 * bins]` with `frames @ basis = [real, imag]` of `torch.fft.rfft(frames * window)` (window folded in)."""
    n = window.shape[0]
    index = _dft_index(n // 2 + 1, n).t()  # [N, bins]
    window = window[:, None]
    return torch.cat([cos[index] * window, -sin[index] * window], dim=1)


def irfft_basis(cos: torch.Tensor, sin: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """`[2 * bins, N]` with `[real, imag] @ basis = torch.fft.irfft(spectrum, n=N) * window` (window and 1 / N folded
    in; the imaginary parts of the DC and Nyquist bins are ignored, as irfft does)."""
    n = window.shape[0]
    bins = n // 2 + 1
    index = _dft_index(bins, n)  # [bins, N]
    inner = (torch.arange(bins, dtype=torch.int64) % (bins - 1) != 0).to(window.dtype)[:, None]  # 0 at DC, Nyquist
    scaled = window[None, :] * (1.0 / n)
    return torch.cat([cos[index] * (scaled * (1.0 + inner)), -sin[index] * (scaled * (2.0 * inner))], dim=0)


# ---------------------------------------------------------------------------------------------------- export modules
class EncoderStepExport(nn.Module):
    """`LMCodecModel.encode_block` for all levels: samples `[1, block]` + states → codes `[1, Nq, frames]` + states."""

    def __init__(self, model):
        super().__init__()
        # The model's own modules: their parameters keep their state-dict (= safetensors) names in the graph.
        self.encoder = model.encoder
        self.quantizer = model.quantizer
        features = model.encoder.features
        self.window_length, self.stft_hop = features.window_length, features.hop_length
        cos, sin = dft_tables(features.window_length)
        self.register_buffer("encoder_dft_cos", cos, persistent=False)
        self.register_buffer("encoder_dft_sin", sin, persistent=False)
        self.register_buffer("encoder_window", features.window.clone(), persistent=False)
        self.num_quantizers = model.config.num_quantizers
        self.block_samples = ENCODER_BLOCK_FRAMES * model.config.hop_length

    def state_specs(self) -> list[tuple[str, list[int]]]:
        encoder = self.encoder
        channels = encoder.output_norm.normalized_shape[0]
        specs = [("state_features", [1, self.window_length - self.stft_hop])]
        specs += [(f"state_encoder_stft_{i}", [1, layer.context, channels]) for i, layer in
                  enumerate(encoder.stft_layers.layers)]
        specs += [(f"state_encoder_frame_{i}", [1, layer.context, channels]) for i, layer in
                  enumerate(encoder.frame_layers.layers)]
        return specs

    def features(self, samples: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`LMCodecSTFTFeatures.forward` with the rfft as a matrix product."""
        padded = torch.cat([state, samples], dim=1)
        context = self.window_length - self.stft_hop
        frames = padded.unfold(1, self.window_length, self.stft_hop)
        basis = rfft_basis(self.encoder_dft_cos, self.encoder_dft_sin, self.encoder_window)
        real, imag = (frames @ basis).chunk(2, dim=-1)
        magnitude = torch.sqrt(real * real + imag * imag)
        scale = (magnitude + 1e-5).pow(-0.7)
        features = torch.cat([torch.log(magnitude + 1e-5), real * scale, imag * scale], dim=-1)
        return features, padded[:, padded.shape[1] - context :]

    def forward(self, samples: torch.Tensor, *states: torch.Tensor):
        encoder = self.encoder
        stft_count = len(encoder.stft_layers.layers)
        features, features_state = self.features(samples, states[0])
        hidden, stft_states = _stack(encoder.stft_layers, encoder.input_projection(features),
                                     list(states[1 : 1 + stft_count]))
        batch, steps, channels = hidden.shape
        factor = encoder.downsampling
        hidden = encoder.downsample(hidden.reshape(batch, steps // factor, factor * channels))
        hidden, frame_states = _stack(encoder.frame_layers, hidden, list(states[1 + stft_count :]))
        latent = encoder.output_projection(encoder.output_norm(hidden))
        # `LMCodecResidualVectorQuantizer.encode` with the codebook norms computed in the graph
        codebooks = self.quantizer.codebooks
        norms = (codebooks * codebooks).sum(-1)
        frames = latent.shape[1]
        residual = latent.reshape(-1, latent.shape[-1])
        codes = []
        for level in range(self.num_quantizers):
            scores = torch.addmm(norms[level], residual, codebooks[level].t(), alpha=-2.0)
            indices = scores.argmin(dim=-1)
            residual = residual - codebooks[level][indices]
            codes.append(indices)
        codes = torch.stack(codes, dim=0).reshape(self.num_quantizers, 1, frames).transpose(0, 1)
        return (codes, features_state, *stft_states, *frame_states)


class DecoderStepExport(nn.Module):
    """`LMCodecDecoder.forward`: latent `[1, f, D]` + states → samples `[1, f * hop]` (unclipped) + states."""

    def __init__(self, model):
        super().__init__()
        decoder = model.decoder
        if decoder.harmonic_head is not None:
            raise LMCodecError("the ONNX export does not support the harmonic decoder branch (num_harmonics > 0) yet; "
                               "export a checkpoint with num_harmonics=0.")
        self.decoder = decoder
        head = decoder.head
        cos, sin = dft_tables(head.window_length)
        self.register_buffer("decoder_dft_cos", cos, persistent=False)
        self.register_buffer("decoder_dft_sin", sin, persistent=False)
        self.register_buffer("decoder_window", head.window.clone(), persistent=False)
        if head.phase == "noise":
            self.register_buffer("decoder_noise_phase", head.noise_phase.clone(), persistent=False)

    @property
    def noise(self) -> bool:
        return self.decoder.head.phase == "noise"

    def pending_samples(self) -> int:
        head = self.decoder.head
        return head.hop_length if head.overlap == 2 else (head.overlap - 1) * head.synthesis_hop

    def state_specs(self) -> list[tuple[str, list[int], str]]:
        decoder = self.decoder
        channels = decoder.output_norm.normalized_shape[0]
        specs = [(f"state_decoder_frame_{i}", [1, layer.context, channels], "float32") for i, layer in
                 enumerate(decoder.frame_layers.layers)]
        specs += [(f"state_decoder_stft_{i}", [1, layer.context, channels], "float32") for i, layer in
                  enumerate(decoder.stft_layers.layers)]
        specs.append(("state_decoder_head", [1, self.pending_samples()], "float32"))
        if self.noise:
            specs.append(("state_decoder_head_frame", [1], "int64"))
        return specs

    def synthesize(self, real: torch.Tensor, imag: torch.Tensor, pending: torch.Tensor):
        """`LMCodecISTFTHead.synthesize` with the irfft as a matrix product and functional overlap-add."""
        head = self.decoder.head
        basis = irfft_basis(self.decoder_dft_cos, self.decoder_dft_sin, self.decoder_window)
        frames = torch.cat([real, imag], dim=-1) @ basis  # [1, m, window]
        if head.overlap == 2:
            heads, tails = frames[..., : head.hop_length], frames[..., head.hop_length :]
            previous_tails = torch.cat([pending.unsqueeze(1), tails[:, :-1]], dim=1)
            return (heads + previous_tails).flatten(1), tails[:, -1]
        batch, count, _ = frames.shape
        hop, overlap = head.synthesis_hop, head.overlap
        pieces = frames.reshape(batch, count, overlap, hop)
        chunks = F.pad(pieces[:, :, 0], (0, 0, 0, overlap - 1))
        for k in range(1, overlap):  # same order of additions as the torch head
            chunks = chunks + F.pad(pieces[:, :, k], (0, 0, k, overlap - 1 - k))
        chunks = chunks + F.pad(pending.reshape(batch, overlap - 1, hop), (0, 0, 0, count))
        return chunks[:, :count].flatten(1), chunks[:, count:].flatten(1)

    def forward(self, latent: torch.Tensor, *states: torch.Tensor):
        decoder = self.decoder
        frame_count = len(decoder.frame_layers.layers)
        stft_count = len(decoder.stft_layers.layers)
        hidden, frame_states = _stack(decoder.frame_layers, decoder.input_projection(latent),
                                      list(states[:frame_count]))
        batch, steps, channels = hidden.shape
        hidden = decoder.upsample(hidden).reshape(batch, steps * decoder.upsampling, channels)
        hidden, stft_states = _stack(decoder.stft_layers, hidden, list(states[frame_count : frame_count + stft_count]))
        hidden = decoder.output_norm(hidden)
        log_magnitude, phase = decoder.head.spectra(hidden)
        pending = states[frame_count + stft_count]
        extra = []
        if self.noise:
            first_frame = states[frame_count + stft_count + 1]
            count = phase.shape[1]
            rows = (first_frame + torch.arange(count, dtype=torch.int64)) % decoder.head.NOISE_PHASE_FRAMES
            phase = self.decoder_noise_phase[rows].unsqueeze(0)
            extra = [first_frame + count]
        magnitude = torch.exp(log_magnitude)
        samples, pending = self.synthesize(magnitude * torch.cos(phase), magnitude * torch.sin(phase), pending)
        return (samples, *frame_states, *stft_states, pending, *extra)


# ---------------------------------------------------------------------------------------------------- export
def _export(module: nn.Module, args: tuple, input_names: list[str], output_names: list[str], dynamic_shapes=None):
    """torch.onnx (dynamo) export without graph optimisation, so no weight is folded, renamed or transposed."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # e.g. "torchvision is not installed"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, dynamo=True, optimize=False, opset_version=OPSET, verbose=False,
                                        input_names=input_names, output_names=output_names,
                                        dynamic_shapes=dynamic_shapes, external_data=False)
    finally:
        logger.setLevel(level)
    return program.model_proto


def _strip_weights(proto, state_dict: dict[str, torch.Tensor], constants: set[str]) -> list[dict]:
    """Turn every initializer that is a checkpoint tensor into an external-data reference (no data kept), checking
    that its values are the checkpoint's; drop unused initializers; refuse any other large initializer (a weight
    renamed or transformed by the exporter would otherwise be embedded silently). Returns the weights' specs."""
    import onnx
    from onnx import numpy_helper

    from lmcodec.runtime.graphs import WEIGHTS_LOCATION

    graph = proto.graph
    used = {name for node in graph.node for name in node.input}
    for node in graph.node:  # names used inside subgraphs (none expected, but keep them)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                used |= {name for sub in attribute.g.node for name in sub.input}
    kept, weights = [], []
    for tensor in graph.initializer:
        if tensor.name not in used:
            continue
        if tensor.name in state_dict:
            expected = state_dict[tensor.name].detach().float().cpu().numpy()
            value = numpy_helper.to_array(tensor)
            if value.shape != expected.shape or not np.array_equal(value, expected):
                raise RuntimeError(f"initializer {tensor.name} differs from the checkpoint tensor of that name")
            if tensor.data_type != onnx.TensorProto.FLOAT:
                raise RuntimeError(f"initializer {tensor.name} is not float32")
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", WEIGHTS_LOCATION
            weights.append({"name": tensor.name, "shape": list(expected.shape), "dtype": "float32"})
        elif tensor.name not in constants and math.prod(tensor.dims) > SMALL_CONSTANT_ELEMENTS:
            raise RuntimeError(f"the exporter produced initializer {tensor.name} {list(tensor.dims)} that is neither "
                               "a checkpoint tensor nor a known computed constant")
        kept.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return sorted(weights, key=lambda w: w["name"])


def _io_specs(proto, names: list[str]) -> list[dict]:
    import onnx

    values = {v.name: v for v in list(proto.graph.input) + list(proto.graph.output)}
    specs = []
    for name in names:
        tensor_type = values[name].type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        specs.append({"name": name, "shape": shape, "dtype": dtype})
    return specs


def _name_dynamic_dim(proto, input_name: str, axis: int, name: str) -> None:
    """Give the exporter's symbol for `input_name`'s dynamic `axis` (e.g. "s53") a readable name in every shape."""
    import re

    value = next(v for v in proto.graph.input if v.name == input_name)
    symbol = value.type.tensor_type.shape.dim[axis].dim_param
    pattern = re.compile(rf"\b{re.escape(symbol)}\b")
    for value in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.dim_param = pattern.sub(name, dim.dim_param)


def _manifest_json(manifest: dict) -> str:
    """Indented JSON with every list of numbers or strings (shapes) on one line."""
    import re

    text = json.dumps(manifest, indent=1)
    return re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s+", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]"),
                  text) + "\n"


def _save(proto, path: Path, graph: str, fingerprint: str) -> None:
    import onnx

    del proto.metadata_props[:]
    for node in proto.graph.node:  # the exporter's per-node stack traces: most of the file otherwise
        del node.metadata_props[:]
        node.doc_string = ""
    for key, value in (("lmcodec_graph", graph), ("lmcodec_weights_fingerprint", fingerprint)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "lmcodec.onnx_export"
    temporary = path.with_name(path.name + ".tmp")
    onnx.save(proto, str(temporary))
    temporary.replace(path)


@torch.no_grad()
def export_onnx(model, out_dir: str | Path) -> list[Path]:
    """Write `encoder_step.onnx`, `decoder_step.onnx` and `manifest.json`, and the fine LM's step graphs with
    `fine_lm_onnx.json`, for `model` into `out_dir` (normally `CHECKPOINT/onnx`, beside the `model.safetensors`
    whose weights the graphs name). Returns the written paths."""
    from lmcodec.runtime.graphs import DECODER, ENCODER, FORMAT, FORMAT_VERSION, MANIFEST_NAME, weights_fingerprint

    config = model.config
    if config.num_harmonics > 0:
        raise LMCodecError("the ONNX export does not support the harmonic decoder branch (num_harmonics > 0) yet; "
                           "export a checkpoint with num_harmonics=0.")
    if model.dtype != torch.float32 or model.device.type != "cpu":
        raise LMCodecError(f"export_onnx needs a float32 model on the CPU, got {model.dtype} on {model.device}; "
                           "load it with dtype=torch.float32.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_dict = model.state_dict()
    was_training = model.training
    model.eval()
    try:
        encoder = EncoderStepExport(model).eval()
        decoder = DecoderStepExport(model).eval()
        encoder_states = encoder.state_specs()
        decoder_states = decoder.state_specs()

        samples = torch.zeros(1, encoder.block_samples)
        encoder_args = (samples, *(torch.zeros(shape) for _, shape in encoder_states))
        encoder_inputs = ["samples"] + [name for name, _ in encoder_states]
        encoder_outputs = ["codes"] + ["new_" + name for name, _ in encoder_states]
        encoder_proto = _export(encoder, encoder_args, encoder_inputs, encoder_outputs)

        frames = torch.export.Dim("frames", min=1, max=1 << 20)
        latent = torch.zeros(1, 3, config.codebook_dim)
        decoder_args = (latent, *(torch.zeros(shape, dtype=getattr(torch, dtype)) for _, shape, dtype in
                                  decoder_states))
        decoder_inputs = ["latent"] + [name for name, _, _ in decoder_states]
        decoder_outputs = ["samples"] + ["new_" + name for name, _, _ in decoder_states]
        dynamic = torch.export.ShapesCollection()  # by tensor: independent of the (latent, *states) structure
        dynamic[latent] = {1: frames}
        decoder_proto = _export(decoder, decoder_args, decoder_inputs, decoder_outputs, dynamic_shapes=dynamic)
        _name_dynamic_dim(decoder_proto, "latent", 1, "frames")
    finally:
        model.train(was_training)

    graphs = {}
    paths = []
    for graph, proto, module, inputs, outputs, constants in (
        (ENCODER, encoder_proto, encoder, encoder_inputs, encoder_outputs,
         {"encoder_dft_cos", "encoder_dft_sin", "encoder_window"}),
        (DECODER, decoder_proto, decoder, decoder_inputs, decoder_outputs,
         {"decoder_dft_cos", "decoder_dft_sin", "decoder_window", "decoder_noise_phase"}),
    ):
        weights = _strip_weights(proto, state_dict, constants)
        fingerprint = weights_fingerprint({w["name"]: state_dict[w["name"]] for w in weights})
        path = out / f"{graph}.onnx"
        _save(proto, path, graph, fingerprint)
        paths.append(path)
        state_names = inputs[1:]
        input_specs = _io_specs(proto, inputs)
        output_specs = _io_specs(proto, outputs)
        graphs[graph] = {
            "file": path.name,
            "inputs": input_specs[:1],
            "outputs": output_specs[:1],
            "states": [{"input": name, "output": "new_" + name, "shape": spec["shape"], "dtype": spec["dtype"]}
                       for name, spec in zip(state_names, input_specs[1:])],
            "weights": weights,
            "weights_fingerprint": fingerprint,
        }
    graphs[ENCODER].update(block_samples=encoder.block_samples, frames_per_block=ENCODER_BLOCK_FRAMES)
    graphs[DECODER].update(hop_length=config.hop_length, output_delay=model.decoder.output_delay,
                           pending_state="state_decoder_head")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "opset": OPSET,
        "weights_file": "model.safetensors",
        "weights_dtype_in_graph": "float32",
        "codebooks": "quantizer.codebooks",
        "sampling_rate": config.sampling_rate,
        "hop_length": config.hop_length,
        "num_quantizers": config.num_quantizers,
        "codebook_size": config.codebook_size,
        "codebook_dim": config.codebook_dim,
        "config": {key: getattr(config, key) for key in CONFIG_KEYS},
        "graphs": graphs,
    }
    manifest_path = out / MANIFEST_NAME
    temporary = manifest_path.with_name(manifest_path.name + ".tmp")
    temporary.write_text(_manifest_json(manifest))
    temporary.replace(manifest_path)
    paths.append(manifest_path)
    from .onnx_fine_lm import export_fine_lm_onnx  # the fine LM's step graphs, one per operating point

    description = export_fine_lm_onnx(model, out)
    paths.extend(out / graph["file"] for graph in description["graphs"])
    paths.append(out / "fine_lm_onnx.json")
    return paths


def main(argv: list[str] | None = None) -> int:
    """`CHECKPOINT [OUT]`: export CHECKPOINT's graphs to OUT (default: CHECKPOINT/onnx). Forwarded by the CLI."""
    parser = argparse.ArgumentParser(prog="lmcodec export-onnx", description=main.__doc__)
    parser.add_argument("checkpoint", help="checkpoint folder (config.json, model.safetensors)")
    parser.add_argument("out", nargs="?", help="output folder (default: CHECKPOINT/onnx)")
    args = parser.parse_args(argv)
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise LMCodecError(f"export-onnx needs {' and '.join(missing)}; install them with "
                           "pip install 'lmcodec[export]'.")
    from lmcodec.runtime.graphs import ONNX_FOLDER

    from .modeling_lmcodec import LMCodecModel

    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "config.json").is_file() or not (checkpoint / "model.safetensors").is_file():
        raise LMCodecError(f"{checkpoint} is not an LMCodec checkpoint folder (config.json and model.safetensors); "
                           "pass the folder written by lmcodec.save_checkpoint.")
    model = LMCodecModel.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    for path in export_onnx(model, checkpoint / ONNX_FOLDER if args.out is None else args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
