"""BD-rate against hand-computed values, the Table III/IV layout, and the curve loader (CSV, results JSON)."""

import math

import numpy as np
import pytest

from nvc1b.cli.main import main
from nvc1b.eval.bdrate import CurveError, bd_psnr, bd_rate, bd_table
from nvc1b.eval.curves import RDCurve, load_results
from nvc1b.eval.results import ResultsError

BPP = [0.05, 0.09, 0.16, 0.30]
PSNR = [31.0, 33.2, 35.1, 37.3]


def test_identical_curves_give_zero():
    assert bd_rate((BPP, PSNR), (BPP, PSNR)) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr((BPP, PSNR), (BPP, PSNR)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("factor", [0.9, 1.25, 0.5])
def test_every_rate_scaled_gives_the_factor(factor):
    test = ([b * factor for b in BPP], PSNR)
    assert bd_rate((BPP, PSNR), test) == pytest.approx((factor - 1) * 100, abs=1e-9)
    assert bd_rate(test, (BPP, PSNR)) == pytest.approx((1 / factor - 1) * 100, abs=1e-9)


def test_linear_log_rate_curves_match_the_closed_form():
    """ln bpp linear in PSNR on both curves: PCHIP reproduces lines, so the mean log-rate difference over the
    shared PSNR range [lo, hi] is (a_t − a_a) + (b_t − b_a)·(lo + hi)/2."""
    psnr_a, psnr_t = np.array([30.0, 32.0, 34.0, 36.0]), np.array([31.0, 33.0, 35.0, 37.5])
    a_a, b_a, a_t, b_t = -9.0, 0.2, -8.5, 0.18
    anchor = (np.exp(a_a + b_a * psnr_a), psnr_a)
    test = (np.exp(a_t + b_t * psnr_t), psnr_t)
    lo, hi = 31.0, 36.0
    expected = (math.exp((a_t - a_a) + (b_t - b_a) * (lo + hi) / 2) - 1) * 100
    assert bd_rate(anchor, test) == pytest.approx(expected, abs=1e-9)


def test_close_to_the_classic_cubic_fit_on_smooth_curves():
    """VCEG-M33's cubic polynomial fit and the PCHIP variant agree closely on smooth 4-point curves."""
    psnr = np.array(PSNR)
    test_bpp = np.array(BPP) * np.array([0.97, 0.93, 0.9, 0.88])

    def cubic(bpp_a, psnr_a, bpp_t, psnr_t):
        pa, pt = np.polyfit(psnr_a, np.log(bpp_a), 3), np.polyfit(psnr_t, np.log(bpp_t), 3)
        lo, hi = max(psnr_a.min(), psnr_t.min()), min(psnr_a.max(), psnr_t.max())
        ia, it = np.polyint(pa), np.polyint(pt)
        diff = (np.polyval(it, hi) - np.polyval(it, lo) - np.polyval(ia, hi) + np.polyval(ia, lo)) / (hi - lo)
        return (math.exp(diff) - 1) * 100

    assert bd_rate((BPP, psnr), (test_bpp, psnr)) == pytest.approx(cubic(np.array(BPP), psnr, test_bpp, psnr), abs=0.5)


def test_point_order_does_not_matter_and_psnr_shift_gives_bd_psnr():
    shuffled = ([BPP[i] for i in (2, 0, 3, 1)], [PSNR[i] for i in (2, 0, 3, 1)])
    assert bd_rate((BPP, PSNR), shuffled) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr((BPP, PSNR), (BPP, [p + 0.5 for p in PSNR])) == pytest.approx(0.5, abs=1e-9)


def test_curves_without_common_psnr_range_have_no_bd_rate():
    assert math.isnan(bd_rate((BPP, PSNR), (BPP, [p + 20 for p in PSNR])))


@pytest.mark.parametrize("curve, message", [
    (([0.1], [30.0]), "at least 2 rate points"),
    (([0.1, 0.2], [30.0, 30.0]), "same PSNR"),
    (([0.0, 0.2], [30.0, 31.0]), "positive"),
])
def test_unusable_curves_are_errors(curve, message):
    with pytest.raises(CurveError, match=message):
        bd_rate((BPP, PSNR), curve)


def test_table_per_dataset_with_average():
    anchor = {d: RDCurve(d, tuple(BPP), tuple(PSNR), "x265") for d in ("HEVC_C", "HEVC_B", "UVG")}
    model = {d: RDCurve(d, tuple(b * f for b in BPP), tuple(PSNR), "m")
             for d, f in (("HEVC_B", 0.9), ("HEVC_C", 0.8), ("UVG", 1.1))}
    table = bd_table(anchor, {"m": model})
    assert table.datasets == ["HEVC_B", "HEVC_C", "UVG"]  # the paper's column order
    assert table.rows["m"]["HEVC_C"] == pytest.approx(-20.0)
    assert table.average("m") == pytest.approx((-10 - 20 + 10) / 3)
    text = table.format()
    assert "| anchor: x265 | HEVC_B | HEVC_C | UVG | Average |" in text
    assert "| m | -10.0 | -20.0 | 10.0 | -6.7 |" in text


def write_csv(path, bpp, psnr, dataset=None):
    head = "bpp,psnr" + (",dataset" if dataset else "")
    rows = [f"{b},{p}" + (f",{dataset}" if dataset else "") for b, p in zip(bpp, psnr)]
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


def test_csv_curves_and_the_bdrate_command(tmp_path, capsys):
    anchor = write_csv(tmp_path / "x265.csv", BPP, PSNR)
    test = write_csv(tmp_path / "model.csv", [b * 0.9 for b in BPP], PSNR)
    curves = load_results(anchor)
    assert list(curves) == ["x265"] and curves["x265"].bpp == tuple(BPP)
    assert main(["bdrate", str(anchor), str(test)]) == 0
    out = capsys.readouterr().out
    assert "| model | -10.0 | -10.0 |" in out and out.count("| anchor:") == 1


def test_csv_with_a_dataset_column_holds_several_sets(tmp_path):
    path = tmp_path / "hm.csv"
    rows = "".join(f"{d},{b},{p}\n" for d in ("HEVC_B", "UVG") for b, p in zip(BPP, PSNR))
    path.write_text("dataset,bpp,psnr\n" + rows)
    curves = load_results(path)
    assert sorted(curves) == ["HEVC_B", "UVG"] and curves["UVG"].label == "hm"


@pytest.mark.parametrize("text, message", [
    ("rate,psnr\n0.1,30\n", "needs columns bpp,psnr"),
    ("bpp,psnr\n0.1,abc\n", "line 2"),
])
def test_bad_csv_is_a_one_line_error(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ResultsError, match=message):
        load_results(path)
    assert main(["bdrate", str(path), str(path)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("nvc1b: error:") and err.count("\n") == 1 and message in err


def test_missing_results_are_a_one_line_error(tmp_path, capsys):
    assert main(["bdrate", str(tmp_path / "none.csv"), str(tmp_path / "none2.csv")]) != 0
    err = capsys.readouterr().err
    assert "none.csv: results not found" in err and err.count("\n") == 1
