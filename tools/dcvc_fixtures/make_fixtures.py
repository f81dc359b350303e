"""Run the public DCVC-SDD P-frame model and DCVC-DC intra model on seeded weights and frames; store their numbers.

    python tools/dcvc_fixtures/make_fixtures.py --sdd /path/to/DCVC-SDD \
        --dc /path/to/DCVC/DCVC-family/DCVC-DC --out tests/fixtures/dcvc

The reference code is imported from the given folders (nothing of it is copied into nvc1b) and run on the CPU the
way DCVC-SDD's test_video_hierarchical.py runs it: frame 0 by IntraNoAR.encode_decode without a bitstream (its
forward, estimated bits), then P-frames by DMC.encode_decode without a bitstream (forward_one_frame) with
frame_idx = global frame index % 4, the reconstruction clamped in place to [0, 1] before it becomes the next
reference, inputs replicate-padded right/bottom to a multiple of 16 and outputs cropped back. Intermediate values
are read by wrapping the reference's own methods and forward hooks; the reference's forward drives every step.
See tools/dcvc_fixtures/README.md and tests/fixtures/dcvc/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from helpers.dcvc_weights import build_state_dict, dtype_name, state_dict_checksum

# tests/helpers/dcvc_weights.py's rule, per model: contractive networks (gain < 1) with the rate parameters scaling
# the latents up (q_basic_enc) and the decoders' inputs back down (q_basic_dec), so that rounded latents are a mix of
# zeros and non-zeros while float noise is not amplified (see the backend spread in manifest.json).
P_WEIGHTS = {"seed": 1405, "gain": 0.75, "q_basic_enc": 25.0, "q_basic_dec": 0.3,
             "q_basic_keys": {"mv_y_q_basic_dec": 5.0},
             "hyper_enc": {"mv_hyper_prior_encoder": 40.0, "contextual_hyper_prior_encoder": 15.0}}
I_WEIGHTS = {"seed": 1408, "gain": 0.85, "q_basic_enc": 4.0, "q_basic_dec": 0.6, "hyper_enc": {"hyper_enc": 3.0}}
# (height, width, q_in_ckpt, q_index, frames): the four anchor cases the test script runs with 4-anchor
# checkpoints (q_in_ckpt=True), and one on the 64 interpolated levels (q_in_ckpt=False) long enough (frame 5) to
# reach feature_adaptor2.
CASES = ((64, 64, True, 0, 4), (64, 64, True, 3, 4), (72, 88, True, 0, 4), (72, 88, True, 3, 4),
         (64, 64, False, 42, 6))
WHOLE_LIMIT = 16384        # tensors with more elements are stored as a seeded sample + sum + L2 norm
SAMPLE = 4096

# Table I grouping (nvc1b.md) of DCVC-SDD's top-level attributes; rate parameters go with the transform they scale.
TABLE_I = {
    "motion estimation": ["optic_flow"],
    "motion encoder-decoder": ["mv_encoder", "mv_decoder", "mv_y_q_basic_enc", "mv_y_q_scale_enc",
                               "mv_y_q_basic_dec", "mv_y_q_scale_dec"],
    "motion entropy model": ["mv_hyper_prior_encoder", "mv_hyper_prior_decoder", "bit_estimator_z_mv",
                             "mv_y_prior_fusion_adaptor_0", "mv_y_prior_fusion_adaptor_1", "mv_y_prior_fusion",
                             "mv_y_spatial_prior_adaptor_1", "mv_y_spatial_prior_adaptor_2",
                             "mv_y_spatial_prior_adaptor_3", "mv_y_spatial_prior"],
    "temporal context mining": ["align_s", "align_d", "feature_adaptor_I", "feature_adaptor", "feature_adaptor2",
                                "feature_adaptor3", "feature_extractor", "feature_extractor_hidden",
                                "context_fusion_net", "context_fusion_net_hidden", "lstm", "context_hidden_fusion1",
                                "context_hidden_fusion2", "context_hidden_fusion3"],
    "contextual encoder-decoder": ["contextual_encoder", "contextual_decoder", "recon_generation_net",
                                   "y_q_basic_enc", "y_q_scale_enc", "y_q_basic_dec", "y_q_scale_dec"],
    "contextual entropy model": ["contextual_hyper_prior_encoder", "contextual_hyper_prior_decoder",
                                 "bit_estimator_z", "temporal_prior_encoder", "y_prior_fusion_adaptor_0",
                                 "y_prior_fusion_adaptor_1", "y_prior_fusion", "y_spatial_prior_adaptor_1",
                                 "y_spatial_prior_adaptor_2", "y_spatial_prior_adaptor_3", "y_spatial_prior"],
}
INTRA_PARTS = {
    "encoder": ["enc", "q_basic_enc", "q_scale_enc"],
    "decoder": ["dec", "q_basic_dec", "q_scale_dec"],
    "refinement": ["refine"],
    "hyper encoder": ["hyper_enc"],
    "hyper decoder": ["hyper_dec"],
    "hyper prior (bit estimator)": ["bit_estimator_z"],
    "prior fusion": ["y_prior_fusion"],
    "spatial prior": ["y_spatial_prior_adaptor_1", "y_spatial_prior_adaptor_2", "y_spatial_prior_adaptor_3",
                      "y_spatial_prior"],
}


# --------------------------------------------------------------------------------------------- reference imports
def import_references(sdd: Path, dc: Path):
    """DMC from DCVC-SDD and IntraNoAR from DCVC-DC; both repositories name their package ``src``."""
    def fresh(path: Path):
        for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
            del sys.modules[name]
        sys.path.insert(0, str(path))

    fresh(sdd)
    from src.models.video_model_hierarchical import DMC  # type: ignore
    sys.path.remove(str(sdd))
    fresh(dc)
    from src.models.image_model import IntraNoAR  # type: ignore
    sys.path.remove(str(dc))
    return DMC, IntraNoAR


def source_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted((root / "src").rglob("*.py"))}


# ------------------------------------------------------------------------------------------------ inventories
def inventory(model: torch.nn.Module, groups: dict[str, list[str]], name: str, source: str) -> dict:
    state = model.state_dict()
    tops: dict[str, int] = defaultdict(int)
    for key, t in state.items():
        tops[key.split(".")[0]] += t.numel()
    grouped = {g: sum(tops[a] for a in attrs) for g, attrs in groups.items()}
    placed = {a for attrs in groups.values() for a in attrs}
    missing = sorted(set(tops) - placed)
    if missing:
        raise SystemExit(f"{name}: top-level parts not in any group: {missing}")
    return {
        "model": name,
        "source": source,
        "total": sum(t.numel() for t in state.values()),
        "tensor_count": len(state),
        "groups": {g: {"params": grouped[g], "members": groups[g]} for g in groups},
        "submodules": dict(sorted(tops.items())),
        "weights": {},
        "tensors": {k: {"shape": list(t.shape), "dtype": dtype_name(t.dtype)} for k, t in state.items()},
    }


# ----------------------------------------------------------------------------------------------------- inputs
def smooth_frames(height: int, width: int, seed: int, count: int) -> torch.Tensor:
    """(count, 3, H, W) in [0, 1]: upsampled low-res noise plus gradients, panned 1 px down and 2 px right a frame."""
    gen = torch.Generator().manual_seed(seed)
    margin = 16
    big_h, big_w = height + margin, width + margin
    coarse = torch.rand((1, 3, big_h // 8, big_w // 8), generator=gen)
    base = F.interpolate(coarse, size=(big_h, big_w), mode="bicubic", align_corners=False)[0]
    ramp_y = torch.linspace(0, 1, big_h).view(1, big_h, 1)
    ramp_x = torch.linspace(0, 1, big_w).view(1, 1, big_w)
    weights = torch.rand((3, 2, 1, 1), generator=gen)
    base = 0.6 * base + 0.25 * (weights[:, 0] * ramp_y + weights[:, 1] * ramp_x)
    frames = []
    for t in range(count):
        crop = base[:, t:t + height, 2 * t:2 * t + width]
        grain = 0.01 * torch.randn((3, height, width), generator=gen)
        frames.append((crop + grain).clamp(0, 1))
    return torch.stack(frames).contiguous()


def padding_16(height: int, width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) as the reference's get_padding_size(h, w, 16): all on the right and bottom."""
    new_h = (height + 15) // 16 * 16
    new_w = (width + 15) // 16 * 16
    return 0, new_w - width, 0, new_h - height


