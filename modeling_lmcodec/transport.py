"""A real transport for datagram mode: UDP, a sender paced like a live source, a loss / reorder injector for testing,
and a receiver with a jitter buffer that measures latency from capture to playout. Numpy and the standard library
only (no torch at import); the codec is either backend.

**What travels.** Audio packets are the bare `DatagramEncoder` payloads (nothing added). The stream description,
which must reach the receiver reliably, travels in its own *start* datagrams: one copy just before each of the first
`CONTROL_COPIES` (3) packets, so losing one or two costs nothing. After the last packet the sender sends
`CONTROL_COPIES` *end* datagrams, 1 packet duration apart, giving the stream's length (packets and samples) and the
bytes sent before them. Both are control datagrams (`StreamStart`, `StreamEnd`): magic `b"LMCt"`, a version, a
kind, a random stream id, the copy number and count, their fields, and a CRC-32 of everything before it; a datagram is
a control datagram only if all of that checks out, so no audio packet is ever taken for one. A receiver that gets no
start datagram says so and stops; one that gets no end datagram ends `IDLE_END_SECONDS` after the last datagram and
says so. The layout is in docs/realtime.md.

**Timing.** The sender treats the file as a live capture: sample i is captured at t0 + i / 16000 (t0 on the sender's
monotonic clock), a packet is encoded and sent as soon as its last sample is captured, and t0 travels in the start
datagram on the wall clock, which the receiver converts to its own monotonic clock. Latency figures therefore need
sender and receiver clocks in agreement: the same machine, or clocks kept in step.
"""

from __future__ import annotations

import errno
import heapq
import secrets
import selectors
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .datagram import DEFAULT_PACKET_FRAMES, DEFAULT_SYNC_FRAMES, DatagramDecoder, DatagramEncoder
from .errors import LMCodecError
from .jitter_buffer import DEFAULT_PLAYOUT_DELAY, JitterBuffer
from .packet_loss import check_loss_parameters, gilbert_elliott

CONTROL_MAGIC = b"LMCt"
TRANSPORT_VERSION = 1
START, END = 1, 2
CONTROL_COPIES = 3
IDLE_END_SECONDS = 1.0
"""Without an end datagram, the stream is taken as ended this long after the last datagram arrived."""
DESCRIPTION_WAIT_SECONDS = 1.0
"""Audio datagrams arriving this long without a start datagram: the description was lost."""
UDP_IPV4_HEADER_BYTES = 28
MAX_DATAGRAM = 65535
_HEAD = struct.Struct("<4sBBIBB")  # magic, version, kind, stream id, copy, copies
_START = struct.Struct("<Iq")  # the packet this copy precedes, capture start (wall clock, ns)
_END = struct.Struct("<IIQ")  # packets, samples at the model rate, bytes sent before the end datagrams
_CRC = struct.Struct("<I")


# ---------------------------------------------------------------------------------------------------- control
@dataclass(frozen=True)
class StreamStart:
    """The start datagram: the stream description and the capture clock, sent just before packet `next_packet`."""

    stream_id: int
    copy: int
    copies: int
    next_packet: int
    capture_start_ns: int  # wall clock (time.time_ns) when sample 0 was captured
    description: bytes

    def to_bytes(self) -> bytes:
        body = _HEAD.pack(CONTROL_MAGIC, TRANSPORT_VERSION, START, self.stream_id, self.copy, self.copies)
        body += _START.pack(self.next_packet, self.capture_start_ns) + self.description
        return body + _CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class StreamEnd:
    """The end datagram: how many packets and samples (at the model rate) the stream holds, and the bytes sent before
    the end datagrams (start datagrams and packets, whether the network kept them or not)."""

    stream_id: int
    copy: int
    copies: int
    packets: int
    samples: int
    bytes_before: int

    def to_bytes(self) -> bytes:
        body = _HEAD.pack(CONTROL_MAGIC, TRANSPORT_VERSION, END, self.stream_id, self.copy, self.copies)
        body += _END.pack(self.packets, self.samples, self.bytes_before)
        return body + _CRC.pack(zlib.crc32(body))


