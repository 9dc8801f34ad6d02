"""LMCodec: causal STFT-domain speech codec with a residual vector quantizer (16 kHz, 50 frames/s)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .errors import LMCodecError
from .fine_decoding import FineDecoding
from .codec_blocks import (
    ComputedBuffersMixin,
    LMCodecConvNeXtBlock,
    LMCodecConvNeXtStack,
    LMCodecISTFTHead,
    LMCodecSTFTFeatures,
)
from .configuration_lmcodec import LMCodecConfig
from .frame_lm import ENTROPY, FINE, LMCodecFrameLM
from .frames import ENCODER_BLOCK_FRAMES, SAMPLING_RATE, num_frames, padded_length
from .integer_export import LMCodecIntegerEntropyLM
from .harmonic_head import LMCodecHarmonicHead
from .losses import LMCodecReconstructionLoss, pitch_losses
from .pitch import yin_pitch
from .quantizer import LMCodecResidualVectorQuantizer


@dataclass
class LMCodecEncoderOutput(ModelOutput):
    """
    audio_codes (`torch.LongTensor` of shape `[batch_size, num_quantizers, num_frames]`):
        RVQ codes, level 0 (coarsest) first.
    audio_codes_mask (`torch.LongTensor` of shape `[batch_size, num_frames]`):
        1 for frames that hold real audio, 0 for frames made only of padding.
    """

    audio_codes: torch.LongTensor | None = None
    audio_codes_mask: torch.LongTensor | None = None


@dataclass
class LMCodecDecoderOutput(ModelOutput):
    """
    audio_values (`torch.FloatTensor` of shape `[batch_size, 1, num_samples]`):
        Decoded audio in [-1, 1].
    """

    audio_values: torch.FloatTensor | None = None


@dataclass
class LMCodecOutput(ModelOutput):
    """
    loss (`torch.FloatTensor`): reconstruction loss plus weighted commitment loss.
    reconstruction_loss (`torch.FloatTensor`): weighted sum of `mel_loss`, `stft_loss` and `phase_loss`.
    commitment_loss (`torch.FloatTensor`): mean squared distance between each level's input and its code vector.
    mel_loss, stft_loss, phase_loss (`torch.FloatTensor`): the unweighted reconstruction terms.
    pitch_loss, voicing_loss (`torch.FloatTensor`, *optional*): the harmonic branch's unweighted f0 and voicing
        losses against YIN targets of the input (only with `num_harmonics` > 0); included in `loss`.
    audio_codes (`torch.LongTensor` of shape `[batch_size, num_quantizers, num_frames]`): codes of all levels.
    audio_values (`torch.FloatTensor` of shape `[batch_size, 1, num_samples]`): reconstruction (not clipped).
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    mel_loss: torch.FloatTensor | None = None
    stft_loss: torch.FloatTensor | None = None
    phase_loss: torch.FloatTensor | None = None
    pitch_loss: torch.FloatTensor | None = None
    voicing_loss: torch.FloatTensor | None = None
    audio_codes: torch.LongTensor | None = None
    audio_values: torch.FloatTensor | None = None


