"""Packet-loss concealment: what fills lost and undecodable frames, how long gaps fade, and that it is the ordinary
decoder that plays the concealed frames (so the waveform continues and returns to the true stream)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmcodec
from lmcodec.concealment import FADE_FRAMES, HOLD_FRAMES, Concealer, choose_code, fade_gain
from lmcodec.datagram import DatagramDecoder, DatagramEncoder
from tests.conftest import speech_like
from tests.golden import GOLDEN_DIR

HOP = 320
FRAME = 2 * HOP  # one 40 ms packet


@pytest.fixture(scope="module")
def model():
    return lmcodec.LMCodecModel.from_pretrained(GOLDEN_DIR).eval()


@pytest.fixture(scope="module")
def integer_model(model):
    return model.integer_entropy_lm.engine()


@pytest.fixture(scope="module")
def codes(model) -> np.ndarray:
    """Coarse codes `[F, Nc=2]` of 4 s of a speech-like signal (200 frames)."""
    signal = torch.from_numpy(speech_like(4.0, seed=17))[None, None]
    return model.encode(signal, num_quantizers=2).audio_codes[0].numpy().T.astype(np.int64)


@pytest.fixture(scope="module")
def stream(model, codes):
    encoder = DatagramEncoder(model, 2, 12)
    return encoder.description(), encoder.push_codes(codes.T) + encoder.flush()


def receive(model, description, packets, lost=(), **options) -> np.ndarray:
    decoder = DatagramDecoder(model, description, fine_decoding="coarse-only", **options)
    pieces = [decoder.push(None if number in lost else packet) for number, packet in enumerate(packets)]
    return np.concatenate(pieces + [decoder.finish()])


# ---------------------------------------------------------------------------------------------------- pieces
def test_fade_holds_then_falls_linearly_to_silence():
    gains = fade_gain(np.arange(1, HOLD_FRAMES + FADE_FRAMES + 3))
    assert np.all(gains[:HOLD_FRAMES] == 1.0)
    assert np.all(np.diff(gains[HOLD_FRAMES - 1 : HOLD_FRAMES + FADE_FRAMES]) < 0)
    assert gains[HOLD_FRAMES + FADE_FRAMES - 1] == 0.0 and np.all(gains[HOLD_FRAMES + FADE_FRAMES :] == 0.0)


def test_choose_code_greedy_and_sampled():
    table = np.array([[10, 700, 290, 700]])
    assert choose_code(table, 1.0, None) == 1  # the most probable, the lowest index among ties
    rng = np.random.default_rng(0)
    draws = np.array([choose_code(np.array([700, 300]), 1.0, rng) for _ in range(4000)])
    assert abs(draws.mean() - 0.3) < 0.03  # drawn from the table's distribution
    cold = np.array([choose_code(np.array([700, 300]), 0.1, rng) for _ in range(500)])
    assert cold.mean() < 0.01  # a low temperature sharpens it


def test_repeat_and_silence(integer_model, codes):
    repeat = Concealer("repeat", integer_model, 2)
    assert repeat.predict(3, 0) is None  # nothing played yet: nothing to continue
    repeat.observe(codes[:10])
    predicted, latent = repeat.predict(3, 10)
    assert latent is None and np.array_equal(predicted, np.repeat(codes[9:10], 3, axis=0))
    silence = Concealer("silence", integer_model, 2)
    silence.observe(codes[:10])
    assert silence.predict(3, 10) is None


def test_lm_predictions_are_the_models_own(model, integer_model, codes):
    """Greedy codes are the argmax of the tables the LM gives with the history and the earlier predictions as
    context; the expected latent is each level's expected codebook vector under those same tables."""
    codebooks = model.quantizer.codebooks.detach().numpy()
    history = codes[:30]
    greedy = Concealer("lm", integer_model, 2, codebooks, prediction="greedy", context_frames=20)
    expected = Concealer("lm", integer_model, 2, codebooks, prediction="expected", context_frames=20)
    for concealer in (greedy, expected):
        concealer.observe(history)
    greedy_codes, no_latent = greedy.predict(5, 30)
    expected_codes, latent = expected.predict(5, 30)
    assert no_latent is None and np.array_equal(greedy_codes, expected_codes)
    state = integer_model.start()
    tables = integer_model.frequencies(state, np.concatenate([history[-20:], greedy_codes]), 2)[20:]  # [5, 2, K]
    assert np.array_equal(tables.argmax(axis=-1), greedy_codes)
    probabilities = tables / tables.sum(axis=-1, keepdims=True)
    reference = sum(probabilities[:, level] @ codebooks[level].astype(np.float64) for level in range(2))
    np.testing.assert_allclose(latent, reference, rtol=1e-5, atol=1e-6)