def parse_control(data: bytes) -> StreamStart | StreamEnd | None:
    """The control datagram `data` holds, or None (an audio packet: anything whose magic, length or CRC fails)."""
    if len(data) < _HEAD.size + _CRC.size or data[:4] != CONTROL_MAGIC:
        return None
    body, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(body) != crc:
        return None
    _, version, kind, stream_id, copy, copies = _HEAD.unpack_from(body)
    rest = body[_HEAD.size :]
    if version != TRANSPORT_VERSION:
        return None
    if kind == START and len(rest) > _START.size:
        next_packet, capture_ns = _START.unpack_from(rest)
        return StreamStart(stream_id, copy, copies, next_packet, capture_ns, bytes(rest[_START.size :]))
    if kind == END and len(rest) == _END.size:
        return StreamEnd(stream_id, copy, copies, *_END.unpack(rest))
    return None


# ---------------------------------------------------------------------------------------------------- addresses
def parse_address(text: str, option: str = "--to") -> tuple[str, int]:
    """"HOST:PORT" (or "[IPv6]:PORT") → (host, port), with one-line errors."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host:
        raise LMCodecError(f"{option} must be HOST:PORT, such as 127.0.0.1:5004, got {text!r}.")
    return host, check_port(port, option)


def check_port(port, option: str = "--port") -> int:
    """A UDP port number 1..65535 (as an int), or a one-line error."""
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = -1
    if not 1 <= number <= 65535:
        raise LMCodecError(f"{option}: the port must be a number from 1 to 65535 (such as 5004), got {port!r}.")
    return number


def resolve(host: str, port: int) -> tuple[int, tuple]:
    """(address family, socket address) for a UDP destination or bind address, or a one-line error."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (socket.gaierror, UnicodeError):
        raise LMCodecError(f"cannot resolve host {host!r}: give an IP address such as 127.0.0.1 or a known host "
                           "name.") from None
    return family, address


def open_receiver_socket(host: str, port: int) -> socket.socket:
    """A UDP socket bound to host:port, or a one-line error naming the problem (port in use, no such address)."""
    family, address = resolve(host, port)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise LMCodecError(f"port {port} is already in use on {host} (another receiver?); choose another --port "
                               "or stop the program using it.") from None
        if error.errno == errno.EACCES:
            raise LMCodecError(f"port {port} needs administrator rights; choose a port from 1024 to 65535.") from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise LMCodecError(f"cannot listen on {host}: not an address of this machine; use --bind 127.0.0.1 "
                               "or --bind 0.0.0.0 (every interface).") from None
        raise LMCodecError(f"cannot listen on {host}:{port}: {error.strerror or error}.") from None
    return sock


# ---------------------------------------------------------------------------------------------------- injector
@dataclass
class InjectionLog:
    """What the injector did: packet numbers dropped and delayed, control datagrams dropped."""

    dropped_packets: list[int] = field(default_factory=list)
    delayed_packets: list[int] = field(default_factory=list)
    dropped_control: dict[str, int] = field(default_factory=lambda: {"start": 0, "end": 0})


