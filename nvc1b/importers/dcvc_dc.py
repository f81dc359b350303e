"""DCVC-DC's intra model (microsoft/DCVC, DCVC-family/DCVC-DC, ``IntraNoAR`` of ``image_model.py``) onto nvc1b's
intra coder at its default widths: every one of its tensors has exactly one counterpart."""

from __future__ import annotations

from torch import Tensor

from .mapping import Convert, Rule, bit_estimator_rules, map_state_dict, rate_rules, read_key_list

INTRA_RULES: list[Rule] = [
    (["enc.enc_1"], ["enc_in"]),
    (["enc.enc_2"], ["enc_out"]),
    (["hyper_enc"], ["hyperprior.encoder"]),
    (["hyper_dec"], ["hyperprior.decoder"]),
    (["y_prior_fusion"], ["fusion.net"]),
    (["y_spatial_prior_adaptor_1", "y_spatial_prior_adaptor_2", "y_spatial_prior_adaptor_3"],
     ["spatial_prior.step_adaptors"]),
    (["y_spatial_prior"], ["spatial_prior.net"]),
    (["dec.dec_1"], ["dec_in"]),
    (["dec.dec_2"], ["dec_out"]),
    (["refine"], ["refine"]),
]
"""DCVC-DC intra module prefixes and the nvc1b intra modules holding the same tensors in the same order."""


def intra_rules(prefix: str = "") -> tuple[list[Rule], dict[str, Convert]]:
    """Rules onto nvc1b keys under ``prefix`` ('' for an IntraCodec alone, 'intra.' inside a VideoCodec)."""
    rules: list[Rule] = [(theirs, [prefix + o for o in ours]) for theirs, ours in INTRA_RULES]
    convert: dict[str, Convert] = {}
    for extra in (bit_estimator_rules("bit_estimator_z", prefix + "hyperprior.z_prior"),
                  rate_rules("q", prefix + "rate")):
        rules += extra[0]
        convert.update(extra[1])
    return rules, convert


def map_intra(foreign: dict[str, Tensor], target: dict[str, Tensor], source: str, prefix: str = "") -> dict[str, Tensor]:
    """nvc1b intra tensors (``target``'s keys, under ``prefix``) from a DCVC-DC ``IntraNoAR`` state dict."""
    rules, convert = intra_rules(prefix)
    if foreign and all(k.startswith("module.") for k in foreign):
        foreign = {k[len("module."):]: v for k, v in foreign.items()}
    return map_state_dict(foreign, target, rules, convert, source, expected=read_key_list("dcvc_dc_intra"))


def is_dcvc_dc_intra(state: dict[str, Tensor]) -> bool:
    """Whether a state dict is keyed as DCVC-DC's intra model (possibly with DataParallel's 'module.')."""
    keys = {k.removeprefix("module.") for k in state}
    return {"q_basic_enc", "q_scale_enc", "bit_estimator_z.f1.h", "y_spatial_prior_adaptor_1.weight"} <= keys