class LMCodecEncoder(nn.Module):
    """Causal STFT features → ConvNeXt at the STFT rate → merge frame pairs → ConvNeXt at 50 Hz → latent."""

    def __init__(self, config: LMCodecConfig):
        super().__init__()
        self.downsampling = config.frame_downsampling
        self.features = LMCodecSTFTFeatures(config.stft_window_length, config.stft_hop_length)
        self.input_projection = nn.Linear(self.features.num_features, config.hidden_size)
        stack_args = (config.hidden_size, config.intermediate_size, config.kernel_size, config.layer_norm_eps)
        self.stft_layers = LMCodecConvNeXtStack(config.num_encoder_stft_layers, *stack_args)
        self.downsample = nn.Linear(self.downsampling * config.hidden_size, config.hidden_size)
        self.frame_layers = LMCodecConvNeXtStack(config.num_encoder_frame_layers, *stack_args)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.output_projection = nn.Linear(config.hidden_size, config.codebook_dim)

    def forward(self, samples: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """samples: `[B, n * hop_length]` → (latent `[B, n, codebook_dim]`, state). `state=None` starts a stream."""
        features_state, stft_state, frame_state = (None, None, None) if state is None else state
        features, features_state = self.features(samples, features_state)
        hidden, stft_state = self.stft_layers(self.input_projection(features), stft_state)
        batch, steps, channels = hidden.shape
        hidden = self.downsample(hidden.reshape(batch, steps // self.downsampling, self.downsampling * channels))
        hidden, frame_state = self.frame_layers(hidden, frame_state)
        latent = self.output_projection(self.output_norm(hidden))
        return latent, (features_state, stft_state, frame_state)


class LMCodecDecoder(nn.Module):
    """Latent → ConvNeXt at 50 Hz → split each frame in two → ConvNeXt at the STFT rate → iSTFT head (+ harmonic
    branch when `num_harmonics` > 0: the two heads' samples are added)."""

    def __init__(self, config: LMCodecConfig):
        super().__init__()
        self.upsampling = config.frame_downsampling
        self.input_projection = nn.Linear(config.codebook_dim, config.hidden_size)
        stack_args = (config.hidden_size, config.intermediate_size, config.kernel_size, config.layer_norm_eps)
        self.frame_layers = LMCodecConvNeXtStack(config.num_decoder_frame_layers, *stack_args)
        self.upsample = nn.Linear(config.hidden_size, self.upsampling * config.hidden_size)
        self.stft_layers = LMCodecConvNeXtStack(config.num_decoder_stft_layers, *stack_args)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = LMCodecISTFTHead(config.hidden_size, config.stft_window_length, config.stft_hop_length,
                                     overlap=config.decoder_head_overlap, phase=config.decoder_phase,
                                     synthesis_window_length=config.decoder_window_length)
        self.harmonic_head = None
        if config.num_harmonics > 0:
            self.harmonic_head = LMCodecHarmonicHead(config.hidden_size, config.stft_hop_length, config.num_harmonics,
                                                     config.sampling_rate, config.stft_window_length // 2 + 1)

    def hidden_states(self, latent: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """latent: `[B, n, codebook_dim]` → (normalised hidden states `[B, n * upsampling, C]` for the heads, state)."""
        frame_state, stft_state = (None, None) if state is None else state
        hidden, frame_state = self.frame_layers(self.input_projection(latent), frame_state)
        batch, steps, channels = hidden.shape
        hidden = self.upsample(hidden).reshape(batch, steps * self.upsampling, channels)
        hidden, stft_state = self.stft_layers(hidden, stft_state)
        return self.output_norm(hidden), (frame_state, stft_state)

    def synthesize(self, hidden: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """Normalised hidden states `[B, m, C]` → (samples `[B, m * stft_hop_length]`, heads' state)."""
        head_state, harmonic_state = (None, None) if state is None else state
        samples, head_state = self.head(hidden, head_state)
        if self.harmonic_head is not None:
            harmonic, harmonic_state = self.harmonic_head(hidden, harmonic_state)
            samples = samples + harmonic.to(samples.dtype)
        return samples, (head_state, harmonic_state)

    @property
    def output_delay(self) -> int:
        """Samples by which `forward`'s output trails the input frames (the iSTFT head's lookback; 0 by default)."""
        return self.head.lookback

    def forward(self, latent: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """Streaming step. latent: `[B, n, codebook_dim]` → (samples `[B, n * hop_length]`, state); `state=None`
        starts a stream. The samples run `output_delay` samples behind the frames (see `pending_samples`)."""
        trunk_state, heads_state = (None, None) if state is None else state
        hidden, trunk_state = self.hidden_states(latent, trunk_state)
        samples, heads_state = self.synthesize(hidden, heads_state)
        return samples, (trunk_state, heads_state)

    def pending_samples(self, state: tuple) -> torch.Tensor:
        """The `output_delay` samples `[B, output_delay]` a stream with decoder `state` has not emitted yet (the
        last frames' overlap-add tail, without the frames that would follow)."""
        (pending, _), _ = state[1]
        return pending[:, : self.output_delay]

    def synthesize_offline(self, hidden: torch.Tensor) -> torch.Tensor:
        """Normalised hidden states `[B, m, C]` of a whole signal → samples `[B, m * stft_hop_length]` aligned with the
        input (the head's output delay removed; the last `output_delay` samples lack the frames that would follow)."""
        samples, heads_state = self.synthesize(hidden)
        delay = self.output_delay
        if delay == 0:
            return samples
        return torch.cat([samples, heads_state[0][0][:, :delay]], dim=1)[:, delay:]

    def decode_offline(self, latent: torch.Tensor) -> torch.Tensor:
        """latent `[B, n, codebook_dim]` of a whole signal → samples `[B, n * hop_length]` aligned with the input."""
        hidden, _ = self.hidden_states(latent)
        return self.synthesize_offline(hidden)


class LMCodecPreTrainedModel(PreTrainedModel):
    config_class = LMCodecConfig
    config: LMCodecConfig
    base_model_prefix = "lmcodec"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, LMCodecConvNeXtBlock):
            init.constant_(module.layer_scale, module.layer_scale_init)
        if isinstance(module, LMCodecFrameLM):
            module.init_parameters(self.config.initializer_range)
        if isinstance(module, ComputedBuffersMixin):
            for name, value in module.computed_buffers().items():
                init.copy_(getattr(module, name), value)


class LMCodecModel(LMCodecPreTrainedModel):
    """The LMCodec codec: `encode` audio to RVQ codes, `decode` codes to audio, `forward` for training."""

    def __init__(self, config: LMCodecConfig):
        super().__init__(config)
        self.encoder = LMCodecEncoder(config)
        self.quantizer = LMCodecResidualVectorQuantizer(config)
        self.decoder = LMCodecDecoder(config)
        self.reconstruction_loss = LMCodecReconstructionLoss(
            config.sampling_rate, config.mel_loss_weight, config.stft_loss_weight, config.phase_loss_weight
        )
        lm_args = (config.num_quantizers, config.codebook_size, config.codebook_dim)
        self.fine_lm = LMCodecFrameLM(
            config.fine_lm_config, FINE, *lm_args, range(config.min_coarse_quantizers, config.num_quantizers)
        )
        self.entropy_lm = LMCodecFrameLM(
            config.entropy_lm_config, ENTROPY, *lm_args, range(0, config.max_coarse_quantizers),
            depth=config.entropy_lm_depth,
        )
        # The integer twin of the entropy LM that entropy coding uses (integer buffers; see integer_export.py).
        self.integer_entropy_lm = LMCodecIntegerEntropyLM(config) if config.integer_entropy_model else None
        self.post_init()

    # ------------------------------------------------------------------ input checks
    def _check_input_values(self, input_values: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Validate `[B, 1, T]` input and return `[B, T]` samples with padding zeroed."""
        if not torch.is_tensor(input_values) or input_values.dim() != 3 or input_values.shape[1] != 1:
            shape = tuple(input_values.shape) if torch.is_tensor(input_values) else type(input_values).__name__
            raise LMCodecError(
                f"input_values must be a tensor of shape [batch, 1, samples] (mono), got {shape}; "
                "use LMCodecFeatureExtractor to prepare raw audio."
            )
        samples = input_values[:, 0].to(self.dtype)
        if padding_mask is not None:
            if padding_mask.shape != samples.shape:
                raise LMCodecError(
                    f"padding_mask must have shape [batch, samples] = {tuple(samples.shape)}, "
                    f"got {tuple(padding_mask.shape)}."
                )
            samples = samples * padding_mask.to(samples.dtype)
        return samples

    def _frame_mask(self, padding_mask: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor:
        """`[B, T]` sample mask → `[B, F]` frame mask (a frame counts if its first sample is real audio)."""
        if padding_mask is None:
            return torch.ones(batch, frames, dtype=torch.long, device=self.device)
        starts = padding_mask[:, :: self.config.hop_length][:, :frames]
        return (starts > 0).long()

    def _pad_to_frames(self, samples: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        """Zero-pad `[B, T]` at the end to a whole number of `multiple`-frame blocks."""
        hop = self.config.hop_length * multiple
        return nn.functional.pad(samples, (0, padded_length(samples.shape[-1], hop) - samples.shape[-1]))

    # ------------------------------------------------------------------ codes
    def encode_block(
        self, samples: torch.Tensor, state: tuple | None, num_quantizers: int, norms: torch.Tensor
    ) -> tuple[torch.Tensor, tuple]:
        """One step of the fixed encoder loop: samples `[B, ENCODER_BLOCK_FRAMES * hop_length]` → (codes `[B, K, n]`,
        state). `norms` is `self.quantizer.codebook_norms()`, computed once per stream."""
        latent, state = self.encoder(samples, state)
        return self.quantizer.encode(latent, num_quantizers, norms), state

    def _check_num_quantizers(self, num_quantizers: int | None) -> int:
        levels = self.config.num_quantizers if num_quantizers is None else num_quantizers
        if not 1 <= levels <= self.config.num_quantizers:
            raise LMCodecError(f"num_quantizers must be between 1 and {self.config.num_quantizers}, got {levels}.")
        return levels

    @torch.no_grad()
    def encode(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_quantizers: int | None = None,
        return_dict: bool | None = None,
    ) -> LMCodecEncoderOutput | tuple:
        """Encode `input_values [B, 1, T]` into `audio_codes [B, K, ceil(T / hop_length)]`.

        Runs the same fixed block loop as `streaming_encoder()`, so both give identical codes. `num_quantizers`
        (K) defaults to all levels. Padded samples (`padding_mask == 0`) are zeroed first.
        """
        levels = self._check_num_quantizers(num_quantizers)
        samples = self._check_input_values(input_values, padding_mask)
        frames = num_frames(samples.shape[-1], self.config.hop_length)
        samples = self._pad_to_frames(samples, ENCODER_BLOCK_FRAMES)
        block = ENCODER_BLOCK_FRAMES * self.config.hop_length
        norms = self.quantizer.codebook_norms()
        state, codes = None, []
        for start in range(0, samples.shape[-1], block):
            block_codes, state = self.encode_block(samples[:, start : start + block], state, levels, norms)
            codes.append(block_codes)
        audio_codes = torch.cat(codes, dim=-1)[..., :frames] if codes else samples.new_zeros(
            samples.shape[0], levels, 0, dtype=torch.long
        )
        codes_mask = self._frame_mask(padding_mask, samples.shape[0], frames)
        if return_dict is False:
            return audio_codes, codes_mask
        return LMCodecEncoderOutput(audio_codes=audio_codes, audio_codes_mask=codes_mask)

    def _check_audio_codes(self, audio_codes: torch.Tensor) -> None:
        if not torch.is_tensor(audio_codes) or audio_codes.dim() != 3:
            shape = tuple(audio_codes.shape) if torch.is_tensor(audio_codes) else type(audio_codes).__name__
            raise LMCodecError(f"audio_codes must be a tensor of shape [batch, levels, frames], got {shape}.")
        if not 1 <= audio_codes.shape[1] <= self.config.num_quantizers:
            raise LMCodecError(
                f"audio_codes must hold 1 to {self.config.num_quantizers} levels, got {audio_codes.shape[1]}."
            )

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """Quantized latent `[B, n, codebook_dim]` of a whole signal → unclipped samples `[B, n * hop_length]`."""
        return self.decoder.decode_offline(latent)

    @torch.no_grad()
    def decode(
        self, audio_codes: torch.Tensor, padding_mask: torch.Tensor | None = None, return_dict: bool | None = None
    ) -> LMCodecDecoderOutput | tuple:
        """Decode `audio_codes [B, K, F]` (the first K levels; K < Nq decodes from fewer levels) into
        `audio_values [B, 1, F * hop_length]` clipped to [-1, 1]. With `padding_mask [B, T]` the output is cut to T
        samples and padded positions are zeroed."""
        self._check_audio_codes(audio_codes)
        latent = self.quantizer.decode(audio_codes.to(self.device))
        samples = self.decode_latent(latent).clamp(-1.0, 1.0)
        if padding_mask is not None:
            samples = samples[:, : padding_mask.shape[-1]]
            samples = samples * padding_mask[:, : samples.shape[-1]].to(samples.dtype)
        audio_values = samples.unsqueeze(1)
        if return_dict is False:
            return (audio_values,)
        return LMCodecDecoderOutput(audio_values=audio_values)

    # ------------------------------------------------------------------ fine tokens
    def _check_num_coarse(self, num_coarse: int) -> int:
        if num_coarse not in self.config.operating_points:
            raise LMCodecError(
                f"{num_coarse} coarse levels is not an operating point of this checkpoint; "
                f"use one of {list(self.config.operating_points)}."
            )
        return num_coarse

    def fine_code_generator(self, num_coarse_quantizers: int, sync_frames: int | None = None, do_sample: bool = False,
                            temperature: float = 1.0, top_k: int | None = None,
                            generator: torch.Generator | None = None, seed: int | None = None, start_frame: int = 0,
                            expected: bool = False):
        """A stateful generator: `push(coarse [B, Nc, f]) -> all levels [B, Nq, f]`, resetting at sync points
        (sampling restarts from `seed + sync period index` there when `seed` is given; see `FineCodeGenerator`)."""
        from .fine_generation import FineCodeGenerator

        return FineCodeGenerator(
            self.fine_lm, self.quantizer.codebooks, self.config.num_quantizers,
            self._check_num_coarse(num_coarse_quantizers), sync_frames or self.config.sync_frames,
            do_sample=do_sample, temperature=temperature, top_k=top_k, generator=generator, seed=seed,
            start_frame=start_frame, expected=expected,
        )

    @torch.no_grad()
    def generate_fine_codes(self, coarse_codes: torch.Tensor, sync_frames: int | None = None, do_sample: bool = False,
                            temperature: float = 1.0, top_k: int | None = None, seed: int | None = None) -> torch.Tensor:
        """Regenerate the fine levels: coarse_codes `[B, Nc, F]` → audio_codes `[B, Nq, F]` (levels < Nc unchanged).

        One fine-LM step per frame with a KV cache, context reset every `sync_frames` (default: the config's).
        Greedy by default; `do_sample=True` samples with `temperature` / `top_k`, reproducibly when `seed` is set.
        """
        self._check_audio_codes(coarse_codes)
        was_training = self.training
        self.eval()
        try:
            fine = self.fine_code_generator(coarse_codes.shape[1], sync_frames, do_sample, temperature, top_k,
                                            seed=seed)
            return fine.push(coarse_codes.to(self.device))
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ streaming
    def streaming_encoder(self, num_quantizers: int | None = None):
        """A stateful encoder: `push(samples [T]) -> codes [K, f]`, `flush() -> codes [K, f]`."""
        from .streaming import LMCodecStreamingEncoder

        return LMCodecStreamingEncoder(self, self._check_num_quantizers(num_quantizers))

    def streaming_decoder(self):
        """A stateful decoder: `push(codes [K, f]) -> samples [f * hop_length]`."""
        from .streaming import LMCodecStreamingDecoder

        return LMCodecStreamingDecoder(self)

    # ------------------------------------------------------------------ the integer entropy model
    @torch.no_grad()
    def export_integer_entropy_model(self, calibration_codes: torch.Tensor) -> None:
        """Derive the integer entropy model from the float entropy LM and keep it in this model (and its checkpoint).

        calibration_codes: `[B, Nq, F]` codes of real speech (F ≤ sync_frames), used to choose each fixed-point
        scale. Entropy-coded streams written afterwards use it (format version 3) and decode on any machine with
        this checkpoint. Re-export after changing the entropy LM's weights."""
        from .integer_export import export_integer_entropy_model

        self._check_audio_codes(calibration_codes)
        arrays = export_integer_entropy_model(self, calibration_codes.to(torch.long).cpu())
        module = LMCodecIntegerEntropyLM(self.config)
        module.load_arrays(arrays)
        self.integer_entropy_lm = module.to(self.device)
        self.config.integer_entropy_model = True

    # ------------------------------------------------------------------ bytes
    def compress(self, audio, sampling_rate: int = SAMPLING_RATE, num_coarse_quantizers: int | None = None,
                 entropy_coding: bool = True, packet_frames: int | None = None, return_report: bool = False):
        """Mono audio `[T]` (array or tensor at `sampling_rate`) → LMCodec stream bytes.

        Sends `num_coarse_quantizers` coarse levels (default: the config's operating point), range-coded with the
        entropy LM (`entropy_coding=False`: raw 10-bit codes). With `return_report=True` also returns a
        `CodingReport` (header, payload and framing bytes; the entropy LM's information content in bits)."""
        from .compression import compress

        data, report = compress(self, audio, sampling_rate, num_coarse_quantizers, entropy_coding, packet_frames)
        return (data, report) if return_report else data

    def decompress(self, data: bytes, do_sample: bool | None = None, seed: int | None = None, partial: bool = False,
                   return_losses: bool = False, fine_decoding: FineDecoding | None = None):
        """LMCodec stream bytes → (audio float32 `[T]`, sampling rate). The levels that were not sent are filled in
        as `fine_decoding` says ("coarse-only", "expected", "greedy" or "sample"; default: `config.fine_decoding`;
        `do_sample` is its deprecated alias); sampling is seeded (`seed`, default 0), so decoding is reproducible.
        `partial=True` decodes around damage instead of raising, silencing what is lost until the next sync point;
        `return_losses=True` adds a one-line description of what was lost."""
        from .compression import decompress

        audio, rate, losses = decompress(self, data, do_sample=do_sample, seed=seed, partial=partial,
                                         fine_decoding=fine_decoding)
        return (audio, rate, losses) if return_losses else (audio, rate)

    def stream_compressor(self, sampling_rate: int = SAMPLING_RATE, num_coarse_quantizers: int | None = None,
                          entropy_coding: bool = True, packet_frames: int | None = None):
        """Live compression: `c.header() -> bytes`, `c.push(samples) -> list[bytes]`, `c.flush() -> list[bytes]`."""
        from .compression import LMCodecStreamCompressor

        return LMCodecStreamCompressor(self, sampling_rate, num_coarse_quantizers, entropy_coding, packet_frames)

    def stream_decompressor(self, header: bytes, do_sample: bool | None = None, seed: int | None = None,
                            partial: bool = False, fine_decoding: FineDecoding | None = None):
        """Live decompression from a stream's header: `d.push(packet_bytes) -> samples`, `d.finish()` (options as
        in `decompress`)."""
        from .compression import LMCodecStreamDecompressor

        return LMCodecStreamDecompressor(self, header, do_sample=do_sample, seed=seed, partial=partial,
                                         fine_decoding=fine_decoding)

    def datagram_encoder(self, packet_frames: int = 2, sync_frames: int = 12, sampling_rate: int = 16000,
                         num_coarse_quantizers: int | None = None, **options):
        """Real-time packets for UDP / RTP (datagram mode): `e.description() -> bytes` (send once, out of band),
        `e.push(samples) -> list[bytes]` (one datagram each), `e.flush()`. Options: `sequence_modulus`,
        `check_bits`, `start_mix` (see `lmcodec.datagram.DatagramEncoder`)."""
        from .datagram import DatagramEncoder

        return DatagramEncoder(self, packet_frames, sync_frames, sampling_rate, num_coarse_quantizers, **options)

    def datagram_decoder(self, description: bytes, fine_decoding: str | None = None, seed: int | None = None,
                         **options):
        """The receiver of a datagram stream: `d.push(packet or None) -> samples` in arrival order, `d.lost(count)`,
        `d.finish()`; `d.report` counts received, lost and undecodable frames (see
        `lmcodec.datagram.DatagramDecoder`)."""
        from .datagram import DatagramDecoder

        return DatagramDecoder(self, description, fine_decoding=fine_decoding, seed=seed, **options)

    # ------------------------------------------------------------------ sharing
    def push_to_hub(self, repo_id: str, *args, feature_extractor=None, **options):
        """Upload to the Hub with fresh remote code and a model card rendered by `lmcodec.hub_cards` (options: those
        of `lmcodec.hub_cards.push_to_hub`, e.g. `results=` for the card's metrics table). Where the `lmcodec`
        package is not installed (remote code), this is transformers' plain `push_to_hub`."""
        try:
            from lmcodec.hub_cards import push_model_to_hub
        except ImportError:
            return super().push_to_hub(repo_id, *args, **options)
        if args:
            raise TypeError("LMCodecModel.push_to_hub takes its options as keywords (private=, revision=, token=, ...)")
        return push_model_to_hub(self, repo_id, feature_extractor=feature_extractor, **options)

    # ------------------------------------------------------------------ training
    def forward(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> LMCodecOutput | tuple:
        """Training pass over `input_values [B, 1, T]`: encode (whole sequence at once), quantize (EMA updates and
        quantizer dropout in training mode), decode, and the losses against the input."""
        samples = self._check_input_values(input_values, padding_mask)
        length = samples.shape[-1]
        samples = self._pad_to_frames(samples)
        latent, _ = self.encoder(samples)
        frame_mask = self._frame_mask(padding_mask, samples.shape[0], latent.shape[1])
        quantized = self.quantizer(latent, frame_mask)
        hidden, _ = self.decoder.hidden_states(quantized.quantized)
        reconstruction = self.decoder.synthesize_offline(hidden)
        sample_mask = None
        if padding_mask is not None:
            sample_mask = nn.functional.pad(padding_mask, (0, samples.shape[-1] - length)).to(reconstruction.dtype)
            reconstruction = reconstruction * sample_mask
        reconstruction_loss, parts = self.reconstruction_loss(reconstruction, samples)
        loss = reconstruction_loss + self.config.commitment_loss_weight * quantized.commitment_loss
        pitch_loss = voicing_loss = None
        if self.decoder.harmonic_head is not None:
            pitch_loss, voicing_loss = self._pitch_losses(hidden, samples, frame_mask)
            loss = loss + self.config.pitch_loss_weight * pitch_loss + self.config.voicing_loss_weight * voicing_loss
        output = LMCodecOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            commitment_loss=quantized.commitment_loss,
            mel_loss=parts["mel"],
            stft_loss=parts["stft"],
            phase_loss=parts["phase"],
            pitch_loss=pitch_loss,
            voicing_loss=voicing_loss,
            audio_codes=quantized.codes,
            audio_values=reconstruction[:, :length].unsqueeze(1),
        )
        return output.to_tuple() if return_dict is False else output

    def _pitch_losses(self, hidden: torch.Tensor, samples: torch.Tensor, frame_mask: torch.Tensor):
        """The harmonic head's f0 and voicing at each STFT step against YIN on the input: step j emits samples
        [hop j, hop (j + 1)), its f0 is the one reached at the step's end, so the target frame is centred there."""
        hop = self.config.stft_hop_length
        steps = hidden.shape[1]
        with torch.no_grad():
            centers = torch.arange(1, steps + 1, device=samples.device) * hop
            target = yin_pitch(samples, centers, self.config.sampling_rate)
        f0, voicing_logit, _ = self.decoder.harmonic_head.parameters_from(hidden)
        step_mask = frame_mask.repeat_interleave(self.config.frame_downsampling, dim=1)
        return pitch_losses(f0, voicing_logit, target, step_mask)


__all__ = ["LMCodecPreTrainedModel", "LMCodecModel", "LMCodecEncoderOutput", "LMCodecDecoderOutput", "LMCodecOutput"]
