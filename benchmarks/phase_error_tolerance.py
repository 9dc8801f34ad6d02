"""How much harmonicity survives a phase error, by STFT frame: the decoder head's 20 ms window at a 10 ms hop against
longer windows and hops. Each utterance is re-synthesised (Hann weighted overlap-add) from its true magnitude and its
true phase plus Gaussian noise of `sigma` radians, independent per bin and frame; the score is the cepstral peak
prominence (`diagnose_dnsmos.cepstral_peak_prominence`, harmonicity; the input scores about 1.6).

    OMP_NUM_THREADS=1 python benchmarks/phase_error_tolerance.py [--items 6] [--seconds 8] [--sigmas 0.3 0.6 1.0]

A proxy, not a decoder: a learned head's phase errors are neither independent nor Gaussian.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from diagnose_dnsmos import SPEECH, cepstral_peak_prominence  # a sibling: a script's own folder is on sys.path

FRAMES = ((320, 160), (320, 80), (640, 320), (640, 160), (1024, 160))  # (window, hop) in samples at 16 kHz


def resynthesise_with_phase_error(audio: np.ndarray, window: int, hop: int, sigma: float,
                                  generator: torch.Generator) -> np.ndarray:
    """`audio` from its STFT magnitude and its phase plus N(0, sigma^2) per bin and frame."""
    signal = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    hann = torch.hann_window(window)
    spectrum = torch.stft(signal, window, hop, window=hann, return_complex=True)
    error = torch.polar(torch.ones_like(spectrum.real), sigma * torch.randn(spectrum.shape, generator=generator))
    return torch.istft(spectrum * error, window, hop, window=hann, length=len(signal)).numpy()


def main() -> None:
    from lmcodec.training.data import decode_audio

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(SPEECH))
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.3, 0.6, 1.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = sorted(Path(args.data).rglob("*.flac"))[: args.items]
    if not files:
        raise SystemExit(f"no .flac files under {args.data}")
    items = [decode_audio(str(path), max_seconds=args.seconds) for path in files]
    generator = torch.Generator().manual_seed(0)
    print(f"{len(items)} utterances x {args.seconds:g} s; CPP of the input: "
          f"{np.mean([cepstral_peak_prominence(item) for item in items]):.3f}")
    print("| window ms | hop ms | " + " | ".join(f"sigma {s:g} rad" for s in args.sigmas) + " |")
    print("|---|---|" + "---|" * len(args.sigmas))
    for window, hop in FRAMES:
        scores = [np.mean([cepstral_peak_prominence(resynthesise_with_phase_error(item, window, hop, sigma, generator))
                           for item in items]) for sigma in args.sigmas]
        print(f"| {window / 16:g} | {hop / 16:g} | " + " | ".join(f"{score:.3f}" for score in scores) + " |")


if __name__ == "__main__":
    main()
