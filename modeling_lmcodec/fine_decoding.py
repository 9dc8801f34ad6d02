"""How a receiver fills in the RVQ levels that were not sent: one parameter, `fine_decoding`, with one default.

- "coarse-only": decode from the coarse levels alone (no fine LM; the fastest, and the bundled default);
- "expected": the fine LM's probability-weighted codebook vectors for each fine level (its minimum-squared-error
  estimate), conditioned on the greedy codes;
- "greedy": the fine LM's most likely code at each fine level;
- "sample": codes drawn from the fine LM (seeded, so decoding is reproducible).
"""

from __future__ import annotations

import warnings
from typing import Literal, get_args

FineDecoding = Literal["sample", "greedy", "expected", "coarse-only"]
FINE_DECODINGS: tuple[str, ...] = get_args(FineDecoding)
DEFAULT_FINE_DECODING: FineDecoding = "coarse-only"


def check_fine_decoding(fine_decoding: str) -> str:
    """`fine_decoding` if it is one of `FINE_DECODINGS`; else a ValueError naming the choices."""
    if fine_decoding not in FINE_DECODINGS:
        raise ValueError(f"fine_decoding must be one of {', '.join(FINE_DECODINGS)}, got {fine_decoding!r}.")
    return fine_decoding


def resolve_fine_decoding(default: str, fine_decoding: FineDecoding | None = None,
                          do_sample: bool | None = None) -> FineDecoding:
    """The decoding to use: `fine_decoding` if given, else the deprecated `do_sample` (True → "sample", False →
    "greedy"), else `default` (a checkpoint's `config.fine_decoding`)."""
    if do_sample is not None:
        if fine_decoding is not None:
            raise ValueError("pass fine_decoding only; do_sample is its deprecated alias.")
        warnings.warn('do_sample is deprecated; pass fine_decoding="sample" or "greedy" instead.', FutureWarning,
                      stacklevel=3)
        return "sample" if do_sample else "greedy"
    return check_fine_decoding(default if fine_decoding is None else fine_decoding)
