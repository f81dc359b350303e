"""A stage's learning-rate curve: linear warm-up, then constant or a cosine / linear decay to decay_to; the keys
are validated with the stage named."""

import itertools
import math

import pytest

from nvc1b.errors import ConfigError
from nvc1b.train.optimizer import lr_multiplier
from nvc1b.train.schedule import Stage, load_schedule


def stage(**kw):
    return Stage(name="s", frames=1, parts="Intra", loss="intra", lr=1e-3, steps=10, **kw)


def test_warm_up_then_constant_cosine_or_linear_decay():
    assert [lr_multiplier(stage(), k, 10) for k in (0, 9)] == [1.0, 1.0]
    warm = stage(warmup_steps=4)
    assert [lr_multiplier(warm, k, 10) for k in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cos = stage(warmup_steps=2, decay="cosine", decay_to=0.1)
    values = [lr_multiplier(cos, k, 10) for k in range(10)]
    assert values[:3] == [0.5, 1.0, 1.0] and math.isclose(values[-1], 0.1)
    assert all(a > b for a, b in itertools.pairwise(values[2:]))
    assert math.isclose(lr_multiplier(cos, 2 + 3.5, 10), 0.55)  # halfway through the decay: the mean of lr and the end
    lin = stage(decay="linear", decay_to=0.0)
    assert [round(lr_multiplier(lin, k, 10), 6) for k in (0, 3, 9)] == [1.0, round(1 - 3 / 9, 6), 0.0]


def test_bad_curve_keys_name_the_stage_and_the_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("preset: tiny\nstages:\n  - {name: intra, frames: 1, parts: Intra, loss: intra, lr: 1.0e-3, "
                    "steps: 4, warmup_steps: 4}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml.*intra.*warmup_steps 4 leaves none"):
        load_schedule(path)
    path.write_text("preset: tiny\nstages:\n  - {name: intra, frames: 1, parts: Intra, loss: intra, lr: 1.0e-3, "
                    "steps: 4, decay: exponential}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml.*decay"):
        load_schedule(path)
