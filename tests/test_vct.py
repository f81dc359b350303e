"""VCT as the second model family (seed 001) on the CPU with ``vct-tiny``: its parts and sizes, T_cur's causal
mask, each stage of Table 1 through the real engine with the right parts trained and frozen, real bitstreams that
decode to the encoder's reconstruction, and ``nvc1b eval`` / ``nvc1b report`` next to an NVC model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from evalhelpers import write_test_set
from safetensors.torch import load_file

from nvc1b.cli.main import main
from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model, read_header
from nvc1b.errors import BitstreamError, ConfigError
from nvc1b.families import build_model, count_parts, family_of, load_model_config
from nvc1b.model.export import save_model
from nvc1b.train.schedule import load_schedule

HELPER = Path(__file__).parent / "helpers" / "train_script.py"


@pytest.fixture(scope="module")
def tiny():
    return load_model_config("vct-tiny")


def coding_ready(config):
    """A fresh vct-tiny whose latents are not all rounded to zero (the untrained rate gains are small)."""
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        model.rate.enc_base.fill_(40.0)
        model.rate.dec_base.fill_(1 / 40)
        for p in model.lrp.parameters():  # a non-zero f_LRP, so D's input depends on T_cur's features
            p.normal_(0, 0.02)
    return model


def test_full_size_parts_and_cli(capsys):
    config = load_model_config("vct")
    count = count_parts(config)
    assert family_of(config).name == "vct" and set(count.parts) == {"encoder", "decoder", "entropy_model", "lrp"}
    assert count.extra["T_sep"] + count.extra["T_joint"] + count.extra["T_cur"] == count.parts["entropy_model"]
    # d_T = 768: a pre-norm layer holds 4·768² attention + 2·4·768² MLP weights, so T_sep's 6 layers are ~42.5M
    assert 42e6 < count.extra["T_sep"] < 43e6 and 120e6 < count.total < 140e6
    assert main(["params", "--preset", "vct"]) == 0
    out = capsys.readouterr().out
    assert "Transformer entropy model" in out and f"{count.total:,}" in out and "family vct" in out


def test_presets_name_their_family(tmp_path):
    assert family_of(load_model_config("tiny")).name == "nvc"
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: vct\ntransforms: {channels: 8, colour: 1}\nhyperprior: {}\nentropy_model: {}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'transforms.colour': unknown key"):
        load_model_config(bad)
    bad.write_text("family: swin\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'family': unknown model family 'swin'"):
        load_model_config(bad)


def test_t_cur_is_causal(tiny):
    torch.manual_seed(0)
    model = build_model(tiny).eval()
    em = model.entropy_model
    z_joint = torch.randn(3, 2 * 64, tiny.entropy_model.d_model)
    tokens = torch.randn(3, 16, tiny.transforms.latent_channels) * 10
    with torch.no_grad():
        means, scales, _ = em.predict(tokens, z_joint)
        for k in (0, 5, 15):
            changed = tokens.clone()
            changed[:, k] += 25.0
            m2, s2, _ = em.predict(changed, z_joint)
            torch.testing.assert_close(m2[:, : k + 1], means[:, : k + 1], rtol=0, atol=1e-5)
            torch.testing.assert_close(s2[:, : k + 1], scales[:, : k + 1], rtol=0, atol=1e-5)
            if k < 15:  # and the tokens after k do see it
                assert (m2[:, k + 1 :] - means[:, k + 1 :]).abs().max() > 1e-3


STAGES = """\
preset: vct-tiny
crop: 64
global_batch: 4
micro_batch: 2
zero_stage: 1
checkpoint_every: 50
stages:
  - {name: s1, frames: 1, parts: Transforms,   loss: rd,   lr: 1.0e-3, steps: 2}
  - {name: s2, frames: 3, parts: Transformers, loss: rate, lr: 1.0e-3, steps: 2}
  - {name: s3, frames: 3, parts: All,          loss: rd,   lr: 1.0e-3, steps: 2}
