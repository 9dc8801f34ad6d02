"""One thread means one thread: every thread pool on the coding path obeys one setting, set here and only here.

The pools are numpy's BLAS (the integer entropy model's exact products; limited with threadpoolctl, and through the
environment for libraries not loaded yet), torch's intra-op pool (when torch is or gets loaded) and onnxruntime's
intra- and inter-op pools (the runtime builds its InferenceSessions with `coding_threads()`). On a busy machine an idle pool
that spins on tiny batch-1 products costs far more than it gains, so the command line defaults to one thread.
"""

from __future__ import annotations

import os
import sys

THREAD_ENVIRONMENT = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                      "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_threads: int | None = None
_blas_limit = None  # the threadpoolctl limiter, kept alive for the process


def limit_threads(count: int) -> None:
    """Make every pool on the coding path use `count` threads (>= 1), for the rest of the process."""
    global _threads, _blas_limit
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"the thread count must be an integer >= 1, got {count!r}.")
    _threads = count
    for name in THREAD_ENVIRONMENT:  # libraries loaded later read these when they start their pools
        os.environ[name] = str(count)
    if sys.modules.get("numpy") is not None:  # already loaded: its BLAS pool exists and must be told
        from threadpoolctl import threadpool_limits

        _blas_limit = threadpool_limits(limits=count)
    if sys.modules.get("torch") is not None:
        import torch

        torch.set_num_threads(count)


def coding_threads() -> int:
    """The thread count set by `limit_threads` (1 if it was never called)."""
    return _threads or 1
