"""Why is the decoder the limit? Measurements on dev utterances with a trained checkpoint (default: the bundled one).

    OMP_NUM_THREADS=1 python benchmarks/diagnose_decoder.py [--data-root DATA] [--model DIR] [--items N] [--seconds S]
        [--out JSON]

The dev utterances come from the speakers of the training recipes' dev split (`DEV_FOLDERS`, one utterance per
speaker), under the data root DATA of training/data_sources.md (default: data/ in the repository), whose
speech-extra/ folder `training/fetch_extra_speech.sh` writes.

1. STOI / PESQ-WB / mel distance with 3 and 12 RVQ levels and with the unquantized latent (RVQ bypassed).
2. The iSTFT head's own output, frame by frame, against the target frames it should produce (frame j of the head
   covers samples [160 j, 160 j + 320); since the head multiplies by a Hann window and overlap-adds at hop 160, the
   spectrum that reconstructs the input exactly is the rfft of the raw, unwindowed 320-sample segment):
   - oracle swaps: predicted magnitude + true phase, true magnitude + predicted phase;
   - log-magnitude error, energy-weighted phase coherence |E[w e^{i(dphi)}]| of the absolute phase and of the
     frame-to-frame phase advance (instantaneous frequency);
   - consistency: how much of the head's output survives overlap-add (the STFT of the output vs the head's spectra).
3. Loss balance: gradient norm of each reconstruction-loss part (mel, stft, phase) and of the commitment loss at the
   head's projection and at the encoder's input projection, on training-like crops.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from lmcodec.training import dev_eval
from lmcodec.training.data import decode_audio, folder_dataset

DATA_ROOT = Path(__file__).resolve().parents[1] / "data"  # the data root of training/data_sources.md
# The dev split of the training recipes (training/configs/default-cpu-v2.json's eval_dataset), relative to DATA_ROOT.
DEV_FOLDERS = [f"speech-extra/speechocean762/SPEAKER{s}" for s in
               ("0056", "0560", "1075", "1420", "2129", "2740", "3423", "6067", "9556", "9629")]
DEV_FOLDERS += ["speech-extra/npvcc2016/evals/TM3"]


def dev_items(count: int, seconds: float, data_root: str | Path = DATA_ROOT) -> list[np.ndarray]:
    """One utterance (the middle file) of each dev speaker under `data_root`, cut to `seconds`; the first `count`."""
    folders = [Path(data_root) / folder for folder in DEV_FOLDERS]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise SystemExit(f"dev speaker folder not found: {missing[0]} ({len(missing)} of {len(folders)} missing); pass "
                         "--data-root, the folder holding speech-extra/ (training/data_sources.md).")
    items = []
    for folder in folders:
        dataset = folder_dataset(folder)
        row = dataset[len(dataset) // 2]
        items.append(decode_audio(row["audio"], max_seconds=seconds))
    return items[:count]


@torch.no_grad()
def head_outputs(model, item: np.ndarray, levels):
    """(predicted log-magnitude, predicted phase, true complex target) per head frame, `[n, bins]` each, plus the
    decoder's hidden state before the head."""
    hop = model.config.hop_length
    padded = np.pad(item, (0, -item.shape[0] % hop))
    samples = torch.from_numpy(padded).unsqueeze(0)
    latent, _ = model.encoder(samples)
    if levels != "latent":
        latent = model.quantizer.decode(model.quantizer.encode(latent, int(levels)))
    decoder = model.decoder
    hidden, _ = decoder.frame_layers(decoder.input_projection(latent))
    b, n, c = hidden.shape
    hidden = decoder.upsample(hidden).reshape(b, n * decoder.upsampling, c)
    hidden, _ = decoder.stft_layers(hidden)
    hidden = decoder.output_norm(hidden)
    head = decoder.head
    log_magnitude, phase = head.spectra(hidden)
    frames = log_magnitude.shape[1]
    hop = head.synthesis_hop
    extended = torch.nn.functional.pad(samples, (head.lookback, head.window_length))  # frame i starts at hop*i - lookback
    segments = extended.unfold(1, head.window_length, hop)[:, :frames]
    if getattr(head, "overlap", 2) > 2:  # weighted overlap-add: the exact spectra are of Hann-windowed segments
        segments = segments * torch.hann_window(head.window_length, periodic=True)
    target = torch.fft.rfft(segments, dim=-1)
    return log_magnitude[0], phase[0], target[0], hidden


def synthesize(head, spectrum: torch.Tensor) -> np.ndarray:
    samples, _ = head.synthesize(spectrum.unsqueeze(0))
    return samples[0].clamp(-1, 1).numpy()


def coherence(delta: torch.Tensor, weight: torch.Tensor) -> float:
    return float((weight * torch.polar(torch.ones_like(delta), delta)).sum().abs() / weight.sum())


