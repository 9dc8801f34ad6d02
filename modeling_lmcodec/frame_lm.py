"""Frame-level causal Transformers over RVQ codes: the fine LM and the entropy LM share this one design.

Token layout (the one definition). The LM takes one step per 20 ms frame. With `Nc` coarse levels:

| LM | input at frame t | predicts at frame t |
|---|---|---|
| entropy | coarse codes (levels < Nc) of frame t-1 | coarse levels 0..Nc-1 of frame t |
| fine | coarse codes of frame t, fine codes (levels >= Nc) of frame t-1 | fine levels Nc..Nq-1 of frame t |

Codes enter as their codebook vectors (from the codec's quantizer), projected per level and per role (this frame /
previous frame) to the model width and summed, plus an embedding of Nc, so one checkpoint serves every operating
point. At the first frame after a sync point the previous-frame inputs are learned begin-of-segment vectors, and the
GPT-2 positions restart at 0: each sync period is an independent sequence. Within a frame, the levels come from a
small depth module: level l sees the step's hidden state plus the projected vectors of the levels predicted before it
in that frame (or only the hidden state when `depth=False`, i.e. the levels are predicted in parallel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import DynamicCache, GPT2Model
from transformers import initialization as init

FINE = "fine"
ENTROPY = "entropy"


def level_roles(target: str, num_coarse: torch.Tensor, num_quantizers: int) -> dict[str, torch.Tensor]:
    """Which levels play which role, per example. num_coarse: `[B]` → boolean masks `[B, Nq]`:
    `current` (input from this frame), `previous` (input from the frame before), `output` (predicted)."""
    levels = torch.arange(num_quantizers, device=num_coarse.device).unsqueeze(0)
    coarse = levels < num_coarse.unsqueeze(1)
    if target == ENTROPY:
        return {"current": torch.zeros_like(coarse), "previous": coarse, "output": coarse}
    if target == FINE:
        return {"current": coarse, "previous": ~coarse, "output": ~coarse}
    raise ValueError(f"unknown LM target {target!r}; use 'fine' or 'entropy'.")


@dataclass
class FrameLMState:
    """Incremental state of one stream: the KV cache and the codes `[B, Nq]` of the last frame (None at a sync point)."""

    cache: DynamicCache
    previous_codes: torch.Tensor | None = None
    frames: int = 0


class LMCodecFrameLM(nn.Module):
    """GPT-2 backbone + code-vector input projections + depth module + one output head per predictable level."""

    def __init__(self, backbone_config, target: str, num_quantizers: int, codebook_size: int, codebook_dim: int,
                 output_levels: range, depth: bool = True):
        super().__init__()
        self.target = target
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.output_levels = output_levels
        self.depth = depth
        width = backbone_config.n_embd
        backbone_config._attn_implementation = "eager"  # one fixed implementation: sender and receiver must agree
        self.backbone = GPT2Model(backbone_config)
        self.current_projection = nn.Parameter(torch.empty(num_quantizers, codebook_dim, width))
        self.previous_projection = nn.Parameter(torch.empty(num_quantizers, codebook_dim, width))
        self.segment_start = nn.Parameter(torch.empty(num_quantizers, width))
        self.num_coarse_embedding = nn.Embedding(num_quantizers + 1, width)
        self.depth_projection = nn.Parameter(torch.empty(num_quantizers, codebook_dim, width))
        self.depth_norm = nn.LayerNorm(width)
        self.depth_mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(approximate="tanh"),
                                       nn.Linear(2 * width, width))
        self.head_norm = nn.LayerNorm(width)
        # Low-rank heads: width → `codebook_dim` query, scored against a learned embedding of each code. Per level
        # that reads 80 k weights instead of 262 k, and one step reads all heads' weights: memory-bound on a CPU.
        self.head_queries = nn.Parameter(torch.empty(len(output_levels), width, codebook_dim))
        self.head_codes = nn.Parameter(torch.empty(len(output_levels), codebook_size, codebook_dim))
        self.head_bias = nn.Parameter(torch.empty(len(output_levels), codebook_size))

    def init_parameters(self, std: float) -> None:
        """Called by the model's `_init_weights` (transformers' init functions skip weights loaded from a file)."""
        for parameter in (self.current_projection, self.previous_projection, self.depth_projection,
                          self.head_queries, self.segment_start):
            init.normal_(parameter, std=std)
        init.normal_(self.head_codes, std=self.head_codes.shape[-1] ** -0.5)  # unit-scale code embeddings
        init.zeros_(self.head_bias)

    # ------------------------------------------------------------------ shared pieces (training and stepping)
    def _input_embeddings(self, current: torch.Tensor, previous: torch.Tensor, at_segment_start: torch.Tensor,
                          roles: dict[str, torch.Tensor], num_coarse: torch.Tensor) -> torch.Tensor:
        """current/previous code vectors `[B, F, Nq, D]`, at_segment_start `[B, F]` → input embeddings `[B, F, W]`."""
        current_mask = roles["current"].unsqueeze(1).unsqueeze(-1).to(current.dtype)  # [B, 1, Nq, 1]
        previous_mask = roles["previous"].unsqueeze(1).unsqueeze(-1).to(current.dtype)
        from_current = torch.einsum("bfld,ldw->bflw", current, self.current_projection) * current_mask
        from_previous = torch.einsum("bfld,ldw->bflw", previous, self.previous_projection)
        start = at_segment_start.unsqueeze(-1).unsqueeze(-1).to(current.dtype)
        from_previous = (from_previous * (1 - start) + self.segment_start * start) * previous_mask
        embeddings = (from_current + from_previous).sum(dim=2)
        return embeddings + self.num_coarse_embedding(num_coarse).unsqueeze(1)

    def _level_logits(self, conditioned: torch.Tensor, head_index: slice | int) -> torch.Tensor:
        """Depth MLP and output head(s). conditioned: `[..., W]` (one level) or `[..., L, W]` (several)."""
        hidden = conditioned + self.depth_mlp(self.depth_norm(conditioned))
        hidden = self.head_norm(hidden)
        if isinstance(head_index, int):
            query = hidden @ self.head_queries[head_index]
            return torch.addmm(self.head_bias[head_index], query, self.head_codes[head_index].t())
        query = torch.einsum("...lw,lwr->...lr", hidden, self.head_queries[head_index])
        return torch.einsum("...lr,lkr->...lk", query, self.head_codes[head_index]) + self.head_bias[head_index]

    def head_index(self, level: int) -> int:
        return level - self.output_levels.start

    # ------------------------------------------------------------------ training: teacher forcing, all frames at once
    def forward(self, audio_codes: torch.Tensor, num_coarse: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits for one sync segment per example.

        audio_codes: `[B, Nq, F]` (all levels), num_coarse: `[B]`, codebooks: `[Nq, K, D]` →
        logits `[B, F, L, K]` for the head levels `output_levels` (levels a given example does not predict are
        there too; mask them with `level_roles(...)["output"]`).
        """
        batch, levels, frames = audio_codes.shape
        roles = level_roles(self.target, num_coarse, levels)
        vectors = self._code_vectors(audio_codes.transpose(1, 2), codebooks)  # [B, F, Nq, D]
        previous = torch.cat([torch.zeros_like(vectors[:, :1]), vectors[:, :-1]], dim=1)
        at_start = torch.zeros(batch, frames, device=audio_codes.device)
        at_start[:, 0] = 1
        embeddings = self._input_embeddings(vectors, previous, at_start, roles, num_coarse)
        hidden = self.backbone(inputs_embeds=embeddings).last_hidden_state  # [B, F, W]
        heads = slice(0, len(self.output_levels))
        conditioned = hidden.unsqueeze(2).expand(-1, -1, len(self.output_levels), -1)
        if self.depth:
            depth = torch.einsum("bfld,ldw->bflw", vectors, self.depth_projection)
            depth = depth * roles["output"].unsqueeze(1).unsqueeze(-1).to(depth.dtype)
            before = torch.cumsum(depth, dim=2) - depth  # sum over the output levels below each level
            conditioned = conditioned + before[:, :, self.output_levels.start : self.output_levels.stop]
        return self._level_logits(conditioned, heads)

    def loss(self, audio_codes: torch.Tensor, num_coarse: torch.Tensor, codebooks: torch.Tensor,
             frame_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean cross-entropy in nats per predicted code, its token count and the top-1 accuracy.

        frame_mask: `[B, F]` (1 = real frame) or None."""
        return self.loss_from_logits(self(audio_codes, num_coarse, codebooks), audio_codes, num_coarse, frame_mask)

    def loss_from_logits(self, logits: torch.Tensor, audio_codes: torch.Tensor, num_coarse: torch.Tensor,
                         frame_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`loss` given `forward`'s logits (for trainers that call the model through a DDP wrapper)."""
        targets = audio_codes.transpose(1, 2)[:, :, self.output_levels.start : self.output_levels.stop]
        roles = level_roles(self.target, num_coarse, audio_codes.shape[1])
        mask = roles["output"][:, self.output_levels.start : self.output_levels.stop].unsqueeze(1)
        if frame_mask is not None:
            mask = mask & (frame_mask > 0).unsqueeze(-1)
        else:
            mask = mask.expand(-1, audio_codes.shape[-1], -1)
        losses = F.cross_entropy(logits.reshape(-1, self.codebook_size), targets.reshape(-1), reduction="none")
        weights = mask.reshape(-1).to(losses.dtype)
        count = weights.sum().clamp(min=1)
        correct = (logits.argmax(-1).reshape(-1) == targets.reshape(-1)).to(losses.dtype)
        return (losses * weights).sum() / count, count, (correct * weights).sum() / count

    # ------------------------------------------------------------------ inference: one step per frame
    @staticmethod
    def _code_vectors(codes: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
        """codes `[..., Nq]` → codebook vectors `[..., Nq, D]`."""
        levels = torch.arange(codes.shape[-1], device=codes.device)
        return codebooks[levels, codes]

    def start(self) -> FrameLMState:
        """A fresh stream at a sync point (empty context)."""
        return FrameLMState(cache=DynamicCache(config=self.backbone.config))

    def step(self, state: FrameLMState, current_codes: torch.Tensor, num_coarse: int,
             codebooks: torch.Tensor) -> torch.Tensor:
        """Advance one frame. current_codes: `[B, Nq]` with the known levels of this frame filled (the rest ignored).
        Returns the step's hidden state `[B, W]`: for each output level in order, `level_logits` then `condition`."""
        batch = current_codes.shape[0]
        count = torch.full((batch,), num_coarse, dtype=torch.long, device=current_codes.device)
        roles = level_roles(self.target, count, self.num_quantizers)
        current = self._code_vectors(current_codes, codebooks).unsqueeze(1)
        at_start = torch.full((batch, 1), 1.0 if state.previous_codes is None else 0.0, device=current_codes.device)
        if state.previous_codes is None:
            previous = torch.zeros_like(current)
        else:
            previous = self._code_vectors(state.previous_codes, codebooks).unsqueeze(1)
        embeddings = self._input_embeddings(current, previous, at_start, roles, count)
        hidden = self._backbone_step(embeddings, state.cache, state.frames)
        state.frames += 1
        return hidden[:, 0]

    def _backbone_step(self, embeddings: torch.Tensor, cache: DynamicCache, position: int) -> torch.Tensor:
        """GPT-2 for one new frame `[B, 1, W]` at `position`, extending `cache` (transformers' `cache=` API).

        The same computation as `self.backbone(inputs_embeds=..., cache=cache, use_cache=True)` in eval mode — the
        tests check they agree — without the per-call mask and output bookkeeping, a third of a step's time on a CPU:
        a single query attends to every cached frame, so no mask is needed."""
        positions = torch.full((embeddings.shape[0], 1), position, dtype=torch.long, device=embeddings.device)
        hidden = self.backbone.drop(embeddings + self.backbone.wpe(positions))
        for block in self.backbone.h:
            hidden = block(hidden, cache, None, None, use_cache=True, position_ids=positions)
        return self.backbone.ln_f(hidden)

    def level_logits(self, conditioned: torch.Tensor, level: int) -> torch.Tensor:
        """Logits `[B, K]` of `level` from the step's hidden state `[B, W]` as conditioned so far (see `condition`)."""
        return self._level_logits(conditioned, self.head_index(level))

    def condition(self, conditioned: torch.Tensor, level: int, codes: torch.Tensor,
                  codebooks: torch.Tensor) -> torch.Tensor:
        """Add the just-chosen `codes` `[B]` of `level` to the conditioning `[B, W]` of the next level of this frame
        (the depth module; unchanged when the levels are predicted in parallel)."""
        if not self.depth:
            return conditioned
        return conditioned + codebooks[level, codes] @ self.depth_projection[level]

    @staticmethod
    def finish_frame(state: FrameLMState, frame_codes: torch.Tensor) -> None:
        """Record the frame's codes `[B, Nq]` as the previous frame of the next step."""
        state.previous_codes = frame_codes