# ---------------------------------------------------------------------------------------------------- capture
class Recorder:
    """Wraps methods of a reference model instance and records clones of what passes through them."""

    def __init__(self) -> None:
        self.calls: dict[str, list] = defaultdict(list)
        self._undo: list = []

    def wrap(self, obj, attr: str, record_args: bool = False) -> None:
        original = getattr(obj, attr)

        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)
            self.calls[attr].append((_clone(args) if record_args else None, _clone(out)))
            return out

        setattr(obj, attr, wrapped)
        self._undo.append(lambda: delattr(obj, attr) if attr in vars(obj) else None)

    def hook(self, module: torch.nn.Module, name: str) -> None:
        handle = module.register_forward_hook(lambda m, a, o: self.calls[name].append((_clone(a), _clone(o))))
        self._undo.append(handle.remove)

    def reset(self) -> None:
        self.calls.clear()

    def close(self) -> None:
        for undo in self._undo:
            undo()


def _clone(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (tuple, list)):
        return type(x)(_clone(v) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


# ------------------------------------------------------------------------------------------------ storing
class Store:
    """Tensors of one case file: small ones whole (fp32), wide ones as a seeded sample plus sum and L2 norm."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.manifest: dict[str, dict] = {}

    def index_for(self, shape: tuple[int, ...]) -> str:
        key = "index/" + "x".join(str(n) for n in shape)
        if key not in self.tensors:
            numel = int(np.prod(shape))
            gen = torch.Generator().manual_seed(numel * 7919 + len(shape))
            self.tensors[key] = torch.randperm(numel, generator=gen)[:SAMPLE].sort().values.to(torch.int32)
        return key

    def put(self, name: str, t: torch.Tensor, whole: bool | None = None, stats_only: bool = False) -> None:
        t = t.detach().to(torch.float32).contiguous()
        shape = tuple(t.shape[1:]) if t.dim() and t.shape[0] == 1 else tuple(t.shape)
        t = t.reshape(shape)
        if whole is None:
            whole = t.numel() <= WHOLE_LIMIT
        entry = {"shape": list(shape), "sum": float(t.double().sum()), "l2": float(t.double().norm())}
        if stats_only:
            entry["stored"] = "stats"
        elif whole:
            self.tensors[name] = t
            entry["stored"] = "whole"
        else:
            idx = self.index_for(shape)
            self.tensors[name + ".sample"] = t.reshape(-1)[self.tensors[idx].long()].contiguous()
            entry["stored"] = "sample"
            entry["index"] = idx
        self.manifest[name] = entry

    def scalar(self, name: str, value: float) -> None:
        self.tensors[name] = torch.tensor([value], dtype=torch.float64)
        self.manifest[name] = {"shape": [1], "value": value, "stored": "whole"}


def rounding_margin(values: torch.Tensor) -> float:
    """Smallest distance of any value to a rounding boundary (k + ½): how far the fixture's rounded latents are
    from flipping under float noise in an independent implementation."""
    v = values.double()
    return float(((v - torch.floor(v)) - 0.5).abs().min())


def quadtree_step_bits(bits: torch.Tensor) -> list[float]:
    """Sum of per-element bits of each of the four quadtree steps (the reference's 4-part mask order)."""
    _, c, h, w = bits.shape
    pos = torch.zeros((h, w), dtype=torch.long)
    pos[0::2, 1::2] = 1
    pos[1::2, 0::2] = 2
    pos[1::2, 1::2] = 3
    order = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1], [1, 0, 3, 2]]   # step -> mask of channel quarter k
    quarter = c // 4
    totals = []
    for step in range(4):
        total = 0.0
        for k in range(4):
            sel = (pos == order[step][k]).to(bits.dtype)
            total += float((bits[0, k * quarter:(k + 1) * quarter].double() * sel.double()).sum())
        totals.append(total)
    return totals


