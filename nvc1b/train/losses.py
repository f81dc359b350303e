"""The paper's losses (1)–(6), per sample, with w_t and λ per sample (Section IV-D).

D is the RGB MSE, or for a schedule with ``colorspace: yuv`` the YUV MSE weighted (6·Y + U + V)/8 as DCVC-DC/FM
train their YUV models; rates are bits per pixel of a latent and its hyper-latent: R_m = bpp(m̂) + bpp(ẑ_m),
R_y = bpp(ŷ) + bpp(ẑ_y). For I-frames (the intra stage) the loss is λ·D + R.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..model.codec import StepOutput


YUV_WEIGHTS = (6.0, 1.0, 1.0)
"""Weights of the Y, U and V MSE in the YUV distortion (the same 6:1:1 as the YUV PSNR of the evaluation)."""


def mse(a: Tensor, b: Tensor, colorspace: str = "rgb") -> Tensor:
    """Per-sample mean squared error (B,) of frames (B, 3, H, W); for ``yuv`` the 6:1:1-weighted mean of the
    per-plane MSEs of Y, U, V."""
    err = (a.float() - b.float()).pow(2)
    if colorspace == "rgb":
        return err.flatten(1).mean(dim=1)
    planes = err.flatten(2).mean(dim=2)  # (B, 3)
    weights = planes.new_tensor(YUV_WEIGHTS)
    return (planes * weights).sum(dim=1) / weights.sum()


@dataclass
class FrameTerms:
    """Distortions and rates of one coded frame, per sample (B,)."""

    D: Tensor
    """MSE of the reconstruction x̂_t."""
    D_m: Tensor | None
    """MSE of the motion-compensated prediction warp(x̂_{t-1}, v̂_t) (P-frames)."""
    R_m: Tensor | None
    """bpp of m̂_t and ẑ_m (P-frames)."""
    R_y: Tensor
    """bpp of ŷ_t and ẑ_y."""

    @classmethod
    def of(cls, out: StepOutput, target: Tensor, colorspace: str = "rgb") -> "FrameTerms":
        inter = out.warped is not None
        return cls(
            D=mse(out.x_hat, target, colorspace),
            D_m=mse(out.warped, target, colorspace) if inter else None,
            R_m=out.bpp("m", "z_m") if inter else None,
            R_y=out.bpp("y", "z_y") if "y" in out.bits else out.x_hat.new_zeros(target.shape[0]),
        )


def frame_loss(loss: str, terms: FrameTerms, lam: Tensor, w_t: float) -> Tensor:
    """Per-sample loss of one frame: L_meD, L_meRD, L_recD, L_recRD, L_all (= one term of L_T^all), or intra."""
    if loss == "intra":
        return lam * terms.D + terms.R_y
    if loss == "meD":
        return w_t * lam * terms.D_m
    if loss == "meRD":
        return w_t * lam * terms.D_m + terms.R_m
    if loss == "recD":
        return w_t * lam * terms.D
    if loss == "recRD":
        return w_t * lam * terms.D + terms.R_y
    if loss in ("all", "all_T"):
        return w_t * lam * terms.D + terms.R_m + terms.R_y
    raise ValueError(f"unknown loss {loss!r}")


def motion_only(loss: str) -> bool:
    """Losses that look only at the motion-compensated prediction."""
    return loss in ("meD", "meRD")


PER_FRAME_LOSSES = ("meD", "meRD", "recD", "recRD", "all")
"""The losses that may take one optimizer step per P-frame (the NVC family's non-cascaded losses)."""


def cascaded(loss: str) -> bool:
    """L_T^all keeps the gradient through the references; every other loss detaches them."""
    return loss == "all_T"
