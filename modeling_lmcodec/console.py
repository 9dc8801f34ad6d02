"""What every `lmcodec` command shares on the terminal: one-line errors, quiet libraries, progress bars, and running
a subcommand module as `python -m lmcodec.<module>`. Nothing here imports torch or transformers."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import LMCodecError

PROGRESS_MIN_SECONDS = 5.0  # inputs shorter than this get no progress bar


def print_error(error: LMCodecError) -> int:
    """Print `error` as the command line's one-line message; returns the exit code 2."""
    print(f"lmcodec: error: {' '.join(str(error).split())}", file=sys.stderr)
    return 2


def quiet_libraries() -> None:
    """The command line prints its own summary: no library progress bars or advice on stderr. Applies to
    transformers now if it is loaded, and when it is loaded later (through its environment variables)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if sys.modules.get("transformers") is not None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()


class Progress:
    """A seconds-of-audio progress bar on stderr (tqdm) for inputs of at least `PROGRESS_MIN_SECONDS`; `advance`
    never passes the total and `close` fills it, so the bar always ends at 100 %."""

    def __init__(self, total_seconds: float, description: str):
        from tqdm.auto import tqdm

        self.total = max(float(total_seconds), 0.0)
        self._bar = tqdm(total=self.total, unit="s", desc=description, file=sys.stderr,
                         disable=self.total < PROGRESS_MIN_SECONDS, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s")

    def advance(self, seconds: float) -> None:
        step = min(max(seconds, 0.0), self.total - self._bar.n)
        if step > 0:
            self._bar.update(step)

    def close(self) -> None:
        self.advance(self.total)
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._bar.close()


def run_subcommand_module(add_arguments, prog: str, description: str, argv: list[str] | None) -> int:
    """`python -m lmcodec.<module> ...` for a module that is also an `lmcodec` subcommand (its `add_arguments` sets
    the handler): the same parsing, quiet libraries and one-line errors as `lmcodec <subcommand> ...`."""
    args = add_arguments(argparse.ArgumentParser(prog=prog, description=description)).parse_args(argv)
    quiet_libraries()
    try:
        return args.handler(args)
    except LMCodecError as error:
        return print_error(error)
