"""Regenerating the fine RVQ levels from the coarse ones with the fine LM, one frame at a time.

`FineCodeGenerator.push` takes coarse codes of any number of frames and returns all levels of those frames, carrying
the KV cache between calls and resetting it at sync points; `LMCodecModel.generate_fine_codes` is one generator fed
everything at once, so streaming and offline generation are the same computation.
"""

from __future__ import annotations

import torch

from .errors import LMCodecError
from .frame_lm import LMCodecFrameLM


class FineCodeGenerator:
    """Stateful fine-level generation for a batch of streams.

    Greedy (argmax) by default; `do_sample=True` samples with `temperature` and optional `top_k`. `push_latent`
    also returns the latent the decoder should get: with `expected=True` each fine level contributes the
    probability-weighted mean of its codebook vectors (the minimum-squared-error estimate) instead of its chosen code's
    vector, while the chosen (greedy) code still conditions the next level and frame. With `seed`, the
    random draws restart at every sync point from `seed + sync period index`, so each period's codes depend only on
    its own coarse codes: a receiver that starts (or resumes after damage) at a sync point, `start_frame`, samples
    exactly what one that decoded from the beginning does. Without `seed`, draws come from `generator`.
    """

    def __init__(self, fine_lm: LMCodecFrameLM, codebooks: torch.Tensor, num_quantizers: int, num_coarse: int,
                 sync_frames: int, do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, seed: int | None = None, start_frame: int = 0,
                 expected: bool = False):
        if temperature <= 0:
            raise LMCodecError(f"temperature must be > 0, got {temperature}; use do_sample=False for greedy decoding.")
        if top_k is not None and top_k < 1:
            raise LMCodecError(f"top_k must be >= 1, got {top_k}.")
        self.lm = fine_lm
        self.codebooks = codebooks
        self.num_quantizers = num_quantizers
        self.num_coarse = num_coarse
        self.sync_frames = sync_frames
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_k = top_k
        self.generator = generator
        self.seed = seed
        self.frames_done = start_frame
        self.expected = expected
        self.state = None

    def _choose(self, logits: torch.Tensor) -> torch.Tensor:
        """logits `[B, K]` → codes `[B]`."""
        if not self.do_sample:
            return logits.argmax(dim=-1)
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            threshold = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        probabilities = torch.softmax(logits, dim=-1)
        return torch.multinomial(probabilities, 1, generator=self.generator)[:, 0]

    @torch.no_grad()
    def push(self, coarse_codes: torch.Tensor) -> torch.Tensor:
        """coarse_codes: `[B, Nc, f]` → all levels `[B, Nq, f]` (levels < Nc copied, the rest generated)."""
        return self.push_latent(coarse_codes)[0]

    @torch.no_grad()
    def push_latent(self, coarse_codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """coarse_codes: `[B, Nc, f]` → (all levels `[B, Nq, f]`, the decoder's latent `[B, f, D]`: the sum of the
        levels' codebook vectors, with each fine level's expected vector when `expected`)."""
        batch, levels, frames = coarse_codes.shape
        if levels != self.num_coarse:
            raise LMCodecError(f"expected {self.num_coarse} coarse levels, got {levels}.")
        output = torch.zeros(batch, self.num_quantizers, frames, dtype=torch.long, device=coarse_codes.device)
        output[:, :levels] = coarse_codes
        expected_fine = torch.zeros(batch, frames, self.codebooks.shape[-1], device=coarse_codes.device)
        for frame in range(frames):
            if self.state is None or self.frames_done % self.sync_frames == 0:  # a sync point (or where we resume)
                self.state = self.lm.start()
                if self.seed is not None:
                    period = self.frames_done // self.sync_frames
                    self.generator = torch.Generator(device=coarse_codes.device).manual_seed(self.seed + period)
            codes = output[:, :, frame].clone()
            conditioned = self.lm.step(self.state, codes, self.num_coarse, self.codebooks)
            for level in range(self.num_coarse, self.num_quantizers):
                logits = self.lm.level_logits(conditioned, level)
                codes[:, level] = self._choose(logits)
                if self.expected:
                    expected_fine[:, frame] += torch.softmax(logits, dim=-1) @ self.codebooks[level]
                conditioned = self.lm.condition(conditioned, level, codes[:, level], self.codebooks)
            self.lm.finish_frame(self.state, codes)
            output[:, :, frame] = codes
            self.frames_done += 1
        levels_summed = output[:, : self.num_coarse] if self.expected else output
        offsets = torch.arange(levels_summed.shape[1], device=output.device).view(1, -1, 1) * self.codebooks.shape[1]
        latent = self.codebooks.reshape(-1, self.codebooks.shape[-1])[levels_summed + offsets].sum(dim=1)
        return output, latent + expected_fine if self.expected else latent