class LossInjector:
    """Network trouble between sender and receiver, for testing. Packet n is dropped where
    `gilbert_elliott(packets, loss_rate, mean_burst, seed)` says (the loss pattern `send_through_loss` and the
    packet-loss evaluation use for the same seed), else delayed by `reorder_ms` with probability `reorder` (so it
    arrives after later packets). Control datagrams are dropped independently with probability `control_loss`
    (default: `loss_rate`) and never delayed."""

    def __init__(self, loss_rate: float = 0.0, mean_burst: float = 1.0, reorder: float = 0.0, reorder_ms: float = 50.0,
                 seed: int = 0, control_loss: float | None = None):
        check_loss_parameters(loss_rate, mean_burst)
        if not 0.0 <= reorder <= 1.0:
            raise LMCodecError(f"--reorder is the fraction of packets delayed, from 0 to 1, got {reorder}.")
        if not 0.0 <= reorder_ms <= 10_000:
            raise LMCodecError(f"--reorder-ms must be from 0 to 10000 ms, got {reorder_ms}.")
        control_loss = loss_rate if control_loss is None else control_loss
        if not 0.0 <= control_loss <= 1.0:
            raise LMCodecError(f"control loss must be from 0 to 1, got {control_loss}.")
        self.loss_rate, self.mean_burst, self.seed = loss_rate, mean_burst, seed
        self.reorder, self.reorder_seconds, self.control_loss = reorder, reorder_ms / 1000, control_loss
        self._lost = np.zeros(0, dtype=bool)
        self._delayed = np.zeros(0, dtype=bool)
        self._control_draws = np.random.default_rng([seed, 2])
        self.log = InjectionLog()

    @property
    def active(self) -> bool:
        return bool(self.loss_rate or self.reorder or self.control_loss)

    def plan(self, packets: int) -> None:
        """Draw the fates of a stream of `packets` packets."""
        self._lost = gilbert_elliott(packets, self.loss_rate, self.mean_burst, self.seed)
        self._delayed = np.random.default_rng([self.seed, 1]).random(packets) < self.reorder

    def fate(self, kind: str, index: int) -> float | None:
        """None: drop the datagram; else send it after this many seconds. `kind`: "packet" (`index` its number),
        "start" or "end"."""
        if kind != "packet":
            if self._control_draws.random() < self.control_loss:
                self.log.dropped_control[kind] += 1
                return None
            return 0.0
        if index < len(self._lost) and self._lost[index]:
            self.log.dropped_packets.append(index)
            return None
        if index < len(self._delayed) and self._delayed[index]:
            self.log.delayed_packets.append(index)
            return self.reorder_seconds
        return 0.0


# ---------------------------------------------------------------------------------------------------- sender
@dataclass
class SendReport:
    """What `send_stream` sent (bytes: every datagram's payload, counted as sent whatever the injector did)."""

    packets: int
    seconds: float  # the audio sent
    packet_bytes: int
    control_bytes: int
    control_datagrams: int
    pacing_late: float  # the latest a packet left after its last sample was captured (encoding and scheduling), s
    injected: InjectionLog | None

    @property
    def bytes_sent(self) -> int:
        return self.packet_bytes + self.control_bytes

    def describe(self) -> str:
        kbps = 8 * self.bytes_sent / self.seconds / 1000
        line = (f"{self.seconds:.2f} s in {self.packets} packets + {self.control_datagrams} control datagrams "
                f"(description and end) = {self.bytes_sent} B = {kbps:.3f} kbps (every datagram's payload; packets "
                f"alone {8 * self.packet_bytes / self.seconds / 1000:.3f} kbps); packets left at most "
                f"{1000 * self.pacing_late:.1f} ms after their last sample was captured")
        if self.injected is not None:
            log = self.injected
            line += (f"; injected: {len(log.dropped_packets)} of {self.packets} packets dropped, "
                     f"{len(log.delayed_packets)} delayed, {log.dropped_control['start']} start and "
                     f"{log.dropped_control['end']} end datagrams dropped")
        return line


