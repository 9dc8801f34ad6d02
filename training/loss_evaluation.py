"""Quality under packet loss: LMCodec's datagram mode against Opus and Codec2 1300, all in 40 ms packets.

    python -m training.loss_evaluation --data DIR --out DIR [--plot FILE] [--max-files N] [--threads 1]

Every audio file of DIR (sorted by name) is sent through Gilbert-Elliott loss patterns
(`lmcodec.packet_loss.gilbert_elliott`) at 0, 5, 10 and 20 % loss with mean bursts of 1 and 3 packets, and at the
target condition of 10 % with bursts of 2. At a given (utterance, condition) every system loses the same packets: the
pattern's seed comes from the utterance's position and the condition alone (`loss_seed`). The systems
(`build_systems`):

- LMCodec Nc=3 in datagram mode (the checkpoint's ONNX runtime), once per concealment in
  `lmcodec.datagram.CONCEALMENTS`; each utterance is encoded once and its packets reused for every condition.
- Opus at 6 and 8 kbps (libopus, `packet_codecs`): with its own concealment (PLC), and with in-band FEC (the encoder
  told the condition's loss rate; a lost packet is decoded from the next packet when that one arrives). Whether
  libopus coded FEC at all is counted (packets whose SILK header sets the LBRR flag), and every FEC output is
  compared with concealing the same packets without it; a 24 kbps run, where libopus 1.3 does code FEC, is the
  control.
- Codec2 1300, lost frames zeroed or repeated (`packet_codecs`).

kbps counts every byte of every packet (and LMCodec's stream description, sent once); no RTP / UDP headers. Each
output is scored against the input with PESQ-WB, STOI and DNSMOS OVRL (the project's `evaluate` metrics, as
`lmcodec evaluate` loads them). Per-utterance results are cached in `--out/utterances/*.json`, so an interrupted run
resumes where it stopped and a run with more systems (new concealments) computes only what is missing.
`--out/summary.md` has the means, the paired differences the targets need and the timing; `--out/results.json`
every number; `--plot` the quality against the loss rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from lmcodec.errors import LMCodecError

from .args import accept_underscore_spellings
from .evaluation import finite, load_scorers, prepare_output, score, write_json
from .packet_codecs import (PACKET_SAMPLES, PACKET_SECONDS, codec2_encode, codec2_receive, libopus_version,
                            opus_bandwidth, opus_encode, opus_has_lbrr, opus_receive, packet_count)
from .reference_codecs import SAMPLING_RATE, fit_length, find_reference_codecs
from .report import DIGITS, LABELS, paired_cell, paired_difference

METRICS = ("pesq", "stoi", "dnsmos_ovrl")
METRIC_MODULES = ("pesq", "stoi", "dnsmos")
NUM_COARSE = 3
PACKET_FRAMES = 2  # 40 ms packets of 20 ms frames
DEFAULT_SYNC_FRAMES = 12  # the datagram mode's default context reset: 240 ms
SHORT_SYNC_FRAMES = 4  # 80 ms: at most one undecodable packet after a loss
OPUS_KBPS = (6, 8)
FEC_CONTROL_KBPS = 24  # a rate at which libopus 1.3 does code FEC: shows the FEC check can see it
LOSS_RATES = (0.0, 0.05, 0.1, 0.2)
PLOTTED_BURSTS = (1, 3)


@dataclass(frozen=True)
class Condition:
    """A loss condition: long-run loss rate (fraction) and mean burst length (packets)."""

    loss_rate: float
    mean_burst: int

    @property
    def key(self) -> str:
        return f"loss{round(self.loss_rate * 100):02d}-burst{self.mean_burst}"

    @property
    def label(self) -> str:
        if self.loss_rate == 0:
            return "0 %"
        return f"{self.loss_rate * 100:g} %, B={self.mean_burst}"


NO_LOSS = Condition(0.0, 1)
TARGET = Condition(0.1, 2)
CONDITIONS = (NO_LOSS, *(Condition(rate, burst) for burst in PLOTTED_BURSTS for rate in LOSS_RATES if rate),
              TARGET)


def loss_seed(utterance_index: int, condition: Condition) -> int:
    """The loss pattern's seed: from the utterance's position in DATA and the condition, nothing else."""
    return zlib.crc32(f"{utterance_index}/{condition.key}".encode())


def loss_pattern(num_packets: int, utterance_index: int, condition: Condition) -> np.ndarray:
    from lmcodec.packet_loss import gilbert_elliott

    return gilbert_elliott(num_packets, condition.loss_rate, condition.mean_burst,
                           loss_seed(utterance_index, condition))


# ---------------------------------------------------------------------------------------------------- systems
@dataclass
class Sent:
    """What a sender put on the wire for one utterance: its packets and what went once, out of band."""

    packets: list[bytes]
    description: bytes = b""

    @property
    def kbps(self) -> float:
        seconds = len(self.packets) * PACKET_SECONDS
        return 8 * (len(self.description) + sum(map(len, self.packets))) / seconds / 1000


@dataclass
class LossySystem:
    """One row of the results: how it sends an utterance, and how its receiver fills the packets lost."""

    name: str
    slug: str
    family: str  # "lmcodec", "opus" or "codec2"
    send: Callable[[np.ndarray, Condition], Sent]
    receive: Callable[[Sent, np.ndarray, int], np.ndarray]  # (sent, lost, seed) → 16 kHz audio
    sending: Callable[[Condition], str]  # which transmission a condition needs (shared between systems)
    opus_fec: bool = False


def lmcodec_send(codec, audio: np.ndarray, condition: Condition, sync_frames: int = DEFAULT_SYNC_FRAMES) -> Sent:
    encoder = codec.datagram_encoder(packet_frames=PACKET_FRAMES, sync_frames=sync_frames,
                                     num_coarse_quantizers=NUM_COARSE)
    packets = encoder.push(audio) + encoder.flush()
    return Sent(packets, encoder.description())


def lmcodec_receive(codec, concealment: str, sent: Sent, lost: np.ndarray, seed: int) -> np.ndarray:
    from lmcodec.packet_loss import send_through_loss

    return send_through_loss(codec, sent.description, sent.packets, lost, concealment=concealment, seed=seed).audio


def opus_loss_percent(condition: Condition, fec: bool) -> int:
    """What the Opus encoder is told about the loss: the condition's rate with FEC, nothing without."""
    return round(condition.loss_rate * 100) if fec else 0


