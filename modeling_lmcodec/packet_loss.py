"""Packet loss on a datagram stream, simulated: Gilbert-Elliott loss patterns, and a stream sent through them.

`gilbert_elliott(num_packets, loss_rate, mean_burst, seed)` is the loss model of `lmcodec simulate-loss` and of the
packet-loss evaluation: a two-state Markov chain whose "bad" state loses every packet and whose "good" state loses
none (the Gilbert model), parametrised by the long-run loss rate p and the mean burst length B (packets):

    P(bad -> good) = 1 / B,    P(good -> bad) = p / (B (1 - p)),

so bursts are geometric with mean B and the stationary loss rate is p (B = 1: isolated losses, never two in a row).
The first state is drawn from the stationary distribution. The same seed gives the same pattern on every machine
(numpy's PCG64), so every codec of an evaluation can be sent through the same losses.

`send_through_loss` runs a datagram stream (`DatagramEncoder` packets) through a loss pattern into a
`DatagramDecoder` and returns the received audio with the receiver's report. Like `datagram.py`, numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LMCodecError


def check_loss_parameters(loss_rate: float, mean_burst: float) -> None:
    """One-line errors for a loss rate and mean burst the Gilbert model cannot produce."""
    if not 0.0 <= loss_rate < 1.0:
        raise LMCodecError(f"loss rate must be at least 0 and below 1 (a fraction: 0.1 is 10 %), got {loss_rate}.")
    if not mean_burst >= 1.0:
        raise LMCodecError(f"mean burst must be at least 1 packet, got {mean_burst}.")
    if loss_rate > mean_burst / (mean_burst + 1.0):
        raise LMCodecError(f"a loss rate of {loss_rate:g} needs mean bursts longer than {mean_burst:g} packets "
                           f"(at most {mean_burst / (mean_burst + 1.0):.3f} with bursts of {mean_burst:g}); raise "
                           "the burst length or lower the rate.")


def gilbert_elliott(num_packets: int, loss_rate: float, mean_burst: float = 1.0, seed: int = 0) -> np.ndarray:
    """A loss pattern: bool `[num_packets]`, True where the packet is lost (see the module docstring)."""
    check_loss_parameters(loss_rate, mean_burst)
    lost = np.zeros(num_packets, dtype=bool)
    if loss_rate == 0.0 or num_packets == 0:
        return lost
    to_bad = loss_rate / (mean_burst * (1.0 - loss_rate))
    to_good = 1.0 / mean_burst
    draws = np.random.default_rng(seed).random(num_packets + 1)
    bad = draws[0] < loss_rate  # the stationary probability of the bad state
    for index in range(num_packets):
        lost[index] = bad
        bad = draws[index + 1] >= to_good if bad else draws[index + 1] < to_bad
    return lost


def burst_lengths(lost: np.ndarray) -> np.ndarray:
    """The lengths of the runs of True in a loss pattern `[n]` (in order)."""
    padded = np.concatenate([[False], np.asarray(lost, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[0::2]


@dataclass
class LossyStream:
    """What a datagram stream sent through a loss pattern delivered."""

    audio: np.ndarray  # float32 [samples] at the model's rate, as long as the packets sent
    packets_sent: int
    packets_lost: int
    bytes_sent: int  # the description plus every packet's payload
    seconds: float  # the audio the packets hold
    report: object  # the receiver's `DatagramReport`

    @property
    def loss_fraction(self) -> float:
        return self.packets_lost / self.packets_sent if self.packets_sent else 0.0

    @property
    def kbps(self) -> float:
        """Every byte sent (description and payloads), per second of audio."""
        return 8 * self.bytes_sent / self.seconds / 1000 if self.seconds else 0.0


def send_through_loss(codec, description: bytes, packets: list[bytes], lost: np.ndarray, **decoder_options) -> LossyStream:
    """Deliver `packets` in order except those where `lost` `[len(packets)]` is True (the receiver is told each loss
    with `push(None)`, as a jitter buffer would) → the received audio and the receiver's report. `decoder_options`:
    those of `DatagramDecoder` (`fine_decoding`, `seed`, `concealment`, ...)."""
    from .datagram import DatagramDecoder

    lost = np.asarray(lost, dtype=bool)
    if lost.shape != (len(packets),):
        raise LMCodecError(f"the loss pattern has {lost.size} entries for {len(packets)} packets.")
    decoder = DatagramDecoder(codec, description, **decoder_options)
    pieces = [decoder.push(None if is_lost else packet) for packet, is_lost in zip(packets, lost)]
    pieces.append(decoder.finish())
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    settings = decoder.backend.settings
    seconds = len(packets) * decoder.packet_frames / settings.frame_rate
    return LossyStream(audio=audio, packets_sent=len(packets), packets_lost=int(lost.sum()),
                       bytes_sent=len(description) + sum(len(packet) for packet in packets), seconds=seconds,
                       report=decoder.report)
