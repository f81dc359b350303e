"""Raw video I/O and colour conversion: YUV 4:2:0 files (8-bit, or 10-bit as 16-bit little-endian samples),
PNG folders, and full-range BT.709 YCbCr ↔ RGB as the data packer and the coder use it.

Chroma is subsampled by 2×2 averaging and upsampled bilinearly (centre-sited samples). The evaluator's RGB test
sets use the named conversions of ``nvc1b.data.conversions`` instead (DCVC's by default).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError

KR, KB = 0.2126, 0.0722  # ITU-R BT.709
KG = 1.0 - KR - KB


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' → (1920, 1080)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise DataError(f"size '{text}' is not WIDTHxHEIGHT (for example 1920x1080)")
    return int(match.group(1)), int(match.group(2))


BIT_DEPTHS = (8, 10)
"""Sample depths of raw YUV files: 8-bit samples are one byte, 10-bit ones two (little-endian, as FFmpeg's
yuv420p10le and DCVC's readers store them)."""


def yuv420_frame_bytes(width: int, height: int, bit_depth: int = 8) -> int:
    return width * height * 3 // 2 * (1 if bit_depth <= 8 else 2)


def max_value(bit_depth: int) -> int:
    """Largest code value of a sample: 255 for 8 bits, 1023 for 10."""
    return (1 << bit_depth) - 1


def _check_even(path: Path | str, width: int, height: int) -> None:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise DataError(f"{path}: YUV 4:2:0 needs an even, positive size, got {width}x{height}")


def count_yuv420_frames(path: str | Path, width: int, height: int, bit_depth: int = 8) -> int:
    """Frames in a raw YUV 4:2:0 file of ``bit_depth``; its size must be a whole number of frames."""
    path = Path(path)
    _check_even(path, width, height)
    if bit_depth not in BIT_DEPTHS:
        raise DataError(f"{path}: bit depth {bit_depth} is not one of {', '.join(map(str, BIT_DEPTHS))}")
    if not path.is_file():
        raise DataError(f"{path}: YUV file not found")
    size, frame = path.stat().st_size, yuv420_frame_bytes(width, height, bit_depth)
    if size == 0 or size % frame:
        raise DataError(
            f"{path}: {size} bytes is not a whole number of {width}x{height} {bit_depth}-bit YUV420 frames "
            f"({frame} bytes each)"
        )
    return size // frame


def read_yuv420(
    path: str | Path, width: int, height: int, start: int = 0, count: int | None = None, bit_depth: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planes (Y (N, H, W), U (N, H/2, W/2), V (N, H/2, W/2)) for frames ``start`` … ``start+count-1``: uint8 for
    8-bit files, uint16 for 10-bit ones (a sample above 1023 is a DataError naming the frame)."""
    total = count_yuv420_frames(path, width, height, bit_depth)
    count = total - start if count is None else count
    if start < 0 or count < 1 or start + count > total:
        raise DataError(f"{path}: frames {start}..{start + count - 1} requested but the file has {total}")
    frame = yuv420_frame_bytes(width, height, bit_depth) // (1 if bit_depth <= 8 else 2)  # samples
    dtype = np.dtype(np.uint8 if bit_depth <= 8 else "<u2")
    data = np.fromfile(path, dtype=dtype, count=count * frame, offset=start * frame * dtype.itemsize)
    data = data.reshape(count, frame)
    if bit_depth > 8 and data.size and int(data.max()) > max_value(bit_depth):
        bad = start + int(np.argmax(data.max(axis=1) > max_value(bit_depth)))
        raise DataError(f"{path}: frame {bad} holds samples above {max_value(bit_depth)}: not a {bit_depth}-bit file")
    ys, cs = width * height, width * height // 4
    y = data[:, :ys].reshape(count, height, width)
    u = data[:, ys : ys + cs].reshape(count, height // 2, width // 2)
    v = data[:, ys + cs :].reshape(count, height // 2, width // 2)
    return y, u, v


def write_yuv420(path: str | Path, y: np.ndarray, u: np.ndarray, v: np.ndarray, append: bool = False,
                 bit_depth: int = 8) -> None:
    """Write planes of N frames (or one frame without the N axis) as raw YUV 4:2:0: uint8 samples, or for 10 bits
    16-bit little-endian ones."""
    dtype = np.dtype(np.uint8 if bit_depth <= 8 else "<u2")
    y, u, v = (np.asarray(p).astype(dtype) for p in (y, u, v))
    if y.ndim == 2:
        y, u, v = y[None], u[None], v[None]
    with open(path, "ab" if append else "wb") as f:
        for i in range(y.shape[0]):
            f.write(y[i].tobytes())
            f.write(u[i].tobytes())
            f.write(v[i].tobytes())


def to_float(plane: np.ndarray | Tensor, bit_depth: int = 8) -> Tensor:
    """Samples → float32 in [0, 1], divided by the depth's largest code value (255, 1023) as DCVC's readers do."""
    return torch.as_tensor(np.asarray(plane).astype(np.float32)) / float(max_value(bit_depth))


def to_uint8(x: Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()


def upsample_chroma(c: Tensor) -> Tensor:
    """(N, H/2, W/2) → (N, H, W), bilinear."""
    return F.interpolate(c[:, None], scale_factor=2, mode="bilinear", align_corners=False)[:, 0]


def yuv420_to_rgb(y: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Full-range BT.709: float planes in [0, 1] (N, H, W), (N, H/2, W/2) ×2 → RGB (N, 3, H, W) in [0, 1]."""
    cb, cr = upsample_chroma(u) - 0.5, upsample_chroma(v) - 0.5
    r = y + (2 - 2 * KR) * cr
    b = y + (2 - 2 * KB) * cb
    g = (y - KR * r - KB * b) / KG
    return torch.stack([r, g, b], dim=1).clamp(0, 1)


def rgb_to_yuv444(rgb: Tensor) -> Tensor:
    """RGB (N, 3, H, W) in [0, 1] → YCbCr (N, 3, H, W), full-range BT.709, not clamped."""
    r, g, b = rgb.unbind(1)
    y = KR * r + KG * g + KB * b
    return torch.stack([y, 0.5 * (b - y) / (1 - KB) + 0.5, 0.5 * (r - y) / (1 - KR) + 0.5], dim=1)


def rgb_to_yuv420(rgb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """RGB (N, 3, H, W) in [0, 1], H and W even → float planes Y (N, H, W), U and V (N, H/2, W/2) in [0, 1]."""
    yuv = rgb_to_yuv444(rgb)
    chroma = F.avg_pool2d(yuv[:, 1:], 2)
    return yuv[:, 0].clamp(0, 1), chroma[:, 0].clamp(0, 1), chroma[:, 1].clamp(0, 1)


def repeat_chroma(c: Tensor) -> Tensor:
    """Chroma (..., h, w) → (..., 2h, 2w), each sample repeated 2×2 (nearest-neighbour upsampling)."""
    return c.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def rgb_to_yuv444_nearest(rgb: Tensor) -> Tensor:
    """RGB frames (..., 3, H, W) in [0, 1], H and W even → BT.709 YUV 4:2:0 with each chroma sample repeated 2×2:
    (..., 3, H, W), what a YUV model codes (training clips made from RGB, as the evaluation's yuv420 input)."""
    shape = rgb.shape
    y, u, v = rgb_to_yuv420(rgb.reshape(-1, *shape[-3:]))
    return torch.stack([y, repeat_chroma(u), repeat_chroma(v)], dim=1).reshape(shape)


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_png_frames(folder: str | Path, suffixes: tuple[str, ...] = (".png",)) -> list[Path]:
    """Image files (PNG unless ``suffixes`` says otherwise) of a folder in natural order (im2 before im10)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: frame folder not found")
    frames = sorted((p for p in folder.iterdir() if p.suffix.lower() in suffixes), key=_natural_key)
    if not frames:
        raise DataError(f"{folder}: no {'/'.join(s.lstrip('.').upper() for s in suffixes)} frames")
    return frames


def read_png(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; an unreadable file is a DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode PNG ({exc})") from None


def read_png_folder(folder: str | Path, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 from a folder of PNGs; all frames must share one size."""
    paths = list_png_frames(folder)
    count = len(paths) - start if count is None else count
    if start < 0 or count < 1 or start + count > len(paths):
        raise DataError(f"{folder}: frames {start}..{start + count - 1} requested but the folder has {len(paths)}")
    frames = [read_png(p) for p in paths[start : start + count]]
    for p, f in zip(paths[start:], frames):
        if f.shape != frames[0].shape:
            raise DataError(f"{p}: frame is {f.shape[1]}x{f.shape[0]}, earlier frames are {frames[0].shape[1]}x{frames[0].shape[0]}")
    return np.stack(frames)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path, compress_level=1)
