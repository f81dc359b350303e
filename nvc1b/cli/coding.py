"""``nvc1b encode`` and ``nvc1b decode``: real bitstreams from a YUV file or PNG folder, and back."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from ..coding.runtime import load_coding_model
from ..coding.sequence import FrameStats, SequenceDecoder, SequenceEncoder
from ..coding.video_io import FrameSink, open_source, write_atomic
from ..errors import BitstreamError, DataError
from ..files import check_output


def _q_index(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 3.0:
        raise argparse.ArgumentTypeError(f"must lie in 0..3, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _device(text: str) -> str:
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"device {text!r}: use cpu or cuda[:N]")
    return text


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("encode", help="encode a YUV420 file or a PNG folder into an .nvc bitstream")
    e.add_argument("--checkpoint", required=True, help="run directory (its newest export) or exported .safetensors")
    e.add_argument("--input", required=True, help="raw 8-bit YUV 4:2:0 file (needs --size) or a folder of PNG frames")
    e.add_argument("--output", required=True, help="bitstream to write (.nvc); written only once complete")
    e.add_argument("--size", help="WIDTHxHEIGHT of a YUV input (checked against a PNG input)")
    e.add_argument("--frames", type=_positive, help="code only the first N frames")
    e.add_argument("--intra-period", type=_positive, default=32, help="an I-frame every N frames (default 32)")
    e.add_argument("--q-index", type=_q_index, default=0.0, help="rate position 0..3 (λ 85 … 840; default 0)")
    e.add_argument("--device", type=_device, default="cpu", help="torch device for the networks (default cpu)")
    e.add_argument("--threads", type=_positive, help="CPU threads for the networks; recorded so the decoder matches")
    e.set_defaults(func=run_encode)

    d = sub.add_parser("decode", help="decode an .nvc bitstream into a YUV420 file or a PNG folder")
    d.add_argument("stream", help="the .nvc bitstream")
    d.add_argument("--checkpoint", required=True, help="the checkpoint the stream was encoded with")
    d.add_argument("--output", required=True, help="reconstruction: a .yuv file (8-bit 4:2:0) or a folder for PNGs")
    d.add_argument("--reference", help="original frames (YUV file of the stream's size or PNG folder) for PSNR")
    d.add_argument("--device", type=_device, default="cpu", help="torch device for the networks (default cpu)")
    d.set_defaults(func=run_decode)


def _frame_line(stats: FrameStats, pixels: int, psnr: float | None) -> str:
    quality = f"  {psnr:6.2f} dB" if psnr is not None else ""
    return (
        f"frame {stats.index:4d} {stats.frame_type} {stats.bytes:9d} bytes {8 * stats.bytes / pixels:8.4f} bpp{quality}"
        f"  {stats.seconds:7.3f} s (entropy coding {stats.entropy_seconds:.3f} s)"
    )


def _summary(verb: str, stats: list[FrameStats], total_bytes: int, pixels: int, psnrs: list[float]) -> str:
    n = len(stats)
    seconds = sum(s.seconds for s in stats) / n
    entropy = sum(s.entropy_seconds for s in stats) / n
    line = (
        f"{n} frames: {8 * total_bytes / (pixels * n):.4f} bpp ({total_bytes} bytes), {verb} {seconds:.3f} s/frame "
        f"(network {seconds - entropy:.3f} s, entropy coding {entropy:.3f} s)"
    )
    if psnrs:
        finite = [p for p in psnrs if math.isfinite(p)]
        line += f", PSNR {sum(finite) / len(finite):.2f} dB" if finite else ", PSNR inf (lossless)"
    return line


def run_encode(args: argparse.Namespace) -> int:
    check_output(args.output, [args.input, args.checkpoint], what="bitstream --output")
    source = open_source(args.input, args.size, args.frames)
    codec = load_coding_model(args.checkpoint, args.device)
    encoder = SequenceEncoder(
        codec, source.width, source.height, source.count, args.q_index, args.intra_period, args.threads
    )
    pixels, stats, psnrs = source.width * source.height, [], []
    print(f"encoding {source.path}: {source.count} frames {source.width}x{source.height}, preset {codec.preset}, "
          f"q_index {encoder.header.q_index:g}, intra period {args.intra_period}")
    for index, frame in enumerate(source.frames()):
        frame_stats, x_hat = encoder.encode_frame(frame)
        stats.append(frame_stats)
        psnrs.append(source.psnr(x_hat, index))
        print(_frame_line(frame_stats, pixels, psnrs[-1]))
    stream = encoder.finish()
    write_atomic(args.output, stream)
    print(_summary("encode", stats, len(stream), pixels, psnrs))
    print(f"wrote {args.output}")
    return 0


def run_decode(args: argparse.Namespace) -> int:
    path = Path(args.stream)
    png_folder = not args.output.lower().endswith(".yuv")
    check_output(args.output, [path, args.reference, args.checkpoint], directory_ok=png_folder,
                 what="reconstruction --output")
    try:
        stream = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    codec = load_coding_model(args.checkpoint, args.device)
    try:
        decoder = SequenceDecoder(codec, stream)
        header = decoder.header
        reference = None
        if args.reference:
            reference = open_source(args.reference, (header.width, header.height))
            if reference.count < header.frame_count:
                raise DataError(f"{args.reference}: holds {reference.count} frames, the stream {header.frame_count}")
        pixels, stats, psnrs = header.width * header.height, [], []
        with FrameSink(args.output, header.width, header.height) as sink:
            for frame_stats, x_hat in decoder:
                sink.write(x_hat)
                stats.append(frame_stats)
                psnr = reference.psnr(x_hat, frame_stats.index) if reference else None
                if psnr is not None:
                    psnrs.append(psnr)
                print(_frame_line(frame_stats, pixels, psnr))
    except BitstreamError as exc:
        raise BitstreamError(f"{path}: {exc}") from None
    print(_summary("decode", stats, len(stream), pixels, psnrs))
    differing = [s.index for s in stats if not s.matches_encoder]
    if differing:
        print(
            f"nvc1b: warning: {len(differing)} of {len(stats)} frames differ from the encoder's reconstruction "
            f"(first: frame {differing[0]}); the latents decoded exactly, but this device's floating-point arithmetic "
            "differs from the encoder's",
            file=sys.stderr,
        )
    print(f"wrote {args.output}")
    return 0
