"""Turning a sweep spec into model presets: each model is its base (the base preset or an earlier model) with
its knob changes applied, then its parameter targets met by solving one width knob each (``solve_width``).

Counting happens on the meta device and is cached per part configuration, so a 24-model sweep resolves in
seconds: a model that changes one part only re-counts that part.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..config.loading import validate
from ..config.model import PARTS, ModelConfig
from ..errors import ConfigError
from ..families import count_parts, family_of, load_model_config
from ..model.counting import ParameterCount
from ..model.sizing import part_parameters, solve_width, with_value
from .spec import ModelSpec, Solve, Sweep

log = logging.getLogger(__name__)


class PartCounter:
    """Parameter counts of parts, cached by the part's own settings and the interface they share."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def part(self, config: ModelConfig, part: str) -> int:
        key = json.dumps([part, getattr(config, part).model_dump(mode="json"),
                          config.interface.model_dump(mode="json")], sort_keys=True)
        if key not in self._cache:
            self._cache[key] = part_parameters(config, part)
        return self._cache[key]

    def count(self, config: ModelConfig) -> ParameterCount:
        if family_of(config).name != "nvc":  # another family: its own parts, its stage-I/intra part apart
            count = count_parts(config)
            return ParameterCount(config.name, dict(count.parts), sum(v for k, v in count.extra.items()
                                                                       if not k.startswith("T_")))
        return ParameterCount(config.name, {p: self.part(config, p) for p in PARTS}, self.part(config, "intra"))


def _set_knob(config, key: str, value: Any):
    """``with_value`` for a preset of any family."""
    if family_of(config).name == "nvc":
        return with_value(config, key, value)
    data = json.loads(json.dumps(config.model_dump(mode="json")))
    *path, last = key.split(".")
    node: Any = data
    try:
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            if last not in node:
                raise KeyError(last)
            node[last] = value
    except (KeyError, IndexError, ValueError, TypeError):
        raise ConfigError(f"preset '{config.name}': no knob '{key}'") from None
    return validate(type(config), data, f"preset '{config.name}' with {key}={value}")


@dataclass(frozen=True)
class SweepModel:
    """One resolved model of a sweep."""

    spec: ModelSpec
    config: ModelConfig
    count: ParameterCount
    solved: dict[str, int] = field(default_factory=dict)
    """Knobs set by solving, with the values found."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def total(self) -> int:
        return self.count.total

    @property
    def paper_diff(self) -> float | None:
        """Relative difference to the published count (None when the spec gives none)."""
        return None if self.spec.paper_total is None else self.total / self.spec.paper_total - 1


def _where(sweep: Sweep, model: ModelSpec) -> str:
    return f"{sweep.path}: model '{model.name}'"


def apply_changes(config: ModelConfig, changes: dict[str, Any], where: str) -> ModelConfig:
    """``config`` with each dotted knob of ``changes`` set, in order."""
    for key, value in changes.items():
        try:
            config = _set_knob(config, key, value)
        except ConfigError as exc:
            message = str(exc).split(": ", 1)[-1] if "no knob" not in str(exc) else f"no knob '{key}'"
            raise ConfigError(f"{where}: set '{key}': {message}") from None
    return config


def _current(config: ModelConfig, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, (tuple, list)) else getattr(node, part)
    return node


def solve_target(config: ModelConfig, solve: Solve, counter: PartCounter, where: str) -> tuple[ModelConfig, int]:
    """Meet one parameter target by solving ``solve.key``; returns the config and the knob's value."""
    part = solve.counted_part
    if family_of(config).name != "nvc":
        raise ConfigError(f"{where}: solve '{solve.key}': parameter targets are solved for nvc models only; "
                          f"set the knobs of a {family_of(config).name} model with 'set'")
    try:
        current = _current(config, solve.key)
    except (AttributeError, IndexError, ValueError):
        raise ConfigError(f"{where}: solve '{solve.key}': no such knob") from None
    if not isinstance(current, int) or isinstance(current, bool):
        raise ConfigError(f"{where}: solve '{solve.key}': the knob is not an integer width ({current!r})")
    target = solve.target
    if target is None:
        count = counter.count(config)
        target = solve.total - (count.total - count.parts[part])
        if target <= 0:
            raise ConfigError(
                f"{where}: solve '{solve.key}': total {solve.total:,.0f} is below the other parts' "
                f"{count.total - count.parts[part]:,} parameters"
            )
    try:
        low, high = _bracket(config, solve, part, target, current, counter)
        solved, n = solve_width(config, part, solve.key, target, solve.multiple, low, high)
    except ConfigError as exc:  # a value on the way is not a valid preset (e.g. a multiple that breaks a rule)
        raise ConfigError(f"{where}: solve '{solve.key}': {str(exc).split(': ', 1)[-1]}") from None
    miss = n / target - 1 if solve.target is not None else (n - target) / solve.total
    if abs(miss) > 0.01:
        log.warning("%s: solving %s missed its target by %+.2f%% (multiple %d)", where, solve.key, 100 * miss,
                    solve.multiple)
    return solved, _current(solved, solve.key)


def _bracket(config: ModelConfig, solve: Solve, part: str, target: float, current: int,
             counter: PartCounter) -> tuple[int, int]:
    """A narrow range around the answer for the bisection. A part's count is about a + b·w² in a width w: the
    counts at the current value and at a first guess fix a and b, whose root is bracketed tightly; the range is
    widened until it holds the target."""
    m = solve.multiple
    lowest, highest = -(-solve.low // m), solve.high // m  # in units of the multiple

    def count(k: int) -> int:
        return counter.part(with_value(config, solve.key, k * m), part)

    k0, n0 = current / m, counter.part(config, part)
    guess = min(max(lowest, round(k0 * (target / n0) ** 0.5)), highest) if n0 else max(lowest, round(k0))
    n1 = count(guess)
    if guess != k0 and n1 != n0:
        b = (n1 - n0) / (guess**2 - k0**2)
        a = n1 - b * guess**2
        if b > 0 and target > a:
            guess = min(max(lowest, round(((target - a) / b) ** 0.5)), highest)
    low, high = max(lowest, int(guess * 0.97) - 1), min(highest, int(guess * 1.03) + 2)
    while low > lowest and count(low) > target:
        low = max(lowest, low - 2 * (guess - low) - 1)
    while high < highest and count(high) < target:
        high = min(highest, high + 2 * (high - guess) + 1)
    return low * m, high * m


def resolve_models(sweep: Sweep, counter: PartCounter | None = None) -> list[SweepModel]:
    """Every model of the sweep as a validated preset with its parameter count, in spec order."""
    counter = counter or PartCounter()
    base = load_model_config(sweep.base_preset)
    resolved: dict[str, SweepModel] = {}
    for m in sweep.spec.models:
        where = _where(sweep, m)
        if m.extends:
            start = resolved[m.extends].config
        else:
            start = load_model_config(sweep.preset_of(m.base)) if m.base else base
        config = start.model_copy(update={"name": m.name, "description": m.description, "reference": None})
        config = apply_changes(config, m.set, where)
        solved: dict[str, int] = {}
        for s in m.solve:
            config, solved[s.key] = solve_target(config, s, counter, where)
        resolved[m.name] = SweepModel(m, config, counter.count(config), solved)
    return list(resolved.values())


def preset_data(model: SweepModel) -> dict:
    """The model's preset as YAML-ready data (``load_preset`` reads it back to the same config)."""
    return model.config.model_dump(mode="json", exclude={"reference"})