# --------------------------------------------------------------------------------------------------- running
def run_case(p_net, i_net, frames: torch.Tensor, q_in_ckpt: bool, q_index: int, store: Store) -> dict:
    height, width = frames.shape[-2:]
    pad = padding_16(height, width)
    rec_i, rec_p = Recorder(), Recorder()
    for attr in ("forward_four_part_prior", "get_y_gaussian_bits", "get_z_bits"):
        rec_i.wrap(i_net, attr, record_args=True)
    for mod, name in ((i_net.enc, "enc"), (i_net.hyper_enc, "hyper_enc"), (i_net.hyper_dec, "hyper_dec"),
                      (i_net.dec, "dec")):
        rec_i.hook(mod, name)
    for attr in ("forward_four_part_prior", "get_y_laplace_bits", "get_z_bits", "motion_compensation",
                 "mv_prior_param_decoder", "res_prior_param_decoder", "get_recon_and_feature",
                 "multi_scale_feature_extractor"):
        rec_p.wrap(p_net, attr, record_args=True)
    for mod, name in ((p_net.optic_flow, "optic_flow"), (p_net.mv_encoder, "mv_encoder"),
                      (p_net.mv_hyper_prior_encoder, "mv_hyper_prior_encoder"), (p_net.mv_decoder, "mv_decoder"),
                      (p_net.contextual_encoder, "contextual_encoder"),
                      (p_net.contextual_hyper_prior_encoder, "contextual_hyper_prior_encoder"),
                      (p_net.contextual_decoder, "contextual_decoder"), (p_net.align_s, "align_s"),
                      (p_net.align_d, "align_d")):
        rec_p.hook(mod, name)

    summary = {"frames": []}
    dpb = None
    with torch.no_grad():
        for t in range(frames.shape[0]):
            x = frames[t:t + 1]
            x_padded = F.pad(x, pad, mode="replicate")
            pre = f"f{t}/"
            if t == 0:
                rec_i.reset()
                result = i_net.encode_decode(x_padded, q_in_ckpt, q_index, None,
                                             pic_height=height, pic_width=width)
                dpb = {"ref_frame": result["x_hat"], "ref_feature": None, "ref_mv_feature": None,
                       "ref_y": None, "ref_mv_y": None, "hidden": None, "cell": None}
                recon = result["x_hat"]
                info = store_intra(rec_i.calls, store, pre, result)
            else:
                rec_p.reset()
                result = p_net.encode_decode(x_padded, dpb, q_in_ckpt, q_index, None,
                                             pic_height=height, pic_width=width, frame_idx=t % 4)
                dpb = result["dpb"]
                recon = dpb["ref_frame"]
                info = store_pframe(rec_p.calls, store, pre, result, t)
            recon.clamp_(0, 1)          # in place, as the test script: the next reference is clamped too
            x_hat = F.pad(recon, tuple(-p for p in pad))
            store.put(pre + "x_hat", x_hat, whole=True)
            mse = float(((x_hat - x) ** 2).mean())
            info.update({"frame": t, "bits": float(result["bit"]), "psnr": float(-10 * np.log10(mse))})
            summary["frames"].append(info)
    rec_i.close()
    rec_p.close()
    summary["padding_lrtb"] = list(pad)
    summary["padded_hw"] = [height + pad[3], width + pad[1]]
    return summary