class _Outbox:
    """Datagrams leaving a socket, through the injector's drops and delays, counted as they are sent."""

    def __init__(self, sock: socket.socket, address, injector: LossInjector | None, clock, target: str):
        self.sock, self.address, self.injector, self.clock, self.target = sock, address, injector, clock, target
        self.packet_bytes = self.control_bytes = self.control_datagrams = 0
        self._queue: list[tuple[float, int, bytes]] = []
        self._order = 0

    def send(self, datagram: bytes, kind: str, index: int = 0) -> None:
        if kind == "packet":
            self.packet_bytes += len(datagram)
        else:
            self.control_bytes += len(datagram)
            self.control_datagrams += 1
        delay = self.injector.fate(kind, index) if self.injector is not None else 0.0
        if delay is not None:
            heapq.heappush(self._queue, (self.clock() + delay, self._order, datagram))
            self._order += 1
        self.flush_due()

    def flush_due(self) -> None:
        while self._queue and self._queue[0][0] <= self.clock():
            _, _, datagram = heapq.heappop(self._queue)
            try:
                self.sock.sendto(datagram, self.address)
            except OSError as error:
                raise LMCodecError(f"cannot send to {self.target}: {error.strerror or error}.") from None

    def wait_until(self, moment: float, sleep) -> None:
        """Sleep until `moment`, sending delayed datagrams as they fall due."""
        while True:
            self.flush_due()
            now = self.clock()
            if now >= moment:
                return
            wake = min(moment, self._queue[0][0]) if self._queue else moment
            sleep(max(wake - now, 0.0))

    def drain(self, sleep) -> None:
        while self._queue:
            self.wait_until(self._queue[0][0], sleep)
        self.flush_due()


