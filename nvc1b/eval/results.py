"""Evaluation results on disk: one folder per (colour space, test set), one JSON and one CSV per sequence × rate
point, and the test set's averages in ``dataset.json``; written atomically, so a finished point is never redone.

Layout of a results directory ``OUT`` (the same for the neural codec and for FFmpeg anchors)::

    OUT/<colorspace>/<DATASET>/run.json                  what was evaluated (checked when resuming)
    OUT/<colorspace>/<DATASET>/sequences/<SEQ>/<POINT>.csv   one row per frame
    OUT/<colorspace>/<DATASET>/sequences/<SEQ>/<POINT>.json  that sequence at that rate point
    OUT/<colorspace>/<DATASET>/dataset.json              averages over the sequences per rate point (schema below)
    OUT/<colorspace>/<DATASET>/dataset.csv               bpp,psnr per rate point: the anchor-CSV format

``POINT`` names a rate point: ``q0`` … ``q3`` (``q1.5`` between anchors) for the neural codec, ``qp32`` for anchors.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import NvcError
from ..files import within, write_text_atomic
from .metrics import FrameQuality, yuv_psnr

SCHEMA = "nvc1b.eval/2"
RUN_JSON = "run.json"
DATASET_JSON = "dataset.json"
DATASET_CSV = "dataset.csv"
PSNR_CAP = 100.0
"""PSNR counted for a frame decoded without loss (its PSNR is infinite, or above 100 dB from float32 rounding)."""


class ResultsError(NvcError):
    """A results directory, results JSON or anchor CSV is missing, unreadable or inconsistent."""


@dataclass
class FrameRow:
    """One frame of one sequence at one rate point (a CSV row)."""

    frame: int
    type: str
    bytes: int
    """The frame's share of the stream: its record (payload and container fields)."""
    bpp: float
    psnr_rgb: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    ms_ssim: float | None
    encode_seconds: float | None
    decode_seconds: float | None
    psnr_rgb_float: float | None = None
    psnr_y_float: float | None = None
    psnr_u_float: float | None = None
    psnr_v_float: float | None = None
    psnr_yuv_float: float | None = None
    payload_bytes: int | None = None
    """The frame's entropy-coded payload alone (no container fields); None for anchors."""
    bits_m: float | None = None
    bits_z_m: float | None = None
    bits_y: float | None = None
    bits_z_y: float | None = None


@dataclass
class PointResult:
    """One sequence coded at one rate point: sizes from the stream's bytes, qualities averaged over its frames."""

    sequence: str
    point: str
    rate_parameter: float
    """q_index of the neural codec, QP of an anchor."""
    width: int
    height: int
    frames: int
    bytes: int
    """Size of the whole coded sequence (stream header and every frame)."""
    bpp: float
    """From ``bytes``: the real file, container included."""
    psnr_rgb: float
    """PSNRs without a suffix: on the integer output (8-bit RGB, YUV at the source's depth) as written to disk."""
    psnr_yuv: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    ms_ssim: float | None
    """None for frames too small for five scales."""
    encode_seconds: float | None
    """Mean per frame; None where the coder does not report it per frame (FFmpeg: the whole run / frames)."""
    decode_seconds: float | None
    bits: dict[str, float] = field(default_factory=dict)
    """Information content per latent over the sequence ('m', 'z_m', 'y', 'z_y'); empty for anchors."""
    decoder_matches: bool | None = None
    """Whether every decoded frame equals the encoder's reconstruction (neural codec)."""
    psnr_rgb_float: float | None = None
    """``*_float``: on the float output before rounding, as DCVC-DC/FM's test scripts measure and publish."""
    psnr_yuv_float: float | None = None
    psnr_y_float: float | None = None
    psnr_u_float: float | None = None
    psnr_v_float: float | None = None
    payload_bytes: int | None = None
    """The frames' entropy-coded payloads alone, without the stream header and record fields (None: anchors)."""
    bpp_payload: float | None = None
    """From ``payload_bytes``: the rate without the container, comparable with entropy estimates."""
    psnr_yuv_cap: float | None = None
    """``yuv420-via-rgb`` only: the float YUV PSNR a lossless codec would reach through the clamped RGB."""


