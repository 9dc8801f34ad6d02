"""Residual vector quantizer with EMA codebooks, k-means initialisation, dead-code restart and quantizer dropout.

Level 0 quantizes the encoder latent; level l quantizes what levels 0..l-1 left. Codebooks are buffers updated by
exponential moving averages (not by gradients); the encoder gets straight-through gradients plus a commitment loss.
Under `torch.distributed` the codebook statistics are summed over all processes and random choices (k-means seeds,
restarted codes) are taken on rank 0 and broadcast, so every rank holds the same codebooks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import distributed as dist
from torch import nn

from .errors import LMCodecError


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` in place over all processes (no-op in a single process)."""
    if _distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_from_rank0(tensor: torch.Tensor) -> torch.Tensor:
    """Overwrite `tensor` in place with rank 0's copy (no-op in a single process)."""
    if _distributed():
        dist.broadcast(tensor, src=0)
    return tensor


def _gather_all(vectors: torch.Tensor) -> torch.Tensor:
    """Concatenate the `[N_r, D]` vectors of every process (N_r may differ between ranks)."""
    if not _distributed():
        return vectors
    world = dist.get_world_size()
    size = torch.tensor([vectors.shape[0]], device=vectors.device)
    sizes = [torch.empty_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(int(s) for s in sizes))
    padded = vectors.new_zeros(longest, vectors.shape[1])
    padded[: vectors.shape[0]] = vectors
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[: int(n)] for part, n in zip(parts, sizes)])


@dataclass
class QuantizerOutput:
    """quantized: `[B, F, D]` (straight-through), codes: `[B, Nq, F]`, commitment_loss: scalar."""

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor


