"""Sizing parts to a parameter budget: count one part on the meta device, and solve one width knob for a
target count (used to build presets and the scaling-study models)."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from ..config.loading import validate
from ..config.model import ModelConfig
from ..errors import ConfigError


def build_part(config: ModelConfig, part: str) -> nn.Module:
    """Build one part (one of the six P-frame parts, or 'intra') on the current default device."""
    from .codec import VideoCodec  # the part classes are wired up there

    builders = VideoCodec.part_builders()
    if part not in builders:
        raise ConfigError(f"unknown part '{part}': choose one of {', '.join(builders)}")
    return builders[part](config)


def part_parameters(config: ModelConfig, part: str) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build_part(config, part).parameters())


def with_value(config: ModelConfig, key: str, value: Any) -> ModelConfig:
    """A copy of ``config`` with the dotted ``key`` (list items by index, e.g. 'contextual_codec.channels.3')
    set to ``value``, validated again."""
    data = _lists(config.model_dump())
    *path, last = key.split(".")
    node: Any = data
    try:
        for part in path:
            node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            if last not in node:
                raise KeyError(last)
            node[last] = value
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"preset '{config.name}': no knob '{key}'") from None
    return validate(ModelConfig, data, f"preset '{config.name}' with {key}={value}")


def _lists(data: Any) -> Any:
    """model_dump gives tuples for tuple fields; turn them into lists so items can be replaced."""
    if isinstance(data, dict):
        return {k: _lists(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_lists(v) for v in data]
    return data


def solve_width(
    config: ModelConfig, part: str, key: str, target: float, multiple: int = 16, low: int = 1, high: int = 8192
) -> tuple[ModelConfig, int]:
    """Set integer knob ``key`` (a multiple of ``multiple`` in [low, high]) so that ``part`` has the parameter
    count closest to ``target``; counts are assumed to grow with the knob. Returns the config and its count."""
    lo, hi = max(1, -(-low // multiple)), high // multiple

    @functools.cache
    def count(k: int) -> int:
        return part_parameters(with_value(config, key, k * multiple), part)

    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(mid) < target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda k: abs(count(k) - target))
    return with_value(config, key, best * multiple), count(best)
