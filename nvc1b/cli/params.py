"""``nvc1b params``: parameters per coding part, next to the published figures (paper Table I)."""

from __future__ import annotations

import argparse
import json

from ..config.model import ModelConfig
from ..model.counting import ParameterCount, count_parameters

PART_TITLES = {
    "motion_estimation": "Motion estimation",
    "motion_codec": "Motion encoder-decoder",
    "motion_entropy": "Motion entropy model",
    "temporal_context_mining": "Temporal context mining",
    "contextual_codec": "Contextual encoder-decoder",
    "contextual_entropy": "Contextual entropy model",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="parameter count per coding part (meta device, no memory)")
    p.add_argument("--preset", required=True, help="preset name (tiny, sdd-21m, nvc1b, ...) or preset YAML path")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 if a count is outside the preset's tolerance")
    p.set_defaults(func=run)


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def outside_tolerance(config: ModelConfig, count: ParameterCount) -> list[str]:
    """Names (parts or 'total') whose count misses the preset's reference by more than its tolerance."""
    ref = config.reference
    if ref is None:
        return []
    bad = [k for k, v in ref.parts.items() if abs(count.parts[k] / v - 1) > ref.part_tolerance]
    if abs(count.total / ref.total - 1) > ref.total_tolerance:
        bad.append("total")
    return bad


def render_table(config: ModelConfig, count: ParameterCount) -> str:
    ref = config.reference
    lines = [f"preset {config.name}" + (f": {config.description}" if config.description else "")]
    if ref:
        lines.append(f"reference: {ref.source} (tolerance ±{ref.part_tolerance:.0%} per part, ±{ref.total_tolerance:.1%} total)")
    lines.append(f"{'part':<30}{'parameters':>14}{'reference':>12}{'diff':>9}")

    def row(title: str, value: int, target: float | None, tol: float | None) -> str:
        if target is None:
            return f"{title:<30}{value:>14,}{'':>12}{'':>9}"
        diff = value / target - 1
        flag = " !" if tol is not None and abs(diff) > tol else ""
        return f"{title:<30}{value:>14,}{_millions(target):>12}{diff:>+9.2%}{flag}"

    for name, title in PART_TITLES.items():
        target = ref.parts.get(name) if ref else None
        lines.append(row(title, count.parts[name], target, ref.part_tolerance if ref else None))
    lines.append(row("Total (P-frame model)", count.total, ref.total if ref else None, ref.total_tolerance if ref else None))
    lines.append(row("Intra coder (not in total)", count.intra, None, None))
    return "\n".join(lines)


def render_family_table(config, count) -> str:
    """Parts and total of a model of another family than nvc, with what its preset says of the published sizes."""
    from ..families import family_of

    family = family_of(config)
    lines = [f"preset {config.name} (family {family.name})" + (f": {config.description}" if config.description else "")]
    ref = getattr(config, "reference", None)
    if ref is not None:
        lines.append(f"reference: {ref.source}" + (f"; {ref.notes}" if getattr(ref, "notes", "") else ""))
    lines.append(f"{'part':<30}{'parameters':>14}")
    for name, title in family.part_titles.items():
        lines.append(f"{title:<30}{count.parts[name]:>14,}")
    lines.append(f"{'Total':<30}{count.total:>14,}")
    for name, value in count.extra.items():
        lines.append(f"{'  of which ' + name if name.startswith('T_') else name + ' (not in total)':<30}{value:>14,}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..families import count_parts, family_of, load_model_config

    config = load_model_config(args.preset)
    if family_of(config).name != "nvc":
        count = count_parts(config)
        print(json.dumps(count.as_json()) if args.json else render_family_table(config, count))
        return 0
    count = count_parameters(config)
    if args.json:
        print(json.dumps(count.as_json()))
    else:
        print(render_table(config, count))
    return 1 if args.check and outside_tolerance(config, count) else 0
