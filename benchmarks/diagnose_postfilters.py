"""Would a classical post-processing step after the decoder raise DNSMOS? (All measured "no"; none is used.)

    OMP_NUM_THREADS=1 python benchmarks/diagnose_postfilters.py [--model DIR] [--items 10] [--seconds 8] [--levels 3] [--only A,B]
    OMP_NUM_THREADS=1 python benchmarks/diagnose_postfilters.py --level-scan [--items 50]

Default mode: the decoded output of `--items` test-other utterances spread over its speakers, as is and after each
post-processing step below, scored like `diagnose_dnsmos.py` (DNSMOS OVRL / SIG / BAK, PESQ-WB, STOI, CPP), with the
paired OVRL difference to the unprocessed output (mean ± standard error):
- `comb g=…`: pitch postfilter `y = (x + g x[n - T]) / (1 + g)` on voiced 10 ms blocks (T from YIN on the decoded
  output with frames that end at the block's end, i.e. causal; `centred`: frames centred on the block, 25 ms
  look-ahead; `oracle`: YIN on the input), parameters cross-faded linearly over each block;
- `lpc γ1/γ2`: formant postfilter `A(z/γ1) / A(z/γ2)` from an order-16 LPC of the last 25 ms, tilt `1 - 0.3 z^-1`,
  level restored;
- `power p`: STFT magnitudes (512 / 128) raised to the power p, each frame's energy kept (spectral sharpening);
- `4 kHz`: band-limited like Codec2 (to 8 kHz and back with soxr).
`--level-scan`: each utterance scaled to -26 and -22 dB RMS before encoding and back after decoding, against as is,
per speaker (is the quietest speaker's low DNSMOS a level problem?).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.signal
import soxr
import torch

from diagnose_dnsmos import SPEECH, score_outputs  # a sibling: a script's own folder is on sys.path

from lmcodec.frames import SAMPLING_RATE
BLOCK = 160  # 10 ms: the decoder's hop, the postfilters' update period
YIN_FRAME = 804  # samples YIN reads per frame (integration + max lag at 50 Hz)


def pitch_per_block(audio: np.ndarray, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz, voiced) per 10 ms block of `audio` from YIN; causal frames end at the block's end."""
    from lmcodec.pitch import yin_pitch

    centres = torch.arange(len(audio) // BLOCK) * BLOCK + BLOCK // 2
    if causal:
        centres = (centres + BLOCK // 2 - YIN_FRAME // 2).clamp(min=0)
    track = yin_pitch(torch.from_numpy(audio).float()[None], centres)
    return track.f0[0].numpy(), track.voiced[0].numpy()


def comb_postfilter(audio: np.ndarray, f0: np.ndarray, voiced: np.ndarray, gain: float) -> np.ndarray:
    """`(x + g x[n - T]) / (1 + g)` per block (T = fs / f0, linear interpolation), cross-faded from the previous
    block's filter to this block's over the block; unvoiced blocks pass through."""
    x = audio.astype(np.float64)
    y = x.copy()
    ramp = (np.arange(BLOCK) + 0.5) / BLOCK

    def filtered(start: int, period: float, g: float) -> np.ndarray:
        segment = x[start : start + BLOCK]
        if g == 0.0:
            return segment
        position = np.arange(start, start + BLOCK) - period
        low = np.floor(position).astype(int)
        fraction = position - low
        delayed = (1 - fraction) * x[np.clip(low, 0, None)] + fraction * x[np.clip(low + 1, 0, None)]
        delayed[low < 0] = 0.0
        return (segment + g * delayed) / (1 + g)

    previous = (0.0, 0.0)
    for block in range(len(x) // BLOCK):
        current = (SAMPLING_RATE / f0[block], gain) if voiced[block] and f0[block] > 0 else (0.0, 0.0)
        start = block * BLOCK
        y[start : start + BLOCK] = (1 - ramp) * filtered(start, *previous) + ramp * filtered(start, *current)
        previous = current
    return y.astype(np.float32)


def lpc_postfilter(audio: np.ndarray, gamma_zeros: float, gamma_poles: float, order: int = 16,
                   analysis: int = 400, tilt: float = 0.3) -> np.ndarray:
    """Short-term (formant) postfilter A(z/γ1) / A(z/γ2), LPC from the last `analysis` samples of each block."""
    x = audio.astype(np.float64)
    y = np.zeros_like(x)
    window = np.hanning(analysis)
    powers = np.arange(order + 1)
    state = np.zeros(order)
    for block in range(len(x) // BLOCK):
        end = (block + 1) * BLOCK
        segment = x[max(0, end - analysis) : end]
        segment = np.pad(segment, (analysis - len(segment), 0)) * window
        autocorrelation = np.correlate(segment, segment, "full")[analysis - 1 : analysis + order]
        autocorrelation[0] = autocorrelation[0] * 1.0001 + 1e-9  # white-noise correction
        lpc = np.concatenate([[1.0], scipy.linalg.solve_toeplitz(autocorrelation[:order], -autocorrelation[1:])])
        y[end - BLOCK : end], state = scipy.signal.lfilter(lpc * gamma_zeros**powers, lpc * gamma_poles**powers,
                                                            x[end - BLOCK : end], zi=state)
    y = scipy.signal.lfilter([1.0, -tilt], [1.0], y)
    return (y * np.sqrt((x**2).sum() / max((y**2).sum(), 1e-12))).astype(np.float32)


def spectral_power(audio: np.ndarray, power: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """STFT magnitudes raised to `power` with each frame's energy kept; the phase unchanged."""
    signal = torch.from_numpy(audio).float()
    window = torch.hann_window(n_fft)
    spectrum = torch.stft(signal, n_fft, hop, window=window, return_complex=True)
    magnitude = spectrum.abs()
    sharpened = magnitude.pow(power)
    sharpened = sharpened * (magnitude.pow(2).sum(0, keepdim=True)
                             / sharpened.pow(2).sum(0, keepdim=True).clamp(min=1e-12)).sqrt()
    return torch.istft(torch.polar(sharpened, spectrum.angle()), n_fft, hop, window=window,
                       length=len(audio)).numpy()


def band_limited(audio: np.ndarray) -> np.ndarray:
    return soxr.resample(soxr.resample(audio, SAMPLING_RATE, 8000), 8000, SAMPLING_RATE)[: len(audio)]


def pitch_tracks(decoded: np.ndarray, reference: np.ndarray):
    """`pitch(oracle, causal)` → `pitch_per_block` of the input (oracle) or the decoded output, each computed once."""
    tracks = {}

    def pitch(oracle: bool, causal: bool) -> tuple[np.ndarray, np.ndarray]:
        if (oracle, causal) not in tracks:
            tracks[oracle, causal] = pitch_per_block(reference if oracle else decoded, causal)
        return tracks[oracle, causal]

    return pitch


POSTFILTERS = {  # name -> (decoded, pitch tracks) -> post-processed audio
    "as decoded": lambda decoded, pitch: decoded,
    "comb g=0.5": lambda decoded, pitch: comb_postfilter(decoded, *pitch(False, True), 0.5),
    "comb g=0.5 centred": lambda decoded, pitch: comb_postfilter(decoded, *pitch(False, False), 0.5),
    "comb g=0.8": lambda decoded, pitch: comb_postfilter(decoded, *pitch(False, True), 0.8),
    "comb g=0.5 oracle": lambda decoded, pitch: comb_postfilter(decoded, *pitch(True, False), 0.5),
    "lpc 0.5/0.75": lambda decoded, pitch: lpc_postfilter(decoded, 0.5, 0.75),
    "lpc 0.6/0.8": lambda decoded, pitch: lpc_postfilter(decoded, 0.6, 0.8),
    "power 1.2": lambda decoded, pitch: spectral_power(decoded, 1.2),
    "power 1.5": lambda decoded, pitch: spectral_power(decoded, 1.5),
    "4 kHz": lambda decoded, pitch: band_limited(decoded),
}


def main() -> None:
    import evaluate

    import lmcodec
    from lmcodec.training.data import decode_audio, spread_indices
    from lmcodec.training.metrics import metric_path

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=lmcodec.DEFAULT_CHECKPOINT)
    parser.add_argument("--data", default=str(SPEECH))
    parser.add_argument("--items", type=int, default=None, help="default: 10 (postfilters), 50 (--level-scan)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--level-scan", action="store_true")
    parser.add_argument("--only", default=",".join(POSTFILTERS),
                        help=f"comma-separated postfilters to run, 'as decoded' first (default: all of {list(POSTFILTERS)})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = lmcodec.LMCodecModel.from_pretrained(args.model).eval()
    files = sorted(Path(args.data).rglob("*.flac"))
    if not files:
        raise SystemExit(f"no .flac files under {args.data}")
    files = [files[i] for i in spread_indices(len(files), args.items or (50 if args.level_scan else 10))]
    dnsmos = evaluate.load(metric_path("dnsmos"))
    names = [name.strip() for name in args.only.split(",")]
    unknown = [name for name in names if name not in POSTFILTERS]
    if unknown or names[0] != "as decoded":
        raise SystemExit(f"--only: unknown {unknown} or 'as decoded' not first; choose from {list(POSTFILTERS)}")

    def decode(audio: np.ndarray, gain: float = 1.0) -> np.ndarray:
        with torch.no_grad():
            codes = model.encode(torch.from_numpy(audio * gain).view(1, 1, -1).float(),
                                 num_quantizers=args.levels).audio_codes
            return model.decode(codes).audio_values[0, 0, : len(audio)].numpy() / gain

    rows: dict[str, dict[str, list[float]]] = {}
    speakers = []
    for path in files:
        item = decode_audio(str(path), max_seconds=args.seconds)
        speakers.append(path.name.split("-")[0])
        if args.level_scan:
            level = 20 * np.log10(np.sqrt(np.mean(item**2)))
            outputs = {"as is": decode(item)}
            outputs.update({f"at {target} dB": decode(item, 10 ** ((target - level) / 20)) for target in (-26, -22)})
        else:
            decoded = decode(item)
            pitch = pitch_tracks(decoded, item)
            outputs = {name: POSTFILTERS[name](decoded, pitch) for name in names}
        score_outputs(rows, outputs, item, dnsmos)
    print(f"{args.model}: {len(files)} utterances x {args.seconds:g} s, {args.levels} levels")
    baseline = np.array(next(iter(rows.values()))["ovrl"])
    for name, row in rows.items():
        difference = np.array(row["ovrl"]) - baseline
        print(f"{name:20s} " + "  ".join(f"{metric} {np.mean(values):.3f}" for metric, values in row.items())
              + f"  dOVRL {difference.mean():+.3f} ± {difference.std(ddof=1) / np.sqrt(len(difference)):.3f}")
    if args.level_scan:
        speakers = np.array(speakers)
        for speaker in sorted(set(speakers)):
            print(f"speaker {speaker}: " + "  ".join(
                f"{name} {np.mean(np.array(row['ovrl'])[speakers == speaker]):.3f}" for name, row in rows.items()))


if __name__ == "__main__":
    main()
