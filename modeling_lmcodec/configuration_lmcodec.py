"""LMCodec model configuration."""

from __future__ import annotations

import math

from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import GPT2Config, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .fine_decoding import DEFAULT_FINE_DECODING, FINE_DECODINGS, FineDecoding
from .frames import ENCODER_BLOCK_FRAMES, SAMPLING_RATE, frames_to_samples


def small_gpt2_defaults(sync_frames: int) -> dict:
    """A 4-layer, 256-wide GPT-2 (~3 M parameters): one step per 20 ms frame costs ~2 ms on one CPU thread.

    The GPT-2 token embedding is unused (inputs are frame embeddings), hence `vocab_size=1`."""
    return dict(vocab_size=1, n_positions=sync_frames, n_embd=256, n_layer=4, n_head=4, n_inner=None,
                resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, bos_token_id=None, eos_token_id=None)


@strict
class LMCodecConfig(PreTrainedConfig):
    r"""
    Configuration of an [`LMCodecModel`]: a causal 16 kHz speech codec whose residual vector quantizer (RVQ) yields
    `num_quantizers` levels of `codebook_size` codes at 50 frames per second.

    The codec works on short-time Fourier frames: a causal STFT (`stft_window_length` samples, hop `stft_hop_length`)
    feeds causal ConvNeXt blocks; pairs of STFT frames (`frame_downsampling`) are merged into one code frame of
    `hop_length = stft_hop_length * frame_downsampling` samples; the decoder mirrors this and ends in a magnitude and
    phase head followed by an inverse STFT with overlap-add. No layer looks ahead, so the algorithmic latency is one
    code frame (20 ms).

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate of the audio in Hz.
        stft_window_length (`int`, *optional*, defaults to 320):
            Window (and FFT) length of the analysis and synthesis STFT, in samples. Must be twice `stft_hop_length`.
        stft_hop_length (`int`, *optional*, defaults to 160):
            Hop between STFT frames, in samples.
        frame_downsampling (`int`, *optional*, defaults to 2):
            STFT frames merged into one code frame.
        hidden_size (`int`, *optional*, defaults to 256):
            Channel width of the ConvNeXt blocks.
        intermediate_size (`int`, *optional*, defaults to 768):
            Width of the pointwise feed-forward layer inside each ConvNeXt block.
        kernel_size (`int`, *optional*, defaults to 7):
            Kernel size of the causal depthwise convolutions.
        num_encoder_stft_layers (`int`, *optional*, defaults to 2):
            Encoder blocks at the STFT frame rate (before downsampling).
        num_encoder_frame_layers (`int`, *optional*, defaults to 4):
            Encoder blocks at the code frame rate.
        num_decoder_frame_layers (`int`, *optional*, defaults to 4):
            Decoder blocks at the code frame rate.
        num_decoder_stft_layers (`int`, *optional*, defaults to 4):
            Decoder blocks at the STFT frame rate (after upsampling).
        decoder_head_overlap (`int`, *optional*, defaults to 2):
            Overlap factor (window / synthesis hop) of the decoder's inverse-STFT head. 2: one spectrum per STFT
            frame, 50% overlap-add of unwindowed-segment spectra (the original head). 4: two spectra per STFT frame
            at a hop of `stft_window_length / 4`, weighted overlap-add of Hann-windowed spectra (smoother output,
            same latency, a slightly larger output projection).
        decoder_window_length (`int`, *optional*):
            Synthesis window of the decoder's inverse-STFT head in samples (default: `stft_window_length`). A longer
            window (a multiple of the synthesis hop `stft_window_length / decoder_head_overlap`, e.g. 640 = 40 ms)
            resolves harmonics more finely and overlaps more frames per sample; its frames reach back in time, so
            the decoded audio leaves the streaming decoder `decoder_window_length - stft_window_length` samples
            later (`decoder_output_delay`; 20 ms for 640) and the algorithmic latency grows by as much. Not
            combined with `num_harmonics`.
        decoder_phase (`str`, *optional*, defaults to `"predicted"`):
            Phase of the iSTFT head: `"predicted"` (a phase per frame and bin from the decoder) or `"noise"` (a fixed
            pseudo-random phase: the head synthesises filtered noise from its predicted magnitude; with
            `num_harmonics` > 0 the decoder is then a harmonic-plus-noise synthesiser, DDSP-style).
        num_harmonics (`int`, *optional*, defaults to 0):
            Sinusoids of the decoder's harmonic branch (0: none). The branch predicts f0, voicing and a spectral
            envelope per STFT frame and adds `num_harmonics` phase-continuous harmonics of f0 to the iSTFT head's
            output (see `harmonic_head.py`); f0 and voicing train against YIN targets of the input.
        pitch_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the harmonic branch's f0 loss (mean absolute error in octaves over voiced frames).
        voicing_loss_weight (`float`, *optional*, defaults to 0.2):
            Weight of the harmonic branch's voicing loss (binary cross-entropy against YIN's voiced flag).
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the layer norms.
        codebook_dim (`int`, *optional*, defaults to 64):
            Dimension of the quantized latent and of every codebook vector.
        num_quantizers (`int`, *optional*, defaults to 12):
            Number of RVQ levels (level 0 is the coarsest).
        codebook_size (`int`, *optional*, defaults to 1024):
            Codes per level; a power of two, so each code costs `log2(codebook_size)` bits uncompressed.
        num_coarse_quantizers (`int`, *optional*, defaults to 3):
            Default number of coarse levels sent in a bitstream (the operating point): 2 gives 1.0 kbps and 3 gives
            1.5 kbps before entropy coding.
        quantizer_dropout (`float`, *optional*, defaults to 0.5):
            Training only: probability that an example is reconstructed from a random number of levels
            (1 to `num_quantizers`) instead of all of them, so one model serves every number of levels.
        quantizer_dropout_operating_point_prob (`float`, *optional*, defaults to 0.0):
            Training only: of the examples that quantizer dropout shortens, the fraction reconstructed from one of
            the `operating_points` level counts (drawn uniformly among them) instead of a uniform draw from 1 to
            `num_quantizers`, so the decoder trains more on what a receiver gets without the fine LM.
        codebook_ema_decay (`float`, *optional*, defaults to 0.99):
            Decay of the exponential moving averages that update the codebooks.
        codebook_dead_threshold (`float`, *optional*, defaults to 0.5):
            A code whose moving-average usage (vectors per batch) falls below this is restarted from a random
            recent input vector.
        commitment_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the quantizer's commitment loss in `forward`'s total loss.
        mel_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the multi-scale log-mel L1 loss.
        stft_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the multi-resolution STFT loss (spectral convergence + log magnitude).
        phase_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the phase-aware loss (L1 between compressed complex spectra).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the initial weights.
        operating_points (`list[int]`, *optional*, defaults to `[2, 3]`):
            The numbers of coarse levels the two language models serve; `num_coarse_quantizers` must be one of them.
        sync_frames (`int`, *optional*, defaults to 300):
            Frames between sync points (300 = 6 s): both language models' context resets there, bounding memory and
            limiting the damage of a lost packet. Also the longest context the LMs are built for.
        packet_frames (`int`, *optional*, defaults to 50):
            Frames per bitstream packet for files (50 = 1 s). Each packet flushes the range coder, so short packets cost
            bits; `sync_frames` must be a multiple of it.
        entropy_lm_depth (`bool`, *optional*, defaults to `True`):
            Whether the entropy LM conditions each coarse level of a frame on the levels before it (a depth module)
            instead of predicting the levels of a frame in parallel.
        integer_entropy_model (`bool`, *optional*, defaults to `False`):
            Whether the checkpoint holds an integer entropy model (`LMCodecModel.integer_entropy_lm`, exported from the
            float entropy LM by `model.export_integer_entropy_model(codes)`). Entropy-coded streams (format version
            3) take their probabilities from it, so they decode bit-exactly on any machine; without it `compress`
            can only write raw codes.
        fine_decoding (`str`, *optional*, defaults to `"coarse-only"`):
            How a receiver fills in the levels that were not sent, by default (see `fine_decoding.py`):
            `"coarse-only"` (no fine LM: the decoder gets the sent levels alone), `"expected"` (each fine level
            contributes the probability-weighted mean of its codebook vectors while the most likely code conditions
            the next level), `"greedy"` (the fine LM's most likely codes) or `"sample"` (codes drawn from the fine LM
            with a fixed seed, so decoding is reproducible). It never changes the bits. The default is what the
            bundled checkpoint measured best (its model card has the comparison).
        fine_lm_config (`GPT2Config` or `dict`, *optional*):
            Backbone of the fine LM, which generates levels `num_coarse_quantizers..num_quantizers-1`; defaults to a
            small GPT-2 (see `small_gpt2_defaults`); a partial dict overrides those defaults.
        entropy_lm_config (`GPT2Config` or `dict`, *optional*):
            Backbone of the entropy LM, which predicts the next frame's coarse codes for the range coder; same
            defaults as `fine_lm_config`.

    Example:

    ```python
    >>> from lmcodec import LMCodecConfig, LMCodecModel

    >>> configuration = LMCodecConfig(num_coarse_quantizers=2)
    >>> model = LMCodecModel(configuration)
    >>> configuration.frame_rate, configuration.coarse_bitrate()
    (50.0, 1000.0)
    ```"""

    model_type = "lmcodec"
    sub_configs_defaults: ClassVar[dict] = {
        "fine_lm_config": SubConfigSpec(config_class=GPT2Config),
        "entropy_lm_config": SubConfigSpec(config_class=GPT2Config),
    }

    sampling_rate: int = SAMPLING_RATE
    stft_window_length: int = 320
    stft_hop_length: int = 160
    frame_downsampling: int = 2
    hidden_size: int = 256
    intermediate_size: int = 768
    kernel_size: int = 7
    num_encoder_stft_layers: int = 2
    num_encoder_frame_layers: int = 4
    num_decoder_frame_layers: int = 4
    num_decoder_stft_layers: int = 4
    decoder_head_overlap: int = 2
    decoder_window_length: int | None = None
    decoder_phase: str = "predicted"
    num_harmonics: int = 0
    pitch_loss_weight: float = 1.0
    voicing_loss_weight: float = 0.2
    layer_norm_eps: float = 1e-6
    codebook_dim: int = 64
    num_quantizers: int = 12
    codebook_size: int = 1024
    num_coarse_quantizers: int = 3
    quantizer_dropout: float = 0.5
    quantizer_dropout_operating_point_prob: float = 0.0
    codebook_ema_decay: float = 0.99
    codebook_dead_threshold: float = 0.5
    commitment_loss_weight: float = 1.0
    mel_loss_weight: float = 1.0
    stft_loss_weight: float = 1.0
    phase_loss_weight: float = 1.0
    initializer_range: float = 0.02
    operating_points: list[int] | tuple[int, ...] = (2, 3)
    sync_frames: int = 300
    packet_frames: int = 50
    entropy_lm_depth: bool = True
    integer_entropy_model: bool = False
    fine_decoding: FineDecoding = DEFAULT_FINE_DECODING
    fine_lm_config: dict | PreTrainedConfig | None = None
    entropy_lm_config: dict | PreTrainedConfig | None = None

    def __post_init__(self, **kwargs):
        for name in ("fine_lm_config", "entropy_lm_config"):
            value = getattr(self, name)
            if value is None or isinstance(value, dict):
                merged = small_gpt2_defaults(self.sync_frames if isinstance(self.sync_frames, int) else 300)
                merged.update(value or {})
                merged.pop("model_type", None)
                setattr(self, name, GPT2Config(**merged))
        self.operating_points = [int(point) for point in self.operating_points]
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of `@strict` validation: every error names the field and the accepted values."""
        positive = (
            "sampling_rate",
            "stft_hop_length",
            "frame_downsampling",
            "hidden_size",
            "intermediate_size",
            "kernel_size",
            "codebook_dim",
            "num_quantizers",
            "codebook_size",
            "num_coarse_quantizers",
        )
        integers = positive + ("num_harmonics", "num_encoder_stft_layers", "num_encoder_frame_layers", "num_decoder_frame_layers",
                               "num_decoder_stft_layers", "stft_window_length")
        for name in integers:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"LMCodecConfig.{name} must be an integer, got {value!r} ({type(value).__name__}).")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"LMCodecConfig.{name} must be a positive integer, got {getattr(self, name)}.")
        for name in ("num_harmonics", "num_encoder_stft_layers", "num_encoder_frame_layers", "num_decoder_frame_layers"):
            if getattr(self, name) < 0:
                raise ValueError(f"LMCodecConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.num_decoder_stft_layers < 0:
            raise ValueError(f"LMCodecConfig.num_decoder_stft_layers must be >= 0, got {self.num_decoder_stft_layers}.")
        overlap = self.decoder_head_overlap
        if (not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 2 or overlap % 2
                or self.stft_window_length % overlap):
            raise ValueError(f"LMCodecConfig.decoder_head_overlap must be an even integer >= 2 dividing "
                             f"stft_window_length ({self.stft_window_length}), got {overlap!r}.")
        if self.stft_window_length != 2 * self.stft_hop_length:
            raise ValueError(
                f"LMCodecConfig.stft_window_length must be twice stft_hop_length ({2 * self.stft_hop_length}), "
                f"got {self.stft_window_length}: the causal overlap-add assumes 50% overlap."
            )
        window = self.decoder_window_length
        if window is not None:
            synthesis_hop = self.stft_window_length // overlap
            if (not isinstance(window, int) or isinstance(window, bool) or window < self.stft_window_length
                    or window % synthesis_hop):
                raise ValueError(f"LMCodecConfig.decoder_window_length must be a multiple of the synthesis hop "
                                 f"({synthesis_hop}) and at least stft_window_length ({self.stft_window_length}), "
                                 f"got {window!r}.")
            if window > self.stft_window_length and self.num_harmonics > 0:
                raise ValueError("LMCodecConfig.decoder_window_length longer than stft_window_length cannot be "
                                 "combined with num_harmonics > 0 (the harmonic branch has no output delay); set one "
                                 "of them back to its default.")
        if self.decoder_phase not in ("predicted", "noise"):
            raise ValueError(f"LMCodecConfig.decoder_phase must be 'predicted' or 'noise', got {self.decoder_phase!r}.")
        if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"LMCodecConfig.codebook_size must be a power of two >= 2, got {self.codebook_size}.")
        if not 1 <= self.num_coarse_quantizers <= self.num_quantizers:
            raise ValueError(
                f"LMCodecConfig.num_coarse_quantizers must be between 1 and num_quantizers ({self.num_quantizers}), "
                f"got {self.num_coarse_quantizers}."
            )
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"LMCodecConfig.quantizer_dropout must be in [0, 1], got {self.quantizer_dropout}.")
        if not 0.0 <= self.quantizer_dropout_operating_point_prob <= 1.0:
            raise ValueError("LMCodecConfig.quantizer_dropout_operating_point_prob must be in [0, 1], got "
                             f"{self.quantizer_dropout_operating_point_prob}.")
        if self.fine_decoding not in FINE_DECODINGS:
            raise ValueError(f"LMCodecConfig.fine_decoding must be one of {', '.join(FINE_DECODINGS)}, got "
                             f"{self.fine_decoding!r}.")
        if not 0.0 < self.codebook_ema_decay < 1.0:
            raise ValueError(f"LMCodecConfig.codebook_ema_decay must be in (0, 1), got {self.codebook_ema_decay}.")
        for name in ("commitment_loss_weight", "mel_loss_weight", "stft_loss_weight", "phase_loss_weight",
                     "pitch_loss_weight", "voicing_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"LMCodecConfig.{name} must be >= 0, got {getattr(self, name)}.")
        self._validate_language_models()

    def _validate_language_models(self):
        points = list(self.operating_points)
        if not points or any(not 1 <= p < self.num_quantizers for p in points):
            raise ValueError(
                f"LMCodecConfig.operating_points must be coarse-level counts between 1 and num_quantizers - 1 "
                f"({self.num_quantizers - 1}), got {points}."
            )
        if self.num_coarse_quantizers not in points:
            raise ValueError(
                f"LMCodecConfig.num_coarse_quantizers ({self.num_coarse_quantizers}) must be one of "
                f"operating_points {points}: the language models only serve those."
            )
        for name in ("sync_frames", "packet_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"LMCodecConfig.{name} must be a positive integer, got {value!r}.")
        if self.sync_frames % self.packet_frames:
            raise ValueError(
                f"LMCodecConfig.sync_frames ({self.sync_frames}) must be a multiple of packet_frames "
                f"({self.packet_frames}) so packets never straddle a sync point."
            )
        for name in ("fine_lm_config", "entropy_lm_config"):
            sub = getattr(self, name)
            if sub.n_positions < self.sync_frames:
                raise ValueError(
                    f"LMCodecConfig.{name}.n_positions ({sub.n_positions}) must be at least sync_frames "
                    f"({self.sync_frames}): the LM context spans one sync period."
                )

    @property
    def min_coarse_quantizers(self) -> int:
        """Fewest coarse levels any operating point sends (the fine LM predicts every level from here on)."""
        return min(self.operating_points)

    @property
    def max_coarse_quantizers(self) -> int:
        """Most coarse levels any operating point sends (the entropy LM predicts levels below this)."""
        return max(self.operating_points)

    @property
    def hop_length(self) -> int:
        """Samples per code frame (320 by default)."""
        return self.stft_hop_length * self.frame_downsampling

    @property
    def frame_rate(self) -> float:
        """Code frames per second (50.0 by default)."""
        return self.sampling_rate / self.hop_length

    @property
    def bits_per_code(self) -> int:
        """Bits of one code without entropy coding (10 for 1024 codes)."""
        return int(math.log2(self.codebook_size))

    @property
    def decoder_output_delay(self) -> int:
        """Samples by which the streaming decoder's output trails its input frames (0 unless the synthesis window
        `decoder_window_length` is longer than `stft_window_length`)."""
        window = self.stft_window_length if self.decoder_window_length is None else self.decoder_window_length
        return window - self.stft_window_length

    @property
    def algorithmic_latency_ms(self) -> float:
        """Worst-case delay between a sample entering the encoder and its reconstruction leaving the decoder: one
        encoder block (the first frame of a block waits for the second; no layer looks further ahead) plus the
        decoder's output delay."""
        samples = frames_to_samples(ENCODER_BLOCK_FRAMES, self.hop_length) + self.decoder_output_delay
        return 1000.0 * samples / self.sampling_rate

    def coarse_bitrate(self, num_coarse_quantizers: int | None = None) -> float:
        """Raw bitrate in bit/s of `num_coarse_quantizers` levels without entropy coding (1500.0 for 3 levels)."""
        levels = self.num_coarse_quantizers if num_coarse_quantizers is None else num_coarse_quantizers
        if not 1 <= levels <= self.num_quantizers:
            raise ValueError(f"num_coarse_quantizers must be between 1 and {self.num_quantizers}, got {levels}.")
        return levels * self.bits_per_code * self.frame_rate


__all__ = ["LMCodecConfig"]
