"""Presets against the published budgets (counted on the meta device) and the `nvc1b params` command."""

import json
import subprocess
import sys

import pytest

from nvc1b.cli import main
from nvc1b.config.model import load_preset
from nvc1b.errors import ConfigError
from nvc1b.model import count_parameters

TABLE_I = {  # NVC-1B paper, Table I
    "motion_estimation": 0.96e6, "motion_codec": 0.81e6, "motion_entropy": 2.50e6,
    "temporal_context_mining": 411.21e6, "contextual_codec": 504.59e6, "contextual_entropy": 435.88e6,
}
BASELINE = {  # DCVC-SDD public code, counted per part
    "motion_estimation": 0.96e6, "motion_codec": 0.81e6, "motion_entropy": 2.50e6,
    "temporal_context_mining": 3.55e6, "contextual_codec": 4.79e6, "contextual_entropy": 9.17e6,
}


def within(value, target, tol):
    return abs(value / target - 1) <= tol


def test_nvc1b_matches_table_one():
    count = count_parameters(load_preset("nvc1b"))
    for part, target in TABLE_I.items():
        assert within(count.parts[part], target, 0.01), (part, count.parts[part])
    assert within(count.total, 1355.95e6, 0.005), count.total
    # the paper keeps the motion parts at baseline size
    sdd = count_parameters(load_preset("sdd-21m"))
    for part in ("motion_estimation", "motion_codec", "motion_entropy"):
        assert count.parts[part] == sdd.parts[part]


def test_sdd_matches_the_baseline_column():
    count = count_parameters(load_preset("sdd-21m"))
    for part, target in BASELINE.items():
        assert within(count.parts[part], target, 0.03), (part, count.parts[part])
    assert within(count.total, 21.77e6, 0.02)


def test_tiny_is_small():
    count = count_parameters(load_preset("tiny"))
    assert count.total + count.intra < 3e6


def test_params_json_command(capsys):
    assert main(["params", "--preset", "nvc1b", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"preset", "parts", "intra", "total"}
    assert set(data["parts"]) == set(TABLE_I)
    assert data["total"] == sum(data["parts"].values())
    assert within(data["total"], 1355.95e6, 0.005)


def test_params_table_and_check(capsys):
    assert main(["params", "--preset", "sdd-21m", "--check"]) == 0
    out = capsys.readouterr().out
    assert "Temporal context mining" in out and "21.77M" in out


def test_unknown_preset_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "nvc1b", "params", "--preset", "huge"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown preset 'huge'" in proc.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("motion_codec: {channels: 64, blokcs: 2}\n", "key 'motion_codec.blokcs': unknown key"),
        ("motion_codec: {channels: -4}\n", "key 'motion_codec.channels'"),
        ("motion_codec: [1, 2\n", "malformed YAML at line"),
        ("interface: {latent_channels: 30}\n", "not divisible by 4"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_malformed_preset_files_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_preset(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    proc = subprocess.run([sys.executable, "-m", "nvc1b", "params", "--preset", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
