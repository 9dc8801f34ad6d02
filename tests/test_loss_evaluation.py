"""The packet-loss evaluation: every system gets the same losses, the reference codecs fill lost packets as they say,
cached results are reused, and the summary and plot are written. Signals made in code, the tiny golden checkpoint,
a stand-in for the metrics (what is checked here is what reaches them); Opus and Codec2 skipped when absent."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

import lmcodec
from lmcodec.errors import LMCodecError
from lmcodec.packet_loss import gilbert_elliott
from tests.conftest import speech_like
from tests.golden import GOLDEN_DIR
from training import loss_evaluation as evaluation
from training import packet_codecs as codecs
from training.loss_evaluation import CONDITIONS, TARGET, Condition, loss_pattern, loss_seed

SECONDS = 0.99  # not a whole number of packets
PACKETS = 25  # of 40 ms in SECONDS, the last one completed with silence
INDEX = 3


has_libopus = evaluation.opus_available
needs_opus = pytest.mark.skipif(not has_libopus(), reason="libopus not installed (apt-get install libopus0)")
needs_codec2 = pytest.mark.skipif(shutil.which("c2enc") is None or shutil.which("c2dec") is None,
                                  reason="c2enc / c2dec not installed (apt-get install codec2)")


class StandInMetric:
    """Scores each prediction by its mean absolute sample (the metrics themselves are tested elsewhere)."""

    def __init__(self, name: str):
        self.name = name

    def compute(self, predictions, references=None, **options):
        values = [float(np.mean(np.abs(prediction))) for prediction in predictions]
        if self.name == "dnsmos":
            return {f"{part}_per_item": values for part in ("sig", "bak", "ovrl")}
        return {f"{self.name}_per_item": values}


SCORERS = {name: StandInMetric(name) for name in evaluation.METRIC_MODULES}


@pytest.fixture(scope="module")
def golden_model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


def recording(systems, log: dict):
    """The systems with their receivers logging the loss pattern each one is handed."""

    def wrap(system):
        def receive(sent, lost, seed):
            log.setdefault(system.slug, []).append(np.array(lost))
            return system.receive(sent, lost, seed)

        return dataclasses.replace(system, receive=receive)

    return [wrap(system) for system in systems]


def test_loss_seeds_depend_on_the_utterance_and_the_condition_only():
    seeds = {loss_seed(index, condition) for index in range(50) for condition in CONDITIONS}
    assert len(seeds) == 50 * len(CONDITIONS)
    assert loss_seed(7, Condition(0.1, 2)) == loss_seed(7, TARGET)
    assert np.array_equal(loss_pattern(400, 7, TARGET), gilbert_elliott(400, 0.1, 2, loss_seed(7, TARGET)))
    assert [c.key for c in CONDITIONS].count(TARGET.key) == 1 and len({c.key for c in CONDITIONS}) == len(CONDITIONS)


def test_every_system_gets_the_same_losses_and_results_are_cached(golden_model, tmp_path):
    audio = speech_like(SECONDS, seed=5)
    log = {}
    systems, _ = evaluation.build_systems(golden_model)
    families = {system.family for system in systems}
    assert "lmcodec" in families and ("opus" in families) == has_libopus()
    assert ("codec2" in families) == (shutil.which("c2enc") is not None)
    path = tmp_path / "utterance.json"
    record = evaluation.evaluate_utterance(path, "u", INDEX, audio, recording(systems, log), SCORERS, {"x": 1})
    expected = [loss_pattern(PACKETS, INDEX, condition) for condition in CONDITIONS]
    assert sum(pattern.sum() for pattern in expected) > 0
    assert set(log) == {system.slug for system in systems}
    for slug, patterns in log.items():
        assert len(patterns) == len(CONDITIONS), slug
        for pattern, wanted in zip(patterns, expected):
            assert np.array_equal(pattern, wanted), slug
    for system in systems:
        entries = record["results"][system.slug]
        assert [entries[condition.key]["packets_lost"] for condition in CONDITIONS] == [p.sum() for p in expected]
    if has_libopus():
        assert record["results"]["opus-6-plc"][TARGET.key]["kbps"] == pytest.approx(6.0)
        assert record["results"]["opus-8-fec"][TARGET.key]["kbps"] == pytest.approx(8.0)
    if "codec2" in families:
        assert record["results"]["codec2-1300-zeroed"][TARGET.key]["kbps"] == pytest.approx(1.4)

    # resumed: nothing is run again; a new system runs alone
    log.clear()
    again = evaluation.evaluate_utterance(path, "u", INDEX, audio, recording(systems, log), SCORERS, {"x": 1})
    assert log == {} and again["results"] == record["results"]
    extra = dataclasses.replace(systems[0], name="LMCodec copy", slug="lmcodec-copy")
    evaluation.evaluate_utterance(path, "u", INDEX, audio, recording([*systems, extra], log), SCORERS, {"x": 1})
    assert list(log) == ["lmcodec-copy"]
    with pytest.raises(LMCodecError, match="other settings"):
        evaluation.evaluate_utterance(path, "u", INDEX, audio, systems, SCORERS, {"x": 2})


def test_summary_and_plot_are_written(golden_model, tmp_path):
    systems, _ = evaluation.build_systems(golden_model)
    systems = [system for system in systems if system.family == "lmcodec"]
    records = [evaluation.evaluate_utterance(tmp_path / f"{index}.json", f"u{index}", index,
                                             speech_like(0.5, seed=index), systems, SCORERS, {})
               for index in range(2)]
    text = evaluation.summary_markdown(records, systems, ["note"], 10.0)
    assert "| LMCodec Nc=3, silence |" in text and "Time (one thread" in text
    figure = evaluation.plot(records, systems, tmp_path / "figures" / "loss.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_codec2
def test_codec2_frames_are_7_bytes_per_40_ms_and_lost_ones_are_zeroed_or_repeated():
    audio = speech_like(0.4, seed=1)
    frames = codecs.codec2_encode(audio)
    assert len(frames) == codecs.packet_count(len(audio)) == 10
    assert all(len(frame) == 7 and frame[6] & 0x0F == 0 for frame in frames)  # 52 bits
    lost = np.zeros(10, dtype=bool)
    lost[[0, 4]] = True
    samples = codecs.PACKET_SAMPLES

    zeroed = codecs.codec2_receive(frames, lost, repeat=False)
    assert len(zeroed) == 10 * samples
    assert not zeroed[:samples].any() and not zeroed[4 * samples:5 * samples].any()
    assert np.abs(zeroed[5 * samples:]).max() > 0.01

    sent, positions = codecs.codec2_decoder_input(frames, lost, repeat=True)
    assert positions == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # nothing received before frame 0 to repeat
    assert [sent[positions.index(index)] for index in (3, 4, 5)] == [frames[3], frames[3], frames[5]]
    narrowband = codecs.codec2_decode(sent)
    repeated_alone = codecs.codec2_decode(sent[:4])  # the decoder is causal: what came before the repeat is the same
    np.testing.assert_array_equal(narrowband[:4], repeated_alone)
    repeated = codecs.codec2_receive(frames, lost, repeat=True)
    assert not repeated[:samples].any()
    assert np.abs(repeated[4 * samples:5 * samples]).max() > 0.01
    assert codecs.codec2_decoder_input(frames, lost, repeat=False) == ([f for i, f in enumerate(frames) if i not in
                                                                        (0, 4)], [1, 2, 3, 5, 6, 7, 8, 9])


@needs_opus
def test_opus_encoder_takes_the_settings():
    encoder = codecs.opus_encoder(6, fec=True, loss_percent=10)
    try:
        assert [codecs.encoder_get(encoder, request) for request in (
            codecs.OPUS_GET_BITRATE, codecs.OPUS_GET_VBR, codecs.OPUS_GET_INBAND_FEC,
            codecs.OPUS_GET_PACKET_LOSS_PERC)] == [6000, 0, 1, 10]
    finally:
        codecs.libopus().opus_encoder_destroy(encoder)
    assert codecs.opus_lookahead() > 0


def test_lmcodec_concealments_are_compared_best_first(golden_model):
    systems = {system.slug: system for system in evaluation.lmcodec_systems(golden_model)}
    pairs = [(first.slug, second.slug) for first, second in evaluation.lmcodec_pairs(list(systems.values()))]
    wanted = [("lmcodec-lm", "lmcodec-repeat"), ("lmcodec-lm", "lmcodec-silence"), ("lmcodec-repeat", "lmcodec-silence"),
              ("lmcodec-r4-lm", "lmcodec-r4-repeat")]  # within each stream, never across
    assert pairs == [(first, second) for first, second in wanted if first in systems and second in systems]


@needs_opus
def test_opus_packets_are_cbr_40_ms_and_concealed_where_lost():
    audio = speech_like(SECONDS, seed=2)
    packets = codecs.opus_encode(audio, 6)
    assert len(packets) == PACKETS and {len(packet) for packet in packets} == {30}  # 6 kbps × 40 ms
    lost = np.zeros(PACKETS, dtype=bool)
    lost[10:12] = True
    received = codecs.opus_receive(packets, lost, use_fec=False)
    assert received.shape == (PACKETS * codecs.PACKET_SAMPLES,)
    clean = codecs.opus_receive(packets, np.zeros(PACKETS, dtype=bool), use_fec=False)
    span = slice(10 * codecs.PACKET_SAMPLES, 12 * codecs.PACKET_SAMPLES - codecs.opus_lookahead())
    assert np.array_equal(received[:span.start - codecs.opus_lookahead()], clean[:span.start - codecs.opus_lookahead()])
    assert not np.array_equal(received[span], clean[span])


@needs_opus
def test_the_fec_check_sees_fec_where_libopus_codes_it():
    audio = speech_like(SECONDS, seed=3)
    with_fec = codecs.opus_encode(audio, 24, fec=True, loss_percent=10)
    without = codecs.opus_encode(audio, 24, fec=False)
    assert sum(map(codecs.opus_has_lbrr, with_fec)) > PACKETS // 2
    assert not any(map(codecs.opus_has_lbrr, without))
    lost = np.zeros(PACKETS, dtype=bool)
    lost[next(index for index in range(1, PACKETS - 1) if codecs.opus_has_lbrr(with_fec[index + 1]))] = True
    assert not np.array_equal(codecs.opus_receive(with_fec, lost, True), codecs.opus_receive(with_fec, lost, False))
    assert np.array_equal(codecs.opus_receive(without, lost, True), codecs.opus_receive(without, lost, False))
