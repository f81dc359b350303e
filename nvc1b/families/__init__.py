"""Model families: the registry the engine, eval, cluster and sweep code go through.

A family (``base.Family``) says how to build its model from a preset, count its parts, which parts each stage
type trains with which losses, the clip loss DeepSpeed wraps and the bitstream coder its steps call. Presets name
their family (``family: nvc`` is the default, so presets without the key are NVC presets). A new family goes in
its own folder here and is added to ``FAMILIES``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ..config.loading import read_yaml, validate
from ..config.model import preset_path
from ..errors import ConfigError
from .base import Family, PartCount
from .nvc import NVC
from .vct import VCT

FAMILIES: dict[str, Family] = {f.name: f for f in (NVC, VCT)}
DEFAULT_FAMILY = "nvc"


def get_family(name: str, where: str = "") -> Family:
    """The family registered as ``name``."""
    if name not in FAMILIES:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}key 'family': unknown model family '{name}' (choose one of {', '.join(FAMILIES)})")
    return FAMILIES[name]


def family_name(config: Any) -> str:
    return getattr(config, "family", DEFAULT_FAMILY)


def family_of(model_or_config: Any) -> Family:
    """The family of a model or of a preset config."""
    config = getattr(model_or_config, "config", model_or_config)
    return get_family(family_name(config))


def build_model(config: Any) -> nn.Module:
    """A fresh model of ``config``'s family."""
    return family_of(config).build(config)


def count_parts(config: Any) -> PartCount:
    return family_of(config).count(config)


def preset_family(name_or_path: str | Path) -> Family:
    """The family a preset names (``nvc`` when it names none)."""
    path = preset_path(name_or_path)
    data = read_yaml(path)
    return get_family(str(data.get("family", DEFAULT_FAMILY)), str(path))


def load_model_config(name_or_path: str | Path) -> Any:
    """A preset of any family, by name or path, validated by its family's config class."""
    from ..config.model import load_preset

    path = preset_path(name_or_path)
    data = read_yaml(path)
    family = get_family(str(data.get("family", DEFAULT_FAMILY)), str(path))
    if family.name == "nvc":
        return load_preset(path)
    data.setdefault("name", path.stem)
    config = validate(family.config_class, data, str(path))
    missing = [key for key in family.sections if key not in data]
    if missing:
        raise ConfigError(f"{path}: key '{missing[0]}': missing section; a {family.name} preset gives every section "
                          f"({', '.join(family.sections)})")
    return config


def config_from_json(text: str, where: str) -> Any:
    """A config stored as JSON (an export's embedded preset) back as its family's typed object."""
    data = json.loads(text)
    family = get_family(str(data.get("family", DEFAULT_FAMILY)), where)
    return validate(family.config_class, data, where)


__all__ = [
    "FAMILIES", "Family", "PartCount", "build_model", "config_from_json", "count_parts", "family_of", "get_family",
    "load_model_config", "preset_family", "preset_path",
]
