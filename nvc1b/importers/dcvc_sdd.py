"""DCVC-SDD's P-frame model (xhsheng-ustc/DCVC-SDD, ``DMC`` of ``video_model_hierarchical.py``) onto the six
P-frame parts of an nvc1b ``VideoCodec`` at the ``sdd-21m`` widths: every one of its 768 tensors has exactly
one counterpart."""

from __future__ import annotations

from torch import Tensor

from .mapping import Convert, Rule, bit_estimator_rules, map_state_dict, rate_rules, read_key_list

P_FRAME_RULES: list[Rule] = [
    (["optic_flow"], ["motion_estimation.spynet"]),
    (["mv_encoder", "mv_decoder"], ["motion_codec.enc_in", "motion_codec.enc_mid", "motion_codec.enc_first",
                                    "motion_codec.enc_ref", "motion_codec.enc_out", "motion_codec.dec_in",
                                    "motion_codec.dec_mid", "motion_codec.dec_out", "motion_codec.structure_head",
                                    "motion_codec.detail_head"]),
    (["mv_hyper_prior_encoder"], ["motion_entropy.hyperprior.encoder"]),
    (["mv_hyper_prior_decoder"], ["motion_entropy.hyperprior.decoder"]),
    (["mv_y_prior_fusion_adaptor_0"], ["motion_entropy.fusion.adaptor_first"]),
    (["mv_y_prior_fusion_adaptor_1"], ["motion_entropy.fusion.adaptor_ref"]),
    (["mv_y_prior_fusion"], ["motion_entropy.fusion.net"]),
    (["mv_y_spatial_prior_adaptor_1", "mv_y_spatial_prior_adaptor_2", "mv_y_spatial_prior_adaptor_3"],
     ["motion_entropy.spatial_prior.step_adaptors"]),
    (["mv_y_spatial_prior"], ["motion_entropy.spatial_prior.net"]),
    (["feature_adaptor_I"], ["temporal_context_mining.adaptor_intra"]),
    (["feature_adaptor", "feature_adaptor2", "feature_adaptor3"], ["temporal_context_mining.adaptors"]),
    (["lstm"], ["temporal_context_mining.lstm"]),
    (["feature_extractor"], ["temporal_context_mining.pyramid"]),
    (["feature_extractor_hidden"], ["temporal_context_mining.hidden_pyramid"]),
    (["context_fusion_net"], ["temporal_context_mining.fusion"]),
    (["context_fusion_net_hidden"], ["temporal_context_mining.hidden_fusion"]),
    (["align_s"], ["temporal_context_mining.align_structure"]),
    (["align_d"], ["temporal_context_mining.align_detail"]),
    (["context_hidden_fusion1", "context_hidden_fusion2", "context_hidden_fusion3"],
     ["temporal_context_mining.merge_hidden"]),
    (["contextual_encoder", "contextual_decoder", "recon_generation_net"],
     ["contextual_codec.enc1", "contextual_codec.enc1_res", "contextual_codec.enc2", "contextual_codec.enc2_res",
      "contextual_codec.enc3", "contextual_codec.enc4", "contextual_codec.dec4", "contextual_codec.dec3",
      "contextual_codec.dec2_res", "contextual_codec.dec2", "contextual_codec.dec1_res", "contextual_codec.dec1",
      "contextual_codec.recon_in", "contextual_codec.recon_unets", "contextual_codec.recon_out"]),
    (["contextual_hyper_prior_encoder"], ["contextual_entropy.hyperprior.encoder"]),
    (["contextual_hyper_prior_decoder"], ["contextual_entropy.hyperprior.decoder"]),
    (["temporal_prior_encoder"], ["contextual_entropy.temporal_prior"]),
    (["y_prior_fusion_adaptor_0"], ["contextual_entropy.fusion.adaptor_first"]),
    (["y_prior_fusion_adaptor_1"], ["contextual_entropy.fusion.adaptor_ref"]),
    (["y_prior_fusion"], ["contextual_entropy.fusion.net"]),
    (["y_spatial_prior_adaptor_1", "y_spatial_prior_adaptor_2", "y_spatial_prior_adaptor_3"],
     ["contextual_entropy.spatial_prior.step_adaptors"]),
    (["y_spatial_prior"], ["contextual_entropy.spatial_prior.net"]),
]
"""DCVC-SDD module prefixes and the nvc1b modules holding the same tensors in the same order."""


def p_frame_rules() -> tuple[list[Rule], dict[str, Convert]]:
    rules, convert = list(P_FRAME_RULES), {}
    for extra in (bit_estimator_rules("bit_estimator_z_mv", "motion_entropy.hyperprior.z_prior"),
                  bit_estimator_rules("bit_estimator_z", "contextual_entropy.hyperprior.z_prior"),
                  rate_rules("mv_y_q", "motion_codec.rate"), rate_rules("y_q", "contextual_codec.rate")):
        rules += extra[0]
        convert.update(extra[1])
    return rules, convert


def map_p_frame(foreign: dict[str, Tensor], target: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """nvc1b P-frame tensors (``target``'s keys: the six parts) from a DCVC-SDD ``DMC`` state dict."""
    rules, convert = p_frame_rules()
    return map_state_dict(foreign, target, rules, convert, source, expected=read_key_list("dcvc_sdd_pframe"))