def lmcodec_systems(codec) -> list[LossySystem]:
    """The default datagram stream (context reset every 240 ms) with every concealment, and the shorter reset of
    lossy links (80 ms: damage after a loss at most one packet) with the two that continue the waveform."""
    from lmcodec.datagram import CONCEALMENTS

    systems = [LossySystem(f"LMCodec Nc={NUM_COARSE}, {kind}", f"lmcodec-{kind}", "lmcodec",
                           partial(lmcodec_send, codec), partial(lmcodec_receive, codec, kind),
                           lambda condition: "lmcodec")
               for kind in CONCEALMENTS]
    short = partial(lmcodec_send, codec, sync_frames=SHORT_SYNC_FRAMES)
    systems += [LossySystem(f"LMCodec Nc={NUM_COARSE} reset 80 ms, {kind}", f"lmcodec-r{SHORT_SYNC_FRAMES}-{kind}",
                            "lmcodec", short, partial(lmcodec_receive, codec, kind),
                            lambda condition: f"lmcodec-r{SHORT_SYNC_FRAMES}")
                for kind in CONCEALMENTS if kind != "silence"]
    return systems


def opus_systems() -> list[LossySystem]:
    systems = []
    for kbps in OPUS_KBPS:
        for fec in (False, True):
            def send(audio, condition, kbps=kbps, fec=fec):
                return Sent(opus_encode(audio, kbps, fec, opus_loss_percent(condition, fec)))

            def sending(condition, kbps=kbps, fec=fec):
                return f"opus-{kbps}" + (f"-fec-{opus_loss_percent(condition, fec)}" if fec else "")

            systems.append(LossySystem(f"Opus {kbps} kbps, {'FEC' if fec else 'PLC'}",
                                       f"opus-{kbps}-{'fec' if fec else 'plc'}", "opus", send,
                                       lambda sent, lost, seed, fec=fec: opus_receive(sent.packets, lost, fec),
                                       sending, opus_fec=fec))
    return systems


