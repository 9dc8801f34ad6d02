"""`lmcodec simulate-loss IN OUT`: send a file as real-time datagram packets through simulated packet loss.

The file is coded as a datagram stream (`DatagramEncoder`, 20-60 ms packets), a Gilbert-Elliott loss pattern
(`packet_loss.gilbert_elliott`: loss rate, mean burst length, seed) removes packets, and the receiver
(`DatagramDecoder`) conceals what is missing. OUT is what a listener would hear (16 kHz, the input's duration);
the command prints the kbps with every byte sent (the stream description and every packet), the fraction of
packets lost, and the receiver's report.
"""

from __future__ import annotations

import argparse

from .cli import PACKET_MILLISECONDS, SYNC_MILLISECONDS, _add_coding_options
from .concealment import CONCEALMENTS, DEFAULT_CONCEALMENT, DEFAULT_PREDICTION, PREDICTIONS
from .errors import LMCodecError


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("input", help="any audio file soundfile reads")
    parser.add_argument("output", help="the received audio to write (16 kHz; .wav, .flac, ...)")
    parser.add_argument("--loss-rate", type=float, required=True, help="long-run fraction of packets lost (0.1 = 10 %%)")
    parser.add_argument("--burst", type=float, default=1.0, help="mean length of a loss burst, in packets (default 1)")
    parser.add_argument("--packet-ms", type=int, default=40, choices=PACKET_MILLISECONDS,
                        help="packet duration in ms (default 40)")
    parser.add_argument("--sync-ms", type=int, default=240, choices=SYNC_MILLISECONDS,
                        help="the entropy LM's context resets every this many ms, a multiple of --packet-ms (default "
                             "240): after a loss, received audio decodes again within this minus one packet; shorter "
                             "costs a few per cent more bits")
    parser.add_argument("--seed", type=int, default=0, help="seed of the loss pattern and of sampled concealment")
    parser.add_argument("--conceal", choices=CONCEALMENTS, default=DEFAULT_CONCEALMENT,
                        help=f"how lost frames are filled (default {DEFAULT_CONCEALMENT}): the entropy LM's "
                             "prediction, the last frame repeated, or silence")
    parser.add_argument("--prediction", choices=PREDICTIONS, default=DEFAULT_PREDICTION,
                        help="with --conceal lm: decode the expected codebook vectors (default), the most probable "
                             "codes, or codes sampled with --seed")
    parser.add_argument("--coarse", type=int, help="coarse levels to send (default: the model's)")
    _add_coding_options(parser)
    return parser


def run(args) -> int:
    from .cli import open_codec, read_audio_file, sync_frames_of
    from .datagram import DatagramEncoder
    from .packet_loss import burst_lengths, check_loss_parameters, gilbert_elliott, send_through_loss
    from .processing import write_audio
    from .processing.files import check_output_path
    from .threads import limit_threads

    if args.threads < 1:
        raise LMCodecError("--threads must be at least 1.")
    limit_threads(args.threads)
    check_loss_parameters(args.loss_rate, args.burst)
    check_output_path(args.output)
    audio, rate = read_audio_file(args.input)
    codec, weights = open_codec(args.model, args.backend, args.threads)
    settings = codec.settings
    packet_frames = round(args.packet_ms * settings.frame_rate / 1000)
    encoder = DatagramEncoder(codec, packet_frames=packet_frames,
                              sync_frames=sync_frames_of(args.sync_ms, args.packet_ms, settings.frame_rate),
                              sampling_rate=rate, num_coarse_quantizers=args.coarse)
    packets = encoder.push(audio) + encoder.flush()
    lost = gilbert_elliott(len(packets), args.loss_rate, args.burst, args.seed)
    received = send_through_loss(codec, encoder.description(), packets, lost, concealment=args.conceal,
                                 prediction=args.prediction, seed=args.seed)
    samples = round(len(audio) * settings.sampling_rate / rate)
    write_audio(args.output, received.audio[:samples], settings.sampling_rate)
    bursts = burst_lengths(lost)
    concealment = f"{args.conceal} ({args.prediction})" if args.conceal == "lm" else args.conceal
    print(f"weights   {weights}")
    print(f"sent      {received.packets_sent} packets of {args.packet_ms} ms, {encoder.num_coarse} coarse levels, "
          f"context reset every {args.sync_ms} ms: "
          f"{received.kbps:.3f} kbps with every byte ({received.bytes_sent} bytes: the {len(encoder.description())}-"
          f"byte description and the packets)")
    print(f"lost      {received.packets_lost} packets, {100 * received.loss_fraction:.1f} % (Gilbert-Elliott: rate "
          f"{args.loss_rate:g}, mean burst {args.burst:g}, seed {args.seed}; bursts here: "
          f"{len(bursts)}, mean {bursts.mean() if len(bursts) else 0:.2f}, longest {bursts.max() if len(bursts) else 0})")
    print(f"received  {received.report.describe()}")
    print(f"concealed {concealment}")
    print(f"output    {args.output} ({settings.sampling_rate} Hz)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="lmcodec simulate-loss", description=__doc__.split("\n")[0]))
    return run(parser.parse_args(argv))
