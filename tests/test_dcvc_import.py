"""``nvc1b import``: published DCVC-SDD / DCVC-DC checkpoints to nvc1b weights, strict, and usable by the coder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.dcvc_published import FIXTURES, manifest, reference_state, write_published
from safetensors.torch import load_file, save_file

from nvc1b.cli.main import main
from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model
from nvc1b.coding.runtime import coding_context
from nvc1b.config.model import load_preset
from nvc1b.errors import ConfigError, WeightsError
from nvc1b.importers.convert import import_dcvc_dc_intra
from nvc1b.importers.dcvc_sdd import map_p_frame
from nvc1b.model.codec import VideoCodec
from nvc1b.model.export import read_metadata, save_model
from nvc1b.model.quantization import RateEstimator
from nvc1b.train.schedule import load_schedule
from nvc1b.train.stage import stage_start_model


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return write_published(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def imported_export(published, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "sdd.safetensors"
    assert main(["import", "dcvc-sdd", str(published[0]), "--intra", str(published[1]), "--out", str(out)]) == 0
    return out


def test_imported_export_decodes_to_the_evaluation_forward_and_to_the_reference(imported_export):
    out = imported_export
    assert "DCVC-SDD" in read_metadata(out)["imported_from"]
    codec = load_coding_model(out)
    info = manifest()["cases"]["64x64_q3"]
    frames = load_file(str(FIXTURES / info["inputs"]))["frames"][:4]  # intra frame + 3 P-frames
    encoded = encode_sequence(codec, frames, q_index=3, intra_period=4, cpu_threads=1)
    decoded = decode_sequence(codec, encoded.stream)
    assert torch.equal(decoded.frames, encoded.reconstruction)
    with coding_context(codec.device, 1), torch.no_grad():  # the evaluation forward, as the coder runs it
        state, recon = None, []
        for t, frame in enumerate(frames):
            if t == 0:
                o = codec.model.intra_step(frame[None], 3, coder=RateEstimator("round"))
            else:
                o = codec.model.inter_step(frame[None], state, 3, coder=RateEstimator("round"))
            state = o.state
            recon.append(o.x_hat[0])
    assert torch.equal(decoded.frames, torch.stack(recon))
    reference = load_file(str(FIXTURES / info["file"]))
    for t in range(4):  # and the decoded frames are DCVC-SDD's / DCVC-DC's reconstructions
        assert (decoded.frames[t] - reference[f"f{t}/x_hat"]).abs().max() <= 1e-5


def test_a_missing_unexpected_or_misshaped_tensor_stops_the_import(tmp_path, capsys):
    with torch.device("meta"):
        target = {k: v for k, v in VideoCodec(load_preset("sdd-21m")).state_dict().items() if not k.startswith("intra.")}
    good = reference_state("sdd_pframe")
    assert len(map_p_frame(good, target, "ok")) == len(target) == len(good) == 768
    missing = {k: v for k, v in good.items() if k != "align_s.fusion.weight"}
    with pytest.raises(WeightsError, match="'align_s.fusion.weight' is missing"):
        map_p_frame(missing, target, "p.pth.tar")
    with pytest.raises(WeightsError, match="'extra.weight' is unexpected"):
        map_p_frame({**good, "extra.weight": torch.zeros(1)}, target, "p.pth.tar")
    misshaped = {**good, "mv_y_q_basic_enc": torch.ones(1, 32, 1, 1)}
    with pytest.raises(WeightsError, match=r"'mv_y_q_basic_enc' has shape \(1, 32, 1, 1\)"):
        map_p_frame(misshaped, target, "p.pth.tar")
    bad = tmp_path / "bad.pth.tar"
    torch.save(missing, bad)
    out = tmp_path / "never.safetensors"
    assert main(["import", "dcvc-sdd", str(bad), "--intra", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "align_s.fusion.weight" in err and not out.exists()


def test_an_intra_stage_loads_dcvc_dcs_checkpoint_or_its_imported_part_file(published, tmp_path):
    expected = import_dcvc_dc_intra(published[1])
    config = load_preset("tiny").model_copy(update={"intra": load_preset("sdd-21m").intra})  # DCVC-DC's intra widths
    direct = VideoCodec(config)
    assert direct.load_pretrained("intra", str(published[1])) == "dcvc-dc"
    part = tmp_path / "intra.safetensors"
    assert main(["import", "dcvc-dc-intra", str(published[1]), "--out", str(part)]) == 0
    via_file = VideoCodec(config)
    assert via_file.load_pretrained("intra", str(part)) == "name"
    for key, value in expected.items():
        assert torch.equal(direct.intra.state_dict()[key], value) and torch.equal(via_file.intra.state_dict()[key], value)


def test_an_export_of_the_earlier_model_is_refused_naming_its_version(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "old.safetensors")
    meta = {**read_metadata(path), "format": "nvc1b-model/1"}
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(WeightsError, match="nvc1b-model/1 export"):
        read_metadata(path)


def test_a_schedule_starts_from_the_imported_export(imported_export, tmp_path):
    text = (Path(__file__).parents[1] / "stages" / "demo.yaml").read_text().replace("preset: tiny", "preset: sdd-21m")
    schedule_path = tmp_path / "finetune.yaml"
    schedule_path.write_text(f"init_weights: {imported_export}\n" + text)
    start = stage_start_model(load_schedule(schedule_path), 0, tmp_path / "run")
    stored = load_file(str(imported_export))
    assert all(torch.equal(v, stored[k]) for k, v in start.state_dict().items())
    schedule_path.write_text(f"init_weights: {imported_export}\n" + text.replace("preset: sdd-21m", "preset: tiny"))
    with pytest.raises(ConfigError, match="key 'init_weights'.*not the architecture of the schedule's preset 'tiny'"):
        stage_start_model(load_schedule(schedule_path), 0, tmp_path / "run")


def test_resuming_a_checkpoint_of_the_earlier_model_is_one_line(tmp_path):
    from nvc1b.errors import NvcError
    from nvc1b.train.checkpointing import load_same_world

    class Engine:  # DeepSpeed's strict module load of tensors written by the earlier model
        def load_checkpoint(self, *args, **kwargs):
            raise RuntimeError("Error(s) in loading state_dict for ClipLoss:\n\tMissing key(s) in state_dict: "
                               '"codec.motion_codec.rate.enc_scale".\n\tUnexpected key(s) in state_dict: ...')

    with pytest.raises(NvcError, match=r"global_step7: the checkpoint's tensors do not fit this model .*enc_scale"):
        load_same_world(Engine(), tmp_path, "global_step7")