METRICS = ("bpp", "bpp_payload", "psnr_rgb", "psnr_yuv", "psnr_y", "psnr_u", "psnr_v", "psnr_rgb_float",
           "psnr_yuv_float", "psnr_y_float", "psnr_u_float", "psnr_v_float", "psnr_yuv_cap", "ms_ssim",
           "encode_seconds", "decode_seconds")


def point_name(prefix: str, value: float) -> str:
    """'q' and 2.0 → 'q2'; 'q' and 1.5 → 'q1.5'; 'qp' and 32 → 'qp32'."""
    return f"{prefix}{value:g}"


def summarize(sequence: str, point: str, rate_parameter: float, width: int, height: int, stream_bytes: int,
              rows: list[FrameRow], bits: dict[str, float] | None = None,
              decoder_matches: bool | None = None, psnr_yuv_cap: float | None = None) -> PointResult:
    """Average a sequence's frame rows into one rate point; bpp comes from the bytes of the whole stream,
    ``bpp_payload`` from the frames' payloads alone."""
    n = len(rows)
    mean = lambda name: _mean([getattr(r, name) for r in rows])
    payload = None if any(r.payload_bytes is None for r in rows) else sum(r.payload_bytes for r in rows)
    pixels = width * height * n
    return PointResult(
        sequence=sequence, point=point, rate_parameter=float(rate_parameter), width=width, height=height, frames=n,
        bytes=stream_bytes, bpp=8.0 * stream_bytes / pixels, psnr_rgb=mean("psnr_rgb"),
        psnr_yuv=mean("psnr_yuv"), psnr_y=mean("psnr_y"), psnr_u=mean("psnr_u"), psnr_v=mean("psnr_v"),
        ms_ssim=mean("ms_ssim"), encode_seconds=mean("encode_seconds"), decode_seconds=mean("decode_seconds"),
        bits=dict(bits or {}), decoder_matches=decoder_matches, psnr_rgb_float=mean("psnr_rgb_float"),
        psnr_yuv_float=mean("psnr_yuv_float"), psnr_y_float=mean("psnr_y_float"), psnr_u_float=mean("psnr_u_float"),
        psnr_v_float=mean("psnr_v_float"), payload_bytes=payload,
        bpp_payload=None if payload is None else 8.0 * payload / pixels, psnr_yuv_cap=psnr_yuv_cap,
    )


def _mean(values: list[float | None]) -> float | None:
    """Mean of the values, None if any is None."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: readers see the old file or the whole new one."""
    write_text_atomic(path, text)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable results JSON ({exc})") from None


def frames_csv(rows: list[FrameRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in fields(FrameRow)])
    for r in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in asdict(r).values()])
    return out.getvalue()


