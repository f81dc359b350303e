"""Anchor curves from FFmpeg's x265 and x264: preset medium, low delay (no B-frames), the test protocol's intra
period and frame count, a fixed QP per rate point. Results have the layout of the neural codec's.

The anchors code 8-bit YUV 4:2:0: the source planes for ``yuv420`` test sets, the 4:2:0 conversion of the 8-bit
RGB frames for ``rgb`` ones; RGB PSNR converts the decoded planes with the protocol's named RGB conversion (DCVC's by default).
Sizes are those of the elementary stream (parameter sets included, x265's settings SEI switched off); times per
frame are the FFmpeg run's wall time divided by the frames (process start included).

A resolution ladder (``scales`` other than 1) also codes each sequence downscaled by each factor (Lanczos, both
sides, rounded to even sizes) and upscales the decoded frames back (Lanczos) before measuring against the
full-size source; bpp counts the full-size pixels. Its curve is the upper convex hull of all (scale, QP) points,
as in the adaptive-streaming test conditions of AOM's AV2 work: the best that x265 at some resolution does at
each rate. That reaches down to qualities QP 51 at full size cannot (x265's coarsest QP still codes the demo's
smooth clips at about 29 dB).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..data import video
from ..data.testsets import TestSequence, TestSet
from ..errors import NvcError
from .evaluate import open_test_set
from .metrics import Planes, measure
from ..data.conversions import DEFAULT_CONVERSION
from .protocol import Protocol, planes_from_samples, read_references, resolve_protocol
from .results import DatasetFolder, FrameRow, PointResult, frame_row, point_name, summarize
from .runner import EvalResult, frame_bar, run_dataset

ENCODERS = {"x265": ("libx265", "hevc"), "x264": ("libx264", "h264")}
"""Anchor name → (FFmpeg encoder, raw elementary-stream format)."""
QPS = (22, 27, 32, 37)
"""The common-test-condition QPs."""
PRESET = "medium"
MIN_SCALED_SIDE = 16
"""The smallest downscaled frame side a ladder may code (two 8x8 coding units)."""


class AnchorError(NvcError):
    """FFmpeg is missing, lacks an encoder, or failed on a sequence."""


def find_ffmpeg(encoder: str, ffmpeg: str = "ffmpeg") -> tuple[str, str, str]:
    """(ffmpeg path, ffprobe path, version line) of an FFmpeg that has the anchor's encoder."""
    if encoder not in ENCODERS:
        raise AnchorError(f"unknown anchor '{encoder}': choose one of {', '.join(ENCODERS)}")
    found = shutil.which(ffmpeg)
    probe = shutil.which(str(Path(ffmpeg).with_name("ffprobe")) if Path(ffmpeg).parent != Path() else "ffprobe")
    if found is None or probe is None:
        raise AnchorError(
            f"{encoder} anchors need FFmpeg and ffprobe ('{ffmpeg}' {'found' if found else 'not found'} on PATH); "
            "install FFmpeg with libx265/libx264 (Debian/Ubuntu: apt-get install ffmpeg)"
        )
    encoders = _run([found, "-hide_banner", "-encoders"], "listing FFmpeg's encoders").stdout
    if ENCODERS[encoder][0] not in encoders:
        raise AnchorError(f"{found}: this FFmpeg has no {ENCODERS[encoder][0]} encoder; install one built with it")
    version = _run([found, "-version"], "asking FFmpeg's version").stdout.splitlines()[0].strip()
    return found, probe, version