def test_sampled_predictions_depend_on_the_seed_only(integer_model, codes):
    def predict(seed, splits):
        concealer = Concealer("lm", integer_model, 2, seed=seed, prediction="sample", temperature=0.7)
        concealer.observe(codes[:40])
        first = 40
        out = []
        for count in splits:
            out.append(concealer.predict(count, first)[0])
            first += count
        return np.concatenate(out)

    assert np.array_equal(predict(5, [8]), predict(5, [3, 5]))  # however the gap is cut into calls
    assert not np.array_equal(predict(5, [8]), predict(6, [8]))


# ---------------------------------------------------------------------------------------------------- receiver
def test_repeat_concealment_is_the_decoder_playing_the_repeated_codes(model, codes, stream):
    """Packets 20-21 lost, 22-23 undecodable (same reset segment): the receiver plays frame 39's codes for frames
    40-47 through the same decoder, then the true codes from the reset on; no restart, no fade (8 frames < hold)."""
    description, packets = stream
    audio = receive(model, description, packets, lost=(20, 21), concealment="repeat")
    spliced = codes[: len(packets) * 2].copy()
    spliced[40:48] = spliced[39]
    receiver = lmcodec.compression.as_backend(model).receiver(2, 300, "coarse-only", 0, 0)
    expected = np.concatenate([receiver.push(np.ascontiguousarray(spliced.T)), receiver.flush()])
    assert audio.shape == expected.shape
    np.testing.assert_allclose(audio, expected, atol=2e-5)


@pytest.mark.parametrize("concealment", ["lm", "repeat"])
def test_concealed_audio_continues_fades_and_returns_to_the_stream(model, stream, concealment):
    description, packets = stream
    clean = receive(model, description, packets)
    lost = set(range(20, 37))  # 34 frames: longer than hold + fade; 37-41 undecodable, 42 starts a segment
    audio = receive(model, description, packets, lost=lost, concealment=concealment)
    assert audio.shape == clean.shape
    np.testing.assert_array_equal(audio[: 20 * FRAME], clean[: 20 * FRAME])
    first_gap_packet = audio[20 * FRAME : 21 * FRAME]
    assert np.sqrt(np.mean(first_gap_packet**2)) > 0.1 * np.sqrt(np.mean(clean[: 20 * FRAME] ** 2))  # not silence
    faded = 20 * FRAME + (HOLD_FRAMES + FADE_FRAMES) * HOP
    assert not audio[faded : 42 * FRAME].any()  # silent once faded, until the next decodable packet
    np.testing.assert_allclose(audio[47 * FRAME :], clean[47 * FRAME :], atol=1e-5)  # back on the true stream
    silent = receive(model, description, packets, lost=lost, concealment="silence")
    assert not silent[20 * FRAME : 42 * FRAME].any()


def test_lm_concealment_is_deterministic_and_the_default(model, stream):
    description, packets = stream
    lost = (20, 30, 31)
    first = receive(model, description, packets, lost=lost)
    assert DatagramDecoder(model, description).concealment == "lm"
    assert np.array_equal(first, receive(model, description, packets, lost=lost, concealment="lm"))
    sampled = [receive(model, description, packets, lost=lost, prediction="sample", seed=seed) for seed in (1, 1, 2)]
    assert np.array_equal(sampled[0], sampled[1]) and not np.array_equal(sampled[0], sampled[2])


@pytest.mark.parametrize("options, message", [
    (dict(concealment="noise"), "concealment must be one of lm, repeat, silence"),
    (dict(prediction="mean"), "prediction must be one of expected, greedy, sample"),
    (dict(temperature=0), "temperature must be a number above 0"),
    (dict(context_frames=0), "context_frames must be a positive integer"),
])
def test_bad_concealment_options_are_one_line_errors(model, stream, options, message):
    with pytest.raises(lmcodec.LMCodecError, match=message):
        DatagramDecoder(model, stream[0], **options)