def _only(calls, name, i=0):
    return calls[name][i]


def store_intra(calls, store: Store, pre: str, result) -> dict:
    pre = pre + "intra/"
    y = _only(calls, "enc")[1]
    z = _only(calls, "hyper_enc")[1]
    z_hat = _only(calls, "hyper_dec")[0][0]
    (args, (y_res, y_q, y_hat, scales_hat)) = _only(calls, "forward_four_part_prior")
    params = args[1]
    bits_y = _only(calls, "get_y_gaussian_bits")[1]
    bits_z = _only(calls, "get_z_bits")[1]
    for name, t in (("y", y), ("z", z), ("z_hat", z_hat), ("y_q", y_q), ("y_hat", y_hat),
                    ("scales_hat", scales_hat), ("bits_y", bits_y), ("bits_z", bits_z)):
        store.put(pre + name, t)
    for name, t in (("params", params), ("y_res", y_res), ("dec_out", _only(calls, "dec")[1])):
        store.put(pre + name, t, stats_only=True)
    steps = quadtree_step_bits(bits_y)
    total_y, total_z = float(bits_y.double().sum()), float(bits_z.double().sum())
    store.scalar(pre + "bit_y", total_y)
    store.scalar(pre + "bit_z", total_z)
    return {"type": "I", "bit_y": total_y, "bit_z": total_z, "bit_y_per_quadtree_step": steps,
            "rounding_margin": {"y": rounding_margin(y_res), "z": rounding_margin(z)},
            "y_q_nonzero": float((y_q != 0).double().mean()), "z_hat_nonzero": float((z_hat != 0).double().mean())}