def main() -> None:
    import lmcodec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DATA_ROOT),
                        help="the data root holding speech-extra/ (default: data/ in the repository)")
    parser.add_argument("--model", default=lmcodec.DEFAULT_CHECKPOINT)
    parser.add_argument("--items", type=int, default=11)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--skip-grad", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = lmcodec.LMCodecModel.from_pretrained(args.model).eval()
    items = dev_items(args.items, args.seconds, args.data_root)
    report: dict = {"model": str(args.model), "items": len(items), "seconds": float(sum(map(len, items)) / 16000)}
    start = time.time()
    report["quality"] = dev_eval.evaluate_dev(model, items, levels=(3, 12, "latent"))
    print("quality", json.dumps(report["quality"], indent=1), f"{time.time() - start:.0f}s", flush=True)

    # 2. head analysis
    for levels in (12, "latent"):
        rows = {k: [] for k in ("pesq_true_phase", "stoi_true_phase", "mel_true_phase", "pesq_true_mag",
                                "stoi_true_mag", "mel_true_mag", "pesq_true_mag_zero_phase", "stoi_true_mag_zero_phase",
                                "log_mag_l1", "phase_coherence", "if_coherence", "consistency_db", "pesq_oracle",
                                "stoi_oracle", "log_mag_l1_high_energy", "mag_bias_db")}
        for item in items:
            log_mag, phase, target, _ = head_outputs(model, item, levels)
            true_mag, true_phase = target.abs(), target.angle()
            n = item.shape[0]
            mix = {
                "true_phase": torch.polar(log_mag.exp(), true_phase),
                "true_mag": torch.polar(true_mag, phase),
                "true_mag_zero_phase": torch.polar(true_mag, torch.zeros_like(phase)),
                "oracle": target,
            }
            for name, spectrum in mix.items():
                audio = synthesize(model.decoder.head, spectrum)[:n]
                if name != "oracle":
                    rows[f"mel_{name}"].append(dev_eval.mel_distance(audio, item)) if f"mel_{name}" in rows else None
                rows[f"pesq_{name}"].append(dev_eval.pesq_wb(audio, item))
                rows[f"stoi_{name}"].append(dev_eval.stoi(audio, item))
            weight = true_mag.pow(2)
            active = weight > weight.mean()
            diff = log_mag - torch.log(true_mag + 1e-7)
            rows["log_mag_l1"].append(float((diff.abs() * weight).sum() / weight.sum()))
            rows["log_mag_l1_high_energy"].append(float(diff[active].abs().mean()))
            rows["mag_bias_db"].append(float(20 / np.log(10) * (diff * weight).sum() / weight.sum()))
            rows["phase_coherence"].append(coherence(phase - true_phase, weight))
            d_pred = phase[1:] - phase[:-1]
            d_true = true_phase[1:] - true_phase[:-1]
            rows["if_coherence"].append(coherence(d_pred - d_true, torch.minimum(weight[1:], weight[:-1])))
            # consistency: energy of the head's spectra vs energy of the re-analysed output (same segmentation)
            pred = torch.polar(log_mag.exp(), phase)
            audio = torch.from_numpy(synthesize(model.decoder.head, pred))
            hop = model.decoder.head.window_length // getattr(model.decoder.head, "overlap", 2)
            segs = torch.nn.functional.pad(audio.unsqueeze(0), (0, 320)).unfold(1, 320, hop)[0, : pred.shape[0]]
            if hop < 160:
                segs = segs * torch.hann_window(320, periodic=True)
            reanalysed = torch.fft.rfft(segs, dim=-1)
            rows["consistency_db"].append(float(10 * torch.log10(reanalysed.abs().pow(2).sum() / pred.abs().pow(2).sum())))
        report[f"head_{levels}"] = {k: float(np.nanmean(v)) for k, v in rows.items() if v}
        print(f"head {levels}", json.dumps(report[f"head_{levels}"], indent=1), f"{time.time() - start:.0f}s",
              flush=True)

    # 3. loss balance
    if not args.skip_grad:
        model.train()
        crops = []
        rng = np.random.default_rng(0)
        for item in items:
            s = int(rng.integers(0, max(item.shape[0] - 16000, 1)))
            crops.append(item[s : s + 16000])
        batch = torch.from_numpy(np.stack([np.pad(c, (0, 16000 - len(c))) for c in crops[:8]]))
        model.quantizer.update_codebooks = False
        latent, _ = model.encoder(batch)
        quantized = model.quantizer(latent)
        recon = model.decode_latent(quantized.quantized)
        _, parts = model.reconstruction_loss(recon, batch)
        parts["commitment"] = quantized.commitment_loss
        probes = {"head": model.decoder.head.projection.weight, "decoder_in": model.decoder.input_projection.weight,
                  "encoder_in": model.encoder.input_projection.weight}
        grads = {}
        for name, value in parts.items():
            g = torch.autograd.grad(value, list(probes.values()), retain_graph=True, allow_unused=True)
            grads[name] = {"value": float(value)} | {p: (float(x.norm()) if x is not None else 0.0)
                                                     for p, x in zip(probes, g)}
        report["loss_gradients"] = grads
        print("loss balance", json.dumps(grads, indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
