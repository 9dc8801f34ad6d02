"""Dev-set quality of a codec checkpoint: STOI, PESQ-WB and log-mel distance per number of RVQ levels.

Cheap enough to run inside training (about a second per utterance and level on one thread). The mel distance uses
the analysis of `training/metrics/mel_distance.py` (1024-sample Hann window, hop 256, 80 Slaney mel bands, log10,
floor 1e-5), without its alignment step: the codec has no delay, its output is sample-aligned with its input.

`levels` may hold integers (RVQ levels) and "latent" (the unquantized encoder output, bypassing the RVQ: the
encoder/decoder ceiling).
"""

from __future__ import annotations

import numpy as np
import torch

from lmcodec.frames import SAMPLING_RATE

_MEL_CACHE: dict[str, torch.Tensor] = {}


def _mel_filters() -> torch.Tensor:
    if "filters" not in _MEL_CACHE:
        from transformers.audio_utils import mel_filter_bank

        filters = mel_filter_bank(num_frequency_bins=513, num_mel_filters=80, min_frequency=0.0,
                                  max_frequency=8000.0, sampling_rate=SAMPLING_RATE, norm="slaney",
                                  mel_scale="slaney")
        _MEL_CACHE["filters"] = torch.tensor(filters, dtype=torch.float32)
        _MEL_CACHE["window"] = torch.hann_window(1024)
    return _MEL_CACHE["filters"]


def log_mel(audio: np.ndarray) -> torch.Tensor:
    """`[T]` float audio → log10 mel `[80, frames]` (the evaluation metric's analysis)."""
    filters = _mel_filters()
    spectrum = torch.stft(torch.as_tensor(audio, dtype=torch.float32), 1024, 256, window=_MEL_CACHE["window"],
                          center=True, pad_mode="reflect", return_complex=True).abs()
    return torch.log10(torch.clamp(filters.T @ spectrum, min=1e-5))


def mel_distance(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Mean |log10 mel(prediction) - log10 mel(reference)| (0 = identical; the `mel_distance` metric, unaligned)."""
    return float((log_mel(np.clip(prediction, -1, 1)) - log_mel(reference)).abs().mean())


def pesq_wb(prediction: np.ndarray, reference: np.ndarray) -> float:
    """PESQ wide-band (ITU-T P.862.2) MOS-LQO, NaN when the reference holds no utterance."""
    from pesq import pesq

    try:
        return float(pesq(SAMPLING_RATE, reference.astype(np.float64), np.clip(prediction, -1, 1).astype(np.float64),
                          "wb"))
    except Exception:  # noqa: BLE001 - pesq raises for silent/too short input
        return float("nan")


def stoi(prediction: np.ndarray, reference: np.ndarray) -> float:
    from pystoi import stoi as pystoi

    return float(pystoi(reference, np.clip(prediction, -1, 1), SAMPLING_RATE, extended=False))


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
    functions = {"stoi": stoi, "pesq": pesq_wb, "mel": mel_distance}
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
