"""Simulated packet loss: the Gilbert-Elliott patterns, a datagram stream sent through them, and
`lmcodec simulate-loss`."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import lmcodec
from lmcodec.cli import main
from lmcodec.packet_loss import burst_lengths, gilbert_elliott, send_through_loss
from tests.conftest import speech_like
from tests.golden import GOLDEN_DIR


@pytest.mark.parametrize("loss_rate, mean_burst", [(0.05, 1.0), (0.1, 2.0), (0.2, 3.0)])
def test_gilbert_elliott_has_the_asked_rate_and_bursts(loss_rate, mean_burst):
    lost = gilbert_elliott(200_000, loss_rate, mean_burst, seed=7)
    assert abs(lost.mean() - loss_rate) < 0.1 * loss_rate
    assert abs(burst_lengths(lost).mean() - mean_burst) < 0.05 * mean_burst
    if mean_burst == 1.0:
        assert burst_lengths(lost).max() == 1  # isolated losses


def test_gilbert_elliott_is_fixed_by_its_seed():
    first = gilbert_elliott(500, 0.1, 2.0, seed=3)
    assert np.array_equal(first, gilbert_elliott(500, 0.1, 2.0, seed=3))
    assert not np.array_equal(first, gilbert_elliott(500, 0.1, 2.0, seed=4))
    assert not gilbert_elliott(500, 0.0, 2.0, seed=3).any()


def test_burst_lengths():
    assert burst_lengths(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)).tolist() == [2, 1, 3]
    assert burst_lengths(np.zeros(4, dtype=bool)).tolist() == []


@pytest.mark.parametrize("loss_rate, mean_burst, message", [
    (1.0, 2.0, "loss rate must be at least 0 and below 1"),
    (0.1, 0.5, "mean burst must be at least 1 packet"),
    (0.6, 1.0, "needs mean bursts longer than 1 packets"),
])
def test_impossible_loss_parameters_are_one_line_errors(loss_rate, mean_burst, message):
    with pytest.raises(lmcodec.LMCodecError, match=message):
        gilbert_elliott(10, loss_rate, mean_burst)


@pytest.fixture(scope="module")
def model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


def test_a_stream_through_loss_keeps_its_length_and_counts_every_byte(model):
    encoder = model.datagram_encoder(packet_frames=2, num_coarse_quantizers=2)
    packets = encoder.push(speech_like(2.0, seed=2)) + encoder.flush()
    lost = np.zeros(len(packets), dtype=bool)
    lost[[3, 4, 10]] = True
    received = send_through_loss(model, encoder.description(), packets, lost, concealment="repeat")
    assert received.audio.shape == (len(packets) * 640,)
    assert received.packets_lost == received.report.packets_lost == 3 and received.loss_fraction == 3 / 50
    assert received.bytes_sent == len(encoder.description()) + sum(map(len, packets))
    assert received.kbps == pytest.approx(8 * received.bytes_sent / 2.0 / 1000)
    with pytest.raises(lmcodec.LMCodecError, match="loss pattern has 3 entries for 50 packets"):
        send_through_loss(model, encoder.description(), packets, lost[:3])


def test_simulate_loss_command(tmp_path, capsys):
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(source, speech_like(3.0, 22050, seed=9), 22050)
    arguments = [str(source), str(out), "--model", str(GOLDEN_DIR), "--backend", "torch", "--loss-rate", "0.2",
                 "--burst", "2", "--seed", "5", "--coarse", "2"]
    assert main(["simulate-loss", *arguments]) == 0
    printed = capsys.readouterr().out
    heard, rate = sf.read(out)
    assert rate == 16000 and len(heard) == 3 * 16000
    lost = gilbert_elliott(75, 0.2, 2.0, seed=5)  # 3 s in 40 ms packets
    assert f"lost      {lost.sum()} packets, {100 * lost.mean():.1f} %" in printed
    assert "kbps with every byte" in printed and "concealed lm (expected)" in printed
    assert main(["simulate-loss", *arguments[:-4], "--burst", "0.5"]) == 2
    assert "mean burst must be at least 1 packet" in capsys.readouterr().err
    assert main(["simulate-loss", str(tmp_path / "missing.wav"), str(out), "--loss-rate", "0.1"]) == 2


def test_a_shorter_context_reset_bounds_the_damage_to_one_packet(tmp_path, capsys):
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(source, speech_like(3.0, seed=9), 16000)
    arguments = ["simulate-loss", str(source), str(out), "--model", str(GOLDEN_DIR), "--backend", "torch",
                 "--loss-rate", "0.2", "--burst", "2", "--seed", "5"]
    assert main([*arguments, "--sync-ms", "80"]) == 0
    printed = capsys.readouterr().out
    assert "context reset every 80 ms" in printed and "(longest 40 ms;" in printed
    assert main([*arguments, "--sync-ms", "80", "--packet-ms", "60"]) == 2
    assert "--sync-ms must be a multiple of --packet-ms (60), got 80." in capsys.readouterr().err
