"""YAML in, typed objects out: every configuration file is validated once, here, at the edge.

Errors name the file and the dotted key, in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class Strict(BaseModel):
    """Base of all configuration objects: unknown keys are errors, numbers are finite (``.inf``/``.nan`` are
    rejected), objects are immutable, and each field's docstring is its documentation."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML mapping from ``path`` or raise a one-line ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                          "a YAML file is expected") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str, data: dict | None = None,
                            items: str | None = None, noun: str = "item") -> str:
    """One line: the source, the dotted key of the first problem and pydantic's message for it.

    With ``items`` (a top-level list key such as ``stages``) a problem inside one entry of that list is named by
    the entry's index and ``name`` ("stage 3 ('inter_me'): key 'lr': ...").
    """
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    label = ""
    if items and data is not None and len(loc) >= 2 and loc[0] == items and isinstance(loc[1], int):
        entries = data.get(items) or []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"{noun} {loc[1]}" + (f" ('{name}')" if name else "") + ": "
        loc = loc[2:]
    key = ".".join(str(part) for part in loc)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "missing key"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    where = f"key '{key}': " if key else ""
    return f"{source}: {label}{where}{message}{more}"


def validate(cls: type[T], data: dict[str, Any], source: str) -> T:
    """Build ``cls`` from ``data``; a problem becomes a ConfigError naming ``source`` and the key."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load(cls: type[T], path: str | Path) -> T:
    return validate(cls, read_yaml(path), str(path))
