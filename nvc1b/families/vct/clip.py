"""One training clip through VCT for a stage of Table 1 (the module DeepSpeed wraps).

Stage I (``Transforms``, loss ``rd``, 1 frame): E, D and the mean-scale hyperprior on single frames, r + λd.
Stage II (``Transformers``, loss ``rate``, 3 frames): the transformers only, rate only; E is frozen, so the latents
are computed without autograd. Stage III (``All``, loss ``rd``): everything, r + λd, with latent residual prediction.
Every frame of a clip is coded given its (zero-padded) two previous latents; frames are independent given the
latents, so all frames of a clip run as one batch.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from ...model.quantization import _round_ste, lambda_for
from .codec import LATENT_STRIDE, VctCodec, hyperprior_rate
from .coder import TokenEstimator

PART_SETS: dict[str, tuple[str, ...]] = {
    "Transforms": ("encoder", "decoder", "hyperprior"),
    "Transformers": ("entropy_model",),
    "All": ("encoder", "decoder", "entropy_model", "lrp"),
}
"""Trainable parts of each stage of Table 1 (the per-λ rate gains train with the encoder)."""
LOSSES_FOR_PARTS: dict[str, tuple[str, ...]] = {"Transforms": ("rd",), "Transformers": ("rate",), "All": ("rd",)}


def set_trainable(codec: VctCodec, parts: str) -> list[nn.Parameter]:
    """Freeze everything but ``parts``' modules; returns the trainable parameters."""
    names = set(PART_SETS[parts])
    modules = {**codec.parts(), "hyperprior": codec.hyperprior, "rate": codec.rate}
    if "encoder" in names:
        names.add("rate")
    trainable = []
    for name, module in modules.items():
        for p in module.parameters():
            p.requires_grad_(name in names)
            if name in names:
                trainable.append(p)
    return trainable


def _mse(a: Tensor, b: Tensor) -> Tensor:
    return (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)


class VctClipLoss(nn.Module):
    """forward(frames (B, T, 3, H, W), q_index (B,)) → (loss, metrics)."""

    def __init__(self, codec: VctCodec, spec):
        super().__init__()
        self.codec = codec
        self.spec = spec

    def forward(self, frames: Tensor, q_index: Tensor, frame: int | None = None, state=None):
        if frame is not None:
            raise ValueError("VCT stages take one optimizer step per clip (updates per P-frame do not apply)")
        s = self.spec
        lam = lambda_for(q_index, s.lambdas)
        autocast = torch.autocast(frames.device.type, dtype=torch.bfloat16) if s.bf16 else contextlib.nullcontext()
        with autocast:
            if s.parts == "Transforms":
                return self._transforms(frames[:, 0], q_index, lam)
            return self._sequence(frames, q_index, lam)

    def _transforms(self, x: Tensor, q_index: Tensor, lam: Tensor):
        """Stage I: r + λ·MSE with the hyperprior's rate, x̂ = D(round_STE(ỹ))."""
        codec = self.codec
        y = codec.analysis(x, q_index)
        bits = hyperprior_rate(codec, y, noisy=True)
        x_hat = codec.synthesis(_round_ste(y), None, q_index, tuple(x.shape[-2:]))
        d = _mse(x_hat, x)
        bpp = bits / (x.shape[-2] * x.shape[-1])
        loss = (lam * d + bpp).mean()
        return loss, self._metrics(loss, d, bpp)

    def _sequence(self, frames: Tensor, q_index: Tensor, lam: Tensor):
        """Stages II and III: every frame of the clip coded given its two previous latents."""
        codec, s = self.codec, self.spec
        b, t, _, h, w = frames.shape
        q_all = q_index.repeat_interleave(t)
        x = frames.reshape(b * t, *frames.shape[2:])
        frozen_transforms = s.parts == "Transformers"
        with torch.no_grad() if frozen_transforms else contextlib.nullcontext():
            y = codec.analysis(x, q_all)  # (B·T, C, h', w')
        y_hat_ctx = torch.round(y) if frozen_transforms else _round_ste(y)
        c, lh, lw = y.shape[1:]
        em = codec.entropy_model
        sep_all = em.separate(y_hat_ctx)  # (B·T·n, p², d)
        n = sep_all.shape[0] // (b * t)
        sep_all = sep_all.reshape(b, t, n, *sep_all.shape[1:])
        empty = em.separate(y.new_zeros(1, c, lh, lw)).expand(b, n, -1, -1)
        k = codec.config.entropy_model.context_frames
        previous = []
        for i in range(t):
            ctx = [sep_all[:, i - j] if i - j >= 0 else empty for j in range(k, 0, -1)]
            previous.append(torch.stack(ctx, dim=2))  # (B, n, k, p², d)
        previous = torch.stack(previous, dim=1).reshape(b * t * n, k, *sep_all.shape[-2:])
        z_joint = em.joint(list(previous.unbind(dim=1)))
        latent = codec.code_latent(y, z_joint, (b * t, c, lh, lw), TokenEstimator("ste"))
        bpp = (latent.bits / (h * w)).reshape(b, t).mean(dim=1)
        if s.loss == "rate":
            loss = bpp.mean()
            return loss, self._metrics(loss, None, bpp)
        x_hat = codec.synthesis(latent.y_hat, latent.z_cur, q_all, (h, w))
        d = _mse(x_hat, x).reshape(b, t).mean(dim=1)
        loss = (lam * d + bpp).mean()
        return loss, self._metrics(loss, d, bpp)

    @staticmethod
    def _metrics(loss: Tensor, d: Tensor | None, bpp: Tensor) -> dict[str, Tensor]:
        metrics = {"loss": loss.detach().float(), "bpp_y": bpp.detach().float().mean()}
        if d is not None:
            metrics["D"] = d.detach().float().mean()
            metrics["psnr"] = -10 * torch.log10(metrics["D"].clamp_min(1e-10))
        return metrics


__all__ = ["LATENT_STRIDE", "LOSSES_FOR_PARTS", "PART_SETS", "VctClipLoss", "set_trainable"]
