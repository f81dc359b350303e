"""Hierarchical quality (DCVC-DC): a period-4 pattern over the P-frames of a GOP selects the reference
feature adaptor and the loss weight w_t, so quality alternates and error propagation is damped."""

from __future__ import annotations

ADAPTOR_INDEX = (0, 1, 0, 2)
"""Feature adaptor used when coding the frame at sequence position t: ADAPTOR_INDEX[t % 4] (DCVC-SDD's test
script; the GOP position gives the same when the intra period is a multiple of 4)."""
FRAME_WEIGHTS = (0.5, 1.2, 0.5, 0.9)
"""w_t of the losses for the frame at GOP position t: FRAME_WEIGHTS[t % 4]."""


def adaptor_index(frame_index: int) -> int:
    return ADAPTOR_INDEX[frame_index % 4]


def untrained_adaptors(longest_clip: int) -> list[int]:
    """The feature adaptors that training on clips of at most ``longest_clip`` frames never uses: a T-frame clip
    codes P-frames at positions 1..T−1, and position 1 adapts the I-frame (``adaptor_intra``), so adaptor 2 needs
    clips of 4 frames and adaptor 1 clips of 6."""
    trained = {adaptor_index(t) for t in range(2, longest_clip)}
    return sorted(set(ADAPTOR_INDEX) - trained)


def adaptor_positions(adaptor: int, count: int = 3) -> list[int]:
    """The first ``count`` sequence positions (from 2 on) whose P-frames go through feature adaptor ``adaptor``."""
    return [t for t in range(2, 2 + 4 * count) if adaptor_index(t) == adaptor][:count]


def frame_weight(frame_index: int, weights: tuple[float, ...] = FRAME_WEIGHTS) -> float:
    return weights[frame_index % len(weights)]
