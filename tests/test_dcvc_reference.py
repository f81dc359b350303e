"""nvc1b against DCVC-SDD (P-frames) and DCVC-DC (intra) run on CPU with seeded weights: the numbers stored in
tests/fixtures/dcvc (see its README), reached through checkpoint files in the published format and
``nvc1b import``'s mapping. Intra frame and 3 chained P-frames, 64×64 and 72×88 (padding), q_index 0 and 3, and fine level 42 of 64."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.dcvc_published import FIXTURES, write_published
from safetensors.torch import load_file

from nvc1b.importers.convert import import_dcvc_sdd
from nvc1b.model.quantization import RateEstimator, fine_level_to_q_index

CASES = ("64x64_q0", "64x64_q3", "72x88_q0", "72x88_q3", "64x64_q42_fine")
TOL = 1e-5
BITS_RTOL = 1e-4


class RoundingRecorder:
    """RateEstimator('round') that also keeps the rounded symbols of every latent (what a coder would write)."""

    def __init__(self):
        self.inner = RateEstimator("round")
        self.symbols: dict[str, torch.Tensor] = {}

    def _keep(self, key, q):
        self.symbols[key] = self.symbols.get(key, 0) + q

    def laplace(self, key, y, means, scales, mask):
        self._keep(key, torch.round((y - means) * mask))
        return self.inner.laplace(key, y, means, scales, mask)

    def gaussian(self, key, y, means, scales, mask):
        self._keep(key, torch.round((y - means) * mask))
        return self.inner.gaussian(key, y, means, scales, mask)

    def factorized(self, key, z, prior, shape):
        self._keep(key, torch.round(z))
        return self.inner.factorized(key, z, prior, shape)


@pytest.fixture(scope="module")
def manifest():
    if not (FIXTURES / "manifest.json").is_file():
        pytest.fail(f"{FIXTURES}: DCVC fixtures missing (regenerate them as its README says)")
    return json.loads((FIXTURES / "manifest.json").read_text())


@pytest.fixture(scope="module")
def imported(manifest, tmp_path_factory):
    """The seeded reference weights written as published checkpoints, imported by nvc1b's importer."""
    return import_dcvc_sdd(*write_published(tmp_path_factory.mktemp("dcvc-ckpt")))


def _close(ours: torch.Tensor, ref: torch.Tensor, what: str, tol: float = TOL):
    ours = ours.detach().float().reshape(ref.shape)
    diff = (ours - ref).abs().max().item()
    assert diff <= tol, f"{what}: max difference {diff:.3g} > {tol}"


def _bits(ours: torch.Tensor, ref: float, what: str):
    assert abs(ours.item() - ref) <= BITS_RTOL * max(abs(ref), 1.0), f"{what}: {ours.item()} bits vs {ref}"


@pytest.mark.parametrize("case", CASES)
def test_intra_and_three_p_frames_match_the_references(imported, manifest, case):
    info = manifest["cases"][case]
    ref = load_file(str(FIXTURES / info["file"]))
    frames = load_file(str(FIXTURES / info["inputs"]))["frames"]
    q = info["q_index"] if info["q_in_ckpt"] else fine_level_to_q_index(info["q_index"])  # anchor or fine level
    model = imported
    contexts = {}
    hook = model.temporal_context_mining.register_forward_hook(lambda m, a, o: contexts.update(c=o[0]))

    def sample(name, ours):
        if f"{name}.sample" in ref:
            idx = ref[info["tensors"][name]["index"]].long()
            return ours.detach().reshape(-1)[idx], ref[f"{name}.sample"]
        return ours, ref[name]

    try:
        with torch.no_grad():
            coder = RoundingRecorder()
            out = model.intra_step(frames[0:1], q, coder=coder)
            _close(out.x_hat, ref["f0/x_hat"], "f0 x_hat")
            for key, name in (("y", "y_q"), ("z_y", "z_hat")):
                assert torch.equal(coder.symbols[key][0], ref[f"f0/intra/{name}"]), f"f0 {name} differs"
            _bits(out.bits["y"], ref["f0/intra/bit_y"].item(), "f0 y")
            _bits(out.bits["z_y"], ref["f0/intra/bit_z"].item(), "f0 z_y")
            state = out.state
            for t in range(1, 4):
                x = frames[t : t + 1]
                coder = RoundingRecorder()
                motion = model.motion_step(x, state, q, coder)
                out = model.context_step(x, state, motion, q, coder)
                p = f"f{t}/p/"
                _close(out.x_hat, ref[f"f{t}/x_hat"], f"f{t} x_hat")
                for key, name in (("m", "mv_y_q"), ("z_m", "mv_z_hat"), ("y", "y_q"), ("z_y", "z_hat")):
                    assert torch.equal(coder.symbols[key][0], ref[p + name]), f"f{t} {name} differs"
                for key, name in (("m", "bit_mv_y"), ("z_m", "bit_mv_z"), ("y", "bit_y"), ("z_y", "bit_z")):
                    _bits(out.bits[key], ref[p + name].item(), f"f{t} {key}")
                _close(motion.flow_hat_s, ref[p + "mv_hat_s"], f"f{t} structure flow")
                _close(motion.flow_hat_d, ref[p + "mv_hat_d"], f"f{t} detail flow")
                _close(out.state.m_hat, ref[p + "mv_y_hat"], f"f{t} m̂")
                _close(out.state.y_hat, ref[p + "y_hat"], f"f{t} ŷ")
                for name, ours in (("context1", contexts["c"][0]), ("context2", contexts["c"][1]),
                                   ("context3", contexts["c"][2]), ("feature", out.state.feature),
                                   ("hidden", out.state.hidden), ("cell", out.state.cell),
                                   ("mv_feature", out.state.motion_feature)):
                    _close(*sample(p + name, ours), f"f{t} {name}")
                state = out.state
    finally:
        hook.remove()
