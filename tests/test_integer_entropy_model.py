"""The integer entropy model: exact arithmetic (with its bounds proved), agreement with the float LM it was exported
from, equal results however the work is batched, and a checkpoint that carries it."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec import integer_entropy_model as integer
from lmcodec.compression import decompress_codes
from lmcodec.integer_export import float_reference
from tests.conftest import REPO, calibration_codes, speech_like
from tests.golden import GOLDEN_DIR, RAW_CODES

ENGINE_FILE = REPO / "modeling_lmcodec" / "integer_entropy_model.py"


@pytest.fixture(scope="module")
def golden_model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


# ---------------------------------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize("inner", [16, 64, 256, 512, 768, 1024, 1536])
def test_exact_matmul_equals_integer_arithmetic_at_the_extremes(inner):
    rng = np.random.default_rng(inner)
    weight = rng.choice([-127, 127, -1, 0, 1], size=(inner, 40)).astype(np.int64)
    inputs = rng.choice([-(2**15), 2**15 - 1, 2**15, -1, 0, 1, 12345], size=(5, inner)).astype(np.int64)
    inputs[0] = 2**15 - 1  # a row that maximises every partial sum against the ±127 columns
    weight[:, 0] = 127
    expected = inputs @ weight  # numpy's integer matmul: exact int64
    got = integer.exact_matmul(inputs, weight.astype(np.float32), integer.chunk_bits(inner))
    np.testing.assert_array_equal(got, expected)
    assert got[0, 0] == (2**15 - 1) * 127 * inner


@pytest.mark.parametrize("inner", [1, 2, 64, 256, 512, 1024, 4096])
def test_the_float32_exactness_bound(inner):
    """Every block of an exact product has at most 512 inputs, each chunk |c| ≤ 2^bits and |w| ≤ 127 < 2^7, so every
    partial sum stays ≤ K' · 2^bits · 2^7 ≤ 2^24; and two chunks always cover a 16-bit input."""
    bits = integer.chunk_bits(inner)
    block = min(inner, integer.INNER_BLOCK)
    assert block * 2**bits * 2**7 <= integer.FLOAT32_EXACT_LIMIT
    assert 2 * bits >= 16


def test_attention_and_requantisation_bounds(golden_model):
    """float64 attention products: |q·k| ≤ head_dim · 2^30 and |p·v| ≤ positions · 2^15 · 2^15, both < 2^53; every
    requantisation product |acc · M| < 2^63 (M < 2^16)."""
    engine = golden_model.integer_entropy_lm.engine()
    for model in (engine,):
        assert model.head_dim * 2**30 < 2**53 and model.positions * 2**30 < 2**53
        linears = [*model.previous_projection, *model.depth_projection, *model.head_query, *model.head_codes,
                   model.depth_fc, model.depth_out]
        linears += [block[name] for block in model.blocks for name in ("qkv", "attention_out", "fc", "mlp_out")]
        for linear in linears:
            accumulator = linear.weight.shape[0] * 2**15 * 127 + (0 if linear.bias is None else int(np.abs(linear.bias).max(initial=0)))
            assert accumulator * int(linear.multiplier.max()) < 2**62
            assert int(linear.shift.min()) >= 1 and np.abs(linear.weight).max() <= 127


def test_integer_sqrt_is_floor_sqrt():
    rng = np.random.default_rng(0)
    values = np.concatenate([
        np.arange(0, 1000), rng.integers(0, 2**62, 2000), np.array([2**62 - 1]), rng.integers(0, 2**40, 2000),
        np.array([k * k for k in (2**31 - 1, 2**30, 2**31 - 2)] + [k * k - 1 for k in (2**31 - 1, 2**30, 2**31 - 2)]),
    ]).astype(np.int64)
    expected = np.array([math.isqrt(int(v)) for v in values])
    np.testing.assert_array_equal(integer.integer_sqrt(values), expected)


def test_rounding_divide_rounds_half_up_for_both_signs():
    numerators = np.array([5, 7, -5, -7, 4, -4, 0, 2**50 + 1])
    np.testing.assert_array_equal(integer.rounding_divide(numerators, 2), [3, 4, -2, -3, 2, -2, 0, 2**49 + 1])
    np.testing.assert_array_equal(integer.requantize(np.array([3, -3, 5, -5]), 1, np.int64(1), 100), [2, -1, 3, -2])


# ---------------------------------------------------------------------------------------------------- the model
def test_frequency_tables_sum_to_the_total_and_keep_every_code(golden_model):
    engine = golden_model.integer_entropy_lm.engine()
    codes = np.load(RAW_CODES).astype(np.int64)[:40]
    tables = engine.frequencies(engine.start(), codes, codes.shape[1])
    assert tables.shape == (40, codes.shape[1], golden_model.config.codebook_size)
    assert (tables.sum(axis=-1) == 2**integer.FREQUENCY_BITS).all() and tables.min() >= 1
    extreme = np.array([[0, 10**6, -(10**6)] + [0] * 1021])  # far beyond the exp table: still ≥ 1 each
    table = integer.frequency_table(extreme, engine.logit_exp, integer.FREQUENCY_BITS)
    assert table.sum() == 2**integer.FREQUENCY_BITS and table.min() == 1 and table.argmax() == 1


