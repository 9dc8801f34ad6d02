"""The integer entropy model: the coarse-code probabilities behind the range coder, computed bit for bit alike on
every machine (Ballé, Johnston & Minnen, "Integer Networks for Data Compression with Latent-Variable Models", ICLR
2019). numpy only — no torch, no libm — so it runs wherever numpy does (tested on x86-64 and on ARM64 under qemu).

It is the float entropy LM (`frame_lm.LMCodecFrameLM`, GPT-2 backbone + depth module + low-rank heads) with
every tensor an integer and every value a fixed-point number `X · 2^-f`. It is exported from the float model by
`integer_export.py` and stored in the checkpoint as integer tensors (`LMCodecModel.integer_entropy_lm`), so decoding
never depends on how an export was computed. Its parts:

- **Linear layers**: int8 weights (per output channel scale, folded into the requantisation), integer inputs of at
  most 16 bits, exact accumulation, then requantisation `(acc · M + 2^(S-1)) >> S` (round half up; `M < 2^16`,
  per output channel), clipped to the output's range. Every rescaling and normalisation rounds half up
  (`rounding_divide`); only the frequency table floors, by its definition.
- **Exact matrix products** (`exact_matmul`): the products run as float32 BLAS calls on integer-valued tensors,
  which are exact on any kernel and in any summation order while every partial sum stays below 2^24. Proof of the
  bound: the input is split into chunks of `b` bits (`chunk_bits`: b = 24 - 7 - ceil(log2 K') for blocks of
  K' ≤ 512 inputs), each chunk has |x| ≤ 2^b and each weight |w| ≤ 127 < 2^7, so any partial sum of a block's K'
  products is at most K' · 2^b · 2^7 ≤ 2^24; the blocks' results are added in float64 (a few numbers below 2^24:
  exact) and the chunks recombined in int64 (checked again at load time and in the tests). Attention products
  (16-bit by 16-bit) use float64 instead: |q·k| sums stay below head_dim · 2^30 and |p·v| sums below
  positions · 2^15 · 2^15, both far under float64's 2^53 for head_dim and positions ≤ 2^15 (checked at load time).
- **LayerNorm**: integer mean (`rounding_divide`), integer variance, integer square root (`integer_sqrt`: a float
  estimate corrected by exact integer comparisons, so the result is floor(sqrt) on any machine), then
  `(x - mean) · gain / std + offset` with one rounding division.
- **GELU** through a 65 536-entry lookup table per layer (index = the 16-bit input); **softmax** (attention and
  the output) through exp lookup tables over the distance to the row maximum, in fixed steps of nats.
- **The output**: an integer frequency table per level with total `2^frequency_bits`, every code at least 1
  (`frequency_table`), which the range coder uses as exact dyadic probabilities.

The residual stream is an int64 array clipped to ±2^24; every other activation is clipped to 16 bits. With those
clips no int64 intermediate can overflow: LayerNorm's sum of squares stays below W · 2^50 and its numerator below
2^25 · 2^31 · 2, a requantisation product below (K · 2^22 + |bias|) · 2^16 < 2^62 (|bias| ≤ 2^40, checked at load
time), a frequency numerator below 2^16 · 2^20.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ACTIVATION_LIMIT = 2**15 - 1
"""Activations entering a matrix product or a lookup table are clipped to ±(2^15 - 1) (16-bit)."""

RESIDUAL_LIMIT = 2**24
"""The residual streams (backbone and depth module) are clipped to ±2^24."""

WEIGHT_LIMIT = 127
"""int8 weights are symmetric: -127..127."""

FLOAT32_EXACT_LIMIT = 2**24
"""Every partial sum of an `exact_matmul` stays below this, so float32 sums of integers are exact."""

GELU_TABLE_SIZE = 2**16
"""GELU lookup tables map every 16-bit input to its output."""

INTEGER_MODEL_VERSION = 1
"""Version of the integer model's arithmetic; part of the model fingerprint."""


