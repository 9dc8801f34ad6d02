"""The UDP transport of datagram mode: the jitter buffer's rule with injected arrival times, the control datagrams,
and sender and receiver on 127.0.0.1 (threads of this process) through injected loss and reordering, down to the
command line."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
import soundfile as sf

import lmcodec
from lmcodec import transport
from lmcodec.cli import main
from lmcodec.datagram import CONCEALMENTS, DatagramEncoder
from lmcodec.jitter_buffer import JitterBuffer
from lmcodec.packet_loss import gilbert_elliott, send_through_loss
from lmcodec.transport import (
    LossInjector,
    StreamEnd,
    StreamReceiver,
    StreamStart,
    open_receiver_socket,
    parse_address,
    parse_control,
    receive_stream,
    send_stream,
)
from tests.conftest import speech_like
from tests.golden import GOLDEN_DIR

T = 0.040  # 40 ms packets
M = 6  # their default sequence modulus
DELAY = 0.080


@pytest.fixture(scope="module")
def model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


# ---------------------------------------------------------------------------------------------------- jitter buffer
def play(arrivals: list[tuple[int, float]], end: int | None = None, anchor: float = 0.0, buffer=None):
    """Feed `(number, arrival time)` to a jitter buffer in time order (fields are number mod M; packets b"<n>"),
    calling `due` before each arrival and once at the end → (buffer, arrival results, everything `due` gave)."""
    buffer = buffer or JitterBuffer(T, M, DELAY)
    buffer.anchor(anchor, 0)
    if end is not None:
        buffer.end(end)
    results, pushed = [], []
    for number, moment in sorted(arrivals, key=lambda item: item[1]):
        pushed += buffer.due(moment)
        results.append(buffer.arrive(number % M, str(number).encode(), moment))
    pushed += buffer.due(1e9)
    return buffer, results, pushed


def on_time(numbers, jitter: float = 0.0, seed: int = 0) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    return [(n, n * T + 0.002 + jitter * rng.random()) for n in numbers]


def test_an_in_order_stream_is_played_out_whole_as_its_field_wraps():
    buffer, results, pushed = play(on_time(range(40), jitter=0.030), end=40)
    assert [result.number for result in results] == list(range(40)) and {r.status for r in results} == {"held"}
    assert pushed == [(n, str(n).encode()) for n in range(40)]
    assert buffer.finished and buffer.next_deadline() is None
    assert buffer.deadline(7) == pytest.approx(7 * T + DELAY)


def test_packets_reordered_within_the_playout_delay_are_played_in_order_and_not_lost():
    arrivals = dict(on_time(range(20)))
    arrivals[3] += 0.050  # overtaken by 4
    arrivals[10] += 0.075  # overtaken by 11 and 12
    _, results, pushed = play(list(arrivals.items()), end=20)
    assert [number for number, _ in pushed] == list(range(20)) and all(packet for _, packet in pushed)
    assert all(result.status == "held" for result in results)


def test_a_packet_after_its_deadline_is_late_and_handed_out_to_be_counted():
    arrivals = dict(on_time(range(12)))
    arrivals[5] += 0.150  # past its 80 ms, within what the field can place (180 ms)
    _, results, pushed = play(list(arrivals.items()), end=12)
    late = next(result for result in results if result.number == 5)
    assert late.status == "late"
    assert pushed.index((5, None)) < pushed.index((5, b"5"))  # given up at its deadline, then handed out
    assert [item for item in pushed if item[1] is not None and item[0] != 5] == [
        (n, str(n).encode()) for n in range(12) if n != 5]


def test_duplicates_are_handed_out_after_their_original():
    arrivals = on_time(range(8)) + [(2, 2 * T + 0.010), (4, 4 * T + 0.150)]  # before and after its deadline
    _, results, pushed = play(arrivals, end=8)
    assert [result.status for result in results].count("duplicate") == 2
    order = [0, 1, 2, 2, 3, 4, 5, 4, 6, 7]  # 2 right after its original; 4 when it comes, 4 already played
    assert pushed == [(n, str(n).encode()) for n in order]


def test_a_gap_longer_than_the_modulus_is_counted_exactly_from_the_clock():
    kept = [n for n in range(40) if not 10 <= n <= 22]  # 13 packets lost, more than twice M
    kept = [n for n in kept if n >= 3]  # and the first three, before anything arrived
    _, results, pushed = play(on_time(kept, jitter=0.020), end=40)
    assert [result.number for result in results] == kept
    assert [number for number, packet in pushed if packet is None] == [0, 1, 2, *range(10, 23)]


def test_the_window_of_the_rule_is_60_ms_early_to_180_ms_late():
    buffer = JitterBuffer(T, M, DELAY)
    buffer.anchor(0.0, 0)
    for number in range(30, 42):
        for offset in (-0.059, 0.0, 0.100, 0.179):
            assert buffer.place(number % M, number * T + offset) == number, (number, offset)
        assert buffer.place(number % M, number * T + 0.181) == number + M  # too late to tell: misplaced
        assert buffer.place(number % M, number * T - 0.061) == number - M


def test_a_late_anchor_is_corrected_by_the_packets_themselves():
    """A start datagram that came 50 ms late: on-time packets are still placed right, and they lower the base."""
    buffer, results, _ = play(on_time(range(30)), end=30, anchor=0.050)
    assert [result.number for result in results] == list(range(30))
    assert buffer.base == pytest.approx(0.002)


def test_after_the_end_packets_are_strays_and_bad_settings_are_refused():
    _, results, pushed = play(on_time(range(10)), end=8)
    assert [result.status for result in results[8:]] == ["stray", "stray"] and len(pushed) == 8
    for arguments in ((0.0, M, DELAY), (T, 1, DELAY), (T, M, -0.01)):
        with pytest.raises(ValueError):
            JitterBuffer(*arguments)


# ---------------------------------------------------------------------------------------------------- control
def test_control_datagrams_are_pinned_and_never_mistaken_for_packets(model):
    description = bytes(range(38))
    start = StreamStart(0x01020304, 1, 3, 1, 1_700_000_000_000_000_000, description)
    data = start.to_bytes()
    # magic, version 1, kind 1, stream id, copy 1 of 3, next packet 1, capture start (ns), description, CRC-32
    assert data[:24].hex() == "4c4d4374" "01" "01" "04030201" "01" "03" "01000000" "00002a36fe9c9717"
    assert data[24:-4] == description and data[-4:].hex() == "ea3043ba"
    assert len(data) == 24 + 38 + 4 and parse_control(data) == start
    end = StreamEnd(0x01020304, 2, 3, 250, 160_000, 1_900)
    assert len(end.to_bytes()) == 32 and parse_control(end.to_bytes()) == end
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        assert parse_control(bytes(damaged)) is None
    assert parse_control(data[:-1]) is None and parse_control(b"") is None
    encoder = DatagramEncoder(model)
    packets = encoder.push(speech_like(1.0, seed=5)) + encoder.flush()
    assert not any(parse_control(packet) for packet in packets)


@pytest.mark.parametrize("text, message", [
    ("127.0.0.1", "must be HOST:PORT, such as 127.0.0.1:5004"),
    (":5004", "must be HOST:PORT"),
    ("127.0.0.1:70000", "a number from 1 to 65535"),
    ("127.0.0.1:http", "a number from 1 to 65535"),
])
def test_bad_addresses_are_one_line_errors(text, message):
    with pytest.raises(lmcodec.LMCodecError, match=message):
        parse_address(text)


def test_addresses_parse():
    assert parse_address("127.0.0.1:5004") == ("127.0.0.1", 5004)
    assert parse_address("[::1]:6000") == ("::1", 6000)


def test_the_injector_drops_the_gilbert_elliott_pattern_of_its_seed():
    injector = LossInjector(0.2, 2.0, reorder=0.3, reorder_ms=50, seed=11, control_loss=0.0)
    injector.plan(200)
    fates = [injector.fate("packet", n) for n in range(200)]
    expected = np.flatnonzero(gilbert_elliott(200, 0.2, 2.0, 11)).tolist()
    assert [n for n, fate in enumerate(fates) if fate is None] == expected == injector.log.dropped_packets
    assert {fate for fate in fates if fate is not None} == {0.0, 0.05}
    assert 30 < len(injector.log.delayed_packets) < 70
    assert injector.fate("start", 0) == 0.0 and injector.log.dropped_control == {"start": 0, "end": 0}
    with pytest.raises(lmcodec.LMCodecError, match="needs mean bursts longer"):
        LossInjector(0.9, 1.0)


# ---------------------------------------------------------------------------------------------------- over UDP
class ScriptedInjector(LossInjector):
    """Drops the control datagrams named in `drop` ((kind, copy) pairs) and nothing else."""

    def __init__(self, drop):
        super().__init__()
        self.drop, self.copies = set(drop), {"start": 0, "end": 0}

    def fate(self, kind, index):
        if kind == "packet":
            return 0.0
        copy, self.copies[kind] = self.copies[kind], self.copies[kind] + 1
        if (kind, copy) in self.drop:
            self.log.dropped_control[kind] += 1
            return None
        return 0.0


def run_stream(model, audio, injector, playout_delay=0.080, timeout=10.0):
    """Receiver on a thread, sender on this one, over 127.0.0.1 → (receiver, send report, receiver's error)."""
    sock = open_receiver_socket("127.0.0.1", 0)
    receiver, ready, failures = StreamReceiver(model, playout_delay), threading.Event(), []

    def receive():
        try:
            receive_stream(receiver, sock, timeout, where="test", on_ready=ready.set)
        except lmcodec.LMCodecError as error:
            failures.append(error)
        finally:
            sock.close()
            ready.set()

    thread = threading.Thread(target=receive)
    thread.start()
    assert ready.wait(30)
    report = send_stream(model, audio, ("127.0.0.1", sock.getsockname()[1]), injector=injector)
    thread.join(30)
    assert not thread.is_alive()
    return receiver, report, failures[0] if failures else None


def offline_packets(model, audio):
    encoder = DatagramEncoder(model)
    chunk = 640
    packets = [packet for first in range(0, len(audio), chunk) for packet in encoder.push(audio[first : first + chunk])]
    return encoder.description(), packets + encoder.flush()


def test_loss_and_reordering_over_udp_give_the_offline_simulation_exactly(model):
    """The receiver counts as lost exactly what the injector dropped, not what it reordered within the playout
    delay, and its audio is sample for sample that of `send_through_loss` with the same loss pattern."""
    audio = speech_like(2.0, seed=8)
    injector = LossInjector(loss_rate=0.15, mean_burst=2.0, reorder=0.25, reorder_ms=50, seed=34, control_loss=0.3)
    receiver, sent, failure = run_stream(model, audio, injector, playout_delay=0.150)  # 100 ms to spare
    assert failure is None
    log, report = injector.log, receiver.decoder.report
    assert sent.packets == 50 and len(log.delayed_packets) >= 5
    assert {0, 1, 49} <= set(log.dropped_packets)  # seed 34: losses at both ends, a start and an end copy too
    assert report.packets_lost == len(log.dropped_packets)
    assert report.packets_received == 50 - len(log.dropped_packets)
    assert (report.packets_late, report.packets_duplicate, receiver.strays) == (0, 0, 0)
    assert len(receiver.start_copies) == 3 - log.dropped_control["start"] and log.dropped_control["start"] >= 1
    assert log.dropped_control["end"] == 1 and receiver.end is not None
    received = receiver.audio()
    assert received.shape == audio.shape
    description, packets = offline_packets(model, audio)
    lost = np.isin(np.arange(len(packets)), log.dropped_packets)
    expected = send_through_loss(model, description, packets, lost)
    np.testing.assert_array_equal(received, expected.audio[: len(audio)])
    # kbps with every byte: what the sender counted is what the end datagram told the receiver
    assert f"sent {sent.bytes_sent} B = {8 * sent.bytes_sent / 2.0 / 1000:.3f} kbps" in receiver.describe_rate()
    latency = receiver.latency()
    assert len(latency.total) == 50 - len(log.dropped_packets)
    assert 0.150 <= np.median(latency.jitter_buffer + latency.arrival) < 0.5  # capture → deadline: at least the delay
    parts = latency.arrival + latency.jitter_buffer + latency.output_delay + latency.decoding
    np.testing.assert_allclose(parts, latency.total, atol=1e-9)


def test_lost_description_copies_and_a_lost_end_are_survived_and_said(model):
    """Only the third copy of the description arrives, after packets 0 and 1 (held until it comes), and no end
    datagram: the stream ends a second after its last packet, whole packets long."""
    audio = speech_like(0.5, seed=9)
    drop = [("start", 0), ("start", 1), ("end", 0), ("end", 1), ("end", 2)]
    receiver, _, failure = run_stream(model, audio, ScriptedInjector(drop))
    assert failure is None and receiver.ended_by_silence
    assert receiver.describe_control() == "description copies received 1 of 3, no end datagram"
    assert receiver.decoder.report.packets_lost == 0 and receiver.decoder.report.packets_decoded == 13
    assert len(receiver.audio()) == 13 * 640
    assert "bytes sent unknown (no end datagram)" in receiver.describe_rate()


def test_a_description_that_never_arrives_is_a_one_line_error(model):
    drop = [("start", 0), ("start", 1), ("start", 2)]
    _, _, failure = run_stream(model, speech_like(0.3, seed=2), ScriptedInjector(drop))
    assert "datagrams arrived but none of the 3 copies of the stream description" in str(failure)


def test_the_receiver_on_injected_times_counts_and_times_exactly(model):
    """No sockets, no real time: packets arriving 5 ms after their last sample is captured, one lost, one overtaken,
    the first two before the only description copy; decoding takes no time on this clock and the golden model's
    decoder holds nothing back. So every packet's last sample is handed out exactly 5 + 80 ms after its capture, and
    the audio is that of the offline simulation."""
    audio = speech_like(1.0, seed=6)
    description, packets = offline_packets(model, audio)
    start = lambda copy, before: StreamStart(7, copy, 3, before, 0, description).to_bytes()  # noqa: E731
    arrivals = [((n + 1) * 640 - 1) / 16000 + 0.005 for n in range(len(packets))]
    events = [(arrivals[n], packet) for n, packet in enumerate(packets) if n != 9]  # 9 lost
    events[12] = (arrivals[13] + 0.060, packets[13])  # 13 overtaken by 14: 60 ms late, of 80
    events += [(arrivals[2], start(2, 2)), (arrivals[24] + 0.001, StreamEnd(7, 0, 3, 25, 16000, 0).to_bytes())]
    receiver, now = StreamReceiver(model, DELAY, wall_offset=0.0), [0.0]
    for moment, data in sorted(events, key=lambda event: event[0]):
        while receiver.next_wakeup() is not None and receiver.next_wakeup() <= moment:
            now[0] = receiver.next_wakeup()
            receiver.play(now[0], lambda: now[0])
        receiver.datagram(data, moment)
    while not receiver.finished:
        now[0] = receiver.next_wakeup() or now[0]
        receiver.play(now[0], lambda: now[0])
    report = receiver.decoder.report
    assert (report.packets_received, report.packets_lost, report.packets_late) == (24, 1, 0)
    lost = np.arange(len(packets)) == 9
    np.testing.assert_array_equal(receiver.audio(), send_through_loss(model, description, packets, lost).audio)
    latency = receiver.latency()
    overtaken = np.arange(24) == 12  # the 13th packet received is packet 13
    np.testing.assert_allclose(latency.total, 0.085, atol=1e-9)
    np.testing.assert_allclose(latency.arrival, np.where(overtaken, 0.065, 0.005), atol=1e-9)
    np.testing.assert_allclose(latency.jitter_buffer, np.where(overtaken, 0.020, 0.080), atol=1e-9)
    assert not latency.output_delay.any() and not latency.decoding.any()
    np.testing.assert_allclose(latency.played, 0.085 + 639 / 16000, atol=1e-9)  # at the end of its 40 ms chunk
    assert receiver.describe_control() == "description copies received 1 of 3, end datagram received"


# ---------------------------------------------------------------------------------------------------- command line
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_send_and_receive_commands(tmp_path, capsys, monkeypatch):
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    audio = speech_like(1.2, seed=3)
    sf.write(source, audio, 16000)
    ready, codes = threading.Event(), {}

    def receive_when_ready(*args, **options):
        return receive_stream(*args, **options, on_ready=ready.set)

    monkeypatch.setattr(transport, "receive_stream", receive_when_ready)
    port = str(free_port())
    thread = threading.Thread(target=lambda: codes.setdefault("receive", main(
        ["receive", "--port", port, str(out), "--model", str(GOLDEN_DIR), "--timeout", "20", "--jitter-ms", "150",
         "--conceal", CONCEALMENTS[-1]])))
    thread.start()
    assert ready.wait(60)
    codes["send"] = main(["send", str(source), "--to", f"127.0.0.1:{port}", "--model", str(GOLDEN_DIR),
                          "--loss-rate", "0.1", "--burst", "2", "--reorder", "0.2", "--seed", "1"])
    thread.join(30)
    printed = capsys.readouterr().out
    assert codes == {"receive": 0, "send": 0}, printed
    dropped = int(gilbert_elliott(30, 0.1, 2.0, 1).sum())
    assert dropped and f"injected: {dropped} of 30 packets dropped" in printed
    assert f"; {dropped} lost (" in printed and "0 late and 0 duplicate packets dropped" in printed
    assert f"concealed with {CONCEALMENTS[-1]};" in printed
    assert "latency capture → handed to the output" in printed and "kbps (every datagram's payload" in printed
    assert sf.info(out).frames == len(audio) and sf.info(out).samplerate == 16000


def expect_error(capsys, argv, message):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "Traceback" not in error, error


def test_bad_transport_inputs_are_one_line_errors(tmp_path, capsys):
    source = tmp_path / "in.wav"
    sf.write(source, speech_like(0.2), 16000)
    model = ["--model", str(GOLDEN_DIR)]
    out = str(tmp_path / "out.wav")
    expect_error(capsys, ["send", str(source), "--to", "127.0.0.1", *model], "must be HOST:PORT")
    expect_error(capsys, ["send", str(source), "--to", "127.0.0.1:5004", "--loss-rate", "1.5", *model],
                 "loss rate must be at least 0 and below 1")
    expect_error(capsys, ["receive", "--port", "0", out, *model], "a number from 1 to 65535")
    expect_error(capsys, ["receive", "--port", "5004", out, "--jitter-ms", "-5", *model], "--jitter-ms must be")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = str(taken.getsockname()[1])
        expect_error(capsys, ["receive", "--port", port, out, *model], f"port {port} is already in use")
    port = str(free_port())
    expect_error(capsys, ["receive", "--port", port, out, "--timeout", "0.2", *model],
                 f"no stream arrived on 127.0.0.1:{port} within 0.2 s")
    assert not (tmp_path / "out.wav").exists()
    with pytest.raises(SystemExit):
        main(["receive", "--port", port, out, "--conceal", "nothing"])
    error = capsys.readouterr().err  # the choices are the decoder's
    assert "invalid choice: 'nothing' (choose from" in error and all(f"'{kind}'" in error for kind in CONCEALMENTS)
