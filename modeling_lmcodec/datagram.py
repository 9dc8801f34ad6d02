"""Datagram mode (format version 4): LMCodec over transports that frame packets themselves (UDP, RTP, radio).

The sender sends a stream description once, out of band (`DatagramEncoder.description()`), then one self-contained
packet per 20-60 ms (`push(samples) -> list[bytes]`). Each packet is a single range-coder payload holding its
sequence number modulo `sequence_modulus`, its codes, and optionally a check value; nothing else, no length field.
The entropy LM's context resets every `sync_frames` frames, so a lost packet leaves at most `sync_frames -
packet_frames` frames of received audio undecodable, and the sequence field tells the receiver both that packets
are missing and where the next reset segment starts. The layout is specified in docs/bitstream.md ("Datagram mode").

The receiver (`DatagramDecoder`) takes packets in arrival order (`push(packet) -> samples`), or is told a packet is
lost (`lost(count)`, `push(None)`); it detects gaps, late and duplicated packets from the sequence field (or from a
sequence number the transport knows, `push(packet, sequence_number=n)`), fills what is missing through `conceal`
(the entropy LM's prediction of the missing codes by default; see `concealment.py`), and keeps a per-stream
`DatagramReport`.

Like `compression.py`, this module needs only numpy (and constriction) and runs on either backend: the torch model
or the ONNX runtime (see `compression.py` for the backend interface; the integer entropy model is the one the
backend's version-3 coder uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bitstream import DATAGRAM_FORMAT_VERSION, DatagramDescription, as_numpy
from .compression import CodingReport, _as_mono_float32, _resampler, as_backend, model_fingerprint
from .concealment import (
    CONCEALMENTS,
    DEFAULT_CONCEALMENT,
    DEFAULT_CONTEXT_FRAMES,
    DEFAULT_PREDICTION,
    DEFAULT_TEMPERATURE,
    PREDICTIONS,
    Concealer,
    fade_gain,
    ramp,
)
from .errors import LMCodecError
from .fine_decoding import resolve_fine_decoding
from .range_coding import NO_INTEGER_MODEL_HINT, DatagramCoder

DEFAULT_PACKET_FRAMES = 2
"""40 ms packets: 25 packets per second."""

DEFAULT_SYNC_FRAMES = 12
"""The entropy LM's context resets every 240 ms: at most 200 ms of received audio undecodable after a loss."""

DEFAULT_START_MIX = (216, 152, 120)
"""Start-mix shares (units of 1/256) of coarse levels 0, 1, 2 (further levels take the last): how much of the
uniform table the first frame of a segment mixes in. Tuned for the bundled checkpoint at Nc = 3 on 40 training files
(LibriSpeech train-clean-100): its first frame without context costs 31.7 bits, 29.4 mixed. Any shares decode (the
stream description carries them); these suit a model with the bundled one's overconfidence at position 0."""

def default_start_mix(num_coarse: int) -> tuple[int, ...]:
    return tuple(DEFAULT_START_MIX[min(level, len(DEFAULT_START_MIX) - 1)] for level in range(num_coarse))


def _integer_model(backend, num_coarse: int):
    """The backend's integer entropy model (what its version-3 coder runs), or a one-line error."""
    if not backend.has_integer_entropy_model:
        raise LMCodecError(f"datagram packets are coded with the integer entropy model, but {NO_INTEGER_MODEL_HINT}.")
    return backend.entropy_coder(num_coarse, DATAGRAM_FORMAT_VERSION).model


