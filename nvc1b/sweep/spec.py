"""Sweep specs (``stages/sweeps/*.yaml``): a base preset and schedule, then the models of a scaling study, each
defined by knob changes and parameter targets, as validated data.

Paths in a spec (``base`` when it is a file, ``schedule``, ``eval.datasets``) are relative to the spec file.
Every problem is a one-line ConfigError naming the file, the model and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError, field_validator, model_validator

from ..config.loading import Strict, format_validation_error, read_yaml
from ..config.model import PARTS, PartName
from ..errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class Solve(Strict):
    """Set one integer knob so that a part (or the whole model) reaches a parameter count."""

    key: str = Field(min_length=1)
    """Dotted knob, list items by index: 'motion_codec.channels', 'contextual_codec.channels.2'."""
    part: PartName | None = None
    """The part whose parameters the knob changes (default: the key's first component)."""
    target: PositiveFloat | None = None
    """Parameters of the part."""
    total: PositiveFloat | None = None
    """Parameters of the P-frame model (the six parts); the other parts stay as they are."""
    multiple: PositiveInt = 8
    """The knob is a multiple of this."""
    low: PositiveInt = 1
    """Smallest value tried."""
    high: PositiveInt = 8192
    """Largest value tried."""

    @model_validator(mode="after")
    def _one_target(self) -> Solve:
        if (self.target is None) == (self.total is None):
            raise ValueError("give exactly one of 'target' (parameters of the part) and 'total' (of the model)")
        if self.part is None and self.key.split(".")[0] not in PARTS:
            raise ValueError(f"key '{self.key}' is not inside a part: name the part to count with 'part'")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self

    @property
    def counted_part(self) -> str:
        return self.part or self.key.split(".")[0]


class ModelSpec(Strict):
    """One model of the study."""

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    """Model name (M7), used for run directories and in tables."""
    description: str = ""
    """What was changed, in words."""
    extends: str | None = None
    """An earlier model this one starts from (default: the base preset)."""
    base: str | None = None
    """A preset of any family this model starts from instead of the sweep's base (e.g. VCT variants in a study
    of NVC models); a name or a path relative to the spec."""
    schedule: str | None = None
    """Training schedule of this model instead of the sweep's (each family has its own stage types)."""
    set: dict[str, Any] = {}
    """Knob changes applied in order, dotted keys: {'contextual_codec.blocks': [1, 1, 2, 2]}."""
    solve: list[Solve] = []
    """Parameter targets met after the changes, in order, each by solving one knob."""
    paper_total: PositiveFloat | None = None
    """The published parameter count this model is built to match (checked by `sweep plan`)."""
    figures: list[str] = []
    """Figures (ids from the spec's `figures`) this model is plotted in."""

    @field_validator("solve", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class EvalSpec(Strict):
    """What each trained model is evaluated on."""

    datasets: list[str] = []
    """Test-set descriptions (data/*.yaml), relative to the spec file."""


class SweepSpec(Strict):
    """A scaling study: how to train, what to change, what to compare."""

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    description: str = ""
    base: str
    """Preset every model starts from: a name (sdd-21m) or a preset YAML path."""
    schedule: str
    """Training schedule of every model (its `preset` is replaced by the model's)."""
    stages: str | None = None
    """Stages of the schedule to train, 'A..B' by name or index (default: all)."""
    overrides: dict[str, Any] = {}
    """Schedule settings changed for the sweep (crop, global_batch, data, ...)."""
    baseline: str
    """The model every BD-rate is measured against."""
    tolerance: float = Field(0.03, gt=0)
    """Allowed relative difference between a model's count and its paper_total."""
    figures: dict[str, str] = {}
    """Figure id → title; each becomes one BD-rate-vs-parameters plot of the report."""
    eval: EvalSpec = EvalSpec()
    models: list[ModelSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> SweepSpec:
        seen: set[str] = set()
        for i, m in enumerate(self.models):
            if m.name in seen:
                raise ValueError(f"models.{i}: model '{m.name}': the name is used by an earlier model")
            if m.extends is not None and m.base is not None:
                raise ValueError(f"models.{i}: model '{m.name}': give 'extends' or 'base', not both")
            if m.extends is not None and m.extends not in seen:
                raise ValueError(f"models.{i}: model '{m.name}': extends '{m.extends}', which is not an earlier model")
            unknown = [f for f in m.figures if f not in self.figures]
            if unknown:
                raise ValueError(f"models.{i}: model '{m.name}': figure '{unknown[0]}' is not declared in 'figures'")
            seen.add(m.name)
        if self.baseline not in seen:
            raise ValueError(f"baseline '{self.baseline}' is not one of the models")
        return self

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(f"sweep '{self.name}': no model '{name}' (models: {', '.join(m.name for m in self.models)})")


@dataclass(frozen=True)
class Sweep:
    """A loaded spec and where it came from (relative paths in it are relative to ``path``'s folder)."""

    spec: SweepSpec
    path: Path

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    @property
    def schedule_path(self) -> Path:
        return self.resolve(self.spec.schedule)

    @property
    def base_preset(self) -> str:
        """The base preset as load_preset takes it: a name, or the resolved path of a file."""
        return self.preset_of(self.spec.base)

    def preset_of(self, name: str) -> str:
        """A preset as load_preset takes it: a name, or the resolved path of a file."""
        return str(self.resolve(name)) if name.endswith((".yaml", ".yml")) else name

    def schedule_of(self, model: ModelSpec) -> Path:
        """The schedule ``model`` trains with: its own, else the sweep's."""
        return self.resolve(model.schedule) if model.schedule else self.schedule_path

    @property
    def datasets(self) -> list[Path]:
        return [self.resolve(d) for d in self.spec.eval.datasets]


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep spec (the files it names are checked when they are used)."""
    path = Path(path)
    data = read_yaml(path)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), data, "models", "model")) from None
    return Sweep(spec, path.resolve())
