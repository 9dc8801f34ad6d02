"""Frame arithmetic: the one place that maps sample counts to code frames and back.

A code frame covers ``hop_length`` samples (320 at 16 kHz, so 50 frames per second). Audio whose length is not a
whole number of frames is padded with zeros at the end up to the next frame boundary; the padding is cut off again
after decoding, using the original sample count.
"""

from __future__ import annotations

import math

# The codec's sampling rate in Hz: every checkpoint codes 16 kHz mono; other rates are resampled on the way in and out.
SAMPLING_RATE = 16000

# Code frames the encoder processes per step. Offline `encode` and the streaming encoder both run this same block
# loop, so their float arithmetic, and therefore their codes, are identical whatever the caller's chunk sizes.
# Two frames (40 ms) halve the per-step cost of reading the weights against one frame, and set the worst-case
# algorithmic latency to 40 ms (the first frame of a block waits for the second).
ENCODER_BLOCK_FRAMES = 2


def num_frames(num_samples: int, hop_length: int) -> int:
    """Number of code frames needed to cover ``num_samples`` samples (the last frame may be partly padding)."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return math.ceil(num_samples / hop_length)


def padded_length(num_samples: int, hop_length: int) -> int:
    """Length in samples after padding ``num_samples`` up to a whole number of frames."""
    return num_frames(num_samples, hop_length) * hop_length


def frames_to_samples(frames: int, hop_length: int) -> int:
    """Number of samples that ``frames`` whole code frames decode to."""
    return frames * hop_length
