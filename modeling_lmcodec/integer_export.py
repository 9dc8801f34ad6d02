"""From the float entropy LM to the integer one: calibration, quantisation and the checkpoint's integer tensors.

`export_integer_entropy_model` runs the float LM teacher-forced over calibration codes, records the largest magnitude
at every point where the integer model (`integer_entropy_model.py`) holds a fixed-point number, picks each point's
fraction bits from it (16-bit activations with 2× headroom, residual streams with 8× headroom under their ±2^24
clip), quantises the weights to int8 per output channel, folds every scale into integer multipliers and shifts, and
tabulates GELU and exp. The float arithmetic here runs once; its result is stored as integer tensors in the
checkpoint (`LMCodecIntegerEntropyLM` buffers), so no receiver ever repeats it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .frame_lm import level_roles
from .integer_entropy_model import (
    ACTIVATION_LIMIT,
    ATTENTION_EXP_BITS,
    ATTENTION_EXP_FRACTION_BITS,
    FREQUENCY_BITS,
    GELU_TABLE_SIZE,
    INTEGER_MODEL_VERSION,
    LOGIT_EXP_BITS,
    LOGIT_FRACTION_BITS,
    WEIGHT_LIMIT,
    IntegerEntropyModel,
    exp_table_length,
    integer_tensor_shapes,
)

ACTIVATION_TARGET = 2**14  # a 16-bit activation's calibrated maximum lands here: 2x headroom under the clip
RESIDUAL_TARGET = 2**21  # residual streams: 8x headroom under RESIDUAL_LIMIT


def integer_model_dimensions(config) -> dict[str, int]:
    """The integer model's sizes from an `LMCodecConfig` (the arguments of `integer_tensor_shapes`)."""
    lm = config.entropy_lm_config
    return dict(width=lm.n_embd, heads=lm.n_head, layers=lm.n_layer, inner_size=lm.n_inner or 4 * lm.n_embd,
                levels=config.max_coarse_quantizers, codebook_size=config.codebook_size,
                codebook_dim=config.codebook_dim, positions=lm.n_positions, num_quantizers=config.num_quantizers)


class LMCodecIntegerEntropyLM(nn.Module):
    """Holds the integer entropy model's tensors as buffers (saved and loaded with the checkpoint; integer dtypes,
    so `model.half()` leaves them alone). `engine()` builds the numpy model that computes the probabilities."""

    def __init__(self, config):
        super().__init__()
        self.shapes = integer_tensor_shapes(**integer_model_dimensions(config))
        for name, (shape, dtype) in self.shapes.items():
            self.register_buffer(self._buffer_name(name), torch.zeros(shape, dtype=getattr(torch, dtype)))

    @staticmethod
    def _buffer_name(name: str) -> str:
        return name.replace(".", "__")  # module buffer names cannot hold dots

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if set(arrays) != set(self.shapes):
            raise ValueError(f"integer entropy model tensors differ from the layout: {sorted(set(arrays) ^ set(self.shapes))}")
        for name, (shape, dtype) in self.shapes.items():
            value = np.asarray(arrays[name])
            info = np.iinfo(dtype)
            if value.shape != shape or value.min(initial=0) < info.min or value.max(initial=0) > info.max:
                raise ValueError(f"integer entropy model tensor {name}: shape {value.shape} or range does not fit "
                                 f"{shape} {dtype}")
            getattr(self, self._buffer_name(name)).copy_(torch.from_numpy(value.astype(dtype)))

    def arrays(self) -> dict[str, np.ndarray]:
        """Name → numpy array (views of the buffers)."""
        return {name: getattr(self, self._buffer_name(name)).detach().cpu().numpy() for name in self.shapes}

    def engine(self) -> IntegerEntropyModel:
        """The numpy model, built once and reused while the buffers are unchanged (it holds no per-stream state)."""
        if int(self.format__version[0]) == 0:
            raise ValueError("this integer entropy model is empty (never exported)")
        key = tuple((buffer.data_ptr(), buffer._version) for buffer in self.buffers())
        cached = self.__dict__.get("_engine")
        if cached is None or cached[0] != key:
            cached = (key, IntegerEntropyModel(self.arrays()))
            self.__dict__["_engine"] = cached
        return cached[1]


