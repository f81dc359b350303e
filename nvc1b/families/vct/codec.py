"""VCT (Mentzer et al. 2022) as an nvc1b model: per-frame transforms E/D, the transformer entropy model over the
two previous latents, latent residual prediction, and the stage-I hyperprior, with the same step API as the NVC
family (``intra_step`` / ``inter_step`` → ``StepOutput``), so the bitstream coder and the evaluator run it unchanged.

An "I-frame" of VCT is a frame coded with zero-padded previous latents, as the first frames of a sequence are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...model.codec import StepOutput
from ...model.layers import pad_bottom_right
from ...model.quantization import RateControl, as_q_index, clamp_pixels
from .coder import token_coder
from .config import VctConfig
from .transformer import TransformerEntropyModel
from .transforms import ImageDecoder, ImageEncoder, LatentResidualPredictor, MeanScaleHyperprior

LATENT_STRIDE = 16


@dataclass
class VctState:
    """What VCT's decoder keeps between frames: the T_sep outputs of the previous latents (oldest first)."""

    separate: tuple[Tensor, ...]
    """T_sep(ŷ_{i-2}), T_sep(ŷ_{i-1}) — at most ``context_frames`` of them; missing ones are zero latents."""
    frame_index: int
    height: int
    width: int
    y_hat: Tensor | None = None
    """The last decoded latent ŷ_{i-1} (B, C, h, w)."""

    def detach(self) -> VctState:
        return replace(self, separate=tuple(s.detach() for s in self.separate),
                       y_hat=None if self.y_hat is None else self.y_hat.detach())


@dataclass
class LatentOutput:
    """One frame's coded latent: ŷ, its rate and T_cur's features."""

    y_hat: Tensor
    """(B, C, h, w)."""
    bits: Tensor
    """(B,)."""
    z_cur: Tensor
    """(B, d_T, h, w)."""


