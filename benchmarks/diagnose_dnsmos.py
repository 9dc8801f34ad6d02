"""Where does the codec lose DNSMOS? Phase and magnitude swaps of the iSTFT head's output, scored with DNSMOS P.835,
PESQ-WB and STOI on the first utterances of librispeech-test-other, beside Codec2 1300.

    OMP_NUM_THREADS=1 python benchmarks/diagnose_dnsmos.py --model DIR [--data DATA/speech/librispeech-test-other]
        [--items 10] [--seconds 8] [--levels 3] [--spread]

Rows (each decoded from the first `--levels` RVQ levels):
- codec: the decoder's output (predicted magnitude and phase; plus the harmonic branch if the checkpoint has one);
- pred_mag+true_phase / true_mag+pred_phase: the head's spectra with one half replaced by the input's (iSTFT head only);
- codec->GL: the codec output's own STFT magnitude with a new phase from 64 Griffin-Lim iterations (512 / 128): if
  DNSMOS rose here, the head's phase would be what costs it;
- original->GL: the same re-phasing of the input (what Griffin-Lim alone costs);
- codec2-1300, original: the anchors.
`--codec-only` keeps just the first row (for comparing checkpoints). `--compare A.json B.json` prints the paired
difference B - A of every metric for the rows two `--out` files share (mean +/- standard error over the items, and on
how many items B is higher): per-utterance DNSMOS is noisy, so checkpoints are compared item by item.
Without `--spread` the items are the first files, which in test-other are all one speaker (1688): the figures
recorded before 2026-12-01 are that speaker's, and the 40 ms decoder's DNSMOS gain there (+0.22) was the largest of
the five speakers (whole test-other: +0.05).
Columns: DNSMOS OVRL / SIG / BAK, PESQ-WB, STOI and the cepstral peak prominence (`cpp`, harmonicity).
DATA is the data root described in training/data_sources.md (default: data/ in the repository).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from diagnose_decoder import head_outputs, synthesize  # a sibling: a script's own folder is on sys.path

# The test set under the data root of training/data_sources.md (default: data/ in the repository).
SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "librispeech-test-other"


def griffin_lim(audio: np.ndarray, iterations: int = 64, n_fft: int = 512, hop: int = 128, seed: int = 0) -> np.ndarray:
    """`audio` re-synthesised from its own STFT magnitude with a Griffin-Lim phase."""
    signal = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    window = torch.hann_window(n_fft)
    magnitude = torch.stft(signal, n_fft, hop, window=window, return_complex=True).abs()
    generator = torch.Generator().manual_seed(seed)
    angle = torch.polar(torch.ones_like(magnitude), 2 * np.pi * torch.rand(magnitude.shape, generator=generator))
    for _ in range(iterations):
        estimate = torch.istft(magnitude * angle, n_fft, hop, window=window, length=len(signal))
        spectrum = torch.stft(estimate, n_fft, hop, window=window, return_complex=True)
        angle = spectrum / (spectrum.abs() + 1e-8)
    return torch.istft(magnitude * angle, n_fft, hop, window=window, length=len(signal)).numpy()


def cepstral_peak_prominence(audio: np.ndarray, n_fft: int = 1024, hop: int = 256, sampling_rate: int = 16000) -> float:
    """Harmonicity: the cepstral peak at quefrencies of 60-500 Hz over the median there, in dB-cepstrum units, averaged
    over the louder half of the 64 ms frames (clear harmonics: high; noise or smeared harmonics: low)."""
    signal = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    magnitude = torch.stft(signal, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().numpy()
    energy = (magnitude ** 2).sum(0)
    loud = energy > np.percentile(energy, 50)
    cepstrum = np.fft.irfft(20 * np.log10(magnitude[:, loud] + 1e-6), axis=0)[: n_fft // 2]
    quefrency = np.arange(n_fft // 2) / sampling_rate
    search = (quefrency >= 1 / 500) & (quefrency <= 1 / 60)
    return float(np.mean(cepstrum[search].max(0) - np.median(cepstrum[search], axis=0)))


def score_outputs(rows: dict, outputs: dict, reference: np.ndarray, dnsmos) -> None:
    """Append DNSMOS OVRL / SIG / BAK, PESQ-WB, STOI (against `reference`) and CPP of each of `outputs`
    ({name: audio}) to `rows[name]` ({metric: list})."""
    from lmcodec.training import dev_eval

    for name, audio in outputs.items():
        row = rows.setdefault(name, {"ovrl": [], "sig": [], "bak": [], "pesq": [], "stoi": [], "cpp": []})
        scores = dnsmos.compute(predictions=[audio])
        for metric in ("ovrl", "sig", "bak"):
            row[metric].append(scores[metric])
        row["pesq"].append(dev_eval.pesq_wb(audio, reference))
        row["stoi"].append(dev_eval.stoi(audio, reference))
        row["cpp"].append(cepstral_peak_prominence(audio))


def paired_differences(baseline: dict, candidate: dict) -> dict[str, dict[str, tuple]]:
    """{row: {metric: (mean of candidate - baseline, its standard error, items where the candidate is higher, items)}}
    over the rows both `--out` files hold (every metric here is better higher); raises unless they scored the same
    files."""
    from lmcodec.training.report import paired_difference

    if baseline["files"] != candidate["files"]:
        raise SystemExit("--compare: the two files scored different utterances; run both with the same --items, "
                         "--spread and --data.")
    return {row: {metric: paired_difference({"per_item": candidate["per_item"][row]},
                                            {"per_item": baseline["per_item"][row]}, metric, higher_is_better=True)
                  for metric in baseline["per_item"][row]}
            for row in baseline["per_item"].keys() & candidate["per_item"].keys()}


def print_comparison(baseline_path: str, candidate_path: str) -> None:
    baseline, candidate = (json.loads(Path(path).read_text()) for path in (baseline_path, candidate_path))
    print(f"{candidate['model']} - {baseline['model']} ({baseline['items']} utterances, paired)")
    for row, metrics in paired_differences(baseline, candidate).items():
        print(f"{row:22s} " + "  ".join(f"{metric} {mean:+.3f}" + (f"±{error:.3f}" if error is not None else "")
                                        + f" ({wins}/{n})" for metric, (mean, error, wins, n) in metrics.items()))


def main() -> None:
    import evaluate

    import lmcodec
    from lmcodec.training.data import decode_audio, spread_indices
    from lmcodec.training.metrics import metric_path
    from lmcodec.training.reference_codecs import find_reference_codecs

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=lmcodec.DEFAULT_CHECKPOINT)
    parser.add_argument("--data", default=str(SPEECH))
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the table, and every item's scores, as JSON here")
    parser.add_argument("--spread", action="store_true",
                        help="take the items evenly spread over the sorted files (test-other: 2 of each of its 5 speakers) "
                             "instead of the first ones (all of speaker 1688)")
    parser.add_argument("--codec-only", action="store_true",
                        help="only the codec row (to compare checkpoints; the anchors do not change)")
    parser.add_argument("--compare", nargs=2, metavar=("BASELINE_JSON", "CANDIDATE_JSON"),
                        help="print the paired differences between two --out files and exit (nothing is decoded)")
    args = parser.parse_args()
    if args.compare:
        print_comparison(*args.compare)
        return
    torch.set_num_threads(1)
    model = lmcodec.LMCodecModel.from_pretrained(args.model).eval()
    files = sorted(Path(args.data).rglob("*.flac"))
    files = [files[i] for i in spread_indices(len(files), args.items)] if args.spread else files[: args.items]
    if not files:
        raise SystemExit(f"no .flac files under {args.data}")
    items = [decode_audio(str(path), max_seconds=args.seconds) for path in files]
    dnsmos = evaluate.load(metric_path("dnsmos"))
    codec2 = {codec.slug: codec for codec in find_reference_codecs(("codec2",))[0]}.get("codec2-1300")
    istft_only = model.decoder.harmonic_head is None
    rows: dict[str, dict[str, list[float]]] = {}
    for item in items:
        n = len(item)
        codes = model.encode(torch.from_numpy(item).view(1, 1, -1), num_quantizers=args.levels).audio_codes
        decoded = model.decode(codes).audio_values[0, 0, :n].numpy()
        outputs = {"codec": decoded}
        if istft_only and not args.codec_only:
            log_magnitude, phase, target, _ = head_outputs(model, item, args.levels)
            head = model.decoder.head
            outputs["pred_mag+true_phase"] = synthesize(head, torch.polar(log_magnitude.exp(), target.angle()))[:n]
            outputs["true_mag+pred_phase"] = synthesize(head, torch.polar(target.abs(), phase))[:n]
        if not args.codec_only:
            outputs["codec->GL"] = griffin_lim(decoded)
            outputs["original->GL"] = griffin_lim(item)
            if codec2 is not None:
                outputs["codec2-1300"] = codec2.code(item).audio[:n]
            outputs["original"] = item
        score_outputs(rows, outputs, item, dnsmos)
    table = {name: {metric: float(np.mean(values)) for metric, values in row.items()} for name, row in rows.items()}
    print(f"{args.model}: {len(items)} utterances x {args.seconds:g} s, {args.levels} levels")
    for name, scores in table.items():
        print(f"{name:22s} " + "  ".join(f"{metric} {value:.3f}" for metric, value in scores.items()))
    if args.out:
        Path(args.out).write_text(json.dumps({"model": str(args.model), "items": len(items), "table": table,
                                              "files": [path.name for path in files], "per_item": rows}, indent=1))


if __name__ == "__main__":
    main()