@pytest.mark.parametrize("num_coarse", [2, 3])
def test_stepwise_equals_teacher_forced_whatever_the_chunks(golden_model, num_coarse):
    """The sender computes a packet's tables in one batch, the receiver frame by frame and level by level: exact
    integer arithmetic makes them equal, for any split into packets."""
    engine = golden_model.integer_entropy_lm.engine()
    codes = np.random.default_rng(num_coarse).integers(0, 64, (40, num_coarse))
    state = engine.start()
    batched = np.concatenate([engine.frequencies(state, chunk, num_coarse) for chunk in np.split(codes, [7, 20, 21])])
    state, stepped = engine.start(), []
    for frame in codes:
        conditioned = engine.step(state, num_coarse)
        for level in range(num_coarse):
            stepped.append(engine.level_frequencies(conditioned, level)[0])
            conditioned = engine.condition(conditioned, level, frame[level : level + 1])
        engine.finish_frame(state, frame)
    np.testing.assert_array_equal(batched, np.stack(stepped).reshape(batched.shape))


@pytest.mark.parametrize("num_coarse", [2, 3])
def test_integer_model_agrees_with_the_float_lm(golden_model, num_coarse):
    """Export error: every code's log-probability within 0.02 nats of the float LM's, and the same bits on average
    to 0.5 %."""
    codes = calibration_codes(golden_model, seed=9)
    float_logits = float_reference(golden_model.entropy_lm, golden_model.quantizer.codebooks, codes, num_coarse)
    float_log_probs = torch.log_softmax(float_logits.double(), -1).numpy()
    engine = golden_model.integer_entropy_lm.engine()
    integer_log_probs = np.stack([
        np.log(engine.frequencies(engine.start(), row[:num_coarse].T.numpy(), num_coarse) / 2**integer.FREQUENCY_BITS)
        for row in codes
    ])
    assert np.abs(float_log_probs - integer_log_probs).max() < 0.02
    targets = codes.transpose(1, 2)[:, :, :num_coarse].numpy()[..., None]
    float_bits = -np.take_along_axis(float_log_probs, targets, -1).mean()
    integer_bits = -np.take_along_axis(integer_log_probs, targets, -1).mean()
    assert abs(integer_bits / float_bits - 1) < 0.005


def test_float_reference_is_the_lm(golden_model):
    codes = calibration_codes(golden_model, seed=2)
    lm = golden_model.entropy_lm
    for num_coarse in (2, 3):
        expected = lm(codes, torch.full((codes.shape[0],), num_coarse), golden_model.quantizer.codebooks)
        got = float_reference(lm, golden_model.quantizer.codebooks, codes, num_coarse)
        torch.testing.assert_close(got, expected[:, :, :num_coarse], atol=1e-4, rtol=1e-4)


def test_checkpoints_carry_the_integer_model(golden_model, tmp_path):
    lmcodec.save_checkpoint(golden_model, tmp_path / "saved")
    loaded = lmcodec.LMCodecModel.from_pretrained(tmp_path / "saved").eval()
    assert loaded.config.integer_entropy_model
    for name, value in golden_model.integer_entropy_lm.arrays().items():
        np.testing.assert_array_equal(loaded.integer_entropy_lm.arrays()[name], value, err_msg=name)
        assert loaded.integer_entropy_lm.arrays()[name].dtype == value.dtype, name
    signal = speech_like(1.0, seed=8)
    assert loaded.compress(signal) == golden_model.compress(signal)
    half = lmcodec.LMCodecModel.from_pretrained(tmp_path / "saved", dtype=torch.float16)
    assert half.integer_entropy_lm.arrays()["codebooks"].dtype == np.int16


def test_an_exported_model_is_fixed_by_its_integers_not_by_its_export(golden_model):
    """Decoding reads the stored integers: a model whose float entropy LM changed after export still decodes the
    same stream (its fingerprint covers the integers, the codebooks and the layout)."""
    data = golden_model.compress(speech_like(0.8, seed=1))
    changed = lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()
    with torch.no_grad():
        for parameter in changed.entropy_lm.parameters():
            parameter.add_(0.01)
    np.testing.assert_array_equal(changed.decompress(data)[0], golden_model.decompress(data)[0])


