"""Synthetic video from real photographs: the motions and effects of VCT's synthetic study (Mentzer et al. 2022,
Sec. 4: shift, blur/sharpen, fade) plus zoom, rotation and occluding moving patches.

The photographs are the ones scikit-image ships inside its wheel (no network). A clip is a virtual camera over a
photo: per frame an affine view (pan, zoom, rotation), then an effect. Every number comes from a seeded
``numpy.random.Generator``, so the same seed gives byte-identical frames.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

# Bundled with scikit-image (checked offline). Test photos are held out of training.
TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "immunohistochemistry", "retina", "hubble_deep_field",
                "camera", "brick", "grass", "gravel", "moon", "coins")
TEST_PHOTOS = ("rocket", "motorcycle", "clock", "cell")
CAMERAS = ("static", "pan", "zoom", "rotate", "mixed")
EFFECTS = ("none", "fade", "blur", "sharpen", "occlusion")


@functools.cache
def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as (H, W, 3) uint8 RGB."""
    import skimage.data

    img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


@dataclass(frozen=True)
class Patch:
    """An occluding rectangle cut from another photo, moving in a straight line over the frame."""

    photo: str
    source_xy: tuple[int, int]
    size: tuple[int, int]
    start_xy: tuple[float, float]
    velocity: tuple[float, float]


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one synthetic clip (picklable, so pack workers can render it)."""

    photo: str
    size: tuple[int, int]  # (width, height) of the frames
    frames: int
    center: tuple[float, float]  # first frame's view centre in photo pixels
    scale: float  # photo pixels per frame pixel at the first frame
    velocity: tuple[float, float]  # pan in frame pixels per frame
    zoom: float  # relative scale change per frame
    rotation: float  # radians per frame
    effect: str
    strength: float  # fade: unused; blur/sharpen: the largest Gaussian sigma
    second_photo: str | None = None  # fade target
    second_center: tuple[float, float] = (0.0, 0.0)
    second_scale: float = 1.0
    patches: tuple[Patch, ...] = field(default_factory=tuple)


def _corners(plan_size: tuple[int, int], scale: float, angle: float) -> np.ndarray:
    w, h = plan_size
    c, s = math.cos(angle), math.sin(angle)
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [-w / 2, h / 2], [w / 2, h / 2]])
    return scale * pts @ np.array([[c, s], [-s, c]])


def _fit_center(rng, src: np.ndarray, size, frames, scale, velocity, zoom, rotation):
    """A first-frame centre that keeps every frame's view inside the photo, or None if none exists."""
    h, w = src.shape[:2]
    lo, hi = np.array([0.0, 0.0]), np.array([w - 1.0, h - 1.0])
    for t in range(frames):
        offset = scale * np.array(velocity) * t + _corners(size, scale * (1 + zoom) ** t, rotation * t)
        lo = np.maximum(lo, -offset.min(axis=0))
        hi = np.minimum(hi, np.array([w - 1.0, h - 1.0]) - offset.max(axis=0))
    if np.any(lo > hi):
        return None
    return tuple(float(v) for v in rng.uniform(lo, hi))


def plan_clip(rng: np.random.Generator, photos: tuple[str, ...], frames: int = 7, size: tuple[int, int] = (448, 256),
              camera: str | None = None, effect: str | None = None) -> ClipPlan:
    """Draw a random clip: a photo, a camera path that stays inside it, and an effect."""
    camera = camera or str(rng.choice(CAMERAS, p=[0.1, 0.35, 0.2, 0.15, 0.2]))
    effect = effect or str(rng.choice(EFFECTS, p=[0.3, 0.15, 0.15, 0.15, 0.25]))
    name = str(rng.choice(photos))
    src = photo(name)
    fit = min(src.shape[1] / size[0], src.shape[0] / size[1])  # largest axis-aligned scale that fits
    scale = fit * rng.uniform(0.35, 0.8)
    velocity = tuple(rng.uniform(-6, 6, 2)) if camera in ("pan", "mixed") else (0.0, 0.0)
    zoom = rng.uniform(-0.03, 0.03) if camera in ("zoom", "mixed") else 0.0
    rotation = math.radians(rng.uniform(-1.5, 1.5)) if camera in ("rotate", "mixed") else 0.0
    center = None
    for _ in range(8):  # halve the motion until the whole path fits in the photo
        center = _fit_center(rng, src, size, frames, scale, velocity, zoom, rotation)
        if center is not None:
            break
        velocity, zoom, rotation = (velocity[0] / 2, velocity[1] / 2), zoom / 2, rotation / 2
    if center is None:
        velocity, zoom, rotation = (0.0, 0.0), 0.0, 0.0
        center = _fit_center(rng, src, size, frames, scale, velocity, zoom, rotation)
    extra: dict = {}
    if effect == "fade":
        other = str(rng.choice([p for p in photos if p != name]))
        osrc = photo(other)
        oscale = min(osrc.shape[1] / size[0], osrc.shape[0] / size[1]) * rng.uniform(0.35, 0.8)
        extra = dict(second_photo=other, second_scale=oscale,
                     second_center=_fit_center(rng, osrc, size, 1, oscale, (0, 0), 0.0, 0.0))
    elif effect == "occlusion":
        extra = dict(patches=tuple(_plan_patch(rng, photos, size) for _ in range(int(rng.integers(1, 4)))))
    strength = float(rng.uniform(1.5, 4.0)) if effect in ("blur", "sharpen") else 0.0
    return ClipPlan(name, size, frames, center, float(scale), (float(velocity[0]), float(velocity[1])), float(zoom),
                    float(rotation), effect, strength, **extra)