"""


def test_each_stage_of_table_1_through_the_engine(tmp_path):
    schedule = tmp_path / "vct.yaml"
    schedule.write_text(STAGES)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    done = subprocess.run([sys.executable, str(HELPER), str(schedule), "--run-dir", str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "one optimizer step per clip-batch" in done.stderr  # VCT's stages never step per P-frame
    torch.manual_seed(0)
    start = build_model(load_model_config("vct-tiny")).state_dict()
    exports = [load_file(tmp_path / "run" / "exports" / f"{i:02d}-s{i + 1}.safetensors") for i in range(3)]
    before = [start, exports[0], exports[1]]
    trained = {"s1": ("encoder.", "decoder.", "hyperprior.", "rate."), "s2": ("entropy_model.",),
               "s3": ("encoder.", "decoder.", "entropy_model.", "lrp.", "rate.")}
    for stage, old, new in zip(("s1", "s2", "s3"), before, exports):
        changed = {k for k in old if not torch.equal(old[k], new[k])}
        assert changed and all(k.startswith(trained[stage]) for k in changed), (stage, sorted(changed)[:5])
        for prefix in trained[stage]:  # every trained part moved
            assert any(k.startswith(prefix) for k in changed), (stage, prefix)
    records = [json.loads(line) for line in (tmp_path / "run" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in records} == {"s1", "s2", "s3"}
    assert all("train/D" not in r for r in records if r["stage"] == "s2")  # stage II: rate only


def test_schedule_stage_types_belong_to_the_family(tmp_path):
    schedule = tmp_path / "s.yaml"
    schedule.write_text(STAGES.replace("parts: Transformers, loss: rate", "parts: Transformers, loss: rd"))
    with pytest.raises(ConfigError, match=r"stage 1 \('s2'\): loss 'rd' does not train parts 'Transformers'"):
        load_schedule(schedule)
    schedule.write_text(STAGES.replace("parts: Transforms,   loss: rd", "parts: Intra, loss: intra"))
    with pytest.raises(ConfigError, match=r"stage 0 \('s1'\): parts 'Intra' is not a stage type of the vct family"):
        load_schedule(schedule)
    assert [s.parts for s in load_schedule("stages/vct.yaml").stages] == ["Transforms", "Transformers", "All"]


def test_clip_encodes_and_decodes_to_the_identical_reconstruction(tmp_path, tiny):
    path = save_model(coding_ready(tiny), tmp_path / "vct.safetensors")
    codec = load_coding_model(path)
    g = torch.Generator().manual_seed(1)
    base = torch.nn.functional.avg_pool2d(torch.rand(3, 80, 112, generator=g), 5, 1, 2)
    frames = torch.stack([torch.roll(base, (i, 2 * i), dims=(-2, -1)) for i in range(5)])  # 5 frames, not ×64
    encoded = encode_sequence(codec, frames, q_index=1.5, intra_period=3)
    header = read_header(encoded.stream)
    assert header.family == "vct" and [f.frame_type for f in encoded.frames] == ["I", "P", "P", "I", "P"]
    assert all(f.bits["y"] > 100 for f in encoded.frames)
    decoded = decode_sequence(codec, encoded.stream)
    assert torch.equal(decoded.frames, encoded.reconstruction)
    assert all(s.matches_encoder for s in decoded.stats)
    # the previous latents matter: frame 2 costs other bits than an I-frame of the same picture
    assert encoded.frames[2].bits["y"] != encode_sequence(codec, frames[2:3]).frames[0].bits["y"]
    # the information content matches the payload (ANS overhead ≤ 64 bits a frame)
    for f in encoded.frames:
        assert abs(8 * f.payload_bytes - f.bits["y"]) <= 64 + 32


def test_a_stream_of_one_family_is_refused_by_the_other(tmp_path, tiny, tiny_config):
    from nvc1b.model import VideoCodec

    vct = load_coding_model(save_model(coding_ready(tiny), tmp_path / "vct.safetensors"))
    nvc = load_coding_model(save_model(VideoCodec(tiny_config), tmp_path / "nvc.safetensors"))
    stream = encode_sequence(vct, torch.rand(1, 3, 64, 64)).stream
    with pytest.raises(BitstreamError, match=r"header \(byte 4\): stream was encoded by a vct model .* nvc model"):
        decode_sequence(nvc, stream)


def test_eval_and_report_next_to_an_nvc_model(tmp_path, tiny, tiny_config):
    from nvc1b.model import VideoCodec

    test_set = write_test_set(tmp_path / "mini")
    vct = save_model(coding_ready(tiny), tmp_path / "vct" / "exports" / "00-s.safetensors")
    torch.manual_seed(0)
    nvc = save_model(VideoCodec(tiny_config), tmp_path / "nvc" / "exports" / "00-s.safetensors")
    for name, path in (("vct", vct), ("nvc", nvc)):
        assert main(["eval", "--checkpoint", str(path.parent.parent), "--dataset", str(test_set), "--q-indexes",
                     "0,3", "--out", str(tmp_path / f"res-{name}"), "--no-ms-ssim", "--quiet"]) == 0
    summary = json.loads((tmp_path / "res-vct" / "rgb" / "mini" / "dataset.json").read_text())
    assert summary["label"] == "vct (vct-tiny)" and len(summary["points"]) == 2
    run = json.loads((tmp_path / "res-vct" / "rgb" / "mini" / "run.json").read_text())
    assert run["codec"]["family"] == "vct"
    assert main(["report", "--results", str(tmp_path / "res-nvc"), str(tmp_path / "res-vct"),
                 "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "vct (vct-tiny)" in report and "nvc (tiny)" in report
    assert any(p.suffix == ".png" for p in (tmp_path / "report").iterdir())


def test_a_sweep_mixes_families(tmp_path):
    import yaml

    from nvc1b.sweep.build import resolve_models
    from nvc1b.sweep.plan import plan_sweep, render_plan
    from nvc1b.sweep.runs import prepare_model
    from nvc1b.sweep.spec import load_sweep

    sweep = load_sweep("stages/sweeps/families.yaml")
    models = resolve_models(sweep)
    assert [family_of(m.config).name for m in models] == ["nvc", "vct", "vct", "vct"]
    assert models[2].config.entropy_model.d_model == 128 and models[1].total < models[2].total < models[3].total
    text = render_plan(sweep, plan_sweep(sweep, models))
    assert "V3 (vct): encoder" in text and "N0" in text
    for m in models[:2]:  # each model's schedule is its family's
        run = prepare_model(sweep, tmp_path, m)
        schedule = load_schedule(run.schedule)
        assert family_of(load_model_config(schedule.preset)).name == family_of(m.config).name
        parts = {s.parts for s in schedule.stages}
        assert parts == ({"Transforms", "Transformers", "All"} if m.name == "V1" else {"Intra", "Inter", "Recon", "All"})
        assert yaml.safe_load(run.preset.read_text()).get("family", "nvc") == family_of(m.config).name


def test_published_fig4_curves_load_as_reference_curves():
    from nvc1b.eval.curves import read_curve_csv

    curves = read_curve_csv("data/reference/vct_fig4_rgb_psnr.csv")
    assert set(curves) == {"MCL-JCV", "UVG"} and len(curves["UVG"].bpp) == 8
    assert curves["UVG"].psnr[0] == pytest.approx(32.4878, abs=1e-4)


def test_incremental_t_cur_matches_the_masked_pass(tiny):
    """The coder's w_c² incremental runs predict what the masked training pass predicts, token by token."""
    torch.manual_seed(0)
    em = build_model(tiny).eval().entropy_model
    z_joint = torch.randn(3, 2 * 64, tiny.entropy_model.d_model)
    tokens = torch.round(torch.randn(3, 16, tiny.transforms.latent_channels) * 10)
    with torch.no_grad():
        means, scales, z_cur = em.predict(tokens, z_joint)
        memory, cache, previous = em.memory(z_joint), [], None
        for k in range(16):
            m, s, z = em.step(previous, k, memory, cache)
            torch.testing.assert_close(m, means[:, k], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(s, scales[:, k], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(z, z_cur[:, k], rtol=1e-4, atol=1e-4)
            previous = tokens[:, k]