# ---------------------------------------------------------------------------------------------------- portability
def tables_digest(engine, codes) -> str:
    """SHA-256 of what feeds the range coder for `codes` [frames, levels]: the sender's packet tables at Nc = 2 and 3,
    and the receiver's level-by-level tables for the first packet. Runs in this process and, by its source, in
    another interpreter that has numpy only (TABLES_SCRIPT)."""
    import hashlib

    digest = hashlib.sha256()
    for num_coarse in (2, 3):
        state = engine.start()
        for start in range(0, len(codes), 10):  # the sender's packets of 10 frames
            digest.update(engine.frequencies(state, codes[start : start + 10, :num_coarse], num_coarse).astype("<i8"))
        state = engine.start()  # and the receiver's steps, for the first packet
        for frame in codes[:10, :num_coarse]:
            conditioned = engine.step(state, num_coarse)
            for level in range(num_coarse):
                digest.update(engine.level_frequencies(conditioned, level).astype("<i8"))
                conditioned = engine.condition(conditioned, level, frame[level : level + 1])
            engine.finish_frame(state, frame)
    return digest.hexdigest()


TABLES_SCRIPT = textwrap.dedent(inspect.getsource(tables_digest)) + textwrap.dedent(
    """

    import importlib.util, platform, sys
    sys.modules["torch"] = None  # importing torch now raises ImportError: the integer path must not need it
    import numpy as np
    spec = importlib.util.spec_from_file_location("integer_entropy_model", sys.argv[1])
    module = sys.modules["integer_entropy_model"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    arrays = dict(np.load(sys.argv[2]))
    codes = arrays.pop("__codes__")
    digest = tables_digest(module.IntegerEntropyModel(arrays), codes)
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers", "lmcodec")
                    and sys.modules[name] is not None)
    print(platform.machine(), digest, ",".join(loaded) or "-")
    """
)


def digest_codes() -> np.ndarray:
    """40 frames of the golden stream's codes (two levels) plus a random third level."""
    codes = np.concatenate([np.load(RAW_CODES).astype(np.int64)] * 2)[:40]
    return np.concatenate([codes, np.random.default_rng(3).integers(0, 64, (40, 1))], axis=1)


def frequency_digest(python: list[str], tmp_path, golden_model) -> tuple[str, str]:
    """(machine, `tables_digest` of the golden model's integer entropy model) computed by another interpreter, which
    loads `integer_entropy_model.py` by its path with torch blocked; fails if it imported torch, transformers or
    lmcodec all the same."""
    np.savez(tmp_path / "model.npz", __codes__=digest_codes(), **golden_model.integer_entropy_lm.arrays())
    (tmp_path / "tables.py").write_text(TABLES_SCRIPT)
    result = subprocess.run([*python, str(tmp_path / "tables.py"), str(ENGINE_FILE), str(tmp_path / "model.npz")],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    machine, digest, loaded = result.stdout.split()
    assert loaded == "-", f"the numpy-only interpreter imported {loaded}"
    return machine, digest


def test_the_integer_path_runs_on_numpy_alone(tmp_path, golden_model):
    """An interpreter without torch (blocked in sys.modules) computes, from the numpy module alone, exactly the
    frequency tables the torch model's integer entropy model gives the range coder in this process."""
    _, digest = frequency_digest([sys.executable], tmp_path, golden_model)
    assert "torch" in sys.modules  # this process is the torch path
    assert digest == tables_digest(golden_model.integer_entropy_lm.engine(), digest_codes())


def arm64_python() -> list[str]:
    script = REPO.parent / "shared" / "tools" / "arm64-python.sh"
    if not script.exists():
        pytest.skip(f"{script} is absent (it lives beside the repo in shared/tools)")
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.skip(f"no ARM64 Python under qemu here ({(result.stderr or result.stdout).strip()[-300:]})")
    return result.stdout.strip().splitlines()[-1].split()


def test_frequency_tables_are_identical_on_arm64(tmp_path, golden_model):
    """What feeds the range coder, computed by an ARM64 Python (numpy only, under qemu-user) and here."""
    here = frequency_digest([sys.executable], tmp_path, golden_model)
    there = frequency_digest(arm64_python(), tmp_path, golden_model)
    assert there[0] == "aarch64" and here[0] != "aarch64"
    assert there[1] == here[1]


def test_a_fresh_export_and_its_saved_checkpoint_write_the_same_stream(tiny_model, tmp_path):
    """The exported model in memory and the same model loaded from disk (other buffers, other alignment) code the
    same bytes, with 1 or 2 torch threads."""
    signal = speech_like(1.2, seed=12)
    fresh = tiny_model.compress(signal)
    lmcodec.save_checkpoint(tiny_model, tmp_path / "saved")
    loaded = lmcodec.LMCodecModel.from_pretrained(tmp_path / "saved").eval()
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            assert loaded.compress(signal) == fresh
            np.testing.assert_array_equal(decompress_codes(loaded, fresh), decompress_codes(tiny_model, fresh))
    finally:
        torch.set_num_threads(threads)
