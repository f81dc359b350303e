"""One training clip through the codec for a stage: the I-frame, then the P-frames coded in sequence from it
with the decoded references, and the stage's loss. This is the module DeepSpeed wraps."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from ..data.video import rgb_to_yuv444_nearest
from ..model.codec import ReferenceState, StepOutput, VideoCodec
from ..model.hierarchy import adaptor_positions, frame_weight, untrained_adaptors
from ..model.quantization import RateEstimator, lambda_for
from .losses import FrameTerms, cascaded, frame_loss, motion_only

PART_SETS: dict[str, tuple[str, ...]] = {
    "Intra": ("intra",),
    "Inter": ("motion_estimation", "motion_codec", "motion_entropy"),
    "Recon": ("temporal_context_mining", "contextual_codec", "contextual_entropy"),
    "All": VideoCodec.PARTS,
}
"""Trainable parts of each stage type (paper: Inter = motion parts, Recon = TCM + contextual parts)."""


def adaptor_coverage(stages) -> str | None:
    """None when the stages that train temporal context mining reach every feature adaptor; otherwise what is left
    at its initial weights and which P-frames an evaluation codes through it (one sentence)."""
    longest = max((s.frames for s in stages if "temporal_context_mining" in PART_SETS.get(s.parts, ())), default=0)
    if longest < 2:
        return None  # no P-frame stage at all: nothing of the P-frame coder is trained
    missing = untrained_adaptors(longest)
    if not missing:
        return None
    items = [f"{a} (P-frames {', '.join(map(str, adaptor_positions(a)))}, …)" for a in missing]
    which = items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
    many = len(missing) > 1
    return (f"the longest clip of a stage that trains temporal context mining has {longest} frames, so feature "
            f"adaptor{'s' if many else ''} {which} keep{'' if many else 's'} {'their' if many else 'its'} initial "
            f"weights, and every evaluation codes those frames through {'them' if many else 'it'}; a Recon or All "
            "stage of 6 frames or more trains all three")


def schedule_adaptor_note(schedule) -> str | None:
    """``adaptor_coverage`` of an NVC schedule's stages; None for other families (they have no adaptors)."""
    from .schedule import family_of_schedule

    return adaptor_coverage(schedule.stages) if family_of_schedule(schedule) == "nvc" else None


def set_trainable(codec: VideoCodec, parts: str) -> list[nn.Parameter]:
    """Freeze everything but ``parts``' modules; returns the trainable parameters."""
    names = PART_SETS[parts]
    trainable = []
    for name, module in {**codec.parts(), "intra": codec.intra}.items():
        on = name in names
        for p in module.parameters():
            p.requires_grad_(on)
            if on:
                trainable.append(p)
    return trainable


@dataclass(frozen=True)
class ClipSpec:
    """What a stage asks of each clip."""

    parts: str
    loss: str
    frames: int
    lambdas: tuple[float, ...]
    frame_weights: tuple[float, ...]
    checkpoint_frames: bool = False
    bf16: bool = False
    colorspace: str = "rgb"
    """rgb, or yuv: the RGB clips are coded as BT.709 4:2:0 upsampled to 4:4:4 (the evaluation's yuv420 input)."""