class DatasetFolder:
    """One (colour space, test set) folder of a results directory."""

    def __init__(self, out: str | Path, colorspace: str, dataset: str):
        self.root = within(out, Path(out) / colorspace / dataset, f"test set name '{dataset}'")

    def claim(self, run: dict[str, Any]) -> None:
        """Record what is evaluated here; a folder holding another evaluation's results is an error."""
        path = self.root / RUN_JSON
        if path.is_file():
            old = read_json(path)
            for key in sorted(set(old) | set(run)):
                if old.get(key) != run.get(key):
                    raise ResultsError(
                        f"{path}: holds results of another evaluation ('{key}' was {old.get(key)!r}, now "
                        f"{run.get(key)!r}); use another --out or remove {self.root}"
                    )
            return
        write_json(path, run)

    def point_path(self, sequence: str, point: str) -> Path:
        return within(self.root, self.root / "sequences" / sequence / f"{point}.json", f"sequence name '{sequence}'")

    def load_point(self, sequence: str, point: str) -> PointResult | None:
        """The finished result of a sequence at a rate point, or None if it is not done yet."""
        path = self.point_path(sequence, point)
        if not path.is_file():
            return None
        try:
            return PointResult(**read_json(path))
        except TypeError as exc:
            raise ResultsError(f"{path}: not a point result of this nvc1b version ({exc})") from None

    def save_point(self, result: PointResult, rows: list[FrameRow]) -> None:
        """Write the frame CSV, then the point JSON (whose presence marks the point done)."""
        path = self.point_path(result.sequence, result.point)
        write_atomic(path.with_suffix(".csv"), frames_csv(rows))
        write_json(path, asdict(result))

    def write_summary(self, run: dict[str, Any], points: list[tuple[str, float]],
                      results: dict[str, list[PointResult]]) -> dict[str, Any]:
        """Average each rate point over the sequences into ``dataset.json`` and ``dataset.csv``; returns the JSON."""
        averaged = []
        for name, value in points:
            per_sequence = [r for rs in results.values() for r in rs if r.point == name]
            entry: dict[str, Any] = {"point": name, "rate_parameter": value, "sequences": len(per_sequence)}
            entry.update({m: _mean([getattr(r, m) for r in per_sequence]) for m in METRICS})
            averaged.append(entry)
        averaged.sort(key=lambda e: e["bpp"])
        summary = {
            **run, "schema": SCHEMA, "points": averaged,
            "sequences": {seq: [asdict(r) for r in rs] for seq, rs in results.items()},
        }
        write_json(self.root / DATASET_JSON, summary)
        from .curves import curve_from_summary  # the CSV holds the curve (a ladder's hull), as the JSON reads

        curve = curve_from_summary(summary, str(self.root / DATASET_JSON))
        lines = ["bpp,psnr"] + [f"{b:.6f},{q:.4f}" for b, q in zip(curve.bpp, curve.psnr, strict=True)]
        write_atomic(self.root / DATASET_CSV, "\n".join(lines) + "\n")
        return summary


def finite_psnr(value: float) -> float:
    """A frame's PSNR as it enters averages: lossless (infinite, or beyond ``PSNR_CAP`` as a float32 copy of the
    input scores) counts as ``PSNR_CAP``."""
    return min(value, PSNR_CAP)


def frame_row(index: int, frame_type: str, frame_bytes: int, pixels: int, quality: FrameQuality,
              encode_seconds: float | None, decode_seconds: float | None,
              bits: dict[str, float] | None = None, payload_bytes: int | None = None) -> FrameRow:
    """The CSV row of one decoded frame; ``bits`` per latent and ``payload_bytes`` for the neural codec."""
    bits = bits or {}
    y, u, v = finite_psnr(quality.psnr_y), finite_psnr(quality.psnr_u), finite_psnr(quality.psnr_v)
    yf, uf, vf = (finite_psnr(p) for p in (quality.psnr_y_float, quality.psnr_u_float, quality.psnr_v_float))
    return FrameRow(
        frame=index, type=frame_type, bytes=frame_bytes, bpp=8.0 * frame_bytes / pixels,
        psnr_rgb=finite_psnr(quality.psnr_rgb), psnr_y=y, psnr_u=u, psnr_v=v, psnr_yuv=yuv_psnr(y, u, v),
        ms_ssim=quality.ms_ssim, encode_seconds=encode_seconds, decode_seconds=decode_seconds,
        psnr_rgb_float=finite_psnr(quality.psnr_rgb_float), psnr_y_float=yf, psnr_u_float=uf, psnr_v_float=vf,
        psnr_yuv_float=yuv_psnr(yf, uf, vf), payload_bytes=payload_bytes,
        bits_m=bits.get("m"), bits_z_m=bits.get("z_m"), bits_y=bits.get("y"), bits_z_y=bits.get("z_y"),
    )