def store_pframe(calls, store: Store, pre: str, result, t: int) -> dict:
    pre = pre + "p/"
    est_s = calls["optic_flow"][0][1]
    est_d = calls["optic_flow"][1][1]
    mv_y = _only(calls, "mv_encoder")[1]
    mv_z = _only(calls, "mv_hyper_prior_encoder")[1]
    (mv_args, mv_params) = _only(calls, "mv_prior_param_decoder")
    mv_z_hat = mv_args[0]
    (res_args, params) = _only(calls, "res_prior_param_decoder")
    z_hat = res_args[0]
    (_, (mv_y_res, mv_y_q, mv_y_hat, mv_scales_hat)) = calls["forward_four_part_prior"][0]
    (_, (y_res, y_q, y_hat, scales_hat)) = calls["forward_four_part_prior"][1]
    mv_hat_s, mv_hat_d, mv_feature = _only(calls, "mv_decoder")[1]
    c1, c2, c3, warpframe, hidden, cell = _only(calls, "motion_compensation")[1]
    (mse_args, (fea1, fea2, fea3, _, _)) = _only(calls, "multi_scale_feature_extractor")
    ref_feature_in = mse_args[0]["ref_feature"]
    y = _only(calls, "contextual_encoder")[1]
    z = _only(calls, "contextual_hyper_prior_encoder")[1]
    dec_out = _only(calls, "contextual_decoder")[1]
    (_, (x_hat_padded, feature)) = _only(calls, "get_recon_and_feature")
    bits_y = calls["get_y_laplace_bits"][0][1]
    bits_mv_y = calls["get_y_laplace_bits"][1][1]
    bits_z = calls["get_z_bits"][0][1]
    bits_mv_z = calls["get_z_bits"][1][1]
    small = (("mv_y", mv_y), ("mv_z", mv_z), ("mv_z_hat", mv_z_hat),
             ("mv_y_q", mv_y_q), ("mv_y_hat", mv_y_hat), ("mv_scales_hat", mv_scales_hat),
             ("y", y), ("z", z), ("z_hat", z_hat), ("y_q", y_q),
             ("y_hat", y_hat), ("scales_hat", scales_hat), ("bits_y", bits_y), ("bits_mv_y", bits_mv_y),
             ("bits_z", bits_z), ("bits_mv_z", bits_mv_z), ("mv_hat_s", mv_hat_s), ("mv_hat_d", mv_hat_d))
    for name, tensor in small:
        store.put(pre + name, tensor, whole=True)
    wide = (("mv_feature", mv_feature), ("context1", c1), ("context2", c2), ("context3", c3), ("hidden", hidden),
            ("cell", cell), ("feature", feature))
    for name, tensor in wide:
        store.put(pre + name, tensor, whole=False)
    checked = (("est_mv_s", est_s), ("est_mv_d", est_d), ("mv_params", mv_params), ("params", params),
               ("mv_y_res", mv_y_res), ("y_res", y_res), ("warpframe", warpframe), ("ref_fea1", fea1),
               ("ref_fea2", fea2), ("ref_fea3", fea3), ("contextual_decoder_out", dec_out),
               ("align_s", _only(calls, "align_s")[1]), ("align_d", _only(calls, "align_d")[1]))
    for name, tensor in checked:
        store.put(pre + name, tensor, stats_only=True)
    totals = {k: float(result_bits) for k, result_bits in (
        ("bit_y", bits_y.double().sum()), ("bit_z", bits_z.double().sum()),
        ("bit_mv_y", bits_mv_y.double().sum()), ("bit_mv_z", bits_mv_z.double().sum()))}
    for k, v in totals.items():
        store.scalar(pre + k, v)
    adaptor = ("feature_adaptor_I" if ref_feature_in is None
               else ["feature_adaptor", "feature_adaptor2", "feature_adaptor", "feature_adaptor3"][t % 4])
    return {"type": "P", "frame_idx_arg": t % 4, "feature_adaptor": adaptor, **totals,
            "bit_y_per_quadtree_step": quadtree_step_bits(bits_y),
            "bit_mv_y_per_quadtree_step": quadtree_step_bits(bits_mv_y),
            "rounding_margin": {"y": rounding_margin(y_res), "z": rounding_margin(z), "mv_y": rounding_margin(mv_y_res),
                                "mv_z": rounding_margin(mv_z)},
            "y_q_nonzero": float((y_q != 0).double().mean()), "mv_y_q_nonzero": float((mv_y_q != 0).double().mean()),
            "z_hat_nonzero": float((z_hat != 0).double().mean()),
            "mv_z_hat_nonzero": float((mv_z_hat != 0).double().mean()),
            "flow_abs_mean": [float(mv_hat_s.abs().mean()), float(mv_hat_d.abs().mean())],
            "x_hat_std": float(x_hat_padded.std())}