def _plan_patch(rng: np.random.Generator, photos: tuple[str, ...], size: tuple[int, int]) -> Patch:
    name = str(rng.choice(photos))
    src = photo(name)
    pw = int(rng.integers(32, min(160, src.shape[1]) + 1))
    ph = int(rng.integers(32, min(128, src.shape[0]) + 1))
    sx, sy = int(rng.integers(0, src.shape[1] - pw + 1)), int(rng.integers(0, src.shape[0] - ph + 1))
    start = (float(rng.uniform(-pw / 2, size[0] - pw / 2)), float(rng.uniform(-ph / 2, size[1] - ph / 2)))
    return Patch(name, (sx, sy), (pw, ph), start, (float(rng.uniform(-12, 12)), float(rng.uniform(-8, 8))))


def _view(src: Image.Image, size, center, scale: float, angle: float) -> Image.Image:
    """The frame that sees ``src`` around ``center`` at ``scale`` photo pixels per pixel, rotated by ``angle``."""
    w, h = size
    c, s = math.cos(angle), math.sin(angle)
    a, b, d, e = scale * c, -scale * s, scale * s, scale * c
    coeffs = (a, b, center[0] - a * w / 2 - b * h / 2, d, e, center[1] - d * w / 2 - e * h / 2)
    return src.transform(size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)


def render_clip(plan: ClipPlan) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 of a planned clip."""
    src = Image.fromarray(photo(plan.photo))
    second = Image.fromarray(photo(plan.second_photo)) if plan.second_photo else None
    out = np.empty((plan.frames, plan.size[1], plan.size[0], 3), dtype=np.uint8)
    last = max(plan.frames - 1, 1)
    for t in range(plan.frames):
        center = (plan.center[0] + plan.scale * plan.velocity[0] * t, plan.center[1] + plan.scale * plan.velocity[1] * t)
        frame = _view(src, plan.size, center, plan.scale * (1 + plan.zoom) ** t, plan.rotation * t)
        if plan.effect in ("blur", "sharpen"):
            # sharpening is blurring played backwards, as in VCT
            sigma = plan.strength * (t if plan.effect == "blur" else last - t) / last
            if sigma > 0:
                frame = frame.filter(ImageFilter.GaussianBlur(sigma))
        elif plan.effect == "fade" and second is not None:
            target = _view(second, plan.size, plan.second_center, plan.second_scale, 0.0)
            frame = Image.blend(frame, target, t / last)
        for patch in plan.patches:
            sx, sy = patch.source_xy
            tile = Image.fromarray(photo(patch.photo)[sy : sy + patch.size[1], sx : sx + patch.size[0]])
            frame.paste(tile, (round(patch.start_xy[0] + patch.velocity[0] * t), round(patch.start_xy[1] + patch.velocity[1] * t)))
        out[t] = np.asarray(frame)
    return out


@dataclass(frozen=True)
class SynthClip:
    """A synthetic clip as a pack source (see ``pack.ClipSource``)."""

    key: str
    plan: ClipPlan

    def load(self) -> tuple[np.ndarray, str]:
        p = self.plan
        return render_clip(p), f"synthetic photo={p.photo} effect={p.effect} velocity={p.velocity[0]:.2f},{p.velocity[1]:.2f} zoom={p.zoom:.4f} rotation={p.rotation:.4f}"


def synthetic_sources(clips: int, seed: int = 0, frames: int = 7, size: tuple[int, int] = (448, 256)) -> list[SynthClip]:
    """``clips`` random training clips from the training photos, deterministic in ``seed``."""
    return [SynthClip(f"synth_{i:06d}", plan_clip(np.random.default_rng([seed, i]), TRAIN_PHOTOS, frames, size))
            for i in range(clips)]