class LMCodecResidualVectorQuantizer(nn.Module):
    """RVQ over `num_quantizers` codebooks of `codebook_size` vectors of `codebook_dim` values."""

    def __init__(self, config):
        super().__init__()
        self.num_quantizers = config.num_quantizers
        self.codebook_size = config.codebook_size
        self.codebook_dim = config.codebook_dim
        self.decay = config.codebook_ema_decay
        self.dead_threshold = config.codebook_dead_threshold
        self.dropout = config.quantizer_dropout
        self.operating_point_prob = config.quantizer_dropout_operating_point_prob
        self.operating_points = tuple(config.operating_points)
        shape = (self.num_quantizers, self.codebook_size)
        self.register_buffer("codebooks", torch.zeros(*shape, self.codebook_dim))
        self.register_buffer("ema_counts", torch.zeros(shape))
        self.register_buffer("ema_sums", torch.zeros(*shape, self.codebook_dim))
        self.register_buffer("initialized", torch.zeros(self.num_quantizers, dtype=torch.bool))
        # False keeps the codebooks fixed in training mode (fine-tuning with existing bitstreams decodable):
        # no EMA updates, k-means or restarts, while quantizer dropout stays active.
        self.update_codebooks = True

    # ------------------------------------------------------------------ inference
    def nearest_codes(self, residual: torch.Tensor, level: int) -> torch.Tensor:
        """residual: `[N, D]` → indices `[N]` of the nearest codes of `level` (squared Euclidean distance)."""
        return self.nearest_codes_of(self.codebooks[level], residual)

    def codebook_norms(self) -> torch.Tensor:
        """Squared norms of all code vectors, `[Nq, codebook_size]`; compute once per stream and pass to `encode`."""
        return (self.codebooks * self.codebooks).sum(-1)

    def encode(
        self, latent: torch.Tensor, num_quantizers: int | None = None, norms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """latent: `[B, F, D]` → codes `[B, K, F]` with K = `num_quantizers` (default: all levels).

        `norms` is `codebook_norms()`, passed in by callers that encode many blocks with the same codebooks.
        """
        levels = self.num_quantizers if num_quantizers is None else num_quantizers
        norms = self.codebook_norms() if norms is None else norms
        batch, frames, dim = latent.shape
        residual = latent.reshape(-1, dim)
        codes = []
        for level in range(levels):
            scores = torch.addmm(norms[level], residual, self.codebooks[level].t(), alpha=-2.0)
            indices = scores.argmin(dim=-1)
            residual = residual - self.codebooks[level][indices]
            codes.append(indices)
        return torch.stack(codes, dim=0).reshape(levels, batch, frames).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: `[B, K, F]` (the first K levels) → latent `[B, F, D]`, the sum of the K levels' vectors."""
        if codes.shape[1] > self.num_quantizers:
            raise LMCodecError(f"audio_codes has {codes.shape[1]} levels but the quantizer has {self.num_quantizers}.")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise LMCodecError(f"audio_codes must lie in [0, {self.codebook_size}), got values outside that range.")
        offsets = torch.arange(codes.shape[1], device=codes.device).view(1, -1, 1) * self.codebook_size
        flat = self.codebooks.reshape(-1, self.codebook_dim)
        return nn.functional.embedding(codes + offsets, flat).sum(dim=1)

    # ------------------------------------------------------------------ training
    def forward(self, latent: torch.Tensor, frame_mask: torch.Tensor | None = None) -> QuantizerOutput:
        """Training pass. latent: `[B, F, D]`, frame_mask: `[B, F]` (1 = real audio) → `QuantizerOutput`.

        In training mode the codebooks are updated (EMA) from the unmasked frames, and each example is, with
        probability `quantizer_dropout`, reconstructed from only its first n levels (`dropout_levels`).
        """
        with torch.autocast(device_type=latent.device.type, enabled=False):  # codes and EMA sums in float32
            return self._quantize_for_training(latent.float(), frame_mask)

    def _quantize_for_training(self, latent: torch.Tensor, frame_mask: torch.Tensor | None) -> QuantizerOutput:
        batch, frames, dim = latent.shape
        if frame_mask is None:
            frame_mask = latent.new_ones(batch, frames)
        valid = frame_mask.reshape(-1) > 0
        levels_used = torch.full((batch,), self.num_quantizers, device=latent.device)
        if self.training and self.dropout > 0:
            drop = torch.rand(batch, device=latent.device) < self.dropout
            levels_used = torch.where(drop, self.dropout_levels(batch, latent.device), levels_used)

        residual = latent.reshape(-1, dim)
        quantized = torch.zeros_like(residual)
        codes, commitment = [], latent.new_zeros(())
        for level in range(self.num_quantizers):
            if self.training and self.update_codebooks:
                self._update_codebook(level, residual.detach()[valid])
            indices = self.nearest_codes(residual.detach(), level)
            vectors = self.codebooks[level][indices]
            keep = (levels_used > level).repeat_interleave(frames).unsqueeze(-1).to(residual.dtype)
            commitment = commitment + ((residual - vectors).pow(2).mean(-1) * valid).sum() / valid.sum().clamp(min=1)
            quantized = quantized + keep * vectors
            residual = residual - vectors
            codes.append(indices)
        flat_latent = latent.reshape(-1, dim)
        straight_through = flat_latent + (quantized - flat_latent).detach()
        codes = torch.stack(codes, dim=0).reshape(self.num_quantizers, batch, frames).transpose(0, 1)
        return QuantizerOutput(straight_through.reshape(batch, frames, dim), codes, commitment / self.num_quantizers)

    def dropout_levels(self, batch: int, device: torch.device) -> torch.Tensor:
        """Level counts `[batch]` for examples shortened by quantizer dropout: uniform over 1..Nq, except that a
        fraction `quantizer_dropout_operating_point_prob` is drawn uniformly from the operating points."""
        levels = torch.randint(1, self.num_quantizers + 1, (batch,), device=device)
        if self.operating_point_prob > 0:
            at_point = torch.rand(batch, device=device) < self.operating_point_prob
            points = torch.tensor(self.operating_points, device=device)
            points = points[torch.randint(len(points), (batch,), device=device)]
            levels = torch.where(at_point, points, levels)
        return levels

    @torch.no_grad()
    def _update_codebook(self, level: int, vectors: torch.Tensor) -> None:
        """One EMA step of codebook `level` from `vectors` `[N, D]` (k-means initialisation on first use)."""
        if not self.initialized[level]:
            self._kmeans_init(level, vectors)
            return
        indices = self.nearest_codes(vectors, level)
        counts = torch.bincount(indices, minlength=self.codebook_size).to(vectors.dtype)
        sums = torch.zeros_like(self.ema_sums[level]).index_add_(0, indices, vectors)
        all_reduce_sum(counts)
        all_reduce_sum(sums)
        self.ema_counts[level].mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sums[level].mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_counts[level].sum()
        smoothed = (self.ema_counts[level] + 1e-5) / (total + self.codebook_size * 1e-5) * total
        self.codebooks[level].copy_(self.ema_sums[level] / smoothed.unsqueeze(-1))
        self._restart_dead_codes(level, vectors)

    def _restart_dead_codes(self, level: int, vectors: torch.Tensor) -> None:
        """Replace codes used far less than average by input vectors of any rank, chosen on rank 0."""
        mean_count = self.ema_counts[level].mean()
        dead = self.ema_counts[level] < self.dead_threshold * mean_count
        num_dead = int(dead.sum())
        if num_dead == 0:
            return
        candidates = _gather_all(vectors)
        if candidates.shape[0] == 0:
            return
        replacements = candidates[torch.randint(0, candidates.shape[0], (num_dead,), device=vectors.device)]
        broadcast_from_rank0(replacements)
        self.codebooks[level][dead] = replacements
        self.ema_sums[level][dead] = replacements * mean_count
        self.ema_counts[level][dead] = mean_count

    def _kmeans_init(self, level: int, vectors: torch.Tensor, iterations: int = 10) -> None:
        """Initialise codebook `level` by k-means on the first batch (gathered from all ranks, run on rank 0)."""
        data = _gather_all(vectors)
        if data.shape[0] == 0:
            return
        seeds = torch.randint(0, data.shape[0], (self.codebook_size,), device=data.device)
        centroids = data[seeds] + 1e-4 * torch.randn(self.codebook_size, data.shape[1], device=data.device)
        for _ in range(iterations):
            scores = torch.addmm((centroids * centroids).sum(-1), data, centroids.t(), alpha=-2.0)
            assignment = scores.argmin(-1)
            counts = torch.bincount(assignment, minlength=self.codebook_size).to(data.dtype)
            sums = torch.zeros_like(centroids).index_add_(0, assignment, data)
            used = counts > 0
            centroids[used] = sums[used] / counts[used].unsqueeze(-1)
        broadcast_from_rank0(centroids)
        counts = torch.bincount(self.nearest_codes_of(centroids, vectors), minlength=self.codebook_size)
        counts = all_reduce_sum(counts.to(vectors.dtype))
        self.codebooks[level].copy_(centroids)
        self.ema_counts[level].copy_(counts.clamp(min=1.0))
        self.ema_sums[level].copy_(centroids * self.ema_counts[level].unsqueeze(-1))
        self.initialized[level] = True

    @staticmethod
    def nearest_codes_of(codebook: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """codebook: `[K, D]`, vectors: `[N, D]` → indices `[N]` of the nearest codebook rows."""
        scores = torch.addmm((codebook * codebook).sum(-1), vectors, codebook.t(), alpha=-2.0)
        return scores.argmin(dim=-1)
