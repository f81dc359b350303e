"""Per-channel bitrate share of the contextual latent ŷ_t and the motion latent m̂_t (paper Section V-C1, Fig. 10).

For one sequence, channel c's share is CR_c = Σ_t bits(ŷ_t^c) / Σ_c Σ_t bits(ŷ_t^c) over its P-frames (equation 7;
MR for m̂_t, equation 8); the shares are averaged over the sequences (and rate points) and sorted from the
largest. Bits are the model's estimate in an evaluation-mode pass (−log₂ of the Laplace bin probability of each
rounded symbol), which the entropy coder matches to within a fraction of a percent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..coding.runtime import CodingModel, load_coding_model
from ..data.testsets import TestSet
from ..model.codec import ReferenceState
from ..model.likelihood import FactorizedPrior, laplace_bits
from ..model.quantization import LatentCoder, RateEstimator
from .evaluate import Q_INDEXES, model_label, open_test_set
from ..data.conversions import DEFAULT_CONVERSION
from .protocol import read_references, resolve_protocol
from .results import ResultsError, read_json, write_json
from .runner import frame_bar

LATENTS = ("y", "m")
CHANNEL_SHARE_JSON = "channel_share.json"


class ChannelBitsRecorder:
    """A latent coder that passes everything to ``inner`` and adds up the bits of each channel of the
    Laplace-coded latents it is asked to watch (keys 'y' and 'm')."""

    def __init__(self, inner: LatentCoder, keys: Sequence[str] = LATENTS):
        self.inner = inner
        self.keys = tuple(keys)
        self.bits: dict[str, Tensor] = {}
        """Key → bits per channel (C,), summed over the batch, positions and calls."""

    def laplace(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        recon, bits = self.inner.laplace(key, y, means, scales, mask)
        if key in self.keys:
            residual = (recon - means * mask).detach()  # the coded symbol at the masked positions, 0 elsewhere
            per_channel = (laplace_bits(residual, scales.detach()) * mask).sum(dim=(0, 2, 3))  # (C,)
            self.bits[key] = self.bits.get(key, 0) + per_channel.double().cpu()
        return recon, bits

    def factorized(self, key: str, z: Tensor | None, prior: FactorizedPrior, shape: tuple[int, ...]
                   ) -> tuple[Tensor, Tensor]:
        return self.inner.factorized(key, z, prior, shape)


@dataclass
class ChannelShare:
    """Average bitrate share per channel of ŷ and m̂ (in channel order; ``sorted`` for the figure)."""

    label: str
    dataset: str
    y: list[float]
    """CR per channel of ŷ_t (equation 7), averaged over sequences and rate points; sums to 1."""
    m: list[float]
    """MR per channel of m̂_t (equation 8)."""
    q_indexes: list[float]
    frames: int
    sequences: int

    def sorted(self, latent: str) -> np.ndarray:
        """The shares of latent 'y' or 'm', largest first."""
        return np.sort(np.asarray(getattr(self, latent)))[::-1]

    def save(self, path: str | Path) -> None:
        write_json(Path(path), asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> ChannelShare:
        try:
            return cls(**read_json(Path(path)))
        except TypeError as exc:
            raise ResultsError(f"{path}: not a channel-share file ({exc})") from None


def sequence_bits(codec: CodingModel, frames: Iterable[Tensor], q_indexes: Sequence[float], intra_period: int,
                  on_frame: Callable[[], object] | None = None) -> list[dict[str, Tensor]]:
    """Per rate point: bits per channel of ŷ_t and m̂_t summed over the P-frames of one sequence (frames
    (3, H, W) in [0, 1], read once; one reference state per rate point)."""
    model = codec.model
    states: list[ReferenceState | None] = [None] * len(q_indexes)
    recorders = [ChannelBitsRecorder(RateEstimator("round")) for _ in q_indexes]
    with torch.inference_mode():
        for t, frame in enumerate(frames):
            x = frame[None].to(codec.device)
            for i, q in enumerate(q_indexes):
                if t % intra_period == 0:
                    out = model.intra_step(x, float(q), coder=RateEstimator("round"), sequence_index=t)
                else:
                    out = model.inter_step(x, states[i], float(q), coder=recorders[i])
                states[i] = out.state
            if on_frame is not None:
                on_frame()
    return [r.bits for r in recorders]


def channel_bitrate_share(checkpoint: str | Path | CodingModel, dataset: str | Path | TestSet,
                          q_indexes: Sequence[float] = Q_INDEXES, frames: int | None = None,
                          intra_period: int | None = None, colorspace: str = "rgb",
                          crop: tuple[int, int] | None = None, label: str | None = None, device: str = "cpu",
                          progress: bool = True, rgb_conversion: str = DEFAULT_CONVERSION) -> ChannelShare:
    """Equations 7 and 8 over a test set: each sequence's per-channel share of ŷ and m̂ bits at each rate point,
    averaged. Needs at least one P-frame per sequence."""
    codec = checkpoint if isinstance(checkpoint, CodingModel) else load_coding_model(checkpoint, device)
    test_set, _ = open_test_set(dataset)
    protocol = resolve_protocol(test_set, frames, intra_period, colorspace, crop, rgb_conversion)
    if protocol.intra_period == 1 or protocol.frames == 1:
        raise ResultsError(f"{test_set.name}: the channel share needs P-frames (frames {protocol.frames}, "
                           f"intra period {protocol.intra_period})")
    shares: dict[str, list[np.ndarray]] = {k: [] for k in LATENTS}
    for sequence in test_set.sequences:
        clip = (x for x, _ in read_references(test_set, sequence, protocol))
        with frame_bar(protocol.frames, f"{sequence.name} channel bits", progress) as bar:
            per_rate = sequence_bits(codec, clip, q_indexes, protocol.intra_period, bar.update)
        for bits in per_rate:
            for key in LATENTS:
                total = float(bits[key].sum())
                shares[key].append(bits[key].numpy() / total if total > 0 else np.zeros(bits[key].numel()))
    mean = {k: np.mean(v, axis=0).tolist() for k, v in shares.items()}
    return ChannelShare(label or model_label(codec), test_set.name, mean["y"], mean["m"],
                        [float(q) for q in q_indexes], protocol.frames, len(test_set.sequences))