def codec2_systems() -> list[LossySystem]:
    return [LossySystem(f"Codec2 1300, {mode}", f"codec2-1300-{mode}", "codec2",
                        lambda audio, condition: Sent(codec2_encode(audio)),
                        lambda sent, lost, seed, repeat=(mode == "repeated"): codec2_receive(sent.packets, lost,
                                                                                             repeat),
                        lambda condition: "codec2")
            for mode in ("zeroed", "repeated")]


def build_systems(codec) -> tuple[list[LossySystem], list[str]]:
    """(every system that can run here, one line per reference codec that cannot)."""
    systems, missing = lmcodec_systems(codec), []
    if opus_available():
        systems += opus_systems()
    else:
        missing.append("Opus skipped: libopus not found (apt-get install libopus0)")
    found, absent = find_reference_codecs(["codec2"])
    systems += codec2_systems() if found else []
    return systems, missing + absent


# ---------------------------------------------------------------------------------------------------- one utterance
def empty_record(name: str, index: int, audio: np.ndarray, settings: dict) -> dict:
    return {"name": name, "index": index, "seconds": len(audio) / SAMPLING_RATE,
            "num_packets": packet_count(len(audio)), "settings": settings, "patterns": {}, "original": None,
            "send_seconds": {}, "results": {}}


def pattern_text(lost: np.ndarray) -> str:
    return "".join("1" if is_lost else "0" for is_lost in lost)


def scored(scores: dict, position: int) -> dict:
    return {key: finite(scores[key][position]) for key in METRICS}


def fec_facts(sent: Sent, lost: np.ndarray, audio: np.ndarray) -> dict:
    """Did Opus code FEC: how many packets carry it (the LBRR flag), and whether decoding with it changed the output
    (against concealing the same packets without it; None without losses)."""
    concealed = fit_length(opus_receive(sent.packets, lost, False), len(audio))
    changed = bool(np.any(concealed != audio)) if lost.any() else None
    return {"lbrr_packets": sum(map(opus_has_lbrr, sent.packets)), "fec_changed": changed}


def run_system(system: LossySystem, record: dict, audio: np.ndarray, conditions: list[Condition], scorers: dict,
               transmissions: dict) -> None:
    """Send one utterance through `conditions` with `system` and store the scores and times in `record`."""
    outputs, entries = [], []
    for condition in conditions:
        sending = system.sending(condition)
        if sending not in transmissions:
            start = time.perf_counter()
            transmissions[sending] = system.send(audio, condition)
            record["send_seconds"][sending] = time.perf_counter() - start
        sent, lost = transmissions[sending], np.array([c == "1" for c in record["patterns"][condition.key]])
        if len(sent.packets) != record["num_packets"]:
            raise LMCodecError(f"{system.name} sent {len(sent.packets)} packets for {record['num_packets']} of 40 ms.")
        start = time.perf_counter()
        received = fit_length(system.receive(sent, lost, record["index"]), len(audio))
        entries.append({"kbps": sent.kbps, "packets_lost": int(lost.sum()), "sending": sending,
                        "receive_seconds": time.perf_counter() - start,
                        **(fec_facts(sent, lost, received) if system.opus_fec else {})})
        outputs.append(received)
    start = time.perf_counter()
    scores = score(scorers, audio, outputs)
    seconds = (time.perf_counter() - start) / len(outputs)
    for position, (condition, entry) in enumerate(zip(conditions, entries)):
        entry.update(scored(scores, position), score_seconds=seconds)
        record["results"].setdefault(system.slug, {})[condition.key] = entry


def fec_control(audio: np.ndarray, index: int) -> dict:
    """Opus at `FEC_CONTROL_KBPS` with FEC at the target condition (`fec_facts`: shows the check sees FEC where
    libopus codes it), and the bandwidths each Opus rate codes without and with FEC there."""
    lost = loss_pattern(packet_count(len(audio)), index, TARGET)
    sent = Sent(opus_encode(audio, FEC_CONTROL_KBPS, True, opus_loss_percent(TARGET, True)))
    bandwidths = {f"{kbps} kbps{', FEC' if fec else ''}": sorted({opus_bandwidth(packet) for packet in opus_encode(
        audio, kbps, fec, opus_loss_percent(TARGET, fec))}) for kbps in (*OPUS_KBPS, FEC_CONTROL_KBPS)
        for fec in (False, True)}
    return {"kbps": FEC_CONTROL_KBPS, **fec_facts(sent, lost, opus_receive(sent.packets, lost, True)),
            "packets": len(sent.packets), "bandwidths": bandwidths}


