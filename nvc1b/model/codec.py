"""The video codec: the intra coder and the six P-frame parts, with one step API shared by training,
evaluation and the bitstream coder.

A step takes a frame (any size; padded by replication to a multiple of 16 and cropped back), the decoded
reference state and per-sample rate positions ``q_index``, and returns the reconstruction, bits per latent
and the next reference state.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from ..config.model import ModelConfig
from ..errors import WeightsError
from .contextual_codec import ContextualCodec
from .contextual_entropy import ContextualEntropyModel
from .intra import IntraCodec
from .layers import pad_bottom_right
from .motion_codec import MotionCodec
from .motion_entropy import MotionEntropyModel
from .motion_estimation import MotionEstimation
from .quantization import LatentCoder, RateEstimator, as_q_index
from .temporal_context_mining import TemporalContextMining
from .warp import warp_components
from .weights import load_part_weights

PAD_MULTIPLE = 16
LATENT_STRIDE = 16


def padded_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // PAD_MULTIPLE) * PAD_MULTIPLE, -(-width // PAD_MULTIPLE) * PAD_MULTIPLE


def pad_frame(x: Tensor) -> Tensor:
    """Replicate-pad the bottom and right of (B, C, H, W) to a multiple of 16."""
    hp, wp = padded_size(*x.shape[-2:])
    return pad_bottom_right(x, hp - x.shape[-2], wp - x.shape[-1])


@dataclass
class ReferenceState:
    """What the decoder keeps between frames. Tensors are at the padded size."""

    frame: Tensor
    """x̂_{t-1} (B, 3, Hp, Wp)."""
    frame_index: int
    """GOP position of x̂_{t-1} (0 for the I-frame)."""
    height: int
    """Unpadded frame height."""
    width: int
    """Unpadded frame width."""
    feature: Tensor | None = None
    """Reference feature F̂_{t-1} (B, C_F, Hp, Wp); None after an I-frame."""
    motion_feature: Tensor | None = None
    """Motion decoder feature at H/4, conditioning the next motion encoder."""
    m_hat: Tensor | None = None
    """Previous motion latent (latent prior of m̂_t)."""
    y_hat: Tensor | None = None
    """Previous contextual latent (latent prior of ŷ_t)."""
    hidden: Tensor | None = None
    """ConvLSTM hidden state: the long-term reference H_{t-1}."""
    cell: Tensor | None = None
    """ConvLSTM cell state."""
    sequence_index: int = 0
    """Position of x̂_{t-1} in the whole sequence (not the GOP): the next frame's feature adaptor is chosen by
    its own sequence position mod 4, as DCVC-SDD's test script does (equal to the GOP position when the intra
    period is a multiple of 4)."""

    def detach(self) -> "ReferenceState":
        """The same state cut from the autograd graph (non-cascaded training, evaluation)."""
        values = {
            f.name: getattr(self, f.name).detach()
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return replace(self, **values)


@dataclass
class StepOutput:
    x_hat: Tensor
    """Reconstruction (B, 3, H, W), cropped to the input size."""
    bits: dict[str, Tensor]
    """Bits per sample (B,) of each latent: 'y', 'z_y' for I-frames; 'm', 'z_m', 'y', 'z_y' for P-frames."""
    state: ReferenceState
    """Reference state for the next frame."""
    warped: Tensor | None = None
    """warp(x̂_{t-1}, v̂_t) cropped (P-frames): the prediction the motion losses L_meD / L_meRD measure."""

    @property
    def pixels(self) -> int:
        return self.state.height * self.state.width

    def bpp(self, *names: str) -> Tensor:
        """Bits per pixel (B,) of the named latents, or of all of them."""
        keys = names or tuple(self.bits)
        return sum(self.bits[k] for k in keys) / self.pixels


@dataclass
class MotionOutput:
    """The decoded motion of a P-frame: what the contextual half needs, and its rate."""

    m_hat: Tensor
    """Motion latent m̂_t (B, C_m, Hp/16, Wp/16)."""
    bits: dict[str, Tensor]
    """Bits per sample of 'm' and 'z_m'."""
    flow_hat_s: Tensor
    """Decoded structure flow (B, 2, Hp, Wp)."""
    flow_hat_d: Tensor
    """Decoded detail flow (B, 2, Hp, Wp)."""
    motion_feature: Tensor
    """Motion decoder feature at H/4 (conditions the next frame's motion encoder)."""

    def as_output(self, ref: ReferenceState) -> StepOutput:
        """A motion-only step: the warped prediction stands in for x̂ (L_meD / L_meRD look only at it)."""
        h, w = ref.height, ref.width
        warped = sum(warp_components(ref.frame, self.flow_hat_s, self.flow_hat_d))
        state = replace(ref, frame=warped, frame_index=ref.frame_index + 1, motion_feature=self.motion_feature,
                        m_hat=self.m_hat, sequence_index=ref.sequence_index + 1)
        return StepOutput(x_hat=warped[..., :h, :w], bits=self.bits, state=state, warped=warped[..., :h, :w])


def _default_coder(training: bool) -> LatentCoder:
    return RateEstimator("ste" if training else "round")


class VideoCodec(nn.Module):
    """NVC-1B and its family: an intra coder plus the six P-frame coding parts of the paper."""

    intra: IntraCodec
    motion_estimation: MotionEstimation
    motion_codec: MotionCodec
    motion_entropy: MotionEntropyModel
    temporal_context_mining: TemporalContextMining
    contextual_codec: ContextualCodec
    contextual_entropy: ContextualEntropyModel

    PARTS = (
        "motion_estimation", "motion_codec", "motion_entropy",
        "temporal_context_mining", "contextual_codec", "contextual_entropy",
    )

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        for name, build in self.part_builders().items():
            setattr(self, name, build(config))

    @staticmethod
    def part_builders() -> dict:
        """Constructors of each part from a config: the six P-frame parts and 'intra'."""
        return {
            "motion_estimation": lambda c: MotionEstimation(c.motion_estimation),
            "motion_codec": lambda c: MotionCodec(c.motion_codec, c.interface),
            "motion_entropy": lambda c: MotionEntropyModel(c.motion_entropy, c.interface),
            "temporal_context_mining": lambda c: TemporalContextMining(c.temporal_context_mining, c.interface),
            "contextual_codec": lambda c: ContextualCodec(c.contextual_codec, c.interface),
            "contextual_entropy": lambda c: ContextualEntropyModel(c.contextual_entropy, c.interface),
            "intra": lambda c: IntraCodec(c.intra),
        }

    def parts(self) -> dict[str, nn.Module]:
        """The six P-frame parts, in the paper's order."""
        return {name: getattr(self, name) for name in self.PARTS}

    def load_pretrained(self, part: str, path: str, prefix: str = "") -> str:
        """Load one part's weights from a local file: 'spynet', 'intra' or one of the six parts. For 'intra' the
        file may also be DCVC-DC's intra checkpoint as released."""
        modules = {"spynet": self.motion_estimation.spynet, **self.parts(), "intra": self.intra}
        if part not in modules:
            raise WeightsError(f"unknown part '{part}' for pre-trained weights: choose one of {', '.join(modules)}")
        if part == "intra" and not prefix:
            from ..importers.dcvc_dc import is_dcvc_dc_intra, map_intra
            from .weights import read_state_dict

            state = read_state_dict(path)
            if is_dcvc_dc_intra(state):  # DCVC-DC's released intra model, mapped tensor by tensor
                self.intra.load_state_dict(map_intra(state, self.intra.state_dict(), str(path)))
                return "dcvc-dc"
        return load_part_weights(modules[part], path, prefix, what=f"part '{part}'")

    def intra_step(
        self, x: Tensor | None, q_index, coder: LatentCoder | None = None,
        size: tuple[int, int] | None = None, batch: int = 1, sequence_index: int = 0,
    ) -> StepOutput:
        """Code an I-frame. ``x`` (B, 3, H, W) in [0, 1]; when decoding, x is None and ``size``/``batch`` are given.
        ``sequence_index``: the frame's position in its sequence (selects the next P-frames' feature adaptors)."""
        coder = coder or _default_coder(self.training)
        if x is not None:
            batch, size = x.shape[0], tuple(x.shape[-2:])
            x = pad_frame(x)
        assert size is not None, "intra_step needs the frame or its size"
        h, w = size
        hp, wp = padded_size(h, w)
        q = as_q_index(q_index, batch, self._device())
        x_hat, bits = self.intra(x, q, (hp // LATENT_STRIDE, wp // LATENT_STRIDE), batch, coder)
        state = ReferenceState(frame=x_hat, frame_index=0, height=h, width=w, sequence_index=sequence_index)
        return StepOutput(x_hat=x_hat[..., :h, :w], bits=bits, state=state)

    def inter_step(
        self, x: Tensor | None, ref: ReferenceState, q_index, coder: LatentCoder | None = None,
        motion_only: bool = False, checkpoint: bool = False,
    ) -> StepOutput:
        """Code a P-frame ``x`` (B, 3, H, W) against ``ref``; x is None when decoding.

        ``motion_only`` stops after the motion parts (the returned state's frame is the warped prediction);
        ``checkpoint`` recomputes the whole step's activations in backward (per-frame checkpointing).
        """
        coder = coder or _default_coder(self.training)
        if x is not None and tuple(x.shape[-2:]) != (ref.height, ref.width):
            raise ValueError(f"frame is {tuple(x.shape[-2:])} but the reference is {(ref.height, ref.width)}")
        if checkpoint and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(
                self._inter_step, x, ref, q_index, coder, motion_only, use_reentrant=False
            )
        return self._inter_step(x, ref, q_index, coder, motion_only)

    def _inter_step(
        self, x: Tensor | None, ref: ReferenceState, q_index, coder: LatentCoder, motion_only: bool
    ) -> StepOutput:
        motion = self.motion_step(x, ref, q_index, coder)
        if motion_only:
            return motion.as_output(ref)
        return self.context_step(x, ref, motion, q_index, coder)

    def motion_step(
        self, x: Tensor | None, ref: ReferenceState, q_index, coder: LatentCoder | None = None
    ) -> "MotionOutput":
        """The motion half of a P-frame (motion estimation, motion coder, motion entropy model)."""
        coder = coder or _default_coder(self.training)
        b, _, hp, wp = ref.frame.shape
        latent_hw = (hp // LATENT_STRIDE, wp // LATENT_STRIDE)
        q = as_q_index(q_index, b, ref.frame.device)
        m = None
        if x is not None:
            flow_s, flow_d = self.motion_estimation(pad_frame(x), ref.frame)
            m = self.motion_codec.encode(flow_s, flow_d, ref.motion_feature, q)
        m_hat, bits = self.motion_entropy(m, ref.m_hat, latent_hw, b, coder)
        flow_hat_s, flow_hat_d, motion_feature = self.motion_codec.decode(m_hat, q)
        return MotionOutput(m_hat, bits, flow_hat_s, flow_hat_d, motion_feature)

    def context_step(
        self, x: Tensor | None, ref: ReferenceState, motion: "MotionOutput", q_index, coder: LatentCoder | None = None
    ) -> StepOutput:
        """The contextual half of a P-frame given its decoded motion (temporal context mining, contextual coder,
        contextual entropy model)."""
        coder = coder or _default_coder(self.training)
        b, _, hp, wp = ref.frame.shape
        h, w = ref.height, ref.width
        t = ref.frame_index + 1
        latent_hw = (hp // LATENT_STRIDE, wp // LATENT_STRIDE)
        q = as_q_index(q_index, b, ref.frame.device)
        xp = None if x is None else pad_frame(x)
        contexts, warped, hidden, cell = self.temporal_context_mining(
            ref.frame, ref.feature, ref.hidden, ref.cell, motion.flow_hat_s, motion.flow_hat_d, ref.sequence_index + 1
        )
        y = None if xp is None else self.contextual_codec.encode(xp, contexts, q)
        y_hat, y_bits = self.contextual_entropy(y, contexts[2], ref.y_hat, latent_hw, b, coder)
        x_hat, feature = self.contextual_codec.decode(y_hat, contexts, q)
        state = ReferenceState(
            frame=x_hat, frame_index=t, height=h, width=w, feature=feature, motion_feature=motion.motion_feature,
            m_hat=motion.m_hat, y_hat=y_hat, hidden=hidden, cell=cell, sequence_index=ref.sequence_index + 1,
        )
        return StepOutput(x_hat=x_hat[..., :h, :w], bits={**motion.bits, **y_bits}, state=state,
                          warped=warped[..., :h, :w])

    def _device(self) -> torch.device:
        return next(self.parameters()).device