def _run(command: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise AnchorError(f"{what}: cannot run {command[0]} ({exc.strerror})") from None
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise AnchorError(f"{what}: {Path(command[0]).name} exited with status {result.returncode}: {tail}")
    return result


def encoder_options(encoder: str, qp: int, intra_period: int) -> list[str]:
    """FFmpeg output options: fixed QP, no B-frames, an I-frame exactly every ``intra_period`` frames."""
    if encoder == "x265":
        params = f"qp={qp}:keyint={intra_period}:min-keyint={intra_period}:scenecut=0:bframes=0:info=0:log-level=error"
        return ["-c:v", "libx265", "-preset", PRESET, "-x265-params", params]
    return ["-c:v", "libx264", "-preset", PRESET, "-qp", str(qp), "-bf", "0", "-g", str(intra_period),
            "-keyint_min", str(intra_period), "-sc_threshold", "0"]


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """The frame size a ladder codes at ``scale``: each side divided by it, rounded to an even number."""
    return max(2, 2 * round(width / (2 * scale))), max(2, 2 * round(height / (2 * scale)))


def scale_fits(width: int, height: int, scale: int) -> bool:
    """Whether a ``width``x``height`` frame downscaled by ``scale`` keeps ``MIN_SCALED_SIDE`` pixels a side."""
    return min(scaled_size(width, height, scale)) >= MIN_SCALED_SIDE


def ladder_point_name(qp: int, scale: int) -> str:
    """'qp51' at full size, 'qp51-s4' at a quarter of each side."""
    return point_name("qp", qp) + ("" if scale == 1 else f"-s{scale}")


def make_anchors(encoder: str, dataset: str | Path | TestSet, out: str | Path, qps: Sequence[int] = QPS,
                 frames: int | None = None, intra_period: int | None = None, colorspace: str = "rgb",
                 crop: tuple[int, int] | None = None, ffmpeg: str = "ffmpeg", with_ms_ssim: bool = True,
                 progress: bool = True, rgb_conversion: str = DEFAULT_CONVERSION, psnr: str = "float",
                 scales: Sequence[int] = (1,), jobs: int = 1) -> EvalResult:
    """Code every sequence of ``dataset`` with FFmpeg's ``encoder`` ('x265' or 'x264') at each QP into ``out``;
    with ``scales`` besides 1, at each QP and downscaling factor (a resolution ladder, labelled '<encoder>
    ladder', whose curve is the convex hull of its points). ``jobs`` FFmpeg runs at a time: small frames cost
    mostly process start-up, which a second core halves (the times per frame then include the sharing)."""
    if jobs < 1:
        raise AnchorError(f"jobs must be at least 1, got {jobs}")
    ffmpeg_path, ffprobe_path, version = find_ffmpeg(encoder, ffmpeg)
    test_set, yaml_path = open_test_set(dataset)
    protocol = resolve_protocol(test_set, frames, intra_period, colorspace, crop, rgb_conversion, psnr)
    if test_set.format == "yuv420" and test_set.bit_depth != 8:
        raise AnchorError(f"{test_set.name}: the anchors code 8-bit YUV; this set is {test_set.bit_depth}-bit")
    for qp in qps:
        if not 1 <= int(qp) <= 51:
            raise AnchorError(f"QP {qp} is outside 1..51 (0 would be lossless)")
    scales = sorted({int(s) for s in scales})
    if not scales or scales[0] < 1:
        raise AnchorError(f"scales must be whole downscaling factors of at least 1, got {list(scales)}")
    ladder = scales != [1]
    for sequence in test_set.sequences if ladder else ():
        if not scale_fits(*protocol.size(sequence), scales[-1]):
            small = scaled_size(*protocol.size(sequence), scales[-1])
            raise AnchorError(f"{test_set.name}/{sequence.name}: {'x'.join(map(str, protocol.size(sequence)))} "
                              f"downscaled by {scales[-1]} is {small[0]}x{small[1]}, below {MIN_SCALED_SIDE} px a side; "
                              "use smaller scales")
    points = [(ladder_point_name(int(qp), s), float(qp)) for s in scales for qp in qps]
    scale_of = {ladder_point_name(int(qp), s): s for s in scales for qp in qps}

    def code_one(sequence: TestSequence, name: str, qp: float, bars: bool) -> tuple[PointResult, list[FrameRow]]:
        width, height = protocol.size(sequence)
        with tempfile.TemporaryDirectory(prefix="nvc1b-anchor-") as tmp, \
                frame_bar(protocol.frames, f"{sequence.name} {name} {encoder}", progress and bars) as bar:
            coded = _code_sequence(ffmpeg_path, ffprobe_path, encoder, test_set, sequence, protocol, int(qp), Path(tmp),
                                   scale_of[name])
            rows = []
            for i, ((size, frame_type), (_, ref)) in enumerate(
                    zip(coded.packets, read_references(test_set, sequence, protocol), strict=True)):
                quality = measure(ref, coded.frame(i), with_ms_ssim)
                rows.append(frame_row(i, frame_type, size, width * height, quality, coded.encode_seconds,
                                      coded.decode_seconds))
                bar.update()
        return summarize(sequence.name, name, qp, width, height, coded.stream_bytes, rows), rows

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nvc1b-anchor") if jobs > 1 else None
    pending: dict[tuple[str, str], Future] = {}
    started = False

    def code_point(sequence: TestSequence, name: str, qp: float) -> tuple[PointResult, list[FrameRow]]:
        """Called in order by the shared loop (after it has claimed the folder); with ``jobs`` > 1 the first call
        starts every unfinished point on the pool, and each call waits for its own."""
        nonlocal started
        if pool is None:
            return code_one(sequence, name, qp, True)
        if not started:
            started = True
            folder = DatasetFolder(out, protocol.colorspace, test_set.name)
            for seq in test_set.sequences:
                for point, value in points:
                    if folder.load_point(seq.name, point) is None:
                        pending[(seq.name, point)] = pool.submit(code_one, seq, point, value, False)
        job = pending.pop((sequence.name, name), None)
        return job.result() if job is not None else code_one(sequence, name, qp, False)

    codec = {"kind": encoder, "preset": PRESET, "ffmpeg": version}
    info: dict = {"dataset_yaml": yaml_path, "qps": [int(q) for q in qps]}
    if ladder:  # a ladder's folder is its own coder: it never mixes with a plain anchor's points
        codec["scales"] = scales
        info.update(scales=scales, curve="hull")
    label = f"{encoder} ladder" if ladder else encoder
    try:
        return run_dataset(out, test_set, protocol, codec, label, points, code_point, progress, info)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # after an error: no FFmpeg left running


@dataclass
class _Coded:
    """One sequence through FFmpeg: the decoded YUV file (inside a temporary folder) and the stream's packets."""

    recon: Path
    packets: list[tuple[int, str]]
    stream_bytes: int
    encode_seconds: float
    decode_seconds: float
    width: int
    height: int
    protocol: Protocol

    def frame(self, index: int) -> Planes:
        """Decoded frame ``index`` in both colour spaces (its RGB by the protocol's conversion)."""
        y, u, v = video.read_yuv420(self.recon, self.width, self.height, start=index, count=1)
        return planes_from_samples(y[0], u[0], v[0], 8, self.protocol)


def _code_sequence(ffmpeg: str, ffprobe: str, encoder: str, test_set: TestSet, sequence: TestSequence,
                   protocol: Protocol, qp: int, tmp: Path, scale: int = 1) -> _Coded:
    """Encode ``sequence`` (the protocol's frames and window, downscaled by ``scale``) at ``qp`` and decode it
    again (upscaled back), in folder ``tmp``."""
    width, height = protocol.size(sequence)
    down, up = [], []
    if scale != 1:
        small = scaled_size(width, height, scale)
        down = ["-vf", f"scale={small[0]}:{small[1]}:flags=lanczos"]
        up = ["-vf", f"scale={width}:{height}:flags=lanczos"]
    fmt = ENCODERS[encoder][1]
    source, stream, recon = tmp / "source.yuv", tmp / f"stream.{fmt}", tmp / "recon.yuv"
    for i, (_, ref) in enumerate(read_references(test_set, sequence, protocol)):
        video.write_yuv420(source, *ref.yuv, append=i > 0)
    where = f"{encoder} on {sequence.name} at {ladder_point_name(qp, scale)}"
    start = time.perf_counter()
    _run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
          "-s:v", f"{width}x{height}", "-r", f"{sequence.fps:g}", "-i", str(source), *down,
          "-frames:v", str(protocol.frames), *encoder_options(encoder, qp, protocol.intra_period),
          "-f", fmt, str(stream)], where)
    encode_seconds = (time.perf_counter() - start) / protocol.frames
    start = time.perf_counter()
    _run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(stream), *up, "-f", "rawvideo",
          "-pix_fmt", "yuv420p", str(recon)], f"decoding {where}")
    decode_seconds = (time.perf_counter() - start) / protocol.frames
    packets = _packets(ffprobe, stream, where)
    if len(packets) != protocol.frames or sum(size for size, _ in packets) != stream.stat().st_size:
        raise AnchorError(f"{where}: {len(packets)} packets for {protocol.frames} frames in {stream.name}")
    return _Coded(recon, packets, stream.stat().st_size, encode_seconds, decode_seconds, width, height, protocol)


