"""Deterministic, reference-keyed weights for the DCVC-SDD / DCVC-DC fixtures, built from an inventory alone.

The fixture script (tools/dcvc_fixtures/make_fixtures.py) loads these weights into the reference models with strict
loading; the nvc1b tests rebuild the identical tensors from tests/fixtures/dcvc/*_inventory.json (its "weights"
entry holds seed, gain and q_basic) without the reference code:

    state = build_state_dict(load_inventory("tests/fixtures/dcvc/sdd_pframe_inventory.json"))

The rule, per state-dict key, with the parameters of ``weight_rule(inventory)`` (the inventory's "weights" entry over
the defaults below); ``gen`` = a CPU ``torch.Generator`` seeded with ``zlib.crc32(key, seed)``, the key's CRC-32
started from the seed; every draw a float32 ``torch.randn`` of the key's shape, then cast to the inventory's dtype:

- quantisation anchors (last name contains ``q_scale``, 4 values): the fixed ladder ``Q_SCALE_ENC`` for encoder-side
  keys, ``Q_SCALE_DEC`` where the name contains ``dec`` (no draw);
- quantisation bases (last name contains ``q_basic``): ``m * exp(0.2 * N(0, 1))`` with ``m`` = ``q_basic_keys[key]``
  if given, else ``q_basic_dec`` for names containing ``dec``, else ``q_basic_enc``;
- bit-estimator parameters (key starts with ``bit_estimator``, last name ``h``/``b``/``a``): ``0.3, 0.3, 0.5`` times
  ``N(0, 1)``;
- other tensors with 2 or more dimensions (convolution kernels): ``N(0, g**2 / fan_in)``,
  ``fan_in = shape[1] * prod(shape[2:])`` (a depthwise kernel's fan-in is its window), ``g = gain``, times
  ``ffn2_out`` for the output projection of DCVC-DC's gated feed-forward (keys ending ``conv_out.weight``: its
  product term is quadratic in the input and diverges otherwise);
- the last layer (weight and bias, in inventory order) of each top-level module named in ``hyper_enc`` is then
  multiplied by its factor, so that the rounded hyper-latents are a mix of zeros and non-zeros;
- biases and any other 1-D tensor: ``0.01 * N(0, 1)``; integer tensors (none in the references): zeros.

The fixtures use contractive networks (gain < 1) whose rate parameters scale the latents up and the decoders'
inputs back down: rounded latents are a mix of zeros and non-zeros, and float noise is not amplified.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Mapping
from pathlib import Path

import torch

# Anchors of the four rate points: q_index 0 is the lowest rate (encoder features scaled down, decoder up).
Q_SCALE_ENC = (0.45, 0.75, 1.25, 2.0)
Q_SCALE_DEC = (2.0, 1.25, 0.75, 0.45)
GAIN = 1.0
FFN2_OUT = 0.05
# Output layer of the hyper encoders scaled so that the rounded hyper-latents are not all zero.
HYPER_ENC = {"mv_hyper_prior_encoder": 40.0, "contextual_hyper_prior_encoder": 6.0, "hyper_enc": 2.0}

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32}


def dtype_name(dtype: torch.dtype) -> str:
    """The inventory's name of a dtype ("float32")."""
    return str(dtype).removeprefix("torch.")


def key_generator(seed: int, key: str) -> torch.Generator:
    """The generator every tensor of ``key`` is drawn from: seeded by crc32(key) started from the seed.

    (torch's CPU generator keeps only the low 32 bits of a seed, so the pair is mixed into 32 bits.)"""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(zlib.crc32(key.encode("utf-8"), seed & 0xFFFFFFFF))
    return gen


def _normal(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float32)


def make_tensor(key: str, shape: tuple[int, ...], rule: Mapping) -> torch.Tensor:
    """One float32 tensor by the module docstring's rule (``rule``: a complete ``weight_rule``)."""
    gen = key_generator(rule["seed"], key)
    last = key.rsplit(".", 1)[-1]
    if "q_scale" in last:
        ladder = Q_SCALE_DEC if "dec" in last else Q_SCALE_ENC
        if math.prod(shape) != len(ladder):
            raise ValueError(f"{key}: expected {len(ladder)} anchors, inventory says shape {shape}")
        return torch.tensor(ladder, dtype=torch.float32).reshape(shape)
    if "q_basic" in last:
        scale = rule.get("q_basic_keys", {}).get(key, rule["q_basic_dec" if "dec" in last else "q_basic_enc"])
        return scale * torch.exp(0.2 * _normal(shape, gen))
    if key.startswith("bit_estimator") and last in ("h", "b", "a"):
        return {"h": 0.3, "b": 0.3, "a": 0.5}[last] * _normal(shape, gen)
    if len(shape) >= 2:
        gain = rule["gain"] * (rule["ffn2_out"] if key.endswith("conv_out.weight") else 1.0)
        fan_in = shape[1] * math.prod(shape[2:])
        return _normal(shape, gen) * (gain / math.sqrt(fan_in))
    return 0.01 * _normal(shape, gen)


def weight_rule(inventory: Mapping, **overrides) -> dict:
    """The complete rule of an inventory: its "weights" entry (seed required) over the defaults, then overrides.
    A "q_basic" entry sets both q_basic_enc and q_basic_dec."""
    given = {**inventory.get("weights", {}), **{k: v for k, v in overrides.items() if v is not None}}
    rule = {"gain": GAIN, "q_basic_enc": 1.0, "q_basic_dec": 1.0, "ffn2_out": FFN2_OUT, "hyper_enc": HYPER_ENC}
    if "q_basic" in given:
        rule["q_basic_enc"] = rule["q_basic_dec"] = given.pop("q_basic")
    rule.update(given)
    rule.pop("checksum", None)
    if "seed" not in rule:
        raise ValueError("the weight rule needs a seed")
    return rule


def build_state_dict(inventory: Mapping, **overrides) -> dict[str, torch.Tensor]:
    """A reference-keyed state dict for ``inventory`` (its "tensors": key -> {"shape", "dtype"}), in inventory order,
    by ``weight_rule(inventory, **overrides)`` (seed, gain, q_basic_enc, q_basic_dec, ffn2_out, hyper_enc)."""
    rule = weight_rule(inventory, **overrides)
    hyper = rule["hyper_enc"]
    out: dict[str, torch.Tensor] = {}
    last_of_hyper_enc = _last_layer_keys(inventory["tensors"], hyper)
    for key, spec in inventory["tensors"].items():
        shape = tuple(int(n) for n in spec["shape"])
        dtype = _DTYPES[spec["dtype"]]
        if dtype.is_floating_point:
            t = make_tensor(key, shape, rule)
            if key in last_of_hyper_enc:
                t = t * hyper[key.split(".", 1)[0]]
            out[key] = t.to(dtype)
        else:
            out[key] = torch.zeros(shape, dtype=dtype)
    return out


def _last_layer_keys(tensors: Mapping, tops: Mapping) -> set[str]:
    """The weight and bias of the last layer (in inventory order) of each top-level module named in *tops*."""
    last: dict[str, str] = {}
    for key in tensors:
        top, _, rest = key.partition(".")
        if top in tops and rest.endswith("weight"):
            last[top] = key.removesuffix("weight")
    return {prefix + leaf for prefix in last.values() for leaf in ("weight", "bias")}


def load_inventory(path: str | Path) -> dict:
    """Read an inventory JSON file."""
    return json.loads(Path(path).read_text())


def state_dict_checksum(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the sorted keys, each key's shape and dtype and its contiguous little-endian bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tuple(t.shape)}|{dtype_name(t.dtype)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