def warm_up(codec, packet_frames: int = DEFAULT_PACKET_FRAMES, fine_decoding: str | None = None) -> None:
    """Code and decode 0.2 s of silence once, so that the first packet of a live stream pays none of the coding
    path's one-off start-up costs (graph loading, first inference)."""
    encoder = DatagramEncoder(codec, packet_frames)
    settings = encoder.backend.settings
    packets = encoder.push(np.zeros(settings.sampling_rate // 5, dtype=np.float32)) + encoder.flush()
    decoder = DatagramDecoder(codec, encoder.description(), fine_decoding=fine_decoding)
    for packet in packets:
        decoder.push(packet)
    decoder.finish()


def count_packets(samples: int, hop_length: int, packet_frames: int) -> int:
    """Packets a stream of `samples` samples (model rate) makes: whole frames, then whole packets."""
    frames = -(-samples // hop_length)
    return -(-frames // packet_frames)


class _LiveSource:
    """One stream leaving an outbox as a live source sends it: each packet encoded and sent once its last sample is
    captured (sample i at t0 + i / rate), the start datagrams before the first packets, the end ones after the last."""

    def __init__(self, encoder: DatagramEncoder, outbox: _Outbox, clock, sleep):
        self.encoder, self.outbox, self.clock, self.sleep = encoder, outbox, clock, sleep
        settings = encoder.backend.settings
        self.rate, self.chunk = settings.sampling_rate, encoder.packet_frames * settings.hop_length
        self.description, self.stream_id = encoder.description(), secrets.randbits(32)
        self.sent = 0  # packets
        self.late = 0.0  # the latest a packet left after its last sample was captured, s

    def run(self, audio: np.ndarray) -> None:
        self.start_time, self.start_wall = self.clock(), time.time_ns()
        for first in range(0, len(audio), self.chunk):
            self._capture(audio, first)
        for copy in range(self.sent, CONTROL_COPIES):  # a stream shorter than the copies
            self._start_copy(copy)
        self._end(len(audio))
        self.outbox.drain(self.sleep)

    def _capture(self, audio: np.ndarray, first: int) -> None:
        last = min(first + self.chunk, len(audio)) - 1
        captured = self.start_time + last / self.rate
        self.outbox.wait_until(captured, self.sleep)
        ready = self.encoder.push(audio[first : last + 1])
        ready += self.encoder.flush() if last == len(audio) - 1 else []
        for packet in ready:
            if self.sent < CONTROL_COPIES:
                self._start_copy(self.sent)
            self.outbox.send(packet, "packet", self.sent)
            self.sent += 1
        if ready:
            self.late = max(self.late, self.clock() - captured)

    def _start_copy(self, copy: int) -> None:
        start = StreamStart(self.stream_id, copy, CONTROL_COPIES, self.sent, self.start_wall, self.description)
        self.outbox.send(start.to_bytes(), "start", copy)

    def _end(self, samples: int) -> None:
        """The end datagrams, one packet duration apart."""
        bytes_before = self.outbox.packet_bytes + self.outbox.control_bytes
        for copy in range(CONTROL_COPIES):
            if copy:
                self.outbox.wait_until(self.clock() + self.chunk / self.rate, self.sleep)
            end = StreamEnd(self.stream_id, copy, CONTROL_COPIES, self.sent, samples, bytes_before)
            self.outbox.send(end.to_bytes(), "end", copy)


def send_stream(codec, audio: np.ndarray, destination: tuple[str, int], packet_frames: int = DEFAULT_PACKET_FRAMES,
                injector: LossInjector | None = None, clock=time.monotonic, sleep=time.sleep,
                sync_frames: int = DEFAULT_SYNC_FRAMES) -> SendReport:
    """Send mono float32 `audio` `[T]` at the model's rate to `destination` (host, port) in real time, as a live
    source would (see the module docstring), through `injector` if given. `sync_frames`: the context reset period
    (a multiple of `packet_frames`); the sequence field wraps every 240 ms whatever it is (the jitter buffer's
    window)."""
    encoder = DatagramEncoder(codec, packet_frames, sync_frames,
                              sequence_modulus=max(DEFAULT_SYNC_FRAMES // packet_frames, 2))
    settings = encoder.backend.settings
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or len(audio) == 0:
        raise LMCodecError(f"send_stream takes mono audio [samples] with at least one sample, got {audio.shape}.")
    if injector is not None:
        injector.plan(count_packets(len(audio), settings.hop_length, packet_frames))
    family, address = resolve(*destination)
    warm_up(codec, packet_frames)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        outbox = _Outbox(sock, address, injector, clock, f"{destination[0]}:{destination[1]}")
        source = _LiveSource(encoder, outbox, clock, sleep)
        source.run(audio)
    return SendReport(source.sent, len(audio) / settings.sampling_rate, outbox.packet_bytes, outbox.control_bytes,
                      outbox.control_datagrams, source.late, injector.log if injector is not None else None)


# ---------------------------------------------------------------------------------------------------- receiver
@dataclass
class Latency:
    """Capture → handed to the output, for the last sample of each packet that arrived in time (seconds, `[n]` each):
    `total`, and its parts: `arrival` (capture → arrival: encoding, network, injected delay), `jitter_buffer`
    (arrival → the packet's deadline), `output_delay` (→ the deadline of the push that output the sample: the decoder
    holds the end of each packet until the next) and `decoding` (→ the samples handed out, with the loop's wake-up).
    `played`: capture → played, by an output that plays each chunk as it is handed, in order, and never skips (a
    chunk handed late delays all that follow): what a listener hears."""

    total: np.ndarray
    arrival: np.ndarray
    jitter_buffer: np.ndarray
    output_delay: np.ndarray
    decoding: np.ndarray
    played: np.ndarray

    def describe(self) -> str:
        if not len(self.total):
            return "latency: no packet was decoded in time"

        def ms(values, q=50):
            return 1000 * float(np.percentile(values, q))

        return (f"latency capture → handed to the output (last sample of each of {len(self.total)} packets): median "
                f"{ms(self.total):.1f} ms, 95th percentile {ms(self.total, 95):.1f} ms = encoding and network "
                f"{ms(self.arrival):.1f} + jitter buffer {ms(self.jitter_buffer):.1f} + decoder output delay "
                f"{ms(self.output_delay):.1f} + decoding {ms(self.decoding):.1f} (medians); played out by a gapless "
                f"output: median {ms(self.played):.1f} ms, 95th percentile {ms(self.played, 95):.1f} ms")


@dataclass
class _Chunk:
    first: int  # index of its first sample
    samples: np.ndarray
    deadline: float  # of the push that made it
    handed: float


class StreamReceiver:
    """The receiving end without sockets or a clock of its own: `datagram(data, arrival)` for each datagram,
    `play(now, clock)` at the jitter buffer's deadlines (`next_wakeup()`), until `finished`; then `audio()`,
    `latency()`, `decoder.report`."""

    def __init__(self, codec, playout_delay: float = DEFAULT_PLAYOUT_DELAY, concealment: str | None = None,
                 fine_decoding: str | None = None, wall_offset: float | None = None):
        """`concealment`: one of `lmcodec.datagram.CONCEALMENTS` (None: the decoder's default). `wall_offset`: wall
        clock minus the receiver's clock (default: measured now against time.monotonic)."""
        self.codec, self.playout_delay = codec, playout_delay
        self.concealment, self.fine_decoding = concealment, fine_decoding
        self.wall_offset = time.time() - time.monotonic() if wall_offset is None else wall_offset
        self.decoder: DatagramDecoder | None = None
        self.buffer: JitterBuffer | None = None
        self.start: StreamStart | None = None
        self.end: StreamEnd | None = None
        self.start_copies: set[int] = set()
        self.bytes_received = self.datagrams_received = self.strays = self.foreign = 0
        self.stale = 0  # datagrams that arrived before the receiver was ready, dropped
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.ended_by_silence = False
        self._early: list[tuple[bytes, float]] = []  # audio before the description
        self._arrivals: dict[int, float] = {}  # packet → arrival, for those held in time
        self._chunks: list[_Chunk] = []
        self._packets = 0  # the stream's length in packets without an end datagram
        self._done = False

    # ------------------------------------------------------------------ datagrams in
    def datagram(self, data: bytes, arrival: float) -> None:
        self.bytes_received += len(data)
        self.datagrams_received += 1
        self.first_arrival = arrival if self.first_arrival is None else self.first_arrival
        self.last_arrival = arrival
        control = parse_control(data)
        if isinstance(control, StreamStart):
            self._on_start(control, arrival)
        elif isinstance(control, StreamEnd):
            self._on_end(control)
        elif self.decoder is None:
            self._early.append((data, arrival))
        else:
            self._on_packet(data, arrival)

    def _on_start(self, start: StreamStart, arrival: float) -> None:
        if self.start is None:
            options = {} if self.concealment is None else {"concealment": self.concealment}
            self.decoder = DatagramDecoder(self.codec, start.description, fine_decoding=self.fine_decoding, **options)
            info, settings = self.decoder.description_info, self.decoder.backend.settings
            self.packet_seconds = info.packet_length_frames * settings.hop_length / settings.sampling_rate
            self.buffer = JitterBuffer(self.packet_seconds, info.sequence_modulus, self.playout_delay)
            self.start = start
        elif start.stream_id != self.start.stream_id:
            self.foreign += 1
            return
        self.start_copies.add(start.copy)
        self.buffer.anchor(arrival, start.next_packet)
        early, self._early = self._early, []
        for data, moment in early:
            self._on_packet(data, moment)
        if self.end is not None:
            self.buffer.end(self.end.packets)

    def _on_end(self, end: StreamEnd) -> None:
        if self.start is not None and end.stream_id != self.start.stream_id:
            self.foreign += 1
            return
        self.end = end
        if self.buffer is not None:
            self.buffer.end(end.packets)

    def _on_packet(self, data: bytes, arrival: float) -> None:
        try:
            field_value = self.decoder.sequence_field(data)
        except LMCodecError:  # empty: nothing to place it by
            self.strays += 1
            return
        placed = self.buffer.arrive(field_value, data, arrival)
        if placed.status == "stray":
            self.strays += 1
        elif placed.status == "held":
            self._arrivals[placed.number] = arrival

    # ------------------------------------------------------------------ audio out
    def next_wakeup(self) -> float | None:
        return None if self.buffer is None else self.buffer.next_deadline()

    def play(self, now: float, clock) -> None:
        """Push what is due at `now` through the decoder; `clock()` stamps when each piece of audio is handed out."""
        if self.buffer is None or self._done:
            return
        for number, packet in self.buffer.due(now):
            late = number < self.decoder.next_sequence
            samples = self.decoder.push(packet, sequence_number=number) if packet is not None else \
                self.decoder.push(None)
            if not late:
                self._hand_out(samples, self.buffer.deadline(number), clock())
        if self.buffer.finished:
            self._hand_out(self.decoder.finish(), self.buffer.deadline(self.buffer.end_number - 1), clock())
            self._done = True

    def _hand_out(self, samples: np.ndarray, deadline: float, handed: float) -> None:
        if len(samples):
            first = self._chunks[-1].first + len(self._chunks[-1].samples) if self._chunks else 0
            self._chunks.append(_Chunk(first, samples, deadline, handed))

    def end_by_silence(self) -> None:
        """No end datagram came: the stream ends with the last packet placed. The packets given up as lost after it
        while the receiver waited were never sent: they leave the report and the audio."""
        self.ended_by_silence = True
        packets = self.buffer.highest_number + 1
        self.decoder.report.packets_lost -= max(self.buffer.next_number - packets, 0)
        self.buffer.end(max(packets, self.buffer.next_number))
        self._packets = packets

    @property
    def finished(self) -> bool:
        return self._done

    def audio(self) -> np.ndarray:
        """float32 `[samples]` at the model rate: as long as the end datagram says (else whole packets)."""
        audio = np.concatenate([chunk.samples for chunk in self._chunks] or [np.zeros(0, np.float32)])
        samples = self.end.samples if self.end is not None else round(self._packets * self.packet_seconds *
                                                                        self.decoder.backend.settings.sampling_rate)
        return np.concatenate([audio, np.zeros(max(samples - len(audio), 0), np.float32)])[:samples]

    @property
    def seconds(self) -> float:
        """The stream's duration: from the end datagram, else its whole packets."""
        if self.end is not None:
            return self.end.samples / self.decoder.backend.settings.sampling_rate
        return self._packets * self.packet_seconds

    def latency(self) -> Latency:
        """Capture → output figures for the last sample of each packet decoded in time (see `Latency`)."""
        rate = self.decoder.backend.settings.sampling_rate
        per_packet = round(self.packet_seconds * rate)
        capture_start = self.start.capture_start_ns / 1e9 - self.wall_offset
        firsts = np.array([chunk.first for chunk in self._chunks])
        played_at = self._playout_starts(rate)
        rows = []
        for number, arrival in sorted(self._arrivals.items()):
            last = (number + 1) * per_packet - 1
            index = int(np.searchsorted(firsts, last, side="right")) - 1
            if index < 0 or last >= firsts[index] + len(self._chunks[index].samples):
                continue
            chunk, captured = self._chunks[index], capture_start + last / rate
            deadline = self.buffer.deadline(number)
            rows.append((chunk.handed - captured, arrival - captured, deadline - arrival, chunk.deadline - deadline,
                         chunk.handed - chunk.deadline, played_at[index] + (last - chunk.first) / rate - captured))
        columns = np.array(rows, dtype=np.float64).reshape(-1, 6).T
        return Latency(*columns)

    def _playout_starts(self, rate: int) -> list[float]:
        """When a gapless output would start playing each chunk: when handed, or when the previous one ends."""
        starts, busy_until = [], -np.inf
        for chunk in self._chunks:
            starts.append(max(chunk.handed, busy_until))
            busy_until = starts[-1] + len(chunk.samples) / rate
        return starts

    # ------------------------------------------------------------------ reporting
    def describe_rate(self) -> str:
        """Bytes sent (from the end datagram) and received, as kbps over the stream's audio."""
        seconds = max(self.seconds, 1e-9)
        received = f"received {self.bytes_received} B in {self.datagrams_received} datagrams"
        headers = 8 * UDP_IPV4_HEADER_BYTES * self.datagrams_received / seconds / 1000
        if self.end is None:
            return f"{received} = {8 * self.bytes_received / seconds / 1000:.3f} kbps (+ {headers:.2f} kbps of " \
                   "IPv4/UDP headers); bytes sent unknown (no end datagram)"
        end_bytes = self.end.copies * len(self.end.to_bytes())
        sent = self.end.bytes_before + end_bytes
        return (f"sent {sent} B = {8 * sent / seconds / 1000:.3f} kbps (every datagram's payload: description, "
                f"packets, end), {received} (+ {headers:.2f} kbps of IPv4/UDP headers)")

    def describe_control(self) -> str:
        """How many description copies arrived, and whether an end datagram did (the receiver stops at the first)."""
        copies = self.start.copies if self.start is not None else CONTROL_COPIES
        end = "end datagram received" if self.end is not None else "no end datagram"
        ignored = self.strays + self.foreign
        ignored = f", {ignored} datagrams from outside the stream ignored" if ignored else ""
        return f"description copies received {len(self.start_copies)} of {copies}, {end}{ignored}"


def receive_stream(receiver: StreamReceiver, sock: socket.socket, timeout: float, clock=time.monotonic,
                   where: str = "", on_ready=None) -> StreamReceiver:
    """Run `receiver` on `sock` until its stream is played out; one-line errors when nothing arrives within `timeout`
    seconds or the description never does. `on_ready()`, if given, is called once the loop listens (what queued on
    the socket before is dropped: its arrival times are unknown). Returns `receiver`."""
    sock.setblocking(False)
    receiver.stale += _discard_queued(sock)
    started = clock()
    if on_ready is not None:
        on_ready()
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while not receiver.finished:
            now = clock()
            wake = min((value for value in (receiver.next_wakeup(), _give_up_at(receiver, started, timeout))
                        if value is not None), default=now)  # neither: the end is known and due now
            if selector.select(max(wake - now, 0.0)):
                _read_all(sock, receiver, clock)
            now = clock()
            receiver.play(now, clock)
            _check_progress(receiver, now, started, timeout, where)
    return receiver


def _give_up_at(receiver: StreamReceiver, started: float, timeout: float) -> float | None:
    """When the loop must look at the stream's progress if no deadline falls due before (None: the end is known)."""
    if receiver.first_arrival is None:
        return started + timeout
    if receiver.start is None:
        return receiver.first_arrival + DESCRIPTION_WAIT_SECONDS
    if receiver.end is not None or receiver.ended_by_silence:
        return None
    return receiver.last_arrival + IDLE_END_SECONDS


def _discard_queued(sock: socket.socket) -> int:
    """Drop what queued on the socket before the receiver was ready (its arrival times are unknown): a count."""
    count = 0
    while True:
        try:
            sock.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return count
        except ConnectionRefusedError:
            continue
        count += 1


def _read_all(sock: socket.socket, receiver: StreamReceiver, clock) -> None:
    while True:
        try:
            data = sock.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:  # an ICMP error for an earlier send: not a datagram
            continue
        receiver.datagram(data, clock())


def _check_progress(receiver: StreamReceiver, now: float, started: float, timeout: float, where: str) -> None:
    if receiver.first_arrival is None and now >= started + timeout:
        raise LMCodecError(f"no stream arrived on {where} within {timeout:g} s; start `lmcodec send FILE --to "
                           f"{where}` there, or raise --timeout.")
    if receiver.start is None and receiver.first_arrival is not None and \
            now >= receiver.first_arrival + DESCRIPTION_WAIT_SECONDS:
        early = f" ({receiver.stale} more came before this receiver was ready: start it before the sender)" \
            if receiver.stale else ""
        raise LMCodecError(f"{receiver.datagrams_received} datagrams arrived but none of the {CONTROL_COPIES} copies "
                           f"of the stream description{early}; without it the stream cannot be decoded: send it "
                           "again, with less loss if the copies were lost in transit.")
    if receiver.start is not None and receiver.end is None and not receiver.ended_by_silence and \
            now >= receiver.last_arrival + IDLE_END_SECONDS:
        receiver.end_by_silence()
