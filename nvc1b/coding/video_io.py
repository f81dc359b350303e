"""Frames in and out of the coder: raw YUV 4:2:0 files and PNG folders as RGB tensors (via ``nvc1b.data.video``),
reconstructions written atomically, and PSNR against the original (YUV-PSNR (6Y+U+V)/8 for YUV, RGB-PSNR for PNG)."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import Tensor

from ..data.video import (
    list_png_frames,
    parse_size,
    read_png,
    read_yuv420,
    rgb_to_yuv420,
    to_float,
    to_uint8,
    write_png,
    write_yuv420,
    yuv420_frame_bytes,
    yuv420_to_rgb,
)
from ..errors import DataError
from ..files import disk_full_reported, write_bytes_atomic


def _is_yuv(path: Path) -> bool:
    return path.suffix.lower() == ".yuv"


@dataclass
class FrameSource:
    """A YUV file or PNG folder opened for coding: its size, frame count and frames."""

    path: Path
    width: int
    height: int
    count: int
    pngs: list[Path] = field(default_factory=list)

    @property
    def is_yuv(self) -> bool:
        return not self.pngs

    def frame(self, index: int) -> Tensor:
        """Frame ``index`` as RGB (3, H, W) in [0, 1] (YUV is converted with full-range BT.709)."""
        if self.is_yuv:
            y, u, v = read_yuv420(self.path, self.width, self.height, start=index, count=1)
            return yuv420_to_rgb(to_float(y), to_float(u), to_float(v))[0]
        rgb = read_png(self.pngs[index])
        if rgb.shape[:2] != (self.height, self.width):
            raise DataError(
                f"{self.pngs[index]}: frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, expected {self.width}x{self.height}"
            )
        return to_float(np.array(rgb)).permute(2, 0, 1)  # a writable copy: PIL's arrays are read-only

    def frames(self) -> Iterator[Tensor]:
        for index in range(self.count):
            yield self.frame(index)

    def psnr(self, x_hat: Tensor, index: int) -> float:
        """PSNR (dB) of reconstruction (3, H, W) against frame ``index``: YUV-PSNR for YUV, RGB-PSNR for PNG."""
        if self.is_yuv:
            ref = read_yuv420(self.path, self.width, self.height, start=index, count=1)
            out = [to_uint8(p) for p in rgb_to_yuv420(x_hat[None])]
            return (6 * _psnr(out[0], ref[0]) + _psnr(out[1], ref[1]) + _psnr(out[2], ref[2])) / 8
        return _psnr(to_uint8(x_hat.permute(1, 2, 0)), read_png(self.pngs[index]))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0**2
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def open_source(path: str | Path, size: str | tuple[int, int] | None = None, frames: int | None = None) -> FrameSource:
    """Open a ``.yuv`` file (``size`` required, 'WxH' or (W, H)) or a folder of PNG frames; ``frames`` limits the count."""
    path = Path(path)
    if isinstance(size, str):
        size = parse_size(size)
    if path.is_dir():
        pngs = list_png_frames(path)
        first = read_png(pngs[0])
        width, height = first.shape[1], first.shape[0]
        if size is not None and size != (width, height):
            raise DataError(f"{pngs[0]}: frame 0 is {width}x{height} but --size says {size[0]}x{size[1]}")
        source = FrameSource(path, width, height, len(pngs), pngs)
    else:
        if size is None:
            raise DataError(f"{path}: a raw YUV input needs its size (--size WIDTHxHEIGHT)")
        source = _open_yuv(path, *size)
    if frames is not None:
        if not 0 < frames <= source.count:
            raise DataError(f"{path}: {frames} frames requested but it holds {source.count}")
        source.count = frames
    return source


def _open_yuv(path: Path, width: int, height: int) -> FrameSource:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise DataError(f"{path}: YUV 4:2:0 needs an even, positive size, got {width}x{height}")
    if not path.is_file():
        raise DataError(f"{path}: input not found")
    total, frame = path.stat().st_size, yuv420_frame_bytes(width, height)
    whole, rest = divmod(total, frame)
    if rest or not whole:
        raise DataError(
            f"{path}: frame {whole} at byte {whole * frame} is truncated ({rest} of {frame} bytes of a {width}x{height} "
            "YUV420 frame): wrong --size?"
        )
    return FrameSource(path, width, height, whole)


class FrameSink:
    """Writes reconstructions to a ``.yuv`` file or a PNG folder under a temporary name, renamed into place only
    when ``commit`` is called; use as a context manager so a failure leaves nothing behind."""

    def __init__(self, path: str | Path, width: int, height: int):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.yuv = _is_yuv(self.path)
        if self.yuv and (width % 2 or height % 2):
            raise DataError(f"{self.path}: YUV 4:2:0 output needs an even size, the stream is {width}x{height}")
        if not self.yuv and self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise DataError(f"{self.path}: output folder exists and is not empty")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.yuv:
            self.tmp.write_bytes(b"")
        else:
            self.tmp.mkdir()
        self.count = 0

    def write(self, x_hat: Tensor) -> None:
        """Append reconstruction (3, H, W)."""
        with disk_full_reported(self.path, self.tmp):
            self._write(x_hat)

    def _write(self, x_hat: Tensor) -> None:
        if self.yuv:
            y, u, v = (to_uint8(p) for p in rgb_to_yuv420(x_hat[None]))
            write_yuv420(self.tmp, y, u, v, append=True)
        else:
            write_png(self.tmp / f"{self.count + 1:05d}.png", to_uint8(x_hat.permute(1, 2, 0)))
        self.count += 1

    def commit(self) -> None:
        if not self.yuv and self.path.is_dir():
            self.path.rmdir()  # empty, checked on construction
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename (a full disk is a
    one-line error naming the path and the free space; ``path`` is left as it was)."""
    write_bytes_atomic(path, data)