def anchor_frames(encoder: str, dataset: str | Path | TestSet, sequence: str, qp: int, frames: int,
                  frame_numbers: Sequence[int], colorspace: str = "rgb", crop: tuple[int, int] | None = None,
                  ffmpeg: str = "ffmpeg") -> tuple[list[Planes], list[int]]:
    """Frames ``frame_numbers`` of one sequence as the anchor decodes it at ``qp`` (coded as ``make_anchors``
    codes it: the first ``frames`` frames in the window), and each one's size in bytes."""
    ffmpeg_path, ffprobe_path, _ = find_ffmpeg(encoder, ffmpeg)
    test_set, _ = open_test_set(dataset)
    protocol = resolve_protocol(test_set, frames, None, colorspace, crop)
    match = [s for s in test_set.sequences if s.name == sequence]
    if not match:
        raise AnchorError(f"{test_set.name}: no sequence '{sequence}'")
    with tempfile.TemporaryDirectory(prefix="nvc1b-anchor-") as tmp:
        coded = _code_sequence(ffmpeg_path, ffprobe_path, encoder, test_set, match[0], protocol, qp, Path(tmp))
        return [coded.frame(i) for i in frame_numbers], [coded.packets[i][0] for i in frame_numbers]


def _packets(ffprobe: str, stream: Path, where: str) -> list[tuple[int, str]]:
    """(bytes, 'I' or 'P') per coded frame, in decoding order (= display order without B-frames)."""
    text = _run([ffprobe, "-v", "error", "-show_entries", "packet=size,flags", "-of", "csv=p=0", str(stream)],
                f"probing {where}").stdout
    packets = []
    for line in text.split():
        size, flags = line.split(",")[:2]
        packets.append((int(size), "I" if "K" in flags else "P"))
    return packets