class VctCodec(nn.Module):
    """The VCT family's model."""

    PARTS = ("encoder", "decoder", "entropy_model", "lrp")
    """The parts of the coding model (the stage-I hyperprior is counted apart, as NVC's intra coder)."""

    def __init__(self, config: VctConfig):
        super().__init__()
        self.config = config
        t = config.transforms
        self.encoder = ImageEncoder(t)
        self.decoder = ImageDecoder(t)
        self.entropy_model = TransformerEntropyModel(config.entropy_model, t.latent_channels, config.latent_scale)
        self.lrp = LatentResidualPredictor(config.entropy_model.d_model, t.latent_channels)
        self.hyperprior = MeanScaleHyperprior(config.hyperprior, t.latent_channels)
        self.rate = RateControl(t.latent_channels, t.latent_channels)
        """Variable rate: per-channel latent gains per λ anchor (nvc1b's per-sample λ, see the README)."""
        self.component_seconds: dict[str, float] | None = None
        """When a dict, each step adds the seconds of T_sep+T_joint, T_cur and D to it (paper Table 3's split;
        entropy coding is the coder's own ``seconds``)."""
        for m in (self.lrp.project, self.lrp.block.body[-1]):  # f_LRP starts as zero: y′ = ŷ until stage III
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def parts(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in self.PARTS}

    @property
    def pad_multiple(self) -> int:
        return LATENT_STRIDE * self.config.entropy_model.current_block

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.pad_multiple
        return -(-h // m) * m, -(-w // m) * m

    def pad(self, x: Tensor) -> Tensor:
        """Replicate-pad (B, 3, H, W) at the bottom and right to a multiple of 16·w_c."""
        hp, wp = self.padded_size(*x.shape[-2:])
        return pad_bottom_right(x, hp - x.shape[-2], wp - x.shape[-1])

    # --- the transforms -------------------------------------------------------------------------------------
    def analysis(self, x: Tensor, q: Tensor) -> Tensor:
        """ỹ = E(x) scaled by the rate gains: (B, 3, H, W) → (B, d_C, Hp/16, Wp/16)."""
        return self.encoder(self.pad(x)) * self.rate.encoder_step(q)

    def synthesis(self, y_hat: Tensor, z_cur: Tensor | None, q: Tensor, size: tuple[int, int]) -> Tensor:
        """x̂ = D(y′), y′ = ŷ + f_LRP(z_cur), cropped to ``size``."""
        y = y_hat if z_cur is None or not self.config.lrp else y_hat + self.lrp(z_cur)
        x_hat = clamp_pixels(self.decoder(y * self.rate.decoder_step(q)))
        return x_hat[..., : size[0], : size[1]]

    # --- the entropy model ----------------------------------------------------------------------------------
    def context(self, previous: tuple[Tensor, ...], zero: Tensor) -> Tensor:
        """z_joint from the T_sep outputs of the previous latents; missing ones (first frames) are T_sep of a zero
        latent ``zero`` (B, C, h, w)."""
        k = self.config.entropy_model.context_frames
        previous = tuple(previous)[-k:]
        if len(previous) < k:
            empty = self.entropy_model.separate(zero)
            previous = (empty,) * (k - len(previous)) + previous
        return self.entropy_model.joint(list(previous))

    def code_latent(self, y: Tensor | None, z_joint: Tensor, shape: tuple[int, ...], coder) -> LatentOutput:
        """Code ỹ (B, C, h, w) given z_joint. The rate estimator runs T_cur once, masked (teacher forcing); a
        bitstream coder runs it w_c² times incrementally (run k takes token k-1 and the cached keys/values of the
        runs before), coding token k of every block at once: encoder and decoder run the very same operations on
        the same decoded tokens, so they compute the very same predictions."""
        b, c, h, w = shape
        em = self.entropy_model
        if y is not None and not hasattr(coder, "finish"):  # estimator: one masked pass
            tokens = em.current_tokens(y)
            rounded = tokens + (torch.round(tokens) - tokens).detach()
            means, scales, z_cur = em.predict(rounded, z_joint)
            y_tok, bits = coder.gaussian("y", tokens.reshape(b, -1, c), means.reshape(b, -1, c),
                                         scales.reshape(b, -1, c))
            y_hat = em.untokenize(y_tok.reshape(tokens.shape), b, h, w)
        else:
            tokens = None if y is None else em.current_tokens(y)
            bits = z_joint.new_zeros(b)
            memory, cache = em.memory(z_joint), []  # cross-attention keys/values: once for the w_c² runs
            decoded, features, previous = [], [], None
            for k in range(em.tokens_per_block):
                means, scales, z_k = em.step(previous, k, memory, cache)
                y_k = None if tokens is None else tokens[:, k]
                previous, bits_k = coder.gaussian("y", y_k, means, scales)
                decoded.append(previous)
                features.append(z_k)
                bits = bits + bits_k
            y_hat = em.untokenize(torch.stack(decoded, dim=1), b, h, w)
            z_cur = torch.stack(features, dim=1)
        return LatentOutput(y_hat, bits, em.untokenize(z_cur, b, h, w))

    # --- the step API shared with the NVC family ------------------------------------------------------------
    def intra_step(self, x: Tensor | None, q_index, coder=None, size: tuple[int, int] | None = None,
                   batch: int = 1, sequence_index: int = 0) -> StepOutput:
        """A frame coded with zero-padded previous latents (the first frame, or a refresh every intra period);
        ``sequence_index`` (the frame's position, which NVC's feature adaptors use) plays no part in VCT."""
        if x is not None:
            batch, size = x.shape[0], tuple(x.shape[-2:])
        assert size is not None, "intra_step needs the frame or its size"
        return self._step(x, None, q_index, coder, size, batch)

    def inter_step(self, x: Tensor | None, ref: VctState, q_index, coder=None, **_: object) -> StepOutput:
        """A frame coded given the previous latents held in ``ref``."""
        if x is not None and tuple(x.shape[-2:]) != (ref.height, ref.width):
            raise ValueError(f"frame is {tuple(x.shape[-2:])} but the reference is {(ref.height, ref.width)}")
        return self._step(x, ref, q_index, coder, (ref.height, ref.width), ref.y_hat.shape[0])

    def _step(self, x, ref: VctState | None, q_index, coder, size: tuple[int, int], batch: int) -> StepOutput:
        coder = token_coder(coder, self.training)
        device = next(self.parameters()).device
        q = as_q_index(q_index, batch, device)
        hp, wp = self.padded_size(*size)
        shape = (batch, self.config.transforms.latent_channels, hp // LATENT_STRIDE, wp // LATENT_STRIDE)
        y = None if x is None else self.analysis(x, q)
        zero = torch.zeros(shape, device=device)
        clock = self._clock(device)
        z_joint = self.context(() if ref is None else ref.separate, zero)
        clock("T_sep+T_joint")
        coded_before = getattr(coder, "seconds", 0.0)
        latent = self.code_latent(y, z_joint, shape, coder)
        clock("T_cur", getattr(coder, "seconds", 0.0) - coded_before)
        x_hat = self.synthesis(latent.y_hat, latent.z_cur, q, size)
        clock("D")
        keep = self.config.entropy_model.context_frames
        previous = () if ref is None else ref.separate
        separate = (tuple(previous) + (self.entropy_model.separate(latent.y_hat),))[-keep:]
        clock("T_sep+T_joint")  # T_sep runs once per latent: its output serves the next frames
        state = VctState(separate, 0 if ref is None else ref.frame_index + 1, size[0], size[1], latent.y_hat)
        return StepOutput(x_hat=x_hat, bits={"y": latent.bits}, state=state)

    def _clock(self, device: torch.device):
        """A lap timer adding to ``component_seconds`` (a no-op when that is None)."""
        last = [time.perf_counter()]

        def lap(name: str, minus: float = 0.0) -> None:
            if self.component_seconds is None:
                return
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            now = time.perf_counter()
            self.component_seconds[name] = self.component_seconds.get(name, 0.0) + now - last[0] - minus
            last[0] = now

        return lap

    def load_pretrained(self, part: str, path: str, prefix: str = "") -> str:
        from ...errors import WeightsError
        from ...model.weights import load_part_weights

        modules = {**self.parts(), "hyperprior": self.hyperprior}
        if part not in modules:
            raise WeightsError(f"unknown part '{part}' for pre-trained weights: choose one of {', '.join(modules)}")
        return load_part_weights(modules[part], path, prefix, what=f"part '{part}'")


def hyperprior_rate(codec: VctCodec, y: Tensor, noisy: bool) -> Tensor:
    """Stage I's rate (B,) in bits of ỹ under the mean-scale hyperprior, plus its hyper-latent."""
    from ...model.quantization import _uniform_noise
    from .gaussian import gaussian_bits
    from .transformer import SCALE_MIN

    z, means, raw = codec.hyperprior(y)
    scales = F.softplus(raw).clamp_min(SCALE_MIN)
    v = y + _uniform_noise(y) if noisy else torch.round(y)
    zv = z + _uniform_noise(z) if noisy else torch.round(z)
    bits_y = gaussian_bits(v, means, scales).flatten(1).sum(dim=1)
    return bits_y + codec.hyperprior.prior.bits(zv).flatten(1).sum(dim=1)
