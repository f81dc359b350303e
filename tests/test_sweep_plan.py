"""Sweep specs: the paper's 24 models against their published totals (meta device, seconds), how each is built,
solving a width for a parameter target, and one-line errors naming the file, the model and the key."""

import contextlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nvc1b.cli import main
from nvc1b.config.model import ModelConfig, load_preset
from nvc1b.errors import ConfigError
from nvc1b.model.counting import ParameterCount
from nvc1b.model.sizing import part_parameters
from nvc1b.sweep.build import PartCounter, resolve_models, solve_target
from nvc1b.sweep.spec import Solve, load_sweep

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "stages" / "sweeps" / "paper.yaml"
SECTION_IV = {  # NVC-1B paper, Section IV: total parameters of each scaling-study model
    "M1": 52e6, "M2": 71e6, "M3": 96e6, "M4": 128e6, "M5": 177e6, "M6": 226e6,
    "M7": 50e6, "M8": 77e6, "M9": 90e6, "M10": 92e6, "M11": 199e6, "M12": 212e6,
    "M13": 26e6, "M14": 47e6, "M15": 75e6, "M16": 144e6, "M17": 252e6, "M18": 265e6,
    "M19": 42e6, "M20": 240e6, "M21": 267e6, "M22": 44e6, "M23": 208e6, "M24": 232e6,
}
MOTION = ("motion_codec", "motion_entropy")
CONTEXTUAL = ("contextual_codec", "contextual_entropy")


@dataclass
class Planned:
    """One model of `sweep plan --json`, with its resolved preset as a config."""

    total: int
    count: ParameterCount
    config: ModelConfig


@pytest.fixture(scope="module")
def paper_plan():
    capture = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(capture):
        assert main(["sweep", "plan", str(PAPER), "--json"]) == 0
    seconds = time.perf_counter() - start
    models = {}
    for m in json.loads(capture.getvalue())["models"]:
        config = ModelConfig.model_validate(m["preset"])
        models[m["name"]] = Planned(m["total"], ParameterCount(m["name"], m["parts"], m["intra"]), config)
    return seconds, models


@pytest.fixture(scope="module")
def paper_models(paper_plan):
    return paper_plan[1]


def test_paper_plan_lists_m1_to_m24_within_three_percent(paper_plan):
    seconds, models = paper_plan
    assert seconds < 90  # on 2 shared cores; about 10 when they are idle
    assert list(models) == ["M0", *SECTION_IV]
    for name, total in SECTION_IV.items():
        assert abs(models[name].total / total - 1) <= 0.03, (name, models[name].total)
    assert models["M0"].total == pytest.approx(21.78e6, rel=0.005)


