"""The golden bitstream: a fixed tiny model and the stream it writes for a fixed signal.

`python -m tests.golden` (from the repo root) rewrites tests/data/golden/. Do that only together with a
FORMAT_VERSION bump or a deliberate model change: the golden test exists to make such changes visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import lmcodec
from tests.conftest import random_codebooks, speech_like, tiny_config

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"


def golden_signal():
    return speech_like(1.7, seed=21)


def make_golden() -> None:
    torch.manual_seed(1234)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval(), seed=1234)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(GOLDEN_DIR)  # weights and config only: the golden model must not drift with the code
    for name in GOLDEN_DIR.glob("*.py"):
        name.unlink()
    config = json.loads((GOLDEN_DIR / "config.json").read_text())
    config.pop("auto_map", None)
    (GOLDEN_DIR / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (GOLDEN_DIR / "golden.lmc").write_bytes(model.compress(golden_signal()))


if __name__ == "__main__":
    make_golden()
    print(f"wrote {GOLDEN_DIR}")