def rounding_divide(numerator: np.ndarray, denominator) -> np.ndarray:
    """Integer division rounding half up: floor((2n + d) / (2d)) for int64 n and d > 0 (exact)."""
    twice = numerator * 2
    twice += denominator
    return np.floor_divide(twice, denominator * 2, out=twice)


def clip(values: np.ndarray, limit: int) -> np.ndarray:
    """Clip to ±limit in place (two ufunc calls: `np.clip`'s Python wrapper costs more than the work here)."""
    np.maximum(values, -limit, out=values)
    return np.minimum(values, limit, out=values)


def requantize(accumulator: np.ndarray, multiplier, shift, limit: int, half=None) -> np.ndarray:
    """(acc · M + 2^(S-1)) >> S, clipped to ±limit, in place. acc int64 `[..., N]`; M and S int64 `[N]` or Python
    ints, S ≥ 1; `half` = 2^(S-1) when the caller has it precomputed.

    `>>` on int64 is numpy's `right_shift`, an arithmetic shift (floor division by 2^S) with every compiler numpy
    is built with (C++20 makes it the rule); the cross-architecture test checks it."""
    accumulator *= multiplier
    accumulator += np.left_shift(1, shift - 1) if half is None else half
    return clip(np.right_shift(accumulator, shift, out=accumulator), limit)


def integer_sqrt(values: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) of non-negative int64 values below 2^62, exactly. The float64 square root (IEEE-754 requires
    it correctly rounded; v is rounded to 53 bits first) lands within ±1 of the answer, and the exact integer
    comparisons after it correct that, so the result does not depend on the machine's float arithmetic."""
    if values.size == 1:  # the receiver's single frame: Python's exact isqrt is cheaper than the vector path
        return np.full(values.shape, math.isqrt(int(values.reshape(-1)[0])), dtype=np.int64)
    root = np.sqrt(values.astype(np.float64)).astype(np.int64)
    root -= root * root > values
    root += (root + 1) * (root + 1) <= values
    return root


INNER_BLOCK = 512
"""Products over more inputs than this are summed block by block (each block exact, the blocks added in int64), so
every input fits in two chunks (see `chunk_bits`)."""


def chunk_bits(inner_size: int) -> int:
    """Bits per input chunk of an exact float32 product over `inner_size` ≤ INNER_BLOCK terms: the largest b with
    inner_size · 2^b · 2^7 ≤ 2^24 (at least 8 for blocks of 512, so 16-bit inputs need two chunks)."""
    return 24 - 7 - math.ceil(math.log2(max(min(inner_size, INNER_BLOCK), 2)))


@dataclass
class IntegerLinear:
    """y = requantize(x @ W + bias). weight: float32 `[K, N]` holding int8 values; multiplier/shift/bias: int64 `[N]`."""

    weight: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    bias: np.ndarray | None
    limit: int
    bits: int  # chunk bits for the exact product

    def __post_init__(self):
        self.half = np.left_shift(np.int64(1), self.shift - 1)  # 2^(S-1): round half up

    @classmethod
    def from_tensors(cls, tensors: dict, name: str, limit: int) -> "IntegerLinear":
        weight = np.asarray(tensors[f"{name}.weight"])
        if weight.dtype != np.int8 or int(np.abs(weight.astype(np.int64)).max(initial=0)) > WEIGHT_LIMIT:
            raise ValueError(f"integer entropy model: {name}.weight must be int8 within ±{WEIGHT_LIMIT}")
        multiplier = np.asarray(tensors[f"{name}.multiplier"], dtype=np.int64)
        shift = np.asarray(tensors[f"{name}.shift"], dtype=np.int64)
        if multiplier.max(initial=0) >= 2**16 or shift.min(initial=1) < 1 or shift.max(initial=0) > 62:
            raise ValueError(f"integer entropy model: {name} requantisation out of range (M < 2^16, 1 <= S <= 62)")
        bias = tensors.get(f"{name}.bias")
        if bias is not None and int(np.abs(np.asarray(bias, dtype=np.int64)).max(initial=0)) > 2**40:
            raise ValueError(f"integer entropy model: {name}.bias beyond ±2^40 (requantisation could overflow)")
        bits = chunk_bits(weight.shape[0])
        assert min(weight.shape[0], INNER_BLOCK) * 2**bits * 2**7 <= FLOAT32_EXACT_LIMIT  # the exactness bound
        return cls(weight.astype(np.float32), multiplier, shift,
                   None if bias is None else np.asarray(bias, dtype=np.int64), limit, bits)

    def accumulate(self, inputs: np.ndarray) -> np.ndarray:
        """Exact x @ W (+ bias) for integer inputs `[M, K]` with |x| ≤ 2^15 → int64 `[M, N]`."""
        accumulator = exact_matmul(inputs, self.weight, self.bits)
        if self.bias is not None:
            accumulator += self.bias
        return accumulator

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return requantize(self.accumulate(inputs), self.multiplier, self.shift, self.limit, self.half)


