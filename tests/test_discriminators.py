"""The GAN phase's discriminators and losses: output structure, per-name widths, clear errors, finite gradients."""

from __future__ import annotations

import pytest
import torch

from training.discriminators import (
    MagnitudeDiscriminator,
    build_discriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

SUB_DISCRIMINATORS = {"msstft": 3, "mpd": 5, "mrd": 3}


@pytest.mark.parametrize("name", sorted(SUB_DISCRIMINATORS))
def test_every_discriminator_maps_audio_to_one_logits_and_features_pair_per_sub_discriminator(name):
    torch.manual_seed(0)
    discriminator = build_discriminator(name, channels=4)
    audio = torch.randn(2, 1, 4000)
    outputs = discriminator(audio)
    assert len(outputs) == SUB_DISCRIMINATORS[name]
    for logits, features in outputs:
        assert logits.shape[0] == 2 and logits.shape[1] == 1 and torch.isfinite(logits).all()
        assert features and all(feature.shape[0] == 2 for feature in features)
    # [B, T] is the same audio as [B, 1, T]
    for (a, _), (b, _) in zip(outputs, discriminator(audio[:, 0]), strict=True):
        torch.testing.assert_close(a, b)


def test_a_name_can_carry_its_own_width():
    combined = build_discriminator("mpd,mrd:3", channels=5)
    first_mpd_layer = combined.discriminators["mpd"].discriminators[0].layers[0]
    first_mrd_layer = combined.discriminators["mrd"].discriminators[0].layers[0]
    assert first_mpd_layer.out_channels == 5 and first_mrd_layer.out_channels == 3


@pytest.mark.parametrize("names, message", [("mpd,nope", "unknown discriminator"), ("", "unknown discriminator"),
                                            ("mrd:wide", "whole number")])
def test_bad_discriminator_names_are_refused_with_the_choices(names, message):
    with pytest.raises(ValueError, match=message):
        build_discriminator(names)


def test_magnitude_discriminator_has_finite_gradients_on_digital_silence():
    """|X| ** 0.3 has an infinite slope at 0: the floor keeps the generator's gradient finite in silent stretches."""
    discriminator = MagnitudeDiscriminator(256, 32, 160, channels=2)
    silence = torch.zeros(1, 1, 2000, requires_grad=True)
    logits, features = discriminator(silence)
    (logits.mean() + sum(feature.mean() for feature in features)).backward()
    assert torch.isfinite(silence.grad).all()


def test_hinge_losses_at_chance_and_at_a_perfect_discriminator():
    features = [torch.ones(1, 2, 3)]
    zero = [(torch.zeros(1, 1, 4), features)]
    assert discriminator_loss(zero, zero).item() == pytest.approx(2.0)  # chance: the value the README quotes
    perfect_real, perfect_fake = [(torch.full((1, 1, 4), 2.0), features)], [(torch.full((1, 1, 4), -2.0), features)]
    assert discriminator_loss(perfect_real, perfect_fake).item() == 0.0
    assert generator_adversarial_loss(perfect_fake).item() == pytest.approx(3.0)
    assert feature_matching_loss(zero, zero).item() == 0.0
    shifted = [(torch.zeros(1, 1, 4), [torch.full((1, 2, 3), 1.5)])]
    assert feature_matching_loss(zero, shifted).item() == pytest.approx(0.5, rel=1e-4)


def test_magnitude_compression_reaches_every_resolution():
    linear = build_discriminator("mrd", channels=2, magnitude_compression=1.0)
    assert [d.compression for d in linear.discriminators["mrd"].discriminators] == [1.0, 1.0, 1.0]
    assert build_discriminator("mrd", channels=2).discriminators["mrd"].discriminators[0].compression == 0.3