class DatagramEncoder:
    """`description() -> bytes` once (out of band), then `push(samples) -> list[bytes]`, one datagram each, and
    `flush()` at the end (the last packet is completed with silence)."""

    def __init__(self, codec, packet_frames: int = DEFAULT_PACKET_FRAMES, sync_frames: int = DEFAULT_SYNC_FRAMES,
                 sampling_rate: int | None = None, num_coarse_quantizers: int | None = None,
                 sequence_modulus: int | None = None, check_bits: int = 0, start_mix=None):
        """`codec`: an `LMCodecModel` or a runtime codec. `packet_frames` P (1-3 for 20-60 ms), `sync_frames` R (a
        multiple of P; a loss costs at most R - P frames of received audio), `sequence_modulus` (default R / P, the
        cheapest; a multiple of it detects longer gaps and reordering for log2 of the factor more bits per packet),
        `check_bits` (0..16 bits of in-packet check), `start_mix` (one share 0..255 per coarse level; default
        `DEFAULT_START_MIX`). `sampling_rate`: the rate of the audio pushed (default: the model's)."""
        self.backend = as_backend(codec)
        settings = self.backend.settings
        self.num_coarse = settings.check_num_coarse(num_coarse_quantizers or settings.num_coarse_quantizers)
        if isinstance(sync_frames, int) and isinstance(packet_frames, int) and sync_frames > settings.max_sync_frames:
            raise LMCodecError(f"sync_frames must be at most {settings.max_sync_frames} for this model (its entropy "
                               f"LM's context), got {sync_frames}.")
        modulus = sequence_modulus
        if modulus is None and isinstance(sync_frames, int) and isinstance(packet_frames, int) and packet_frames > 0:
            modulus = max(sync_frames // packet_frames, 2)
        self.description_info = DatagramDescription(
            model_sampling_rate=settings.sampling_rate,
            original_sampling_rate=sampling_rate or settings.sampling_rate,
            hop_length=settings.hop_length,
            num_coarse_quantizers=self.num_coarse,
            num_quantizers=settings.num_quantizers,
            codebook_size=settings.codebook_size,
            sync_period_frames=sync_frames,
            packet_length_frames=packet_frames,
            sequence_modulus=modulus,
            check_bits=check_bits,
            start_mix=default_start_mix(self.num_coarse) if start_mix is None else start_mix,
            model_fingerprint=model_fingerprint(self.backend, DATAGRAM_FORMAT_VERSION, True),
        )
        info = self.description_info
        self.packet_frames = info.packet_length_frames
        self._coder = DatagramCoder(_integer_model(self.backend, self.num_coarse), self.num_coarse,
                                    info.sequence_modulus, info.check_bits, info.start_mix)
        self._resampler = _resampler(info.original_sampling_rate, settings.sampling_rate)
        self._encoder = self.backend.sender(self.num_coarse)
        self._pending = np.zeros((0, self.num_coarse), dtype=np.int64)
        self._samples_encoded = 0  # at the model rate
        self._state = None
        self.sequence_number = 0  # of the next packet
        self.report = CodingReport()
        self._finished = False

    def description(self) -> bytes:
        """The stream description (35 + Nc bytes) the receiver needs before the first packet; send it reliably."""
        data = self.description_info.to_bytes()
        self.report.header_bytes = len(data)
        return data

    def _packet(self, codes: np.ndarray) -> bytes:
        info = self.description_info
        number = self.sequence_number
        segment_start = info.starts_segment(number)
        if segment_start:
            self._state = self._coder.start()
        payload = self._coder.encode(self._state, codes, number % info.sequence_modulus, segment_start)
        self.sequence_number += 1
        report = self.report
        report.packets += 1
        report.frames += codes.shape[0]
        report.payload_bytes += len(payload)
        report.information_bits = self._coder.information_bits
        report.extra["field_bits"] = self._coder.field_bits
        return payload

    def _drain(self) -> list[bytes]:
        packets = []
        while self._pending.shape[0] >= self.packet_frames:
            codes, self._pending = self._pending[: self.packet_frames], self._pending[self.packet_frames :]
            packets.append(self._packet(codes))
        return packets

    def _check_open(self) -> None:
        if self._finished:
            raise LMCodecError("this datagram encoder was flushed; create a new one for the next stream.")

    def _encode(self, audio: np.ndarray) -> None:
        self._samples_encoded += len(audio)
        codes = self._encoder.push(audio)
        self._pending = np.concatenate([self._pending, codes.T])

    def push(self, samples) -> list[bytes]:
        """Add audio (1-D, at the `sampling_rate` given) and return the packets completed by it, in order."""
        self._check_open()
        audio = _as_mono_float32(samples)
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        with self.backend.coding_context():
            self._encode(audio)
            return self._drain()

    def push_codes(self, coarse_codes) -> list[bytes]:
        """Add already computed coarse codes `[Nc, f]` (instead of audio) and return the packets completed by them."""
        self._check_open()
        codes = np.asarray(as_numpy(coarse_codes))
        if codes.ndim != 2 or codes.shape[0] != self.num_coarse or codes.dtype.kind not in "iu":
            raise LMCodecError(f"coarse codes must be integers of shape [{self.num_coarse}, frames], got "
                               f"{codes.dtype} {codes.shape}.")
        codebook_size = self.description_info.codebook_size
        if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
            raise LMCodecError(f"codes must lie in 0..{codebook_size - 1}.")
        self._pending = np.concatenate([self._pending, codes.T.astype(np.int64)])
        with self.backend.coding_context():
            return self._drain()

    def flush(self) -> list[bytes]:
        """End the stream: the last packet is completed with silence (audio) or by repeating the last frame's codes
        (codes pushed), so every packet holds `packet_frames` frames."""
        self._check_open()
        self._finished = True
        hop = self.backend.settings.hop_length
        with self.backend.coding_context():
            if self._samples_encoded or self._resampler is not None:
                if self._resampler is not None:
                    self._encode(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
                frames = -(-self._samples_encoded // hop)
                whole = -(-frames // self.packet_frames) * self.packet_frames
                self._encode(np.zeros(whole * hop - self._samples_encoded, dtype=np.float32))
                self._pending = np.concatenate([self._pending, self._encoder.flush().T])
            missing = -self._pending.shape[0] % self.packet_frames
            if missing and self._pending.shape[0]:
                self._pending = np.concatenate([self._pending, np.repeat(self._pending[-1:], missing, axis=0)])
            return self._drain()


@dataclass
class DatagramPacket:
    """What became of one received packet (`DatagramDecoder.last`, or `receive`'s result).

    status: "decoded"; "undecodable" (intact, but an earlier packet of its reset segment is missing);
    "damaged" (a check failed: the packet, the receiver's context or its model differs from the sender's);
    "late" (its place was already concealed as lost) or "duplicate" (received before): both dropped.
    """

    status: str
    sequence_number: int | None
    first_frame: int | None
    lost_before: int = 0  # packets found missing before this one (a gap in the sequence)
    codes: np.ndarray | None = None  # [P, Nc] when decoded


@dataclass
class DatagramReport:
    """Per-stream accounting of a datagram receiver, in packets and frames."""

    packet_frames: int
    frame_rate: float
    packets_received: int = 0
    packets_decoded: int = 0
    packets_lost: int = 0  # never received (sequence gaps, `lost()`)
    packets_undecodable: int = 0  # received, but their segment's context was missing
    packets_damaged: int = 0  # received, a check failed
    packets_late: int = 0
    packets_duplicate: int = 0
    longest_undecodable_frames: int = 0  # the longest run of received-but-undecodable frames
    _run: int = field(default=0, repr=False)

    @property
    def frames_decoded(self) -> int:
        return self.packets_decoded * self.packet_frames

    @property
    def frames_lost(self) -> int:
        return self.packets_lost * self.packet_frames

    @property
    def frames_undecodable(self) -> int:
        """Received frames that could not be decoded (missing context or a failed check)."""
        return (self.packets_undecodable + self.packets_damaged) * self.packet_frames

    def _count(self, status: str) -> None:
        setattr(self, f"packets_{status}", getattr(self, f"packets_{status}") + 1)
        if status in ("undecodable", "damaged"):
            self._run += self.packet_frames
            self.longest_undecodable_frames = max(self.longest_undecodable_frames, self._run)
        elif status == "decoded":
            self._run = 0

    def describe(self) -> str:
        """One line: what arrived, what was lost, what could not be decoded."""
        ms = 1000 / self.frame_rate
        return (f"{self.packets_received} packets received, {self.packets_decoded} decoded "
                f"({self.frames_decoded * ms / 1000:.2f} s); {self.packets_lost} lost "
                f"({self.frames_lost * ms / 1000:.2f} s); {self.frames_undecodable * ms / 1000:.2f} s received but "
                f"undecodable (longest {self.longest_undecodable_frames * ms:.0f} ms; {self.packets_damaged} packets "
                f"failed a check); {self.packets_late} late and {self.packets_duplicate} duplicate packets dropped")


class DatagramDecoder:
    """Built from a stream description; `push(packet) -> samples` in arrival order, `push(None)` or `lost(count)`
    for packets known to be lost, `finish()` at the end. `report` counts received / lost / undecodable frames."""

    def __init__(self, codec, description, fine_decoding: str | None = None, seed: int | None = None,
                 reorder_window: int | None = None, concealment: str = DEFAULT_CONCEALMENT,
                 prediction: str = DEFAULT_PREDICTION, temperature: float = DEFAULT_TEMPERATURE,
                 context_frames: int = DEFAULT_CONTEXT_FRAMES):
        """`codec`: an `LMCodecModel` or a runtime codec; `description`: the bytes of `DatagramEncoder.description()`
        (or the parsed `DatagramDescription`). `fine_decoding` and `seed` as for `decompress`.

        `concealment`: how lost and undecodable frames are filled, one of `concealment.CONCEALMENTS`: "lm" (the
        entropy LM's prediction from the last `context_frames` frames played: `prediction` "expected" decodes each
        level's expected codebook vector, "greedy" the most probable codes, "sample" codes drawn at `temperature`
        with `seed`), "repeat" (the last frame's codes) or "silence"; long gaps fade out after 120 ms
        (`concealment.py`).

        `reorder_window`: without a sequence number from the transport, a packet whose sequence field places it 1 to
        `reorder_window` packets behind the next expected one is taken as late or duplicated (and dropped), any
        other as new (the packets in between lost). Default: max(1, sequence_modulus // 4), so with the default
        modulus of 6 a repeated packet is dropped but a gap of 5 is a gap; reordering needs the modulus doubled
        (window 3) or a jitter buffer. A transport that knows the full sequence number (RTP, or the field unwrapped
        with arrival times) passes it to `push`, and then gaps of any length are counted exactly."""
        self.backend = as_backend(codec)
        info = description if isinstance(description, DatagramDescription) else \
            DatagramDescription.from_bytes(description)
        self.description_info = info
        self._check_compatible(info)
        self.num_coarse = info.num_coarse_quantizers
        self.packet_frames = info.packet_length_frames
        self._coder = DatagramCoder(_integer_model(self.backend, self.num_coarse), self.num_coarse,
                                    info.sequence_modulus, info.check_bits, info.start_mix)
        try:
            self.fine_decoding = resolve_fine_decoding(self.backend.settings.fine_decoding, fine_decoding)
        except ValueError as error:
            raise LMCodecError(str(error)) from None
        if concealment not in CONCEALMENTS:
            raise LMCodecError(f"concealment must be one of {', '.join(CONCEALMENTS)}, got {concealment!r}.")
        if prediction not in PREDICTIONS:
            raise LMCodecError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}.")
        if isinstance(temperature, bool) or not (isinstance(temperature, (int, float)) and 0 < temperature <= 10):
            raise LMCodecError(f"temperature must be a number above 0 and at most 10, got {temperature!r}.")
        if isinstance(context_frames, bool) or not isinstance(context_frames, int) or context_frames < 1:
            raise LMCodecError(f"context_frames must be a positive integer, got {context_frames!r}.")
        self.concealment = concealment
        self._seed = 0 if seed is None else seed
        self._concealer = Concealer(concealment, self._coder.model, self.num_coarse,
                                    self.backend.codebooks if concealment == "lm" else None, self._seed, prediction,
                                    temperature, context_frames)
        self._frames_played = 0  # frames of audio returned so far (received or concealed)
        self._concealed_run = 0  # frames concealed since the last frame that arrived
        self._gain = 1.0  # the output gain at the end of the last frame played (below 1 while a gap fades)
        window = max(1, info.sequence_modulus // 4) if reorder_window is None else reorder_window
        if not isinstance(window, int) or not 0 <= window < info.sequence_modulus:
            raise LMCodecError(f"reorder_window must be an integer from 0 to {info.sequence_modulus - 1}, "
                               f"got {reorder_window!r}.")
        self.reorder_window = window
        self.next_sequence = 0  # the sequence number the next new packet should have
        self._started = False
        self._state = None  # the entropy LM's context (an IntegerLMState) ...
        self._context = None  # ... holding the packets of the current segment up to this sequence number
        self._received = set()  # recently received sequence numbers (to tell duplicates from late packets)
        self._receiver = None  # the synthesis (fine levels and decoder), restarted after a gap
        self.report = DatagramReport(self.packet_frames, self.backend.settings.frame_rate)
        self.last: DatagramPacket | None = None

    def _check_compatible(self, info: DatagramDescription) -> None:
        settings = self.backend.settings
        if (info.num_quantizers, info.codebook_size, info.model_sampling_rate, info.hop_length) != (
                settings.num_quantizers, settings.codebook_size, settings.sampling_rate, settings.hop_length):
            raise LMCodecError(
                f"stream was made for {info.num_quantizers} levels × {info.codebook_size} codes at "
                f"{info.model_sampling_rate} Hz, but this model has {settings.num_quantizers} × "
                f"{settings.codebook_size} at {settings.sampling_rate} Hz; decode with the model that encoded it.")
        if not self.backend.has_integer_entropy_model:
            raise LMCodecError(f"datagram packets are coded with the integer entropy model, but {NO_INTEGER_MODEL_HINT}.")
        if info.model_fingerprint != model_fingerprint(self.backend, DATAGRAM_FORMAT_VERSION, True):
            raise LMCodecError("stream was made by a different model (fingerprint mismatch); decode it with the "
                               "checkpoint that encoded it.")
        settings.check_num_coarse(info.num_coarse_quantizers)
        if info.sync_period_frames > settings.max_sync_frames:
            raise LMCodecError(f"stream resets its context every {info.sync_period_frames} frames, more than this "
                               f"model's {settings.max_sync_frames}; decode it with the model that encoded it.")

    # ------------------------------------------------------------------ codes
    def sequence_field(self, packet: bytes) -> int:
        """The sequence number modulo `sequence_modulus` that `packet` carries, read without decoding anything else
        (for a jitter buffer that unwraps it with the arrival time and passes the full number to `push`)."""
        return self._coder.read_sequence_field(bytes(packet))[0]

    def receive(self, packet: bytes, sequence_number: int | None = None) -> DatagramPacket:
        """Decode one packet's codes (no audio): a `DatagramPacket` saying what became of it. Use either `receive`
        or `push` on one decoder (`push` calls it and makes the audio)."""
        if not isinstance(packet, (bytes, bytearray, memoryview)):
            raise LMCodecError(f"a datagram packet is bytes, got {type(packet).__name__}; pass None for a lost one.")
        if sequence_number is not None and (isinstance(sequence_number, bool) or not isinstance(sequence_number, int)
                                            or sequence_number < 0):
            raise LMCodecError(f"sequence_number must be a non-negative integer, got {sequence_number!r}.")
        info, payload = self.description_info, bytes(packet)
        self.report.packets_received += 1
        try:
            field_value, decoder = self._coder.read_sequence_field(payload)
        except LMCodecError:  # an empty packet: nothing to place it by
            return self._result("damaged", None)
        number = self._place(field_value, sequence_number)
        if number is None:  # behind the start of the stream: not one of its packets
            return self._result("damaged", None)
        if number < self.next_sequence:
            return self._result("duplicate" if number in self._received else "late", number)
        lost = number - self.next_sequence
        self._skip(lost)
        self.next_sequence = number + 1
        self._started = True
        horizon = number - 4 * info.sequence_modulus
        self._received = {received for received in self._received if received > horizon} | {number}
        if sequence_number is not None and sequence_number % info.sequence_modulus != field_value:
            self._context = None
            return self._result("damaged", number, lost)
        segment_start = info.starts_segment(number)
        if segment_start:
            self._state, self._context = self._coder.start(), None
        elif self._context != number - 1:
            return self._result("undecodable", number, lost)
        try:
            codes = self._coder.decode(decoder, payload, self._state, self.packet_frames, field_value, segment_start)
        except LMCodecError:
            self._context = None
            return self._result("damaged", number, lost)
        self._context = number
        return self._result("decoded", number, lost, codes)

    def _place(self, field_value: int, sequence_number: int | None) -> int | None:
        """The packet's full sequence number: the transport's, or the one its field gives nearest the expected."""
        if sequence_number is not None:
            return sequence_number
        modulus = self.description_info.sequence_modulus
        if not self._started:
            return field_value
        ahead = (field_value - self.next_sequence) % modulus
        if ahead >= modulus - self.reorder_window:  # behind: late or duplicated
            number = self.next_sequence - (modulus - ahead)
            return number if number >= 0 else None
        return self.next_sequence + ahead

    def _skip(self, count: int) -> None:
        """`count` packets will never arrive: the context of their segment is gone."""
        if count:
            self.report.packets_lost += count
            self.report._run = 0
            self._context = None

    def _result(self, status: str, number: int | None, lost: int = 0, codes=None) -> DatagramPacket:
        self.report._count(status)
        first = None if number is None else number * self.packet_frames
        self.last = DatagramPacket(status, number, first, lost, codes)
        return self.last

    # ------------------------------------------------------------------ audio
    def push(self, packet: bytes | None, sequence_number: int | None = None) -> np.ndarray:
        """Feed one received packet (or None for one known to be lost) → float32 samples at the model rate: the
        audio up to the end of this packet, lost packets before it filled in (`conceal`). A late or duplicated
        packet returns no samples. `sequence_number`: the packet's number if the transport knows it (e.g. RTP)."""
        if packet is None:
            return self.lost(1)
        with self.backend.coding_context():
            result = self.receive(packet, sequence_number)
            if result.status in ("late", "duplicate") or result.sequence_number is None:
                return np.zeros(0, dtype=np.float32)
            pieces = [self.conceal(result.lost_before * self.packet_frames)] if result.lost_before else []
            if result.status == "decoded":
                pieces.append(self._synthesize(result.codes, result.first_frame))
            else:
                pieces.append(self.conceal(self.packet_frames))
        return np.concatenate(pieces)

    def lost(self, count: int = 1) -> np.ndarray:
        """`count` packets will not arrive (the transport's loss detection or jitter buffer says so) → their audio,
        concealed. A packet that arrives after all is then dropped as late."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise LMCodecError(f"count must be a non-negative integer, got {count!r}.")
        self._skip(count)
        self.next_sequence += count
        self._started = self._started or count > 0
        with self.backend.coding_context():
            return self.conceal(count * self.packet_frames) if count else np.zeros(0, dtype=np.float32)

    def conceal(self, frames: int) -> np.ndarray:
        """Audio for `frames` frames that were lost or cannot be decoded (float32 `[frames * hop]`, plus what a
        restarted decoder still held). The concealer's codes go through the running decoder, so the waveform
        continues; after `concealment.HOLD_FRAMES` frames of a gap the output fades to silence, and once silent (or
        with nothing to continue) the decoder restarts at the next frame that arrives."""
        hop = self.backend.settings.hop_length
        predicted = None
        if self._receiver is not None and self._gain > 0:
            predicted = self._concealer.predict(frames, self._frames_played)
        if predicted is None:
            return self._silence(frames)
        codes, latent = predicted
        gains = fade_gain(self._concealed_run + np.arange(1, frames + 1))
        audible = int(np.count_nonzero(np.concatenate([[self._gain], gains[:-1]]) > 0))  # frames that start > 0
        if latent is not None:
            samples = self._receiver.push_latent(latent[:audible])
        else:
            samples = self._receiver.push(np.ascontiguousarray(codes[:audible].T))
        starts = np.concatenate([[self._gain], gains[: audible - 1]])
        samples = np.concatenate([ramp(samples[index * hop : (index + 1) * hop], starts[index], gains[index])
                                  for index in range(audible)])
        self._frames_played += audible
        self._concealed_run += audible
        self._gain = float(gains[audible - 1])
        if audible == frames and self._gain > 0:
            return samples
        return np.concatenate([samples, self._silence(frames - audible)])

    def _silence(self, frames: int) -> np.ndarray:
        """`frames` frames of silence, after the samples the decoder still held (faded); the decoder restarts."""
        held = self._receiver.flush() if self._receiver is not None else np.zeros(0, dtype=np.float32)
        held = (held * self._gain).astype(np.float32)
        self._receiver = None
        self._concealer.forget()
        self._frames_played += frames
        self._concealed_run += frames
        self._gain = 0.0
        return np.concatenate([held, np.zeros(frames * self.backend.settings.hop_length, dtype=np.float32)])

    def _synthesize(self, codes: np.ndarray, first_frame: int) -> np.ndarray:
        """Audio of frames that arrived, codes `[P, Nc]`; fades back in over them after a gap."""
        if self._receiver is None:
            self._receiver = self.backend.receiver(self.num_coarse, self.backend.settings.sync_frames,
                                                   self.fine_decoding, self._seed, first_frame)
        samples = ramp(self._receiver.push(np.ascontiguousarray(codes.T)), self._gain, 1.0)
        self._concealer.observe(codes)
        self._frames_played += codes.shape[0]
        self._concealed_run = 0
        self._gain = 1.0
        return samples

    def finish(self) -> np.ndarray:
        """End of the stream: the samples the decoder still holds (its output delay)."""
        with self.backend.coding_context():
            held = self._receiver.flush() if self._receiver is not None else np.zeros(0, dtype=np.float32)
        self._receiver = None
        return held