# ---------------------------------------------------------------------------------------------------- calibration
def _gelu_tanh(values: np.ndarray) -> np.ndarray:
    return 0.5 * values * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (values + 0.044715 * values**3)))


class _Ranges(dict):
    def record(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        self[name] = max(self.get(name, 0.0), float(tensor.detach().abs().max()))
        return tensor


@torch.no_grad()
def float_reference(lm, codebooks: torch.Tensor, codes: torch.Tensor, num_coarse: int,
                    ranges: _Ranges | None = None) -> torch.Tensor:
    """The float entropy LM, teacher-forced, written out in the integer model's dataflow (GPT-2 blocks by hand,
    the depth module level by level), recording magnitudes into `ranges`. codes `[B, Nq, F]` → logits
    `[B, F, Nc, K]` (equal to `lm.forward` up to float rounding; the tests check it)."""
    ranges = _Ranges() if ranges is None else ranges
    batch, levels, frames = codes.shape
    count = torch.full((batch,), num_coarse, dtype=torch.long)
    roles = level_roles(lm.target, count, levels)
    vectors = lm._code_vectors(codes.transpose(1, 2), codebooks)  # [B, F, Nq, D]
    previous = torch.cat([torch.zeros_like(vectors[:, :1]), vectors[:, :-1]], dim=1)
    at_start = torch.zeros(batch, frames)
    at_start[:, 0] = 1
    backbone = lm.backbone
    hidden = lm._input_embeddings(vectors, previous, at_start, roles, count) + backbone.wpe.weight[:frames]
    ranges.record("residual", hidden)
    mask = torch.ones(frames, frames, dtype=torch.bool).tril()
    for layer, block in enumerate(backbone.h):
        attention = block.attn
        normed = ranges.record(f"h.{layer}.ln_1", block.ln_1(hidden))
        query, key, value = attention.c_attn(normed).split(attention.split_size, dim=-1)
        ranges.record(f"h.{layer}.q", query), ranges.record(f"h.{layer}.k", key), ranges.record(f"h.{layer}.v", value)
        split = lambda t: t.view(batch, frames, attention.num_heads, attention.head_dim).transpose(1, 2)  # noqa: E731
        scores = split(query) @ split(key).transpose(-1, -2) * attention.scaling
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        mixed = (weights @ split(value)).transpose(1, 2).reshape(batch, frames, -1)
        hidden = ranges.record("residual", hidden + attention.c_proj(mixed))
        inner = ranges.record(f"h.{layer}.gelu_in", block.mlp.c_fc(ranges.record(f"h.{layer}.ln_2", block.ln_2(hidden))))
        activation = ranges.record(f"h.{layer}.gelu_out", block.mlp.act(inner))
        hidden = ranges.record("residual", hidden + block.mlp.c_proj(activation))
    conditioned = ranges.record("ln_f", backbone.ln_f(hidden))
    logits = []
    for level in range(num_coarse):
        ranges.record("conditioned", conditioned)
        normed = ranges.record("depth_norm", lm.depth_norm(conditioned))
        inner = ranges.record("depth_gelu_in", lm.depth_mlp[0](normed))
        activation = ranges.record("depth_gelu_out", lm.depth_mlp[1](inner))
        deep = ranges.record("conditioned", conditioned + lm.depth_mlp[2](activation))
        head_input = ranges.record("head_norm", lm.head_norm(deep))
        query = ranges.record(f"head_query.{level}", head_input @ lm.head_queries[level])
        logits.append(query @ lm.head_codes[level].t() + lm.head_bias[level])
        if lm.depth:
            conditioned = conditioned + vectors[:, :, level] @ lm.depth_projection[level]
    return torch.stack(logits, dim=2)


# ---------------------------------------------------------------------------------------------------- quantisation
def _activation_bits(magnitude: float) -> int:
    return int(math.floor(math.log2(ACTIVATION_TARGET / max(magnitude, 2.0**-30))))


def _residual_bits(magnitude: float) -> int:
    return int(math.floor(math.log2(RESIDUAL_TARGET / max(magnitude, 2.0**-30))))


def _multiplier_and_shift(real: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """real > 0 `[N]` → integers M < 2^16, 1 ≤ S ≤ 62 with M / 2^S ≈ real (15 significant bits)."""
    shift = np.clip(14 - np.floor(np.log2(real)), 1, 62).astype(np.int64)
    multiplier = np.round(real * np.exp2(shift)).astype(np.int64)
    if multiplier.max() >= 2**16:
        raise ValueError(f"integer export: {name} needs a rescale factor beyond 2^16; the calibration ranges are off")
    return multiplier, shift


def _linear(out: dict, name: str, weight: torch.Tensor, bias: torch.Tensor | None, input_bits: int,
            output_bits) -> None:
    """weight `[K, N]` (y = x @ W + b) → int8 weight, per-channel multiplier/shift (and bias in accumulator units)."""
    weight = weight.detach().double().cpu().numpy()
    scale = np.abs(weight).max(axis=0) / WEIGHT_LIMIT
    scale = np.where(scale > 0, scale, 1.0)
    out[f"{name}.weight"] = np.clip(np.round(weight / scale), -WEIGHT_LIMIT, WEIGHT_LIMIT).astype(np.int8)
    real = scale * np.exp2(np.asarray(output_bits, dtype=np.float64) - input_bits)
    out[f"{name}.multiplier"], out[f"{name}.shift"] = _multiplier_and_shift(real, name)
    if bias is not None:
        out[f"{name}.bias"] = np.round(bias.detach().double().cpu().numpy() * 2.0**input_bits / scale).astype(np.int64)


def _layer_norm(out: dict, name: str, norm: nn.LayerNorm, input_bits: int, output_bits: int) -> None:
    out[f"{name}.gain"] = np.round(norm.weight.detach().double().numpy() * 2.0**output_bits).astype(np.int64)
    out[f"{name}.offset"] = np.round(norm.bias.detach().double().numpy() * 2.0**output_bits).astype(np.int64)
    out[f"{name}.epsilon"] = np.array([max(1, round(norm.eps * 4.0**input_bits))], dtype=np.int64)


def _gelu_table(input_bits: int, output_bits: int) -> np.ndarray:
    inputs = np.arange(-(GELU_TABLE_SIZE // 2), GELU_TABLE_SIZE // 2, dtype=np.float64) * 2.0**-input_bits
    return np.clip(np.round(_gelu_tanh(inputs) * 2.0**output_bits), -ACTIVATION_LIMIT, ACTIVATION_LIMIT)


def _exp_table(fraction_bits: int, scale_bits: int) -> np.ndarray:
    steps = np.arange(exp_table_length(fraction_bits, scale_bits), dtype=np.float64)
    table = np.round(2.0**scale_bits * np.exp(-steps / 2**fraction_bits))
    assert table[-1] == 0 and table[0] == 2**scale_bits
    return table


def _scalar(value: int) -> np.ndarray:
    return np.array([int(value)], dtype=np.int64)


@torch.no_grad()
def export_integer_entropy_model(model, calibration_codes: torch.Tensor) -> dict[str, np.ndarray]:
    """The integer tensors of `model.entropy_lm`, calibrated on `calibration_codes` `[B, Nq, F]` (codes of real
    speech, one sync period or less per row) at every operating point of the config."""
    config, lm = model.config, model.entropy_lm
    if lm.backbone.config.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError("integer export supports GPT-2 with the tanh GELU ('gelu_new') only")
    if not lm.depth:
        raise ValueError("integer export needs the depth module (entropy_lm_depth=True)")
    dims = integer_model_dimensions(config)
    was_training = lm.training
    lm.eval()
    codebooks = model.quantizer.codebooks.detach().float()
    ranges = _Ranges()
    try:
        for num_coarse in config.operating_points:
            float_reference(lm, codebooks, calibration_codes, num_coarse, ranges)
    finally:
        lm.train(was_training)
    levels = dims["levels"]
    out: dict[str, np.ndarray] = {}
    for name in ("width", "heads", "layers", "levels", "codebook_size", "positions"):
        out[f"format.{name}"] = _scalar(dims[name])
    out["format.version"] = _scalar(INTEGER_MODEL_VERSION)
    out["format.frequency_bits"] = _scalar(FREQUENCY_BITS)
    backbone = lm.backbone
    residual = _residual_bits(ranges["residual"])
    codebook_bits = _activation_bits(float(codebooks[:levels].abs().max()))
    out["codebooks"] = np.round(codebooks[:levels].double().numpy() * 2.0**codebook_bits)
    out["segment_start"] = np.round(lm.segment_start[:levels].double().numpy() * 2.0**residual)
    out["num_coarse_embedding"] = np.round(lm.num_coarse_embedding.weight.double().numpy() * 2.0**residual)
    out["position_embedding"] = np.round(backbone.wpe.weight[: dims["positions"]].double().numpy() * 2.0**residual)
    out["attention_exp"] = _exp_table(ATTENTION_EXP_FRACTION_BITS, ATTENTION_EXP_BITS)
    out["logit_exp"] = _exp_table(LOGIT_FRACTION_BITS, LOGIT_EXP_BITS)
    width = dims["width"]
    for layer, block in enumerate(backbone.h):
        name = f"h.{layer}"
        ln_1, ln_2 = _activation_bits(ranges[f"{name}.ln_1"]), _activation_bits(ranges[f"{name}.ln_2"])
        q, k, v = (_activation_bits(ranges[f"{name}.{part}"]) for part in "qkv")
        gelu_in, gelu_out = _activation_bits(ranges[f"{name}.gelu_in"]), _activation_bits(ranges[f"{name}.gelu_out"])
        _layer_norm(out, f"{name}.ln_1", block.ln_1, residual, ln_1)
        _linear(out, f"{name}.attn.c_attn", block.attn.c_attn.weight, block.attn.c_attn.bias, ln_1,
                np.repeat([q, k, v], width))
        score = block.attn.scaling * 2.0 ** (ATTENTION_EXP_FRACTION_BITS - q - k)
        multiplier, shift = _multiplier_and_shift(np.array([score]), f"{name}.attn.score")
        out[f"{name}.attn.score.multiplier"], out[f"{name}.attn.score.shift"] = multiplier, shift
        _linear(out, f"{name}.attn.c_proj", block.attn.c_proj.weight, block.attn.c_proj.bias, v, residual)
        _layer_norm(out, f"{name}.ln_2", block.ln_2, residual, ln_2)
        _linear(out, f"{name}.mlp.c_fc", block.mlp.c_fc.weight, block.mlp.c_fc.bias, ln_2, gelu_in)
        out[f"{name}.mlp.gelu_table"] = _gelu_table(gelu_in, gelu_out)
        _linear(out, f"{name}.mlp.c_proj", block.mlp.c_proj.weight, block.mlp.c_proj.bias, gelu_out, residual)
    ln_f = _activation_bits(ranges["ln_f"])
    conditioned_shift = max(0, _residual_bits(ranges["conditioned"]) - ln_f)
    conditioned = ln_f + conditioned_shift
    _layer_norm(out, "ln_f", backbone.ln_f, residual, ln_f)
    out["ln_f.output_shift"] = _scalar(conditioned_shift)
    depth_norm, head_norm = _activation_bits(ranges["depth_norm"]), _activation_bits(ranges["head_norm"])
    gelu_in, gelu_out = _activation_bits(ranges["depth_gelu_in"]), _activation_bits(ranges["depth_gelu_out"])
    _layer_norm(out, "depth_norm", lm.depth_norm, conditioned, depth_norm)
    _linear(out, "depth_mlp.fc", lm.depth_mlp[0].weight.t(), lm.depth_mlp[0].bias, depth_norm, gelu_in)
    out["depth_mlp.gelu_table"] = _gelu_table(gelu_in, gelu_out)
    _linear(out, "depth_mlp.proj", lm.depth_mlp[2].weight.t(), lm.depth_mlp[2].bias, gelu_out, conditioned)
    _layer_norm(out, "head_norm", lm.head_norm, conditioned, head_norm)
    for level in range(levels):
        query = _activation_bits(ranges[f"head_query.{level}"]) if f"head_query.{level}" in ranges else head_norm
        _linear(out, f"previous_projection.{level}", lm.previous_projection[level], None, codebook_bits, residual)
        _linear(out, f"depth_projection.{level}", lm.depth_projection[level], None, codebook_bits, conditioned)
        _linear(out, f"head_query.{level}", lm.head_queries[level], None, head_norm, query)
        _linear(out, f"head_codes.{level}", lm.head_codes[level].t(), lm.head_bias[level], query, LOGIT_FRACTION_BITS)
    shapes = integer_tensor_shapes(**dims)
    return {name: np.asarray(out[name]).astype(dtype) for name, (shape, dtype) in shapes.items()}
