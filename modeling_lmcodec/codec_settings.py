"""`CodecSettings`: what the bitstream needs to know of a checkpoint, from its `LMCodecConfig` or its config.json
(so the torch model and the torch-free runtime read the same values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import LMCodecError

# Entropy-LM settings that change its function (bookkeeping such as `_name_or_path` must not count).
FINGERPRINT_LM_FIELDS = ("n_embd", "n_layer", "n_head", "n_inner", "n_positions", "activation_function",
                         "layer_norm_epsilon", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
                         "reorder_and_upcast_attn")


@dataclass(frozen=True)
class CodecSettings:
    """What the bitstream needs to know of a checkpoint, read from its `LMCodecConfig` or its config.json."""

    sampling_rate: int
    hop_length: int
    num_quantizers: int
    codebook_size: int
    codebook_dim: int
    num_coarse_quantizers: int
    operating_points: tuple[int, ...]
    packet_frames: int
    sync_frames: int
    max_sync_frames: int  # the entropy LM's context length
    fine_decoding: str
    entropy_lm_depth: bool
    entropy_lm_fields: dict = field(default_factory=dict)  # FINGERPRINT_LM_FIELDS of the entropy LM's config

    @classmethod
    def from_config(cls, config) -> "CodecSettings":
        """From an `LMCodecConfig`, or from a config.json dict (the same names; `hop_length` derived as there)."""
        get = config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
        lm = get("entropy_lm_config")
        lm_get = lm.get if isinstance(lm, dict) else lambda name, default=None: getattr(lm, name, default)
        hop = get("hop_length") or get("stft_hop_length") * get("frame_downsampling")
        return cls(
            sampling_rate=get("sampling_rate"), hop_length=hop, num_quantizers=get("num_quantizers"),
            codebook_size=get("codebook_size"), codebook_dim=get("codebook_dim"),
            num_coarse_quantizers=get("num_coarse_quantizers"), operating_points=tuple(get("operating_points")),
            packet_frames=get("packet_frames"), sync_frames=get("sync_frames"),
            max_sync_frames=lm_get("n_positions"), fine_decoding=get("fine_decoding"),
            entropy_lm_depth=bool(get("entropy_lm_depth")),
            entropy_lm_fields={key: lm_get(key) for key in FINGERPRINT_LM_FIELDS},
        )

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.hop_length

    @property
    def bits_per_code(self) -> int:
        return int(self.codebook_size).bit_length() - 1

    def coarse_bitrate(self, num_coarse: int) -> float:
        """Raw bit/s of `num_coarse` levels without entropy coding."""
        return num_coarse * self.bits_per_code * self.frame_rate

    def check_num_coarse(self, num_coarse: int) -> int:
        if num_coarse not in self.operating_points:
            raise LMCodecError(f"{num_coarse} coarse levels is not an operating point of this checkpoint; "
                               f"use one of {list(self.operating_points)}.")
        return num_coarse