def backend_spread(store: Store, other: Store) -> bool:
    """Record in ``store``'s manifest, per stored tensor, the largest difference to the same run with PyTorch's
    native convolutions instead of oneDNN's: the float noise floor of two correct implementations. Returns whether
    every rounded latent agreed."""
    equal = True
    for name, entry in store.manifest.items():
        key = name if entry["stored"] == "whole" else name + ".sample"
        if entry["stored"] == "stats" or "value" in entry:
            continue
        diff = float((store.tensors[key].double() - other.tensors[key].double()).abs().max())
        entry["backend_spread"] = diff
        if name.endswith(("y_q", "z_hat")) and diff != 0:
            equal = False
    return equal


# ------------------------------------------------------------------------------------------------------ main
def constants(p_net, i_net) -> dict:
    def coder(enc) -> dict:
        return {"distribution": enc.distribution, "scale_min": enc.scale_min, "scale_max": enc.scale_max,
                "scale_level": enc.scale_level, "scale_table": [float(s) for s in enc.scale_table]}

    fine = {}
    for name in ("mv_y_q_scale_enc", "mv_y_q_scale_dec", "y_q_scale_enc", "y_q_scale_dec"):
        fine["p/" + name] = [float(v) for v in np.asarray(getattr(p_net, name + "_fine"))]
    for name in ("q_scale_enc", "q_scale_dec"):
        fine["i/" + name] = [float(v) for v in np.asarray(getattr(i_net, name + "_fine"))]
    return {"p_coder": coder(p_net.gaussian_encoder), "i_coder": coder(i_net.gaussian_encoder),
            "q_scale_fine": fine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdd", type=Path, required=True, help="checkout of xhsheng-ustc/DCVC-SDD")
    parser.add_argument("--dc", type=Path, required=True, help="microsoft/DCVC's DCVC-family/DCVC-DC folder")
    parser.add_argument("--out", type=Path, required=True, help="fixture folder (tests/fixtures/dcvc)")
    args = parser.parse_args()

    # as test_video_hierarchical.py's init_func
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    np.random.seed(0)

    DMC, IntraNoAR = import_references(args.sdd, args.dc)
    p_net = DMC(inplace=True)
    i_net = IntraNoAR(inplace=True)
    p_inv = inventory(p_net, TABLE_I, "DCVC-SDD DMC (P-frame)", "DCVC-SDD src/models/video_model_hierarchical.py")
    i_inv = inventory(i_net, INTRA_PARTS, "DCVC-DC IntraNoAR", "DCVC-DC src/models/image_model.py")
    p_inv["weights"] = dict(P_WEIGHTS)
    i_inv["weights"] = dict(I_WEIGHTS)
    p_state = build_state_dict(p_inv)
    i_state = build_state_dict(i_inv)
    p_inv["weights"]["checksum"] = state_dict_checksum(p_state)
    i_inv["weights"]["checksum"] = state_dict_checksum(i_state)
    p_net.load_state_dict(p_state, strict=True)
    i_net.load_state_dict(i_state, strict=True)
    p_net.eval()
    i_net.eval()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, inv in (("sdd_pframe_inventory.json", p_inv), ("dc_intra_inventory.json", i_inv)):
        (out / name).write_text(json.dumps(inv, indent=1) + "\n")

    manifest = {
        "weights": {"sdd_pframe": p_inv["weights"], "dc_intra": i_inv["weights"]},
        "reference_sources": {"DCVC-SDD": source_digest(args.sdd), "DCVC-DC": source_digest(args.dc)},
        "torch": torch.__version__,
        "constants": constants(p_net, i_net),
        "cases": {},
    }
    longest = {}
    for height, width, _, _, count in CASES:
        longest[(height, width)] = max(count, longest.get((height, width), 0))
    inputs = {}
    for (height, width), count in longest.items():
        inputs[(height, width)] = smooth_frames(height, width, seed=height * 1000 + width, count=count)
        save_file({"frames": inputs[(height, width)]}, str(out / f"inputs_{height}x{width}.safetensors"))
    for height, width, q_in_ckpt, q_index, count in CASES:
        case = f"{height}x{width}_q{q_index}" + ("" if q_in_ckpt else "_fine")
        frames = inputs[(height, width)][:count]
        store, other = Store(), Store()
        summary = run_case(p_net, i_net, frames, q_in_ckpt, q_index, store)
        with torch.backends.mkldnn.flags(enabled=False):  # a second, independent convolution implementation
            run_case(p_net, i_net, frames, q_in_ckpt, q_index, other)
        summary["rounded_equal_across_backends"] = backend_spread(store, other)
        save_file(store.tensors, str(out / f"case_{case}.safetensors"))
        summary.update({"q_in_ckpt": q_in_ckpt, "q_index": q_index, "height": height, "width": width,
                        "frame_count": count, "inputs": f"inputs_{height}x{width}.safetensors",
                        "file": f"case_{case}.safetensors", "tensors": store.manifest})
        manifest["cases"][case] = summary
        print(case, [(f["type"], round(f["bits"], 1), round(f["psnr"], 2)) for f in summary["frames"]])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