class ClipLoss(nn.Module):
    """forward(frames (B, T, 3, H, W), q_index (B,)) → (loss, metrics) for the stage described by ``spec``.

    With ``frame=t`` (per-frame updates) only P-frame t is coded, against ``state`` (the detached reference from
    frame t-1; None for t = 1, then the I-frame is coded first): → (loss, metrics, detached state for frame t+1).
    """

    def __init__(self, codec: VideoCodec, spec: ClipSpec):
        super().__init__()
        self.codec = codec
        self.spec = spec

    def forward(self, frames: Tensor, q_index: Tensor, frame: int | None = None, state: ReferenceState | None = None):
        s = self.spec
        lam = lambda_for(q_index, s.lambdas)
        if s.colorspace == "yuv":
            frames = rgb_to_yuv444_nearest(frames)
        autocast = (
            torch.autocast(frames.device.type, dtype=torch.bfloat16) if s.bf16 else contextlib.nullcontext()
        )
        if frame is not None:
            with autocast:
                return self._one_p_frame(frames, q_index, lam, frame, state)
        with autocast:
            if s.parts == "Intra":
                out = self.codec.intra_step(frames[:, 0], q_index)
                terms = [FrameTerms.of(out, frames[:, 0], s.colorspace)]
                losses = [frame_loss("intra", terms[0], lam, 1.0)]
            else:
                terms, losses = self._p_frames(frames, q_index, lam)
        loss = torch.stack(losses).mean()
        return loss, self._metrics(loss, terms)

    def _i_frame(self, frames: Tensor, q_index: Tensor) -> ReferenceState:
        with torch.no_grad():  # the intra coder is frozen in P-frame stages: code the I-frame as at test time
            return self.codec.intra_step(frames[:, 0], q_index, coder=RateEstimator("round")).state

    def _code(self, frames: Tensor, q_index: Tensor, lam: Tensor, t: int, state: ReferenceState):
        """P-frame t against ``state``: (its terms, its mean loss, the coded state)."""
        s = self.spec
        last = t == s.frames - 1  # no later frame needs the last frame's x̂
        if s.parts == "All":
            out = self.codec.inter_step(
                frames[:, t], state, q_index, motion_only=motion_only(s.loss) and last, checkpoint=s.checkpoint_frames,
            )
        else:
            out = self._half_trained(frames[:, t], state, q_index, last)
        terms = FrameTerms.of(out, frames[:, t], s.colorspace)
        return terms, frame_loss(s.loss, terms, lam, frame_weight(t, s.frame_weights)).mean(), out.state

    def _half_trained(self, x: Tensor, state: ReferenceState, q_index: Tensor, last: bool) -> StepOutput:
        """A P-frame of an Inter or Recon stage: the half of the codec the stage does not train runs without
        autograd, so it is neither differentiated nor recomputed by per-frame checkpointing (frozen means free)."""
        if self.spec.parts == "Inter":  # motion trained; the contextual half only makes the next (detached) reference
            motion = self._maybe_checkpoint(self.codec.motion_step, x, state, q_index)
            predicted = motion.as_output(state)
            if last:
                return predicted
            with torch.no_grad():
                coded = self.codec.context_step(x, state, motion, q_index)
            return StepOutput(x_hat=coded.x_hat, bits={**coded.bits, **predicted.bits}, state=coded.state,
                              warped=predicted.warped)
        with torch.no_grad():  # Recon: the motion half is frozen and its inputs are detached
            motion = self.codec.motion_step(x, state, q_index)
        return self._maybe_checkpoint(self.codec.context_step, x, state, motion, q_index)

    def _maybe_checkpoint(self, fn, *args):
        if self.spec.checkpoint_frames and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _p_frames(self, frames: Tensor, q_index: Tensor, lam: Tensor) -> tuple[list[FrameTerms], list[Tensor]]:
        state = self._i_frame(frames, q_index)
        terms, losses = [], []
        for t in range(1, self.spec.frames):
            frame_terms, loss, state = self._code(frames, q_index, lam, t, state)
            terms.append(frame_terms)
            losses.append(loss)
            state = state if cascaded(self.spec.loss) else state.detach()
        return terms, losses

    def _one_p_frame(self, frames: Tensor, q_index: Tensor, lam: Tensor, t: int, state: ReferenceState | None):
        if cascaded(self.spec.loss) or not 1 <= t < self.spec.frames:
            raise ValueError(f"per-frame step {t} of a {self.spec.frames}-frame '{self.spec.loss}' clip")
        if state is None:
            if t != 1:
                raise ValueError(f"P-frame {t} needs the reference state of frame {t - 1}")
            state = self._i_frame(frames, q_index)
        terms, loss, state = self._code(frames, q_index, lam, t, state.detach())
        return loss, self._metrics(loss, [terms]), state.detach()

    @staticmethod
    def _metrics(loss: Tensor, terms: list[FrameTerms]) -> dict[str, Tensor]:
        """Detached means over frames and samples, for logging."""

        def mean(values: list[Tensor | None]) -> Tensor | None:
            kept = [v.detach().float().mean() for v in values if v is not None]
            return torch.stack(kept).mean() if kept else None

        metrics = {
            "loss": loss.detach().float(),
            "D": mean([t.D for t in terms]),
            "D_m": mean([t.D_m for t in terms]),
            "bpp_m": mean([t.R_m for t in terms]),
            "bpp_y": mean([t.R_y for t in terms]),
        }
        metrics = {k: v for k, v in metrics.items() if v is not None}
        metrics["psnr"] = -10 * torch.log10(metrics["D"].clamp_min(1e-10))
        return metrics
