"""Entropy-coded streams travel between machines: a cross-kernel harness within one CI run.

One process runs with every kernel library pinned low (torch's ATen at its default capability, MKL at SSE4.2, oneDNN
at SSE4.1, OpenBLAS as Prescott, numpy's SIMD dispatch off, one thread), another with the machine's defaults and two
threads. Each encodes the same coarse codes in format version 3 (integer entropy model) and version 2 (float LM),
records a digest of every probability array it hands the range coder, and decodes the other's streams. Version 3:
identical coder input, identical bytes, exact codes both ways. Version 2 on the same harness must show that the
arithmetic did change (its coder input differs), which is what makes the version-3 result mean something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.golden import GOLDEN_DIR, RAW_CODES

RUN_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np, torch
    torch.set_num_threads(int(sys.argv[2]))
    import lmcodec, constriction
    from lmcodec.compression import compress_codes, decompress_codes

    queue = constriction.stream.queue
    digest = {"value": hashlib.sha256()}
    RealEncoder, RealDecoder = queue.RangeEncoder, queue.RangeDecoder

    class RecordingEncoder:  # what the coder is given, byte for byte
        def __init__(self):
            self.inner = RealEncoder()
        def encode(self, symbols, family, probabilities):
            digest["value"].update(np.ascontiguousarray(probabilities).tobytes())
            return self.inner.encode(symbols, family, probabilities)
        def get_compressed(self):
            return self.inner.get_compressed()

    class RecordingDecoder:
        def __init__(self, words):
            self.inner = RealDecoder(words)
        def decode(self, family, probabilities):
            digest["value"].update(np.ascontiguousarray(probabilities).tobytes())
            return self.inner.decode(family, probabilities)

    queue.RangeEncoder, queue.RangeDecoder = RecordingEncoder, RecordingDecoder
    model = lmcodec.LMCodecModel.from_pretrained(sys.argv[1]).eval()
    codes = np.load(sys.argv[3])
    job = json.loads(sys.argv[4])
    report = {"capability": torch.backends.cpu.get_cpu_capability()}
    for version in (2, 3):
        digest["value"] = hashlib.sha256()
        stream = compress_codes(model, codes, format_version=version)
        open(job["write"][str(version)], "wb").write(stream)
        report[f"encode-{version}"] = digest["value"].hexdigest()
    for version, path in job.get("read", {}).items():
        digest["value"] = hashlib.sha256()
        try:
            decoded = decompress_codes(model, open(path, "rb").read())
            report[f"decode-{version}"] = "equal" if np.array_equal(decoded, codes) else "other codes"
        except lmcodec.LMCodecError as error:
            report[f"decode-{version}"] = "error: " + str(error)
        report[f"decode-input-{version}"] = digest["value"].hexdigest()
    print(json.dumps(report))
    """
)


def low_kernel_environment() -> dict[str, str]:
    """Every kernel library this process can reach, pinned to its lowest instruction set, and one thread."""
    from numpy._core._multiarray_umath import __cpu_dispatch__

    return {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "OPENBLAS_CORETYPE": "Prescott",
        "NPY_DISABLE_CPU_FEATURES": " ".join(__cpu_dispatch__),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def run(tmp_path, name: str, environment: dict[str, str], threads: int, codes_path, job: dict) -> dict:
    clean = {key: value for key, value in os.environ.items() if key not in low_kernel_environment()}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(GOLDEN_DIR), str(threads), str(codes_path), json.dumps(job)],
        env={**clean, "HF_HUB_OFFLINE": "1", **environment}, capture_output=True, text=True, timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("kernels")
    (tmp_path / "run.py").write_text(RUN_SCRIPT)
    golden = np.load(RAW_CODES).astype(np.int64).T  # [Nc, 85]
    rng = np.random.default_rng(11)
    codes = np.concatenate([golden, golden, rng.integers(0, 64, (golden.shape[0], 100))], axis=1)  # 270 frames
    np.save(tmp_path / "codes.npy", codes)
    streams = {side: {v: str(tmp_path / f"{side}-v{v}.lmc") for v in ("2", "3")} for side in ("low", "high")}
    low = run(tmp_path, "low kernels", low_kernel_environment(), 1, tmp_path / "codes.npy",
              {"write": streams["low"]})
    high = run(tmp_path, "default kernels", {}, 2, tmp_path / "codes.npy",
               {"write": streams["high"], "read": streams["low"]})
    low_again = run(tmp_path, "low kernels", low_kernel_environment(), 1, tmp_path / "codes.npy",
                    {"write": {v: str(tmp_path / f"again-v{v}.lmc") for v in ("2", "3")}, "read": streams["high"]})
    payloads = {side: {v: open(path, "rb").read() for v, path in paths.items()} for side, paths in streams.items()}
    return {"low": low, "high": high, "low_again": low_again, "streams": payloads}


def test_the_harness_really_changes_the_kernels(harness):
    assert harness["low"]["capability"] == "DEFAULT"
    if harness["high"]["capability"] == "DEFAULT":
        pytest.skip("this machine has no vector instruction set beyond torch's default kernels to compare against")


def test_version_3_coder_input_and_bytes_are_identical_across_kernels(harness):
    low, high, again = harness["low"], harness["high"], harness["low_again"]
    assert low["encode-3"] == high["encode-3"] == again["encode-3"]
    assert harness["streams"]["low"]["3"] == harness["streams"]["high"]["3"]
    assert high["decode-3"] == "equal" and again["decode-3"] == "equal"
    assert high["decode-input-3"] == again["decode-input-3"]


def test_version_2_float_coder_sees_other_probabilities_under_other_kernels(harness):
    """The float LM's probabilities differ between the two kernel sets (where the machine has vector units beyond
    the default), so a version-2 stream is at the mercy of the receiver's kernels: it decodes exactly or fails
    with a clear error, never with other codes."""
    low, high = harness["low"], harness["high"]
    if high["capability"] == "DEFAULT":
        pytest.skip("this machine's kernels cannot differ from the default ones: nothing to compare")
    assert low["encode-2"] != high["encode-2"], "the harness did not change the float arithmetic"
    for report in (high, harness["low_again"]):
        assert report["decode-2"] == "equal" or report["decode-2"].startswith("error: "), report["decode-2"]
