"""A tiny raw-YUV test set for the evaluation tests."""

import numpy as np
import torch

from nvc1b.data import video

W, H, FRAMES = 48, 32, 3


def write_test_set(root, frames_in_file=4, extra=""):
    """Two smooth random sequences as raw YUV 4:2:0 and their YAML (3 frames coded, intra period 2)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in ("Alpha", "Beta"):
        rgb = torch.nn.functional.avg_pool2d(torch.from_numpy(rng.random((frames_in_file, 3, H, W))).float(), 5, 1, 2)
        y, u, v = video.rgb_to_yuv420(rgb)
        video.write_yuv420(root / f"{name}.yuv", video.to_uint8(y), video.to_uint8(u), video.to_uint8(v))
    path = root / "mini.yaml"
    path.write_text(
        f"name: mini\nformat: yuv420\nroot: .\nframes: {FRAMES}\nintra_period: 2\n{extra}sequences:\n"
        + "".join(f"  - {{name: {n}, file: {n}.yuv, width: {W}, height: {H}, fps: 30, frames: {frames_in_file}}}\n"
                  for n in ("Alpha", "Beta"))
    )
    return path
