"""The project's error type: every message is one line that names the problem and what to do about it."""


class LMCodecError(ValueError):
    """Bad input or a bad stream. The command line prints the message alone and exits with code 2."""