def evaluate_utterance(path: Path, name: str, index: int, audio: np.ndarray, systems: list[LossySystem],
                       scorers: dict, settings: dict) -> dict:
    """The utterance's record (cached in `path`), with whatever it lacked computed and written after each system."""
    record = json.loads(path.read_text()) if path.is_file() else empty_record(name, index, audio, settings)
    if record["settings"] != settings:
        raise LMCodecError(f"{path} was made with other settings ({record['settings']}); use a new --out folder.")
    for condition in CONDITIONS:
        record["patterns"].setdefault(condition.key, pattern_text(loss_pattern(record["num_packets"], index,
                                                                               condition)))
    if record["original"] is None:
        record["original"] = scored(score(scorers, audio, [audio]), 0)
    if "fec_control" not in record and any(system.family == "opus" for system in systems):
        record["fec_control"] = fec_control(audio, index)
    transmissions = {}
    for system in systems:
        missing = [condition for condition in CONDITIONS if condition.key not in record["results"].get(system.slug, {})]
        if missing:
            run_system(system, record, audio, missing, scorers, transmissions)
            write_json(path, record)
    write_json(path, record)
    return record


# ---------------------------------------------------------------------------------------------------- the numbers
def per_utterance(records: list[dict], slug: str, condition: Condition, key: str) -> list:
    return [record["results"].get(slug, {}).get(condition.key, {}).get(key) for record in records]


def as_row(values: list) -> dict:
    """A list of per-utterance values in the shape `report.paired_difference` takes."""
    return {"per_item": {"value": values}}


def mean_of(values: list) -> float | None:
    valid = [value for value in values if value is not None]
    return float(np.mean(valid)) if valid else None


def overall_kbps(records: list[dict], slug: str) -> float | None:
    """Every byte a system sent without loss over all the audio its packets hold (not a mean of per-utterance rates,
    which short utterances would sway)."""
    pairs = [(kbps, record["num_packets"]) for kbps, record in zip(per_utterance(records, slug, NO_LOSS, "kbps"),
                                                                   records) if kbps is not None]
    return sum(kbps * packets for kbps, packets in pairs) / sum(packets for _, packets in pairs) if pairs else None


def paired(values: list, others: list, higher_is_better: bool = True) -> tuple | None:
    return paired_difference(as_row(values), as_row(others), "value", higher_is_better)


def drops(records: list[dict], slug: str, condition: Condition) -> list:
    """Per utterance: DNSMOS OVRL without loss minus DNSMOS OVRL at `condition` (positive: quality lost)."""
    before = per_utterance(records, slug, NO_LOSS, "dnsmos_ovrl")
    after = per_utterance(records, slug, condition, "dnsmos_ovrl")
    return [None if b is None or a is None else b - a for b, a in zip(before, after)]


def summarize(records: list[dict], systems: list[LossySystem]) -> dict:
    """results.json: per system and condition, the mean of each metric and kbps with the per-utterance values."""
    rows = []
    for system in systems:
        conditions = {}
        for condition in CONDITIONS:
            values = {key: per_utterance(records, system.slug, condition, key) for key in (*METRICS, "kbps")}
            conditions[condition.key] = {"means": {key: mean_of(items) for key, items in values.items()},
                                         "per_item": values}
        rows.append({"name": system.name, "slug": system.slug, "family": system.family, "conditions": conditions})
    return {"utterances": [record["name"] for record in records], "conditions": [c.key for c in CONDITIONS],
            "systems": rows}


# ---------------------------------------------------------------------------------------------------- summary.md
def cell(value, key: str) -> str:
    return "—" if value is None else f"{value:.{DIGITS.get(key, 3)}f}"


