"""Small discriminators and adversarial losses for the codec's optional GAN phase.

- `MultiScaleSTFTDiscriminator`: EnCodec-style 2-D convolutions over complex STFTs (real and imaginary parts as
  channels) at several resolutions.
- `MultiPeriodDiscriminator`: HiFi-GAN-style 2-D convolutions over the waveform folded by several periods.
- `MultiResolutionMagnitudeDiscriminator`: UnivNet-style 2-D convolutions over compressed magnitude spectrograms at
  several time-frequency resolutions (finest hop 2 ms): it sees spectral texture, noise floor and harmonic detail
  without the phase the complex STFT discriminator also has to model.

All default to few channels: a full-size 2-D STFT discriminator made each CPU training step ~12x slower in an early
CPU training experiment (the throughput section of training/configs/README.md has this project's own measurements), so
width is a parameter and starts small.

Every discriminator maps audio `[B, 1, T]` to a list of `(logits, features)` pairs, one per sub-discriminator.
Losses: hinge or least-squares (`"hinge"`, `"lsgan"`), and feature matching (L1 between the features of real and
generated audio, relative to the real features' mean magnitude, as in EnCodec).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

DiscriminatorOutput = list[tuple[torch.Tensor, list[torch.Tensor]]]


def _as_batch(audio: torch.Tensor) -> torch.Tensor:
    """`[B, 1, T]` or `[B, T]` → `[B, T]`."""
    return audio[:, 0] if audio.dim() == 3 else audio


def _convolve(layers: nn.ModuleList, output: nn.Module, x: torch.Tensor,
              negative_slope: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Every discriminator's trunk: leaky-ReLU convolutions, each activation kept for feature matching, then the
    logits layer. Returns `(logits, features)`."""
    features = []
    for layer in layers:
        x = F.leaky_relu(layer(x), negative_slope)
        features.append(x)
    return output(x), features


class STFTDiscriminator(nn.Module):
    """One resolution of the multi-scale STFT discriminator."""

    def __init__(self, n_fft: int, channels: int = 16, max_channels: int = 32, num_layers: int = 3,
                 negative_slope: float = 0.2):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.negative_slope = negative_slope
        # Unlike EnCodec's, the first layer already halves the frequency axis: most of the cost is at full resolution.
        layers = [weight_norm(nn.Conv2d(2, channels, (3, 9), stride=(1, 2), padding=(1, 4)))]
        width = channels
        for layer in range(num_layers):
            out = min(max_channels, channels * 2 ** (layer + 1))
            layers.append(weight_norm(nn.Conv2d(width, out, (3, 9), stride=(1, 2), dilation=(2**layer, 1),
                                                padding=(2**layer, 4))))
            width = out
        layers.append(weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))))
        self.layers = nn.ModuleList(layers)
        self.output = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spectrum = torch.stft(_as_batch(audio).float(), self.n_fft, self.hop_length, window=self.window,
                              center=True, return_complex=True)
        x = torch.stack([spectrum.real, spectrum.imag], dim=1).transpose(2, 3)  # [B, 2, frames, bins]
        return _convolve(self.layers, self.output, x, self.negative_slope)


class MultiScaleSTFTDiscriminator(nn.Module):
    """STFT discriminators at several FFT sizes (defaults: 256, 512, 1024 at 16 kHz)."""

    def __init__(self, n_ffts: tuple[int, ...] = (256, 512, 1024), channels: int = 16, max_channels: int = 32,
                 num_layers: int = 3):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, channels, max_channels, num_layers) for n in n_ffts)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        return [discriminator(audio) for discriminator in self.discriminators]


class PeriodDiscriminator(nn.Module):
    """One period of the multi-period discriminator: the waveform folded to `[B, 1, T / p, p]`."""

    def __init__(self, period: int, channels: int = 16, max_channels: int = 128, num_layers: int = 4,
                 negative_slope: float = 0.1):
        super().__init__()
        self.period, self.negative_slope = period, negative_slope
        layers, width = [], 1
        for layer in range(num_layers):
            out = min(max_channels, channels * 2**layer)
            layers.append(weight_norm(nn.Conv2d(width, out, (5, 1), stride=(3, 1), padding=(2, 0))))
            width = out
        layers.append(weight_norm(nn.Conv2d(width, width, (5, 1), padding=(2, 0))))
        self.layers = nn.ModuleList(layers)
        self.output = weight_norm(nn.Conv2d(width, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _as_batch(audio).float()
        remainder = x.shape[-1] % self.period
        if remainder:
            x = F.pad(x, (0, self.period - remainder), mode="reflect")
        x = x.reshape(x.shape[0], 1, -1, self.period)
        return _convolve(self.layers, self.output, x, self.negative_slope)


class MultiPeriodDiscriminator(nn.Module):
    """Period discriminators (defaults: periods 2, 3, 5, 7, 11)."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: int = 16, max_channels: int = 128,
                 num_layers: int = 4):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels, max_channels, num_layers)
                                            for p in periods)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        return [discriminator(audio) for discriminator in self.discriminators]


class MagnitudeDiscriminator(nn.Module):
    """One resolution of the multi-resolution magnitude discriminator: `|STFT| ** compression` as `[B, 1, frames,
    bins]`, convolutions over time and frequency that halve the frequency axis."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int, channels: int = 16, num_layers: int = 4,
                 compression: float = 0.3, negative_slope: float = 0.1):
        super().__init__()
        self.n_fft, self.hop_length, self.compression = n_fft, hop_length, compression
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.negative_slope = negative_slope
        layers, width = [], 1
        for _ in range(num_layers):
            layers.append(weight_norm(nn.Conv2d(width, channels, (3, 9), stride=(1, 2), padding=(1, 4))))
            width = channels
        layers.append(weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))))
        self.layers = nn.ModuleList(layers)
        self.output = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spectrum = torch.stft(_as_batch(audio).float(), self.n_fft, self.hop_length, win_length=self.window.shape[0],
                              window=self.window, center=True, return_complex=True)
        # |X| ** c with a floor, so the gradient stays finite in digital silence
        x = spectrum.abs().clamp_min(1e-6).pow(self.compression).unsqueeze(1).transpose(2, 3)  # [B, 1, frames, bins]
        return _convolve(self.layers, self.output, x, self.negative_slope)


