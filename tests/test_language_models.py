"""The fine LM and the entropy LM: token layout shared by training and stepping, generation, learning."""

from __future__ import annotations

import pytest
import torch

import lmcodec
from lmcodec.frame_lm import ENTROPY, FINE, level_roles
from tests.conftest import random_codebooks, tiny_config


def random_codes(frames: int, seed: int = 0, levels: int = 4, size: int = 64) -> torch.Tensor:
    return torch.randint(0, size, (1, levels, frames), generator=torch.Generator().manual_seed(seed))


def test_level_roles_define_the_token_layout():
    roles = level_roles(FINE, torch.tensor([2]), 4)
    assert roles["current"].tolist() == [[True, True, False, False]]
    assert roles["previous"].tolist() == [[False, False, True, True]]
    assert roles["output"].tolist() == [[False, False, True, True]]
    roles = level_roles(ENTROPY, torch.tensor([3]), 4)
    assert roles["current"].tolist() == [[False] * 4]
    assert roles["previous"].tolist() == roles["output"].tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("lm_name", ["fine_lm", "entropy_lm"])
@pytest.mark.parametrize("num_coarse", [2, 3])
def test_stepping_reproduces_teacher_forcing(tiny_model, lm_name, num_coarse):
    """The per-frame path used at inference computes the same logits as the parallel training pass."""
    lm = getattr(tiny_model, lm_name)
    codes = random_codes(12)
    codebooks = tiny_model.quantizer.codebooks
    with torch.no_grad():
        parallel = lm(codes, torch.tensor([num_coarse]), codebooks)  # [1, F, L, K]
        state = lm.start()
        first = num_coarse if lm_name == "fine_lm" else 0
        last = 4 if lm_name == "fine_lm" else num_coarse
        for frame in range(codes.shape[-1]):
            frame_codes = codes[:, :, frame]
            conditioned = lm.step(state, frame_codes, num_coarse, codebooks)
            for level in range(first, last):
                logits = lm.level_logits(conditioned, level)
                torch.testing.assert_close(logits[0], parallel[0, frame, lm.head_index(level)], atol=1e-4, rtol=1e-4)
                conditioned = lm.condition(conditioned, level, frame_codes[:, level], codebooks)
            lm.finish_frame(state, frame_codes)


def test_generate_fine_codes_keeps_coarse_levels_and_is_deterministic(tiny_model):
    coarse = random_codes(30)[:, :2]
    full = tiny_model.generate_fine_codes(coarse)
    assert full.shape == (1, 4, 30)
    assert torch.equal(full[:, :2], coarse)
    assert ((full >= 0) & (full < 64)).all()
    assert torch.equal(tiny_model.generate_fine_codes(coarse), full)


def test_streaming_generation_equals_offline_with_sync_resets(tiny_model):
    coarse = random_codes(95, seed=1)[:, :3]
    offline = tiny_model.generate_fine_codes(coarse, sync_frames=40)
    generator = tiny_model.fine_code_generator(3, sync_frames=40)
    pieces = [generator.push(coarse[..., a:b]) for a, b in [(0, 7), (7, 41), (41, 42), (42, 95)]]
    assert torch.equal(torch.cat(pieces, dim=-1), offline)


def test_sampling_is_seeded(tiny_model):
    coarse = random_codes(20)[:, :2]
    first = tiny_model.generate_fine_codes(coarse, do_sample=True, temperature=1.5, top_k=8, seed=3)
    again = tiny_model.generate_fine_codes(coarse, do_sample=True, temperature=1.5, top_k=8, seed=3)
    other = tiny_model.generate_fine_codes(coarse, do_sample=True, temperature=1.5, top_k=8, seed=4)
    assert torch.equal(first, again) and not torch.equal(first, other)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        tiny_model.generate_fine_codes(coarse, do_sample=True, temperature=0.0)


def test_operating_points_are_enforced(tiny_model):
    with pytest.raises(ValueError, match="not an operating point"):
        tiny_model.generate_fine_codes(random_codes(5)[:, :1])


@pytest.mark.parametrize("lm_name", ["fine_lm", "entropy_lm"])
def test_language_model_learns_a_repeating_sequence(lm_name):
    torch.manual_seed(0)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()))
    lm = getattr(model, lm_name).train()
    pattern = random_codes(8, seed=5)
    codes = pattern.repeat(1, 1, 5)  # 40 frames: one sync segment
    optimizer = torch.optim.Adam(lm.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        num_coarse = torch.tensor([2 + step % 2])
        loss, count, accuracy = lm.loss(codes, num_coarse, model.quantizer.codebooks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])


def test_fast_backbone_step_equals_the_gpt2_forward(tiny_model):
    """`_backbone_step` calls GPT-2's blocks directly; it must compute exactly what `GPT2Model.forward` does."""
    from transformers import DynamicCache

    lm = tiny_model.entropy_lm.eval()
    inputs = torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference_cache, fast_cache = DynamicCache(config=lm.backbone.config), DynamicCache(config=lm.backbone.config)
        for position in range(7):
            step = inputs[:, position : position + 1]
            expected = lm.backbone(inputs_embeds=step, cache=reference_cache, use_cache=True).last_hidden_state
            assert torch.equal(lm._backbone_step(step, fast_cache, position), expected)
