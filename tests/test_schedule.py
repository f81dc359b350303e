"""Schedules: Table II exactly, and one-line errors naming file, stage and key."""

from pathlib import Path

import pytest

from nvc1b.errors import ConfigError
from nvc1b.train.schedule import effective, load_schedule
from nvc1b.train.stage import accumulation_steps, stage_steps

ROOT = Path(__file__).resolve().parents[1]
TABLE_II = """\
2 Inter meD 1e-4 2 | 2 Inter meRD 1e-4 6 | 2 Recon recD 5e-5 6 | 3 Inter meRD 1e-4 2 | 3 Recon recD 5e-5 3
4 Recon recD 5e-5 3 | 6 Recon recD 5e-5 3 | 2 Recon recRD 5e-5 6 | 3 Recon recRD 5e-5 3 | 4 Recon recRD 5e-5 3
6 Recon recRD 5e-5 3 | 2 All all_T 5e-5 15 | 3 All all_T 5e-5 15 | 4 All all_T 5e-5 15 | 6 All all_T 5e-5 10
6 All all_T 1e-5 10 | 6 All all_T 5e-6 5 | 6 All all_T 1e-5 2 | 6 All all_T 1e-6 2 | 6 All all_T 5e-7 2
6 All all_T 1e-7 4"""


def table_ii():
    rows = [r.split() for r in TABLE_II.replace("\n", " | ").split(" | ")]
    return [(int(f), parts, loss, float(lr), float(ep)) for f, parts, loss, lr, ep in rows]


def test_nvc1b_rgb_is_an_intra_stage_then_table_ii():
    schedule = load_schedule(ROOT / "stages" / "nvc1b_rgb.yaml")
    assert len(schedule.stages) == 22
    intra, *rows = schedule.stages
    assert (intra.parts, intra.loss, intra.frames) == ("Intra", "intra", 1)
    got = [(s.frames, s.parts, s.loss, s.lr, s.epochs) for s in rows]
    assert got == table_ii()
    assert schedule.preset == "nvc1b" and schedule.global_batch == 32 and schedule.crop == 256
    # Vimeo-90k has 64,612 training septuplets: an epoch is 64612 // 32 = 2019 global batches (4 clips left out);
    # stage 1 (2 frames, 2 epochs) is 2 × 2019 steps, stage 4 (3 frames, meRD, per-frame updates) 2 × 2019 × 2
    assert stage_steps(schedule, 1, 64612) == 2 * 2019 and stage_steps(schedule, 4, 64612) == 2 * 2019 * 2


def test_demo_schedule_has_the_same_structure_in_miniature():
    demo = load_schedule(ROOT / "stages" / "demo.yaml")
    assert demo.preset == "tiny" and demo.data.train == "builtin"
    kinds = {(s.parts, s.loss) for s in demo.stages}
    assert {("Intra", "intra"), ("Inter", "meD"), ("Inter", "meRD"), ("Recon", "recD"), ("Recon", "recRD"),
            ("All", "all_T")} <= kinds


BASE = """\
preset: tiny
stages:
  - {name: a, frames: 2, parts: Inter, loss: meD, lr: 1.0e-4, epochs: 1}
"""


@pytest.mark.parametrize(
    "text, message",
    [
        (BASE.replace("epochs: 1", "epochs: 1, steps: 3"), "stage 0 ('a'): give exactly one of 'epochs' and 'steps'"),
        (BASE.replace("loss: meD", "loss: recD"), "stage 0 ('a'): loss 'recD' does not train parts 'Inter'"),
        (BASE.replace("frames: 2", "frames: 9"), "stage 0 ('a'): key 'frames': Input should be less than or equal to 7"),
        (BASE.replace("lr: 1.0e-4", "lr: 1.0e-4, lrr: 2"), "stage 0 ('a'): key 'lrr': unknown key"),
        (BASE.replace("parts: Inter", "parts: Motion"), "stage 0 ('a'): key 'parts'"),
        (BASE.replace("preset: tiny\n", ""), "key 'preset': missing key"),
        (BASE + "  - {name: a, frames: 2, parts: Inter, loss: meD, lr: 1.0e-4, epochs: 1}\n",
         "stage 1 ('a'): the name is used by an earlier stage"),
        (BASE.replace("frames: 2, parts: Inter, loss: meD", "frames: 1, parts: Inter, loss: meD"),
         "only an Intra stage has one frame"),
        (BASE + "zero_stage: 4\n", "key 'zero_stage'"),
        (BASE.replace("epochs: 1}", "epochs: 1"), "malformed YAML at line"),
    ],
)
def test_schedule_errors_name_file_stage_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_schedule(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_stage_lookup_and_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE + "  - {name: b, frames: 3, parts: All, loss: all_T, lr: 1.0e-5, steps: 4, "
                    "overrides: {crop: 128, micro_batch: 1}}\n")
    schedule = load_schedule(path)
    assert schedule.index("b") == 1 and schedule.index("0") == 0
    with pytest.raises(ConfigError, match="unknown stage 'c'"):
        schedule.index("c")
    with pytest.raises(ConfigError, match="out of range"):
        schedule.index(5)
    eff = effective(schedule, schedule.stages[1])
    assert (eff.crop, eff.micro_batch, eff.global_batch) == (128, 1, 32)


def test_gradient_accumulation_reaches_the_global_batch_for_any_world_size():
    assert accumulation_steps(32, 8, 1, "x") == 4
    assert accumulation_steps(32, 2, 4, "x") == 4
    assert accumulation_steps(32, 1, 32, "x") == 1
    with pytest.raises(ConfigError, match="global_batch 32 is not a multiple of micro_batch 3"):
        accumulation_steps(32, 3, 2, "x")


def test_feature_adaptor_coverage_of_a_schedule(tmp_path):
    # position t >= 2 codes through adaptor ADAPTOR_INDEX[t % 4] = (0, 1, 0, 2): adaptor 2 from 4-frame clips,
    # adaptor 1 from 6-frame clips; only stages that train temporal context mining (Recon, All) count
    from nvc1b.model.hierarchy import adaptor_positions, untrained_adaptors
    from nvc1b.train.clip import adaptor_coverage

    assert [untrained_adaptors(n) for n in (2, 3, 4, 5, 6, 7)] == [[0, 1, 2], [1, 2], [1], [1], [], []]
    assert adaptor_positions(2) == [3, 7, 11] and adaptor_positions(1) == [5, 9, 13]
    assert adaptor_coverage(load_schedule(ROOT / "stages" / "nvc1b_rgb.yaml").stages) is None
    demo = adaptor_coverage(load_schedule(ROOT / "stages" / "demo.yaml").stages)
    assert demo.startswith("the longest clip of a stage that trains temporal context mining has 3 frames")
    assert "adaptors 1 (P-frames 5, 9, 13, …) and 2 (P-frames 3, 7, 11, …) keep their initial weights" in demo
    path = tmp_path / "s.yaml"
    path.write_text(BASE + "  - {name: m, frames: 7, parts: Inter, loss: meD, lr: 1.0e-4, steps: 2}\n"
                    "  - {name: r, frames: 4, parts: Recon, loss: recD, lr: 1.0e-4, steps: 2}\n")
    note = adaptor_coverage(load_schedule(path).stages)
    assert "has 4 frames" in note and "adaptor 1 (P-frames 5, 9, 13, …) keeps its initial weights" in note
