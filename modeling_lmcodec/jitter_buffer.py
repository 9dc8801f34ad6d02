"""The receiver's jitter buffer for datagram streams: it unwraps each packet's sequence field with the packet's arrival
time, holds packets for a playout delay, and plays them out in order at the packet rate.

Pure logic and standard library only: every call takes the time it happens at (seconds on one monotonic clock), so
it is tested without sockets or real time; `lmcodec.transport` drives it from a UDP socket.

**Unwrapping.** The sender sends packet n at about s0 + n T (T: the packet duration). The buffer keeps `base`, the
earliest s0 its arrivals allow: the minimum of arrival - n T over the packets placed and the stream's start datagrams
(each sent just before a known packet). A packet arriving at t would be packet e = (t - base) / T had it come with the
least delay seen. Its number is the one congruent to its field modulo M nearest e - M/4: a packet may be up to M/4
packets early against the clock (a base not yet settled) and up to 3M/4 packets late (60 ms and 180 ms at every
default packet length, where M T = 240 ms). The clock runs on while nothing arrives, so a gap of any length, even
longer than M, is counted exactly.

**Playout.** Packet n is due at `deadline(n)` = base0 + n T + delay, base0 being the base when playout started (the
schedule never moves). At its deadline the packet is played, `(n, packet)`, or given up as lost, `(n, None)`. A
packet arriving after its deadline is late: it is handed out at once as `(n, packet)` with n already past, for the
decoder to count and drop; a duplicate is handed out after its original. So the decoder sees every datagram, in an
order it can count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_PLAYOUT_DELAY = 0.080
"""Seconds a packet is held after its least-delay arrival time: two 40 ms packets of jitter or reordering."""


@dataclass(frozen=True)
class Arrival:
    """Where an arriving packet went: its full sequence number and status "held" (in time), "late" (after its
    deadline), "duplicate" (its number arrived before) or "stray" (outside the stream: before its start or past its
    end)."""

    number: int
    status: str


class JitterBuffer:
    """`anchor` with each start datagram, `arrive(field, packet, t)` per audio packet, `due(now)` for what to push to
    the decoder, `next_deadline()` for when to call `due` again, `end(packets)` when the stream's length is known."""

    def __init__(self, packet_seconds: float, sequence_modulus: int, playout_delay: float = DEFAULT_PLAYOUT_DELAY):
        """`packet_seconds` T, `sequence_modulus` M (the description's), `playout_delay` in seconds (>= 0)."""
        if not packet_seconds > 0:
            raise ValueError(f"packet duration must be positive, got {packet_seconds}")
        if not isinstance(sequence_modulus, int) or sequence_modulus < 2:
            raise ValueError(f"sequence modulus must be an integer >= 2, got {sequence_modulus!r}")
        if not playout_delay >= 0:
            raise ValueError(f"playout delay must be at least 0 s, got {playout_delay}")
        self.packet_seconds = packet_seconds
        self.modulus = sequence_modulus
        self.playout_delay = playout_delay
        self.base: float | None = None  # earliest send time of packet 0 the arrivals allow
        self._schedule: float | None = None  # base0: fixed when playout starts
        self.next_number = 0  # the next packet to play out
        self.end_number: int | None = None  # packets in the stream, once known
        self.highest_number = -1  # the highest number placed so far
        self._held: dict[int, bytes] = {}
        self._duplicates: dict[int, list[bytes]] = {}
        self._played: set[int] = set()
        self._outbox: list[tuple[int, bytes]] = []  # late packets and duplicates of played ones, handed out next

    # ------------------------------------------------------------------ placing
    def anchor(self, arrival: float, next_packet: int) -> None:
        """A start datagram, sent just before packet `next_packet`, arrived at `arrival`."""
        self._lower_base(arrival - next_packet * self.packet_seconds)

    def _lower_base(self, candidate: float) -> None:
        self.base = candidate if self.base is None else min(self.base, candidate)

    def place(self, field: int, arrival: float) -> int:
        """The full sequence number of a packet with sequence field `field` (0..M-1) arriving at `arrival`."""
        if self.base is None:
            raise RuntimeError("the jitter buffer needs an anchor (a start datagram) before placing packets")
        expected = (arrival - self.base) / self.packet_seconds - self.modulus / 4
        return field + self.modulus * math.floor((expected - field) / self.modulus + 0.5)

    def arrive(self, field: int, packet: bytes, arrival: float) -> Arrival:
        """File one audio packet; late packets and duplicates of played ones come out of the next `due`."""
        number = self.place(field, arrival)
        if number < 0 or (self.end_number is not None and number >= self.end_number):
            return Arrival(number, "stray")
        self._lower_base(arrival - number * self.packet_seconds)
        self.highest_number = max(self.highest_number, number)
        if number < self.next_number:
            self._outbox.append((number, packet))
            return Arrival(number, "duplicate" if number in self._played else "late")
        if number in self._held:
            self._duplicates.setdefault(number, []).append(packet)
            return Arrival(number, "duplicate")
        self._held[number] = packet
        return Arrival(number, "held")

    # ------------------------------------------------------------------ playing out
    def deadline(self, number: int) -> float:
        """When packet `number` is played out (or given up); fixes the schedule on first use."""
        if self._schedule is None:
            if self.base is None:
                raise RuntimeError("the jitter buffer has no schedule before its first anchor")
            self._schedule = self.base
        return self._schedule + number * self.packet_seconds + self.playout_delay

    def next_deadline(self) -> float | None:
        """When `due` has something to play next (None once the stream is played out or before an anchor)."""
        if self.base is None or self.finished:
            return None
        return self.deadline(self.next_number)

    def due(self, now: float) -> list[tuple[int, bytes | None]]:
        """What to push to the decoder at `now`, in order: `(n, packet)` to decode or count (late, duplicate),
        `(n, None)` for a packet that missed its deadline."""
        out, self._outbox = self._outbox, []
        while self.base is not None and not self.finished and self.deadline(self.next_number) <= now:
            number = self.next_number
            packet = self._held.pop(number, None)
            out.append((number, packet))
            if packet is not None:
                self._played.add(number)
            out.extend((number, duplicate) for duplicate in self._duplicates.pop(number, []))
            self.next_number += 1
        return out

    # ------------------------------------------------------------------ the end
    def end(self, packets: int) -> None:
        """The stream holds `packets` packets: play out up to packet `packets - 1`, then `finished`."""
        self.end_number = packets
        for number in [number for number in self._held if number >= packets]:
            del self._held[number]
            self._duplicates.pop(number, None)

    @property
    def finished(self) -> bool:
        return self.end_number is not None and self.next_number >= self.end_number

    @property
    def waiting(self) -> int:
        """Packets held for a later deadline."""
        return len(self._held)