def test_plan_json_and_table(capsys):
    assert main(["sweep", "plan", str(ROOT / "stages" / "sweeps" / "tiny.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data["models"]] == ["T0", "T1", "T2"]
    assert all(m["total"] == sum(m["parts"].values()) for m in data["models"])
    assert main(["sweep", "plan", str(ROOT / "stages" / "sweeps" / "tiny.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    t1 = next(line for line in lines if line.startswith("T1 "))
    assert "2.58M" in t1 and "contextual_codec.channels.2=124" in t1


def _differs(a, b, part):
    return getattr(a.config, part) != getattr(b.config, part)


def test_each_model_grows_the_part_the_paper_names(paper_models):
    m = paper_models
    base = m["M0"]
    for name in ("M1", "M2", "M3"):  # motion codec: more channels and more blocks, nothing else
        assert [p for p in base.count.parts if m[name].count.parts[p] != base.count.parts[p]] == ["motion_codec"]
        assert m[name].config.motion_codec.blocks > 1
    for k in (4, 5, 6):  # M4-M6 = M1-M3 + a larger motion entropy model and motion latent
        grown, start = m[f"M{k}"], m[f"M{k - 3}"]
        assert grown.config.motion_codec.channels == start.config.motion_codec.channels
        assert grown.count.parts["motion_entropy"] > 20 * base.count.parts["motion_entropy"]
        assert grown.config.interface.motion_latent_channels > base.config.interface.motion_latent_channels
    for name in ("M7", "M8", "M9"):
        assert [p for p in base.count.parts if m[name].count.parts[p] != base.count.parts[p]] == ["contextual_codec"]
    for k in (10, 11, 12):
        assert m[f"M{k}"].config.contextual_codec.channels == m[f"M{k - 3}"].config.contextual_codec.channels
        assert m[f"M{k}"].config.interface.latent_channels > base.config.interface.latent_channels
    for name in ("M13", "M14", "M15"):
        changed = [p for p in base.count.parts if m[name].count.parts[p] != base.count.parts[p]]
        assert changed == ["temporal_context_mining"]
        assert m[name].config.interface == base.config.interface  # the contexts handed on stay as they were
    for k in (16, 17, 18):  # M16-M18 = M10-M12 + the TCM of M15
        assert m[f"M{k}"].config.contextual_entropy == m[f"M{k - 6}"].config.contextual_entropy
        assert m[f"M{k}"].config.temporal_context_mining.blocks == m["M15"].config.temporal_context_mining.blocks
    for first, block in (("M19", "mixed"), ("M22", "swin")):
        k = int(first[1:])
        a, b, c = m[first], m[f"M{k + 1}"], m[f"M{k + 2}"]
        assert a.config.contextual_codec.block_type == block and a.config.contextual_entropy.block_type == "conv"
        assert b.config.contextual_entropy.block_type == block and b.config.temporal_context_mining.block_type == "conv"
        assert c.config.temporal_context_mining.block_type == block
        for part in MOTION:
            assert not _differs(c, base, part)


@pytest.mark.parametrize("target", [0.8e6, 1.5e6, 3.0e6])
def test_solving_for_a_part_target_lands_within_one_percent(target):
    config = load_preset("tiny")
    solve = Solve(key="contextual_codec.channels.2", target=target, multiple=1)
    solved, value = solve_target(config, solve, PartCounter(), "test")
    assert solved.contextual_codec.channels[2] == value
    assert abs(part_parameters(solved, "contextual_codec") / target - 1) <= 0.01


def test_solving_for_a_total_keeps_the_other_parts():
    config = load_preset("sdd-21m")
    solve = Solve(key="temporal_context_mining.channels.2", total=40e6, multiple=4)
    solved, _ = solve_target(config, solve, PartCounter(), "test")
    counter = PartCounter()
    before, after = counter.count(config), counter.count(solved)
    assert abs(after.total / 40e6 - 1) <= 0.01
    assert {p: v for p, v in after.parts.items() if p != "temporal_context_mining"} == \
        {p: v for p, v in before.parts.items() if p != "temporal_context_mining"}


def write_spec(tmp_path, models, **top):
    spec = {"name": "t", "base": "tiny", "schedule": str(ROOT / "stages" / "demo.yaml"), "baseline": "A",
            "models": [{"name": "A"}, *models], **top}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "models, top, message",
    [
        ([{"name": "B", "sett": {}}], {}, "model 1 ('B'): key 'sett': unknown key"),
        ([{"name": "B", "extends": "C"}], {}, "model 'B': extends 'C', which is not an earlier model"),
        ([{"name": "B", "solve": {"key": "motion_codec.channels", "target": 1e6, "total": 2e6}}], {},
         "give exactly one of 'target'"),
        ([{"name": "B", "figures": ["9"]}], {}, "figure '9' is not declared"),
        ([{"name": "A"}], {}, "model 'A': the name is used by an earlier model"),
        ([], {"baseline": "Z"}, "baseline 'Z' is not one of the models"),
    ],
)
def test_spec_errors_name_the_file_model_and_key(tmp_path, models, top, message):
    path = write_spec(tmp_path, models, **top)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "model, message",
    [
        ({"name": "B", "set": {"motion_codec.chanels": 8}}, "model 'B': set 'motion_codec.chanels': no knob"),
        ({"name": "B", "set": {"interface.latent_channels": 30}}, "model 'B': set 'interface.latent_channels'"),
        ({"name": "B", "solve": {"key": "motion_codec.block_type", "target": 1e6}}, "is not an integer width"),
        ({"name": "B", "solve": {"key": "motion_codec.channels", "total": 1e5}}, "below the other parts'"),
    ],
)
def test_knob_errors_name_the_model(tmp_path, model, message):
    path = write_spec(tmp_path, [model])
    with pytest.raises(ConfigError) as err:
        resolve_models(load_sweep(path))
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)


def test_cli_error_is_one_line(tmp_path, capsys):
    path = write_spec(tmp_path, [{"name": "B", "set": {"nope.x": 1}}])
    assert main(["sweep", "plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "set 'nope.x': no knob" in err
