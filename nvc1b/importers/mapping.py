"""Tensor-by-tensor mapping of a foreign state dict onto an nvc1b module: pairs of key prefixes whose tensors
correspond one to one in state-dict order, plus renames. Strict: a missing, unexpected or misshaped tensor
stops the import with a one-line error naming it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..errors import WeightsError

Rule = tuple[Sequence[str], Sequence[str]]
"""(foreign key prefixes, nvc1b key prefixes): the tensors under the first, in order, are those under the second."""
Convert = Callable[[Tensor], Tensor]


def _under(keys: Sequence[str], prefixes: Sequence[str]) -> list[str]:
    out: list[str] = []
    for prefix in prefixes:
        found = [k for k in keys if k == prefix or k.startswith(prefix + ".")]
        if not found:
            out.append(prefix)  # reported as missing below
        out.extend(found)
    return out


def read_key_list(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """A packaged list of a published model's tensors (``nvc1b/importers/<name>.txt``: 'key d0,d1,…' per line)."""
    text = (Path(__file__).resolve().parent / f"{name}.txt").read_text()
    rows = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    return [(key, tuple(int(n) for n in dims.split(","))) for key, dims in rows]


def check_keys(foreign: dict[str, Tensor], expected: Sequence[tuple[str, tuple[int, ...]]], source: str) -> None:
    """Every expected tensor present with its shape, nothing else: else a one-line error naming the first."""
    names = {key for key, _ in expected}
    missing = [key for key, _ in expected if key not in foreign]
    if missing:
        raise WeightsError(f"{source}: tensor '{missing[0]}' is missing ({len(missing)} missing in all): "
                           "not a checkpoint of this published model")
    unexpected = [key for key in foreign if key not in names]
    if unexpected:
        raise WeightsError(f"{source}: tensor '{unexpected[0]}' is unexpected ({len(unexpected)} in all): "
                           "not a checkpoint of this published model")
    for key, shape in expected:
        if tuple(foreign[key].shape) != shape:
            raise WeightsError(f"{source}: tensor '{key}' has shape {tuple(foreign[key].shape)}, the published "
                               f"model's is {shape}")


def map_state_dict(
    foreign: dict[str, Tensor], target: dict[str, Tensor], rules: Sequence[Rule],
    convert: dict[str, Convert] | None = None, source: str = "checkpoint",
    expected: Sequence[tuple[str, tuple[int, ...]]] | None = None,
) -> dict[str, Tensor]:
    """``target``-keyed tensors taken from ``foreign`` by ``rules``; ``convert`` maps a target key to a function
    applied to its foreign tensor (a reshape or an exact reparameterisation). With ``expected`` (the published
    model's key list) the checkpoint is first checked name by name and read in that order."""
    convert = convert or {}
    if expected is not None:
        check_keys(foreign, expected, source)
        foreign = {key: foreign[key] for key, _ in expected}
    foreign_keys, target_keys = list(foreign), list(target)
    out: dict[str, Tensor] = {}
    used: set[str] = set()
    for theirs, ours in rules:
        src, dst = _under(foreign_keys, theirs), _under(target_keys, ours)
        for s, d in zip(src, dst):
            if s not in foreign:
                raise WeightsError(f"{source}: tensor '{s}' is missing (expected for nvc1b '{d}')")
            if d not in target:
                raise WeightsError(f"{source}: tensor '{s}' has no counterpart (nvc1b has no '{d}')")
            value = convert[d](foreign[s]) if d in convert else foreign[s]
            if tuple(value.shape) != tuple(target[d].shape):
                raise WeightsError(f"{source}: tensor '{s}' has shape {tuple(foreign[s].shape)}, nvc1b's '{d}' "
                                   f"needs {tuple(target[d].shape)}: not the architecture of this preset")
            out[d] = value.detach().to(torch.float32).clone()
            used.add(s)
        if len(src) != len(dst):
            extra = (src[len(dst):] or dst[len(src):])[0]
            side = "unexpected" if len(src) > len(dst) else "missing"
            raise WeightsError(f"{source}: tensor '{extra}' is {side} under '{theirs[0]}' "
                               f"({len(src)} tensors there, nvc1b's '{ours[0]}' has {len(dst)})")
    unexpected = [k for k in foreign_keys if k not in used]
    if unexpected:
        raise WeightsError(f"{source}: tensor '{unexpected[0]}' is unexpected ({len(unexpected)} tensors not mapped)")
    missing = [k for k in target_keys if k not in out]
    if missing:
        raise WeightsError(f"{source}: nvc1b tensor '{missing[0]}' gets no value ({len(missing)} tensors missing)")
    return out


def bit_estimator_rules(theirs: str, ours: str) -> tuple[list[Rule], dict[str, Convert]]:
    """DCVC's BitEstimator (f1..f4 with h, b and a) onto FactorizedPrior(filters=(1, 1, 1)): h_i → matrices.i,
    b_i → biases.i, a_i → factors.i, each (1, C, 1, 1) → (C, 1, 1)."""
    rules: list[Rule] = []
    convert: dict[str, Convert] = {}
    for i in range(4):
        names = [("h", "matrices"), ("b", "biases")] + ([("a", "factors")] if i < 3 else [])
        for a, b in names:
            rules.append(([f"{theirs}.f{i + 1}.{a}"], [f"{ours}.{b}.{i}"]))
            convert[f"{ours}.{b}.{i}"] = lambda t: t.reshape(-1, 1, 1)
    return rules, convert


def rate_rules(prefix: str, ours: str) -> tuple[list[Rule], dict[str, Convert]]:
    """DCVC's ``<prefix>_q_basic_enc/dec`` (1, C, 1, 1) and ``<prefix>_q_scale_enc/dec`` (A, 1, 1, 1) onto
    RateControl's bases (C,) and per-anchor scales (A,)."""
    rules: list[Rule] = []
    convert: dict[str, Convert] = {}
    for side in ("enc", "dec"):
        for a, b in (("basic", "base"), ("scale", "scale")):
            rules.append(([f"{prefix}_{a}_{side}"], [f"{ours}.{side}_{b}"]))
            convert[f"{ours}.{side}_{b}"] = lambda t: t.reshape(-1)
    return rules, convert