def mean_table(records: list[dict], systems: list[LossySystem], key: str) -> list[str]:
    header = ["system", "kbps", *(condition.label for condition in CONDITIONS)]
    lines = [f"**{LABELS[key]}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    original = mean_of([record["original"][key] for record in records])
    lines.append(f"| Original | — | {cell(original, key)} |" + " |" * (len(CONDITIONS) - 1))
    for system in systems:
        kbps = overall_kbps(records, system.slug)
        cells = [cell(mean_of(per_utterance(records, system.slug, condition, key)), key) for condition in CONDITIONS]
        lines.append(f"| {system.name} | {cell(kbps, 'kbps')} | " + " | ".join(cells) + " |")
    return lines + [""]


CONCEALMENT_ORDER = ("lm", "repeat", "silence")  # each is compared with (minus) those after it


def lmcodec_pairs(systems: list[LossySystem]) -> list[tuple[LossySystem, LossySystem]]:
    """LMCodec concealments paired for differences: (lm, repeat), (lm, silence), (repeat, silence); concealments
    not in `CONCEALMENT_ORDER` come last, in their own order."""
    def rank(system: LossySystem) -> int:
        kind = system.slug.rsplit("-", 1)[-1]
        return CONCEALMENT_ORDER.index(kind) if kind in CONCEALMENT_ORDER else len(CONCEALMENT_ORDER)

    pairs = []
    for stream in dict.fromkeys(system.sending(NO_LOSS) for system in systems):  # within one stream each
        ordered = sorted((system for system in systems if system.sending(NO_LOSS) == stream), key=rank)
        pairs += [(first, second) for position, first in enumerate(ordered) for second in ordered[position + 1:]]
    return pairs


def paired_lines(records: list[dict], systems: list[LossySystem]) -> list[str]:
    """The paired differences the targets need, at the target condition and for the DNSMOS drop."""
    by_family = {family: [system for system in systems if system.family == family]
                 for family in ("lmcodec", "opus", "codec2")}
    lines = [f"### Paired differences at {TARGET.label}", "",
             "Per utterance, first system minus second: mean ± standard error of the differences (utterances where the "
             "first is better / utterances compared); in bold when more than two standard errors from zero over at "
             "least 10 utterances.", ""]
    header = "| comparison | " + " | ".join(LABELS[key] for key in METRICS) + " |"
    lines += [header, "|" + "---|" * (len(METRICS) + 1)]
    pairs = [(mine, theirs) for mine in by_family["lmcodec"] for theirs in by_family["codec2"]]
    pairs += lmcodec_pairs(by_family["lmcodec"])
    for mine, theirs in pairs:
        cells = [paired_cell(paired(per_utterance(records, mine.slug, TARGET, key),
                                    per_utterance(records, theirs.slug, TARGET, key)), key, extra_digits=1)
                 for key in METRICS]
        lines.append(f"| {mine.name} − {theirs.name} | " + " | ".join(cells) + " |")
    opus = next((system for system in by_family["opus"] if system.slug == "opus-6-plc"), None)
    if opus is None:
        return lines + [""]
    lines += ["", f"### DNSMOS OVRL drop from 0 % loss, LMCodec minus {opus.name}", "",
              "Per utterance: (OVRL at 0 % − OVRL at the condition) of LMCodec minus the same drop of Opus; negative "
              "means LMCodec loses less (the count is of utterances where it does).", "",
              "| LMCodec concealment | " + " | ".join(c.label for c in CONDITIONS if c.loss_rate == 0.1) + " |",
              "|" + "---|" * (1 + sum(c.loss_rate == 0.1 for c in CONDITIONS))]
    for system in by_family["lmcodec"]:
        cells = [paired_cell(paired(drops(records, system.slug, condition), drops(records, opus.slug, condition),
                                    higher_is_better=False), "dnsmos_ovrl", extra_digits=1)
                 for condition in CONDITIONS if condition.loss_rate == 0.1]
        lines.append(f"| {system.name} | " + " | ".join(cells) + " |")
    return lines + [""]


def fec_lines(records: list[dict], systems: list[LossySystem]) -> list[str]:
    """Whether libopus coded FEC: packets with the LBRR flag set, and lost patterns where decoding with FEC changed
    the output, per Opus FEC system and loss rate (over every utterance and burst length)."""
    fec_systems = [system for system in systems if system.opus_fec]
    if not fec_systems:
        return []
    rates = sorted({condition.loss_rate for condition in CONDITIONS})
    lines = [f"### Opus in-band FEC ({libopus_version()})", "",
             "Per system and loss rate told to the encoder: packets carrying FEC (the SILK header's LBRR flag) / "
             "packets sent; patterns where decoding the lost packets from the next packet gave other audio than "
             "concealing them on the same packets / patterns with losses.", "",
             "| system | " + " | ".join(f"{rate * 100:g} %" for rate in rates) + " |", "|" + "---|" * (len(rates) + 1)]
    for system in fec_systems:
        cells = []
        for rate in rates:
            entries = [record["results"][system.slug][condition.key] for record in records for condition in CONDITIONS
                       if condition.loss_rate == rate and condition.key in record["results"].get(system.slug, {})]
            packets = sum(record["num_packets"] for record in records for condition in CONDITIONS
                          if condition.loss_rate == rate and condition.key in record["results"].get(system.slug, {}))
            changed = [entry["fec_changed"] for entry in entries if entry["fec_changed"] is not None]
            cells.append(f"{sum(entry['lbrr_packets'] for entry in entries)} / {packets} packets; "
                         f"{sum(changed)} / {len(changed)} patterns")
        lines.append(f"| {system.name} | " + " | ".join(cells) + " |")
    controls = [record["fec_control"] for record in records if "fec_control" in record]
    if controls:
        lines += ["", f"Control, Opus {FEC_CONTROL_KBPS} kbps with FEC at {TARGET.label}: "
                      f"{sum(control['lbrr_packets'] for control in controls)} / "
                      f"{sum(control['packets'] for control in controls)} packets carry FEC; decoding with it changed "
                      f"the audio on {sum(bool(control['fec_changed']) for control in controls)} / {len(controls)} "
                      "patterns."]
        names = {mode: sorted({name for control in controls for name in control["bandwidths"][mode]})
                 for mode in controls[0]["bandwidths"]}
        lines.append(f"Bandwidth coded (without FEC; with FEC at {TARGET.label}): " + "; ".join(
            f"{mode}: {', '.join(found)}" for mode, found in names.items()) + ".")
        lines.append("Where no packet carries FEC, a pattern whose audio still changed owes it to libopus's decoding "
                     "path (a loss concealed through the FEC call), not to redundancy.")
    return lines + [""]


def timing_lines(records: list[dict], systems: list[LossySystem], data_seconds: float) -> list[str]:
    """Mean seconds per utterance: sending (every transmission a system needs), receiving per condition and scoring
    one output; and the whole run projected onto every file of DATA."""
    audio_seconds = sum(record["seconds"] for record in records)
    lines = ["### Time (one thread, seconds per utterance)", "",
             f"Mean over {len(records)} utterances ({audio_seconds / len(records):.1f} s of audio each). Send: "
             "encoding (every transmission the conditions need; LMCodec's concealments share one); per condition: "
             "receiving; score: PESQ, STOI and DNSMOS of one output.", "",
             "| system | send | " + " | ".join(c.label for c in CONDITIONS) + " | score |",
             "|" + "---|" * (len(CONDITIONS) + 3)]
    total = sum(seconds for record in records for seconds in record["send_seconds"].values())
    for system in systems:
        sendings = {system.sending(condition) for condition in CONDITIONS}
        send = sum(record["send_seconds"].get(sending, 0.0) for record in records for sending in sendings)
        entries = [[record["results"].get(system.slug, {}).get(condition.key) for record in records]
                   for condition in CONDITIONS]
        receive = [sum(entry["receive_seconds"] for entry in column if entry) for column in entries]
        scoring = sum(entry["score_seconds"] for column in entries for entry in column if entry)
        total += sum(receive) + scoring
        cells = [f"{seconds / len(records):.2f}" for seconds in (send, *receive)]
        lines.append(f"| {system.name} | " + " | ".join(cells) +
                     f" | {scoring / len(records) / len(CONDITIONS):.2f} |")
    per_audio_second = total / audio_seconds
    lines += ["", f"Measured: {per_audio_second:.2f} s of work per second of audio (scoring of the originals and the "
                  f"FEC control not included). All {data_seconds / 60:.1f} min of audio in DATA at that rate: about "
                  f"{per_audio_second * data_seconds / 3600:.1f} h on one core.", ""]
    return lines


def description_note(records: list[dict]) -> list[str]:
    """How much of LMCodec's kbps is its stream description (sent once per utterance, out of band)."""
    description = records[0]["settings"].get("lmcodec_description") if records else None
    if not description:
        return []
    size, seconds = len(description) // 2, sum(record["num_packets"] for record in records) * PACKET_SECONDS
    return [f"LMCodec's kbps includes its {size}-byte stream description, once per utterance: "
            f"{8 * size * len(records) / seconds / 1000:.3f} kbps of it over these utterances.", ""]


def summary_markdown(records: list[dict], systems: list[LossySystem], notes: list[str], data_seconds: float) -> str:
    lines = ["## Packet loss", "", *notes, "", *description_note(records)]
    for key in METRICS:
        lines += mean_table(records, systems, key)
    lines += paired_lines(records, systems) + fec_lines(records, systems)
    lines += timing_lines(records, systems, data_seconds)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- the plot
GROUP_COLORS = {"LMCodec Nc=3 reset": "#8a3fbf", "LMCodec": "#1f5fbf", "Opus 6": "#3a9a4a", "Opus 8": "#8fbf3a", "Codec2": "#d9731a"}
VARIANT_LINES = ("-", "--", ":", "-.")


def line_styles(systems: list[LossySystem]) -> dict[str, dict]:
    """A colour per codec and rate (the name before the comma), a line style per variant (concealment, FEC)."""
    styles, seen = {}, {}
    for system in systems:
        group = system.name.split(",")[0]
        color = next((value for prefix, value in GROUP_COLORS.items() if group.startswith(prefix)), "#555555")
        styles[system.slug] = dict(color=color, linestyle=VARIANT_LINES[seen.get(group, 0) % len(VARIANT_LINES)])
        seen[group] = seen.get(group, 0) + 1
    return styles


def plot(records: list[dict], systems: list[LossySystem], path: Path) -> Path:
    """Quality against the loss rate: one column per metric, one row per mean burst length, one line per system."""
    from .report import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(len(PLOTTED_BURSTS), len(METRICS), figsize=(4.6 * len(METRICS),
                                                                           3.4 * len(PLOTTED_BURSTS)), squeeze=False)
    styles = line_styles(systems)
    rates = [rate * 100 for rate in LOSS_RATES]
    for row, burst in zip(axes, PLOTTED_BURSTS):
        conditions = [Condition(rate, burst) if rate else NO_LOSS for rate in LOSS_RATES]
        for axis, key in zip(row, METRICS):
            for system in systems:
                means = [mean_of(per_utterance(records, system.slug, condition, key)) for condition in conditions]
                axis.plot(rates, [np.nan if value is None else value for value in means], marker="o", markersize=3,
                          label=system.name, **styles[system.slug])
            axis.set_title(f"{LABELS[key]}, mean burst {burst} packet{'s' if burst > 1 else ''}", fontsize=10)
            axis.set_xticks(rates)
            axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("packet loss (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False)
    figure.suptitle(f"Quality under packet loss: 40 ms packets, mean of {len(records)} utterances", fontsize=11)
    figure.tight_layout(rect=(0, 0.04 + 0.035 * -(-len(labels) // 5), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------------- the run
def audio_files(folder: str, max_files: int | None) -> tuple[list[Path], float]:
    """(the first `max_files` audio files of `folder` by name, the seconds of audio in all of them)."""
    import soundfile as sf

    from .data import AUDIO_EXTENSIONS

    files = sorted(path for path in Path(folder).iterdir() if path.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise LMCodecError(f"--data {folder} has no audio files ({', '.join(AUDIO_EXTENSIONS)}).")
    return files[:max_files], sum(sf.info(str(path)).duration for path in files)


def run_settings(codec) -> dict:
    """What a cached record must have been made with to be reused."""
    sent = lmcodec_send(codec, np.zeros(PACKET_SAMPLES, dtype=np.float32), NO_LOSS)
    return {"packet_samples": PACKET_SAMPLES, "lmcodec_description": sent.description.hex(),
            "libopus": libopus_version() if opus_available() else None}


def parse_shard(text: str) -> tuple[int, int]:
    try:
        shard, shards = (int(part) for part in text.split("/"))
    except ValueError:
        shard = shards = -1
    if not 0 <= shard < shards:
        raise LMCodecError(f"--shard must be K/N with 0 <= K < N, got {text!r}.")
    return shard, shards


def opus_available() -> bool:
    from .packet_codecs import libopus

    try:
        libopus()
        return True
    except LMCodecError:
        return False


def notes(missing: list[str], count: int, model: str) -> list[str]:
    opus = libopus_version() if opus_available() else "—"
    return [f"{count} utterances; 40 ms packets; Gilbert-Elliott losses at the rates shown with mean bursts B "
            "(packets), the same losses for every system at each utterance and condition. LMCodec: "
            f"{model}, Nc={NUM_COARSE}, ONNX runtime. Opus: {opus}, 16 kHz, VOIP, hard CBR, one 40 ms frame per "
            "packet, no container; FEC runs tell the encoder the condition's loss rate. Codec2 1300: c2enc/c2dec at "
            "8 kHz, one 7-byte frame per packet. kbps: every byte of every packet (LMCodec: and its stream "
            "description, once); no RTP / UDP headers.", *(f"Not run: {line}." for line in missing)]


def run(args) -> int:
    import lmcodec.runtime
    from lmcodec.loading import describe_source
    from lmcodec.processing import load_audio

    if args.max_files is not None and args.max_files < 1:
        raise LMCodecError(f"--max-files must be at least 1, got {args.max_files}.")
    codec = lmcodec.runtime.load_codec(args.model, threads=args.threads)
    files, data_seconds = audio_files(args.data, args.max_files)
    shard, shards = parse_shard(args.shard)
    out = prepare_output(args.out)
    (out / "utterances").mkdir(exist_ok=True)
    systems, missing = build_systems(codec)
    for line in missing:
        print(f"lmcodec: {line}", file=sys.stderr)
    scorers, settings, records = load_scorers(METRIC_MODULES), run_settings(codec), []
    for index, file in enumerate(files):
        if index % shards != shard:
            continue
        start = time.perf_counter()
        audio, _ = load_audio(file, SAMPLING_RATE)
        record_path = out / "utterances" / f"{index:04d}-{file.stem}.json"
        records.append(evaluate_utterance(record_path, file.stem, index, audio, systems, scorers, settings))
        print(f"{index + 1}/{len(files)} {file.name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if shards > 1:
        print(f"shard {shard}/{shards} done; run again without --shard to write the summary", file=sys.stderr)
        return 0
    lines = notes(missing, len(records), describe_source(args.model))
    write_json(out / "results.json", {"settings": settings, "notes": lines, **summarize(records, systems)})
    text = summary_markdown(records, systems, lines, data_seconds)
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    figure = plot(records, systems, Path(args.plot) if args.plot else out / "loss_quality.png")
    print(text)
    print(f"wrote {out / 'results.json'}, {out / 'summary.md'}, {figure}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add = parser.add_argument
    add("--data", required=True, metavar="DIR", help="a folder of speech files (16 kHz; others are resampled)")
    add("--out", required=True, metavar="DIR", help="output folder: utterances/*.json (the cache), results.json, "
                                                    "summary.md")
    add("--plot", metavar="FILE", help="where to write the plot (PNG; default: OUT/loss_quality.png)")
    add("--model", metavar="M", help="checkpoint with ONNX graphs (default: the bundled one)")
    add("--max-files", type=int, metavar="N", help="the first N files by name (default: all)")
    add("--shard", default="0/1", metavar="K/N", help="score only the files whose index is K modulo N (to run N "
                                                      "processes on one --out; then once without it to summarize)")
    add("--threads", type=int, default=1, metavar="N", help="threads of every pool on the coding path (default: 1)")
    parser.set_defaults(handler=run)
    return accept_underscore_spellings(parser)


def main(argv: list[str] | None = None) -> int:
    from lmcodec.console import run_subcommand_module

    return run_subcommand_module(add_arguments, "python -m training.loss_evaluation", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