def exact_matmul(inputs: np.ndarray, weight: np.ndarray, bits: int) -> np.ndarray:
    """inputs int64 `[M, K]` (|x| ≤ 2^15) @ weight float32 `[K, N]` (int8 values) → exact int64 `[M, N]`.

    x = Σ_j c_j · 2^(bits·j): the low chunks c_j are unsigned `bits`-bit numbers, the top one is x >> (bits·(n-1)),
    signed and below 2^bits in magnitude because |x| ≤ 2^15. All chunks go through one float32 product per block of
    at most INNER_BLOCK inputs (the weights are read once) and are recombined in int64 (adding a float32 chunk
    result into int64 goes through float64, exact for these integers below 2^53)."""
    rows, inner = inputs.shape
    count = -(-16 // bits)  # chunks needed for 16-bit inputs: 2 for every block size up to INNER_BLOCK
    stacked = np.empty((count, rows, inner), dtype=np.float32)
    mask = (1 << bits) - 1
    np.bitwise_and(inputs, mask, out=stacked[0], casting="unsafe")
    for index in range(1, count - 1):
        np.bitwise_and(np.right_shift(inputs, bits * index), mask, out=stacked[index], casting="unsafe")
    np.right_shift(inputs, bits * (count - 1), out=stacked[count - 1], casting="unsafe")
    flat = stacked.reshape(count * rows, inner)  # one matrix product: the weights are read once
    if inner <= INNER_BLOCK:
        partial = flat @ weight  # [count * M, N], every entry exact
    else:
        partial = flat[:, :INNER_BLOCK] @ weight[:INNER_BLOCK]
    for start in range(INNER_BLOCK, inner, INNER_BLOCK):
        block = flat[:, start : start + INNER_BLOCK] @ weight[start : start + INNER_BLOCK]
        partial = partial.astype(np.float64) + block  # block sums below 2^24 each: exact in float64
    partial = partial.reshape(count, rows, -1)
    result = partial[count - 1].astype(np.int64)
    for index in range(count - 2, -1, -1):
        np.left_shift(result, bits, out=result)
        np.add(result, partial[index], out=result, casting="unsafe")
    return result


@dataclass
class IntegerLayerNorm:
    """LayerNorm over the last axis in integers; output at the scale folded into `gain` and `offset`."""

    gain: np.ndarray  # int64 [W]: γ · 2^f_out
    offset: np.ndarray  # int64 [W]: β · 2^f_out
    epsilon: int  # ε · 2^(2 f_in), at least 1

    @classmethod
    def from_tensors(cls, tensors: dict, name: str) -> "IntegerLayerNorm":
        return cls(np.asarray(tensors[f"{name}.gain"], dtype=np.int64),
                   np.asarray(tensors[f"{name}.offset"], dtype=np.int64),
                   int(tensors[f"{name}.epsilon"].reshape(-1)[0]))

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """inputs int64 `[M, W]` → `[M, W]`. With W a power of two (the usual case) the two divisions by W are
        shifts: rounding_divide(n, 2^k) = (n + 2^(k-1)) >> k, the same integers with fewer operations."""
        width = inputs.shape[-1]
        if inputs.shape[0] == 1 and inputs.ndim == 2:  # the receiver's single frame: row statistics as Python ints
            return self._one_row(inputs, width)
        if width & (width - 1):
            centred = inputs - rounding_divide(inputs.sum(axis=-1, keepdims=True), width)
            variance = rounding_divide((centred * centred).sum(axis=-1, keepdims=True), width) + self.epsilon
        else:
            bits = width.bit_length() - 1
            total = inputs.sum(axis=-1, keepdims=True)
            total += width // 2
            centred = inputs - np.right_shift(total, bits, out=total)
            # rounding_divide(Σc², W) + ε == (Σc² + W/2 + ε·W) >> log2 W, as ε·W is a multiple of W
            variance = np.einsum("ij,ij->i", centred, centred)[:, None] if centred.ndim == 2 else (
                (centred * centred).sum(axis=-1, keepdims=True))
            variance += width // 2 + self.epsilon * width
            np.right_shift(variance, bits, out=variance)
        normalised = rounding_divide(centred * self.gain, integer_sqrt(variance))
        normalised += self.offset
        return clip(normalised, ACTIVATION_LIMIT)

    def _one_row(self, inputs: np.ndarray, width: int) -> np.ndarray:
        """The same integers as the vector path for one row `[1, W]`, with the mean, variance and square root computed
        on Python integers (exact, and cheaper than numpy calls on single numbers)."""
        total = int(inputs.sum())
        mean = (2 * total + width) // (2 * width)
        centred = inputs - mean
        squares = int(np.dot(centred[0], centred[0]))
        deviation = math.isqrt((2 * squares + width) // (2 * width) + self.epsilon)
        normalised = centred * self.gain
        normalised *= 2
        normalised += deviation
        normalised //= 2 * deviation
        normalised += self.offset
        return clip(normalised, ACTIVATION_LIMIT)


def table_softmax_weights(logits: np.ndarray, exp_table: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Unnormalised integer softmax weights over the last axis: exp_table[min(max - z, last)] (invalid entries 0)."""
    if valid is not None:
        logits = np.where(valid, logits, np.iinfo(np.int64).min // 4)
    distance = logits.max(axis=-1, keepdims=True) - logits
    weights = exp_table[np.minimum(distance, exp_table.shape[0] - 1)]
    return weights if valid is None else np.where(valid, weights, 0)


def frequency_table(logits: np.ndarray, exp_table: np.ndarray, total_bits: int) -> np.ndarray:
    """Integer logits `[..., K]` → integer frequencies `[..., K]` summing to 2^total_bits, each at least 1.

    f_k = 1 + floor(p_k · (2^bits - K) / Σp) with p = exp table weights; what rounding leaves over goes to the
    first most probable code."""
    codes = logits.shape[-1]
    weights = table_softmax_weights(logits, exp_table)
    spare = (1 << total_bits) - codes
    frequencies = np.floor_divide(weights * spare, weights.sum(axis=-1, keepdims=True))
    frequencies += 1
    leftover = (1 << total_bits) - frequencies.sum(axis=-1)
    flat = frequencies.reshape(-1, codes)
    flat[np.arange(flat.shape[0]), np.argmax(logits.reshape(-1, codes), axis=-1)] += leftover.reshape(-1)
    return frequencies


MIX_SHIFT = 8
"""Start-mix shares are in units of 2^-8 (see `mix_with_uniform`)."""


def mix_with_uniform(frequencies: np.ndarray, shares, total_bits: int) -> np.ndarray:
    """Blend integer frequency tables with the uniform table, in integers (the datagram mode's first frame of a reset
    segment, where the model has no context and is overconfident).

    frequencies `[L, K]` (each row summing to 2^total_bits, every entry ≥ 1), shares `[L]` integers 0..255 →
    f' = ((256 - s) · f + s · 2^total_bits / K) >> 8 per row, every entry ≥ 1 already (f ≥ 1 and 2^total_bits / K ≥ 1);
    what the floor leaves over (0 ≤ leftover < K) goes to the first most probable code of the *model's* row. K must
    be a power of two not above 2^total_bits, so the uniform frequency is an integer."""
    frequencies = np.asarray(frequencies, dtype=np.int64)
    rows, codes = frequencies.shape
    if codes & (codes - 1) or codes > 1 << total_bits:
        raise ValueError(f"mix_with_uniform needs a power-of-two table size up to 2^{total_bits}, got {codes}")
    shares = np.asarray(shares, dtype=np.int64).reshape(rows, 1)
    mixed = (((1 << MIX_SHIFT) - shares) * frequencies + shares * ((1 << total_bits) // codes)) >> MIX_SHIFT
    leftover = (1 << total_bits) - mixed.sum(axis=-1)
    mixed[np.arange(rows), np.argmax(frequencies, axis=-1)] += leftover
    return mixed


@dataclass
class IntegerLMState:
    """One stream's integer context since the last sync point: per layer the cached keys and values
    (float64 `[layers, heads, sync_frames, head_dim]`, integer-valued) and the previous frame's coarse codes."""

    keys: np.ndarray
    values: np.ndarray
    frames: int = 0
    previous_codes: np.ndarray | None = None  # [Nc] int64, None at a sync point


class IntegerEntropyModel:
    """Integer coarse-code probabilities, frame by frame (`step` → `level_frequencies` / `condition`, as the float
    `LMCodecFrameLM`) or for many frames of known codes at once (`frequencies`, for the sender). Both give the same
    integers: the arithmetic is exact, so it does not matter how the work is batched."""

    def __init__(self, tensors: dict):
        tensors = {name: np.asarray(value) for name, value in tensors.items()}
        scalar = lambda name: int(tensors[name].reshape(-1)[0])  # noqa: E731
        if scalar("format.version") != INTEGER_MODEL_VERSION:
            raise ValueError(f"integer entropy model version {scalar('format.version')} is not "
                             f"{INTEGER_MODEL_VERSION}; upgrade lmcodec")
        self.width, self.heads, self.layers = scalar("format.width"), scalar("format.heads"), scalar("format.layers")
        self.levels, self.codebook_size = scalar("format.levels"), scalar("format.codebook_size")
        self.positions, self.frequency_bits = scalar("format.positions"), scalar("format.frequency_bits")
        self.head_dim = self.width // self.heads
        if self.head_dim > 2**15 or self.positions > 2**15:
            raise ValueError("integer entropy model: head_dim and positions must be at most 2^15 (exact attention)")
        self.codebooks = tensors["codebooks"].astype(np.int64)  # [levels, K, D] at the codebook scale
        self.previous_projection = [IntegerLinear.from_tensors(tensors, f"previous_projection.{level}",
                                                               RESIDUAL_LIMIT) for level in range(self.levels)]
        self.depth_projection = [IntegerLinear.from_tensors(tensors, f"depth_projection.{level}", RESIDUAL_LIMIT)
                                 for level in range(self.levels)]
        self.segment_start = tensors["segment_start"].astype(np.int64)  # [levels, W] residual scale
        self.num_coarse_embedding = tensors["num_coarse_embedding"].astype(np.int64)  # [Nq + 1, W]
        self.position_embedding = tensors["position_embedding"].astype(np.int64)  # [positions, W]
        self.attention_exp = tensors["attention_exp"].astype(np.int64)
        self.logit_exp = tensors["logit_exp"].astype(np.int64)
        self.blocks = []
        for layer in range(self.layers):
            name = f"h.{layer}"
            self.blocks.append({
                "ln_1": IntegerLayerNorm.from_tensors(tensors, f"{name}.ln_1"),
                "qkv": IntegerLinear.from_tensors(tensors, f"{name}.attn.c_attn", ACTIVATION_LIMIT),
                "score_multiplier": scalar(f"{name}.attn.score.multiplier"),
                "score_shift": scalar(f"{name}.attn.score.shift"),
                "attention_out": IntegerLinear.from_tensors(tensors, f"{name}.attn.c_proj", RESIDUAL_LIMIT),
                "ln_2": IntegerLayerNorm.from_tensors(tensors, f"{name}.ln_2"),
                "fc": IntegerLinear.from_tensors(tensors, f"{name}.mlp.c_fc", ACTIVATION_LIMIT),
                "gelu": tensors[f"{name}.mlp.gelu_table"].astype(np.int64),
                "mlp_out": IntegerLinear.from_tensors(tensors, f"{name}.mlp.c_proj", RESIDUAL_LIMIT),
            })
        self.ln_f = IntegerLayerNorm.from_tensors(tensors, "ln_f")
        self.conditioned_shift = scalar("ln_f.output_shift")  # ln_f output scale → the depth stream's scale
        self.depth_norm = IntegerLayerNorm.from_tensors(tensors, "depth_norm")
        self.depth_fc = IntegerLinear.from_tensors(tensors, "depth_mlp.fc", ACTIVATION_LIMIT)
        self.depth_gelu = tensors["depth_mlp.gelu_table"].astype(np.int64)
        self.depth_out = IntegerLinear.from_tensors(tensors, "depth_mlp.proj", RESIDUAL_LIMIT)
        self.head_norm = IntegerLayerNorm.from_tensors(tensors, "head_norm")
        self.head_query = [IntegerLinear.from_tensors(tensors, f"head_query.{level}", ACTIVATION_LIMIT)
                           for level in range(self.levels)]
        self.head_codes = [IntegerLinear.from_tensors(tensors, f"head_codes.{level}", RESIDUAL_LIMIT)
                           for level in range(self.levels)]

    # ------------------------------------------------------------------ state
    def start(self) -> IntegerLMState:
        """A fresh context at a sync point."""
        shape = (self.layers, self.heads, self.positions, self.head_dim)
        return IntegerLMState(np.zeros(shape), np.zeros(shape))

    # ------------------------------------------------------------------ backbone
    def _embeddings(self, previous_codes: np.ndarray, at_start: np.ndarray, num_coarse: int,
                    first_position: int) -> np.ndarray:
        """previous_codes `[M, Nc]` (rows at a segment start ignored), at_start bool `[M]` → `[M, W]` residual."""
        frames = previous_codes.shape[0]
        total = np.zeros((frames, self.width), dtype=np.int64)
        for level in range(num_coarse):
            vectors = self.codebooks[level, previous_codes[:, level]]
            total += np.where(at_start[:, None], self.segment_start[level],
                              self.previous_projection[level](vectors))
        total += self.num_coarse_embedding[num_coarse]
        total += self.position_embedding[first_position : first_position + frames]
        return total

    def _attention(self, block: dict, layer: int, state: IntegerLMState, normed: np.ndarray) -> np.ndarray:
        """Causal self-attention of M new frames over the cached ones plus themselves → `[M, W]` at v's scale."""
        frames, start = normed.shape[0], state.frames
        qkv = block["qkv"](normed).reshape(frames, 3, self.heads, self.head_dim)
        queries = qkv[:, 0].transpose(1, 0, 2).astype(np.float64)  # [H, M, hd]
        state.keys[layer, :, start : start + frames] = qkv[:, 1].transpose(1, 0, 2)
        state.values[layer, :, start : start + frames] = qkv[:, 2].transpose(1, 0, 2)
        keys = state.keys[layer, :, : start + frames]
        values = state.values[layer, :, : start + frames]
        scores = (queries @ keys.transpose(0, 2, 1)).astype(np.int64)  # [H, M, T], exact in float64
        logits = requantize(scores, block["score_multiplier"], block["score_shift"], 2**40)
        valid = None
        if frames > 1:
            valid = np.arange(start + frames)[None, :] <= (start + np.arange(frames))[:, None]  # [M, T]
        weights = table_softmax_weights(logits, self.attention_exp, valid)
        mixed = (weights.astype(np.float64) @ values).astype(np.int64)  # [H, M, hd], exact in float64
        mixed = rounding_divide(mixed, weights.sum(axis=-1, keepdims=True))
        return mixed.transpose(1, 0, 2).reshape(frames, self.width)

    def _backbone(self, state: IntegerLMState, embeddings: np.ndarray) -> np.ndarray:
        """GPT-2 over M new frames → the depth stream's start ("conditioned") `[M, W]`; extends the cache."""
        hidden = embeddings
        for layer, block in enumerate(self.blocks):
            attended = self._attention(block, layer, state, block["ln_1"](hidden))
            hidden = clip(hidden + block["attention_out"](attended), RESIDUAL_LIMIT)
            activation = block["gelu"][block["fc"](block["ln_2"](hidden)) + 2**15]
            hidden = clip(hidden + block["mlp_out"](activation), RESIDUAL_LIMIT)
        state.frames += embeddings.shape[0]
        return np.left_shift(self.ln_f(hidden), self.conditioned_shift)

    def step(self, state: IntegerLMState, num_coarse: int) -> np.ndarray:
        """Advance one frame (its input is `state.previous_codes`) → conditioned `[1, W]` for level 0."""
        at_start = state.previous_codes is None
        previous = np.zeros((1, num_coarse), dtype=np.int64) if at_start else state.previous_codes[None, :num_coarse]
        embeddings = self._embeddings(previous, np.array([at_start]), num_coarse, state.frames)
        return self._backbone(state, embeddings)

    # ------------------------------------------------------------------ depth module and heads
    def level_frequencies(self, conditioned: np.ndarray, level: int) -> np.ndarray:
        """conditioned `[M, W]` → integer frequencies `[M, K]` of `level` (total 2^frequency_bits)."""
        activation = self.depth_gelu[self.depth_fc(self.depth_norm(conditioned)) + 2**15]
        hidden = clip(conditioned + self.depth_out(activation), RESIDUAL_LIMIT)
        query = self.head_query[level](self.head_norm(hidden))
        logits = self.head_codes[level](query)
        return frequency_table(logits, self.logit_exp, self.frequency_bits)

    def condition(self, conditioned: np.ndarray, level: int, codes: np.ndarray) -> np.ndarray:
        """Add the chosen `codes` `[M]` of `level` to the conditioning of the next level of the same frames."""
        update = self.depth_projection[level](self.codebooks[level, codes])
        return clip(conditioned + update, RESIDUAL_LIMIT)

    @staticmethod
    def finish_frame(state: IntegerLMState, codes: np.ndarray) -> None:
        state.previous_codes = np.asarray(codes, dtype=np.int64)

    def _teacher_forced(self, state: IntegerLMState, codes: np.ndarray, num_coarse: int) -> np.ndarray:
        """Run the backbone over M frames of known codes `[M, Nc]` (continuing `state`) → conditioned `[M, W]`."""
        frames = codes.shape[0]
        if state.frames + frames > self.positions:
            raise ValueError(f"{state.frames + frames} frames exceed the context of {self.positions} frames")
        first = np.zeros((1, num_coarse), dtype=np.int64) if state.previous_codes is None else \
            state.previous_codes[None, :num_coarse]
        previous = np.concatenate([first, codes[:-1]], axis=0)
        at_start = np.zeros(frames, dtype=bool)
        at_start[0] = state.previous_codes is None
        return self._backbone(state, self._embeddings(previous, at_start, num_coarse, state.frames))

    def advance(self, state: IntegerLMState, codes: np.ndarray, num_coarse: int) -> None:
        """Take M frames of known codes `[M, Nc]` into the context (as `frequencies` does, without the tables)."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape[0]:
            self._teacher_forced(state, codes, num_coarse)
            state.previous_codes = codes[-1].copy()

    def frequencies(self, state: IntegerLMState, codes: np.ndarray, num_coarse: int) -> np.ndarray:
        """Teacher-forced: the frequencies `[M, Nc, K]` of M frames whose coarse codes `[M, Nc]` are known, all at
        once, continuing `state` (equal, integer for integer, to M single steps)."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape[0] == 0:
            return np.zeros((0, num_coarse, self.codebook_size), dtype=np.int64)
        conditioned = self._teacher_forced(state, codes, num_coarse)
        tables = []
        for level in range(num_coarse):
            tables.append(self.level_frequencies(conditioned, level))
            if level + 1 < num_coarse:
                conditioned = self.condition(conditioned, level, codes[:, level])
        state.previous_codes = codes[-1].copy()
        return np.stack(tables, axis=1)


ATTENTION_EXP_FRACTION_BITS = 6
"""Attention logits are fixed-point numbers in steps of 1/64 nat before the exp table."""

LOGIT_FRACTION_BITS = 8
"""Output logits are fixed-point numbers in steps of 1/256 nat before the exp table."""

FREQUENCY_BITS = 20
"""Every frequency table sums to 2^20 (constriction sees exact dyadic probabilities f / 2^20)."""


def exp_table_length(fraction_bits: int, scale_bits: int) -> int:
    """Entries of round(2^scale_bits · exp(-i / 2^fraction_bits)) up to and including the first zero. Computed
    from integers only (a bound, not a libm call): exp(-i/2^f) < 2^-(scale+1) once i > 2^f · (scale+1) · ln 2, and
    ln 2 < 0.6932, so this length always ends on a zero."""
    return (2**fraction_bits * (scale_bits + 1) * 6932) // 10000 + 2


ATTENTION_EXP_BITS = 15
LOGIT_EXP_BITS = 16


def integer_tensor_shapes(width: int, heads: int, layers: int, inner_size: int, levels: int, codebook_size: int,
                          codebook_dim: int, positions: int, num_quantizers: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name → (shape, numpy dtype) of every tensor of an integer entropy model (the one definition of its layout)."""
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}

    def linear(name, inputs, outputs, bias=True):
        shapes[f"{name}.weight"] = ((inputs, outputs), "int8")
        shapes[f"{name}.multiplier"] = ((outputs,), "int32")
        shapes[f"{name}.shift"] = ((outputs,), "int32")
        if bias:
            shapes[f"{name}.bias"] = ((outputs,), "int64")

    def layer_norm(name):
        shapes[f"{name}.gain"] = ((width,), "int32")
        shapes[f"{name}.offset"] = ((width,), "int32")
        shapes[f"{name}.epsilon"] = ((1,), "int64")

    for name in ("version", "width", "heads", "layers", "levels", "codebook_size", "positions", "frequency_bits"):
        shapes[f"format.{name}"] = ((1,), "int64")
    shapes["codebooks"] = ((levels, codebook_size, codebook_dim), "int16")
    for level in range(levels):
        linear(f"previous_projection.{level}", codebook_dim, width, bias=False)
        linear(f"depth_projection.{level}", codebook_dim, width, bias=False)
        linear(f"head_query.{level}", width, codebook_dim, bias=False)
        linear(f"head_codes.{level}", codebook_dim, codebook_size)
    shapes["segment_start"] = ((levels, width), "int32")
    shapes["num_coarse_embedding"] = ((num_quantizers + 1, width), "int32")
    shapes["position_embedding"] = ((positions, width), "int32")
    shapes["attention_exp"] = ((exp_table_length(ATTENTION_EXP_FRACTION_BITS, ATTENTION_EXP_BITS),), "int32")
    shapes["logit_exp"] = ((exp_table_length(LOGIT_FRACTION_BITS, LOGIT_EXP_BITS),), "int32")
    for layer in range(layers):
        name = f"h.{layer}"
        layer_norm(f"{name}.ln_1")
        linear(f"{name}.attn.c_attn", width, 3 * width)
        shapes[f"{name}.attn.score.multiplier"] = ((1,), "int64")
        shapes[f"{name}.attn.score.shift"] = ((1,), "int64")
        linear(f"{name}.attn.c_proj", width, width)
        layer_norm(f"{name}.ln_2")
        linear(f"{name}.mlp.c_fc", width, inner_size)
        shapes[f"{name}.mlp.gelu_table"] = ((GELU_TABLE_SIZE,), "int16")
        linear(f"{name}.mlp.c_proj", inner_size, width)
    layer_norm("ln_f")
    shapes["ln_f.output_shift"] = ((1,), "int64")
    layer_norm("depth_norm")
    linear("depth_mlp.fc", width, 2 * width)
    shapes["depth_mlp.gelu_table"] = ((GELU_TABLE_SIZE,), "int16")
    linear("depth_mlp.proj", 2 * width, width)
    layer_norm("head_norm")
    return shapes
