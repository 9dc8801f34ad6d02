"""Dev-set quality of a codec checkpoint: STOI, PESQ-WB and log-mel distance per number of RVQ levels.

Cheap enough to run inside training (about a second per utterance and level on one thread). The scores are those of
`lmcodec evaluate` (`training/metrics/scoring.py`), without its alignment step: the codec has no delay, its output is
sample-aligned with its input.

`levels` may hold integers (RVQ levels) and "latent" (the unquantized encoder output, bypassing the RVQ: the
encoder/decoder ceiling).
"""

from __future__ import annotations

import numpy as np
import torch

from lmcodec.training.metrics.scoring import mel_distance, pesq_wb, stoi


def pesq_or_nan(prediction: np.ndarray, reference: np.ndarray) -> float:
    """PESQ-WB, NaN when the reference holds no utterance (a dev item may be silence)."""
    try:
        return pesq_wb(prediction, reference)
    except Exception:  # noqa: BLE001 - the pesq package raises its own error types for silent or too short input
        return float("nan")


@torch.no_grad()
def reconstruct(model, item: np.ndarray, levels) -> np.ndarray:
    """Encode `item` (`[T]` float, 16 kHz) with the offline encoder and decode it with `levels` RVQ levels (an int) or
    without quantization (`"latent"`)."""
    hop = model.config.hop_length
    length = item.shape[0]
    padded = np.pad(item, (0, -length % hop))
    samples = torch.from_numpy(padded).to(model.device, model.dtype).unsqueeze(0)
    latent, _ = model.encoder(samples)
    if levels == "latent":
        decoded = model.decode_latent(latent)
    else:
        codes = model.quantizer.encode(latent, int(levels))
        decoded = model.decode(codes).audio_values[:, 0]
    return decoded[0, :length].float().cpu().numpy()


@torch.no_grad()
def evaluate_dev(model, items: list[np.ndarray], levels=(3, 12), metrics=("stoi", "pesq", "mel")) -> dict[str, float]:
    """Mean STOI / PESQ-WB / mel distance over `items` for each entry of `levels`; keys like `stoi_q3`, `pesq_q12`,
    `mel_q3`, `stoi_qlatent`."""
    functions = {"stoi": stoi, "pesq": pesq_or_nan, "mel": mel_distance}
    was_training = model.training
    model.eval()
    results: dict[str, float] = {}
    try:
        for level in levels:
            scores: dict[str, list[float]] = {name: [] for name in metrics}
            for item in items:
                decoded = reconstruct(model, item, level)
                for name in metrics:
                    scores[name].append(functions[name](decoded, item))
            for name, values in scores.items():
                results[f"{name}_q{level}"] = float(np.nanmean(values))
    finally:
        model.train(was_training)
    return results


__all__ = ["evaluate_dev", "log_mel", "mel_distance", "pesq_wb", "reconstruct", "stoi"]