class MultiResolutionMagnitudeDiscriminator(nn.Module):
    """Magnitude discriminators at (n_fft, hop, window) = (512, 80, 400), (1024, 160, 800), (256, 32, 160) samples at
    16 kHz: UnivNet's three resolutions (25 / 50 / 10 ms windows) scaled from 24 kHz."""

    def __init__(self, resolutions: tuple[tuple[int, int, int], ...] = ((512, 80, 400), (1024, 160, 800),
                                                                        (256, 32, 160)),
                 channels: int = 16, num_layers: int = 4, compression: float = 0.3):
        super().__init__()
        self.discriminators = nn.ModuleList(MagnitudeDiscriminator(n_fft, hop, win, channels, num_layers, compression)
                                            for n_fft, hop, win in resolutions)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        return [discriminator(audio) for discriminator in self.discriminators]


class CombinedDiscriminator(nn.Module):
    """Several discriminators behind one module; the output concatenates their sub-discriminators' outputs."""

    def __init__(self, discriminators: dict[str, nn.Module]):
        super().__init__()
        if not discriminators:
            raise ValueError("CombinedDiscriminator needs at least one discriminator.")
        self.discriminators = nn.ModuleDict(discriminators)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        outputs = []
        for discriminator in self.discriminators.values():
            outputs.extend(discriminator(audio))
        return outputs


DISCRIMINATORS = {"msstft": MultiScaleSTFTDiscriminator, "mpd": MultiPeriodDiscriminator,
                  "mrd": MultiResolutionMagnitudeDiscriminator}


def build_discriminator(names: str | list[str] = "msstft", channels: int = 8,
                        magnitude_compression: float = 0.3) -> CombinedDiscriminator:
    """`"msstft"`, `"mpd"`, `"mrd"` or several (`"mpd,mrd"`) with `channels` channels in the first layer; a name may
    carry its own width after a colon (`"mpd,mrd:8"`). `mrd` sees `|STFT| ** magnitude_compression` (1: linear)."""
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    widths = {}
    for entry in names:
        name, _, width = entry.partition(":")
        if not width.isdigit() and width:
            raise ValueError(f"discriminator '{entry}': the width after ':' must be a whole number, e.g. 'mrd:8'.")
        widths[name] = int(width) if width else channels
    unknown = [name for name in widths if name not in DISCRIMINATORS]
    if unknown or not widths:
        raise ValueError(f"unknown discriminator(s) {unknown or names}; choose from {', '.join(DISCRIMINATORS)}.")
    options = {"mrd": {"compression": magnitude_compression}}
    return CombinedDiscriminator({name: DISCRIMINATORS[name](channels=width, **options.get(name, {}))
                                  for name, width in widths.items()})


# ---------------------------------------------------------------------------------------------------- losses
ADVERSARIAL_LOSSES = ("hinge", "lsgan")


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss '{kind}'; choose from {', '.join(ADVERSARIAL_LOSSES)}.")


def discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput, kind: str = "hinge") -> torch.Tensor:
    """Loss of the discriminators (mean over sub-discriminators): real audio should score high, generated low."""
    _check_kind(kind)
    total = 0.0
    for (real_logits, _), (fake_logits, _) in zip(real, fake, strict=True):
        if kind == "hinge":
            total = total + F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        else:
            total = total + (real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean()
    return total / len(real)


def generator_adversarial_loss(fake: DiscriminatorOutput, kind: str = "hinge") -> torch.Tensor:
    """Adversarial loss of the generator (mean over sub-discriminators)."""
    _check_kind(kind)
    total = 0.0
    for fake_logits, _ in fake:
        total = total + (F.relu(1 - fake_logits).mean() if kind == "hinge" else (fake_logits - 1).pow(2).mean())
    return total / len(fake)


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Mean over all layers of L1(fake features, real features) / mean |real features| (real ones detached)."""
    total, count = 0.0, 0
    for (_, real_features), (_, fake_features) in zip(real, fake, strict=True):
        for real_feature, fake_feature in zip(real_features, fake_features, strict=True):
            real_feature = real_feature.detach()
            total = total + (fake_feature - real_feature).abs().mean() / (real_feature.abs().mean() + 1e-5)
            count += 1
    return total / max(count, 1)


__all__ = [
    "ADVERSARIAL_LOSSES",
    "CombinedDiscriminator",
    "MagnitudeDiscriminator",
    "MultiPeriodDiscriminator",
    "MultiResolutionMagnitudeDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "PeriodDiscriminator",
    "STFTDiscriminator",
    "build_discriminator",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
]
