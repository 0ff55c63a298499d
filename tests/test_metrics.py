"""tf_twogan.metrics: exact agreement with the reference MATLAB code, and hand-made facts.

The reference values in tests/data/metrics_reference.json were computed by the
original MATLAB code (VIFB metrics*.m, Haghighat's analysis_fmi.m) run under GNU
Octave 7.3 on inputs that ``metrics_helpers.reference_inputs`` rebuilds here from
the data root (tf_twogan.datasets.data_root).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tf_twogan import metrics as M
from tf_twogan.images import split_names
from tf_twogan.metrics import feature_mi, structure
from helpers import need_dataset
from metrics_helpers import DATA, LOOP_ORACLES, digest, loop_fmi, reference_inputs

REFERENCE = json.loads((Path(__file__).parent / "data" / "metrics_reference.json").read_text())
TOLERANCE = {"FMI": 1e-4, "FMI_gradient": 1e-4, "FMI_dct": 1e-4, "FMI_edge": 1e-4}

FUNCTIONS = {
    "EN": lambda ir, vis, f: M.en(f),
    "MI": M.mi,
    "SSIM": M.ssim,
    "SF": lambda ir, vis, f: M.sf(f),
    "SD": lambda ir, vis, f: M.sd(f),
    "SCD": M.scd,
    "QABF": M.qabf,
    "AG": lambda ir, vis, f: M.ag(f),
    "EI": lambda ir, vis, f: M.ei(f),
    "PSNR": M.psnr,
    "RMSE": M.rmse,
    "CE": M.ce,
    "CC": M.cc,
    "FMI": lambda ir, vis, f: M.fmi(ir, vis, f, "none", 3),
    "FMI_gradient": lambda ir, vis, f: M.fmi(ir, vis, f, "gradient", 3),
    "FMI_dct": lambda ir, vis, f: M.fmi(ir, vis, f, "dct", 3),
    "FMI_edge": lambda ir, vis, f: M.fmi(ir, vis, f, "edge", 3),
}

_INPUTS: dict[str, tuple] = {}


def _inputs(case: dict) -> tuple:
    name = case["name"]
    if name not in _INPUTS:
        if "arrays" not in case["inputs"]:
            need_dataset(case["inputs"]["dataset"])
            if case["inputs"]["fused"].startswith("vifb:"):
                need_dataset("vifb")
        triple = reference_inputs(case["inputs"])
        if digest(*triple) != case["sha256"]:
            pytest.fail(f"{name}: rebuilt inputs differ from those given to Octave (sha256 mismatch; "
                        "different data files or JPEG decoder?)")
        _INPUTS[name] = triple
    return _INPUTS[name]


REFERENCE_PARAMS = [
    pytest.param(case, metric, value, id=f"{case['name']}-{metric}")
    for case in REFERENCE["cases"]
    for metric, value in case["values"].items()
]


@pytest.mark.parametrize("case, metric, expected", REFERENCE_PARAMS)
def test_matches_reference_matlab_code_under_octave(case, metric, expected):
    got = FUNCTIONS[metric](*_inputs(case))
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=TOLERANCE.get(metric, 1e-6), abs=1e-12)


def test_reference_file_records_provenance():
    provenance = REFERENCE["provenance"]
    assert provenance["octave"].startswith("GNU Octave, version 7.3")
    assert len(provenance["vifb"]["commit"]) == 40 and len(provenance["fmi"]["commit"]) == 40
    measured = {metric for case in REFERENCE["cases"] for metric in case["values"]}
    assert set(M.PAPER_METRICS) <= measured


# ----------------------------------------------------------------------------
# independent loop oracles (literal transcriptions of the MATLAB loops)


def _small_triple(seed: int, size=(23, 27)):
    rng = np.random.default_rng(seed)
    ir = rng.integers(0, 256, size).astype(np.uint8)
    vis = rng.integers(0, 256, size).astype(np.uint8)
    vis[:6, :6] = 40  # flat patches, in IR and fused too
    ir[-6:, -6:] = 200
    fused = ((ir.astype(int) + vis + 1) // 2).astype(np.uint8)
    fused[-5:, -5:] = 90
    return ir, vis, fused


@pytest.mark.parametrize("metric", list(LOOP_ORACLES))
def test_vectorised_equals_loop_oracle(metric):
    triple = _small_triple(7)
    expected = LOOP_ORACLES[metric](*triple)
    got = M.evaluate(*triple, metrics=[metric])[metric]
    assert got == pytest.approx(expected, rel=1e-6 if metric == "FMI" else 1e-12)


# ----------------------------------------------------------------------------
# hand-computed facts


def _two_level(shape=(16, 16)):
    image = np.zeros(shape, dtype=np.uint8)
    image[:, shape[1] // 2:] = 255
    return image


def test_entropy_of_constant_image_is_zero():
    assert M.en(np.full((8, 8), 77, np.uint8)) == 0.0


def test_entropy_of_two_equal_levels_is_one_bit_and_four_levels_two_bits():
    assert M.en(_two_level()) == pytest.approx(1.0, abs=1e-15)
    four = np.repeat(np.array([[0, 10, 20, 30]], np.uint8), 4, axis=0)
    assert M.en(four) == pytest.approx(2.0, abs=1e-15)


def test_entropy_bins_by_floor_of_the_value():
    image = np.array([[3.2, 3.9], [3.0, 3.5]])
    assert M.en(image) == 0.0
    assert M.en(image, convention="python") == pytest.approx(1.0)  # np.round splits 3 and 4


def test_mutual_information_of_two_level_images_is_ln2_per_source():
    image = _two_level()
    assert M.mi(image, image, image) == pytest.approx(2 * math.log(2), rel=1e-12)
    assert M.mi(image, image, image, convention="python") == pytest.approx(2 * math.log(2), rel=1e-12)


def test_mutual_information_with_a_constant_image_is_zero():
    flat = np.full((8, 8), 9, np.uint8)
    assert M.mi(_two_level((8, 8)), _two_level((8, 8)), flat) == 0.0


def test_mutual_information_normalises_so_contrast_does_not_matter():
    image = _two_level()
    low_contrast = (image // 255 * 3 + 100).astype(np.uint8)
    assert M.mi(image, image, low_contrast) == pytest.approx(2 * math.log(2), rel=1e-12)


def test_ssim_is_a_sum_so_identical_images_score_two():
    image = np.random.default_rng(1).integers(0, 256, (20, 20)).astype(np.uint8)
    assert M.ssim(image, image, image) == pytest.approx(2.0, rel=1e-12)
    assert M.ssim(image, image, image, convention="python") == pytest.approx(2.0, rel=1e-12)


def test_ssim_of_constant_images_is_two():
    flat = np.full((12, 12), 50, np.uint8)
    assert M.ssim(flat, flat, flat) == pytest.approx(2.0)


def test_spatial_frequency_divides_both_sums_by_mn():
    image = np.array([[0, 1], [2, 3]], float)
    # row differences 1, 1; column differences 2, 2
    assert M.sf(image) == pytest.approx(math.sqrt(2 / 4 + 8 / 4))
    assert M.sf(image, convention="python") == pytest.approx(math.sqrt(2 / 2 + 8 / 2))


def test_standard_deviation_is_the_population_one():
    assert M.sd(_two_level()) == pytest.approx(127.5)
    assert M.sd(_two_level(), convention="python") == pytest.approx(127.5)


def test_scd_is_two_when_fused_is_the_sum_of_the_sources():
    rng = np.random.default_rng(3)
    ir, vis = rng.random((16, 16)) * 100, rng.random((16, 16)) * 100
    assert M.scd(ir, vis, ir + vis) == pytest.approx(2.0, rel=1e-12)


def test_scd_is_nan_when_a_difference_is_flat_as_corr2():
    image = _two_level()
    assert math.isnan(M.scd(image, image, image))


def test_qabf_takes_fused_magnitude_where_gradients_are_equal():
    # identical images: every source gradient equals the fused one, so the
    # strength term is the (255-scaled) magnitude itself, not 1
    image = np.tile(np.arange(0, 160, 10, dtype=float), (16, 1))
    got = M.qabf(image, image, image)
    p = dict(tg=0.9994, kg=-15, dg=0.5, ta=0.9879, ka=-22, da=0.8)
    # with magnitudes of thousands the strength term saturates at Tg; orientation term at AAF = 1
    expected = p["tg"] * p["ta"] / (1 + math.exp(p["ka"] * (1 - p["da"])))
    assert got == pytest.approx(expected, rel=1e-9)
    # a strength ratio of 1, as the paper intends, would give a visibly lower score
    intended = p["tg"] / (1 + math.exp(p["kg"] * (1 - p["dg"]))) * p["ta"] / (1 + math.exp(p["ka"] * (1 - p["da"])))
    assert abs(got - intended) > 5e-4


def test_qabf_orientation_is_half_pi_where_x_gradient_is_zero():
    # horizontal stripes: Sx = 0 everywhere inside, so orientations agree (pi/2)
    # between a source and a fused image of opposite contrast only because of the rule
    stripes = np.repeat(np.array([[0], [50], [100], [150]] * 4, float), 16, axis=1)
    g, a = structure._sobel_strength_orientation(stripes)
    inside = (slice(1, -1), slice(1, -1))
    assert np.all(a[inside] == np.pi / 2)


def test_fmi_of_identical_images_is_one():
    image = np.random.default_rng(5).integers(0, 256, (12, 12)).astype(np.uint8)
    assert M.fmi(image, image, image) == 1.0


def test_fmi_flat_windows_correlate_because_the_mean_of_nine_ninths_is_not_a_ninth():
    # the root cause: summed left to right, nine 1/9 do not add up to exactly 1
    total = 0.0
    for _ in range(9):
        total += 1 / 9
    assert total / 9 != 1 / 9
    ir, vis, fused = (np.full((7, 7), v, np.uint8) for v in (10, 20, 30))
    got = M.fmi(ir, vis, fused)
    assert got == pytest.approx(loop_fmi(ir, vis, fused), rel=1e-12)
    assert got > 0.99  # an exact mean would make c = 0 and the score 0


def test_fmi_source_equal_to_fused_scores_one_for_that_half():
    ir, vis, fused = _small_triple(11)
    score = M.fmi(vis, vis, vis)
    assert score == 1.0
    half = M.fmi(fused, vis, fused)  # IR half all 1
    assert 0.5 < half <= 1.0
    assert half == pytest.approx(loop_fmi(fused, vis, fused), rel=1e-6)


def test_fmi_vis_half_compares_with_the_overwritten_fused_window():
    # vis in {0, 1} equals the normalised fused window exactly, so after the IR
    # half overwrote it the VIS half sees raw equality and scores 1
    pattern = np.random.default_rng(2).integers(0, 2, (9, 9)).astype(np.uint8)
    fused = (100 + 50 * pattern).astype(np.uint8)
    ir = np.random.default_rng(3).integers(0, 256, (9, 9)).astype(np.uint8)
    got = M.fmi(ir, pattern, fused)
    assert got == pytest.approx(loop_fmi(ir, pattern, fused), rel=1e-6)
    windows = feature_mi._windows(fused.astype(float), 3)
    normalised = feature_mi._normalise_windows(windows)
    assert np.all(np.all(normalised == feature_mi._windows(pattern.astype(float), 3), axis=0)[np.ptp(windows, axis=0) > 0])


@pytest.mark.parametrize("feature", ["gradient", "edge", "dct"])
def test_fmi_features_run_and_stay_in_range(feature):
    ir, vis, fused = _small_triple(4)
    value = M.fmi(ir, vis, fused, feature=feature)
    assert 0.0 <= value <= 1.0


def test_fmi_wavelet_needs_pywavelets_or_says_so():
    ir, vis, fused = _small_triple(4, size=(40, 40))
    try:
        import pywt  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="PyWavelets"):
            M.fmi(ir, vis, fused, feature="wavelet")
    else:
        assert 0.0 <= M.fmi(ir, vis, fused, feature="wavelet") <= 1.0


def test_fmi_rejects_unknown_feature():
    ir, vis, fused = _small_triple(4)
    with pytest.raises(ValueError, match="feature"):
        M.fmi(ir, vis, fused, feature="sift")


def test_psnr_and_rmse_copy_vifb_norm_over_pixel_count():
    ir = np.zeros((4, 4))
    vis = np.zeros((4, 4))
    fused = np.full((4, 4), 2.0)
    e = math.sqrt(16 * 4) / 16  # VIFB's "mse": sqrt(sum sq) / (M*N)
    assert M.rmse(ir, vis, fused) == pytest.approx(e)
    assert M.psnr(ir, vis, fused) == pytest.approx(20 * math.log10(255 / math.sqrt(e)))
    assert M.rmse(ir, vis, fused, convention="python") == pytest.approx(2.0)
    assert M.psnr(ir, vis, fused, convention="python") == pytest.approx(10 * math.log10(4 / 4))


def test_vif_of_a_source_equal_to_fused_is_one_per_source():
    image = np.random.default_rng(8).integers(0, 256, (64, 64)).astype(float)
    assert M.vif(image, image, image) == pytest.approx(2.0, rel=1e-9)


def test_cc_of_identical_images_is_one():
    image = np.random.default_rng(8).integers(0, 256, (16, 16)).astype(float)
    assert M.cc(image, image, image) == pytest.approx(1.0)


# ----------------------------------------------------------------------------
# evaluate()


def test_evaluate_returns_the_papers_eight_then_thermal_retention_by_default():
    values = M.evaluate(*_small_triple(1))
    assert list(values) == ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]
    assert all(isinstance(v, float) for v in values.values())


def test_evaluate_accepts_extras_by_name_and_comma_strings():
    values = M.evaluate(*_small_triple(1, (48, 48)), metrics="en, ag,VIF,psnr,cc")
    assert list(values) == ["EN", "AG", "VIF", "PSNR", "CC"]


def test_evaluate_rejects_unknown_metric_and_convention():
    with pytest.raises(ValueError, match="NIQE"):
        M.evaluate(*_small_triple(1), metrics=["NIQE"])
    with pytest.raises(ValueError, match="convention"):
        M.evaluate(*_small_triple(1), convention="octave")


def test_evaluate_converts_rgb_with_rounded_bt601_luma():
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)
    gray = np.floor(rgb.astype(float) @ [0.299, 0.587, 0.114] + 0.5).astype(np.uint8)
    ir = rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)
    ir_gray = np.floor(ir.astype(float) @ [0.299, 0.587, 0.114] + 0.5).astype(np.uint8)
    fused = rng.integers(0, 256, (20, 20)).astype(np.uint8)
    assert M.evaluate(ir, rgb, fused) == M.evaluate(ir_gray, gray, fused)


def test_evaluate_rejects_mismatched_sizes():
    a = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match="sizes differ"):
        M.evaluate(a, a, np.zeros((10, 11), np.uint8))


def test_python_convention_differs_where_documented():
    ir, vis, fused = _small_triple(2)
    triple = (ir // 2 + 60, vis // 3 + 20, fused // 2 + 10)  # ranges not 0..255: normalisation matters
    matlab, python = M.evaluate(*triple), M.evaluate(*triple, convention="python")
    assert python["SD"] == pytest.approx(matlab["SD"], rel=1e-12)
    assert python["SCD"] == matlab["SCD"] and python["FMI"] == matlab["FMI"]
    assert python["SF"] > matlab["SF"] and python["MI"] != matlab["MI"] and python["SSIM"] != matlab["SSIM"]


def test_metrics_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, tf_twogan.metrics; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------
# VIFB's own stored MATLAB results (colour fused images, per-channel convention)


@pytest.mark.parametrize("case", REFERENCE["vifb_stored"]["cases"], ids=lambda c: f"{c['pair']}_{c['method']}")
def test_channels_colour_mode_reproduces_vifb_stored_results(case):
    from tf_twogan.images import read_image

    folder = need_dataset("vifb")
    ir = read_image(folder / "ir" / f"{case['pair']}.jpg")
    vis = read_image(folder / "vis" / f"{case['pair']}.jpg")
    fused = read_image(folder / "fused" / f"{case['pair']}_{case['method']}.jpg")
    got = M.evaluate(ir, vis, fused, metrics=list(case["values"]), color="channels")
    for metric, stored in case["values"].items():
        # stored with 5 significant digits
        assert got[metric] == pytest.approx(stored, rel=1e-4), metric


def test_channels_mode_scores_a_gray_fused_image_like_gray_mode():
    ir, vis, fused = _small_triple(6)
    assert M.evaluate(ir, vis, fused, color="channels") == M.evaluate(ir, vis, fused)


def test_unknown_colour_mode_is_rejected():
    with pytest.raises(ValueError, match="color"):
        M.evaluate(*_small_triple(6), color="luma")


# ----------------------------------------------------------------------------
# thermal retention (TR, this project's measure)

TNO = DATA / "tno"


def read_gray(file: Path) -> np.ndarray:
    from tf_twogan.images import read_gray_uint8

    return read_gray_uint8(file)


def path(kind: str, name: str) -> Path:
    return next((TNO / kind).glob(f"{name}.*"))


def test_thermal_retention_matches_a_hand_computed_value():
    # IR 0..9: the 98th percentile (linear) is 8.82, so only the pixel 9 is hot;
    # c(IR) = (9 - 4) / sqrt(8.25); fused 1 everywhere but 3 there: c = (3 - 1) / 0.6
    ir = np.arange(10, dtype=np.uint8).reshape(2, 5)
    fused = np.ones((2, 5), np.uint8)
    fused[1, 4] = 3
    expected = (2 / 0.6) / (5 / np.sqrt(8.25))
    assert M.thermal_retention(ir, ir, fused) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.914854, rel=1e-6)


@pytest.mark.needs_data("tno")
def test_thermal_retention_is_one_for_the_infrared_image_and_any_positive_affine_copy():
    ir = read_gray(path("ir", "13"))
    vis = read_gray(path("vis", "13"))
    assert M.thermal_retention(ir, vis, ir) == pytest.approx(1.0, rel=1e-12)
    assert M.thermal_retention(ir, vis, 0.5 * ir.astype(float) + 20) == pytest.approx(1.0, rel=1e-12)
    assert M.thermal_retention(ir, vis, 255 - ir.astype(float)) == pytest.approx(-1.0, rel=1e-12)


def test_thermal_retention_is_nan_for_a_constant_fused_or_infrared_image():
    ir = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert np.isnan(M.thermal_retention(ir, ir, np.full((10, 10), 7, np.uint8)))
    assert np.isnan(M.thermal_retention(np.zeros((10, 10), np.uint8), ir, ir))


@pytest.mark.needs_data("tno")
def test_the_visible_image_scores_low_thermal_retention_on_the_tno_test_pairs():
    # the issue-15 measurement: the visible image alone scores -0.23 on average
    names = split_names("tno", "test")
    scores = [M.thermal_retention(read_gray(path("ir", n)), None, read_gray(path("vis", n))) for n in names]
    assert np.mean(scores) == pytest.approx(-0.23, abs=0.005)


@pytest.mark.needs_data("tno")
def test_evaluate_reports_thermal_retention_by_default_after_the_paper_metrics():
    ir = read_gray(path("ir", "13"))
    vis = read_gray(path("vis", "13"))
    scores = M.evaluate(ir, vis, ir)
    assert list(scores) == list(M.PAPER_METRICS) + ["TR"]
    assert scores["TR"] == pytest.approx(1.0)
