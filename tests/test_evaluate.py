"""tf_twogan.evaluate: pairing, tables, plot, errors, atomic outputs."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO

from tf_twogan import metrics as M
from tf_twogan.evaluate import evaluate_folders, evaluate_vifb_style, markdown_table
from tf_twogan.config import ConfigError
from tf_twogan.images import ImageError, write_image



def _pair_images(rng, shape=(40, 48)):
    ir = rng.integers(0, 256, shape).astype(np.uint8)
    vis = rng.integers(0, 256, (*shape, 3)).astype(np.uint8)  # colour visible image
    return ir, vis


@pytest.fixture
def folders(tmp_path):
    """ir/vis with pairs a, b, c; fused folders 'average' and 'maximum'."""
    rng = np.random.default_rng(0)
    layout = {"ir": tmp_path / "ir", "vis": tmp_path / "vis", "average": tmp_path / "average",
              "maximum": tmp_path / "maximum"}
    for stem in ("a", "b", "c"):
        ir, vis = _pair_images(rng)
        gray = np.floor(vis.astype(float) @ [0.299, 0.587, 0.114] + 0.5).astype(np.uint8)
        write_image(layout["ir"] / f"{stem}.png", ir)
        write_image(layout["vis"] / f"{stem}.png", vis)
        write_image(layout["average"] / f"{stem}.png", ((ir.astype(int) + gray) // 2).astype(np.uint8))
        write_image(layout["maximum"] / f"{stem}.bmp", np.maximum(ir, gray))
    return layout


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_scores_equal_metrics_evaluate_on_the_gray_images(folders, tmp_path):
    result = evaluate_folders(folders["ir"], folders["vis"], [folders["average"], folders["maximum"]],
                              tmp_path / "out", progress=False)
    assert result.methods == ("average", "maximum")
    import imageio.v3 as iio

    ir = iio.imread(folders["ir"] / "b.png")
    vis = iio.imread(folders["vis"] / "b.png")
    fused = iio.imread(folders["maximum"] / "b.bmp")
    assert result.per_image["maximum"]["b"] == M.evaluate(ir, vis, fused)
    means = np.mean([[row[k] for k in M.PAPER_METRICS] for row in result.per_image["average"].values()], axis=0)
    assert [result.means["average"][k] for k in M.PAPER_METRICS] == pytest.approx(list(means), rel=1e-12)


def test_writes_per_image_csvs_mean_csv_markdown_and_png(folders, tmp_path):
    out = tmp_path / "out"
    result = evaluate_folders(folders["ir"], folders["vis"], [folders["average"], folders["maximum"]], out,
                              metrics=["EN", "SSIM", "RMSE"], progress=False)
    rows = _read_csv(out / "metrics_mean.csv")
    assert list(rows[0]) == ["method", "EN", "SSIM", "RMSE"]
    assert [r["method"] for r in rows] == ["average", "maximum"]
    assert float(rows[1]["SSIM"]) == pytest.approx(result.means["maximum"]["SSIM"], rel=1e-9)
    per_image = _read_csv(out / "average_metrics.csv")
    assert [r["image"] for r in per_image] == ["a", "b", "c"]
    assert (out / "metrics_mean.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "metrics_mean.md").read_text() == result.markdown() == str(result)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_a_metric_undefined_on_every_image_gives_a_nan_mean_and_no_numpy_warning(folders, tmp_path):
    # TR is undefined (NaN) for a flat fused image; the plot's whiskers used np.nanstd,
    # which warned "Degrees of freedom <= 0" on the user's console
    import warnings

    flat = tmp_path / "flat"
    for stem in ("a", "b", "c"):
        write_image(flat / f"{stem}.png", np.full((40, 48), 7, np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_folders(folders["ir"], folders["vis"], [flat, folders["average"]], tmp_path / "out",
                                  metrics=["EN", "TR"], progress=False)
    assert np.isnan(result.means["flat"]["TR"]) and np.isfinite(result.means["average"]["TR"])
    assert result.means["flat"]["EN"] == 0
    assert (tmp_path / "out" / "metrics_mean.png").is_file()


def test_threads_score_the_pairs_exactly_as_one_does_and_write_the_same_files(folders, tmp_path):
    fused = [folders["average"], folders["maximum"]]
    one = evaluate_folders(folders["ir"], folders["vis"], fused, tmp_path / "one", progress=False, workers=1)
    three = evaluate_folders(folders["ir"], folders["vis"], fused, tmp_path / "three", progress=False, workers=3)
    assert three.per_image == one.per_image and list(three.per_image["maximum"]) == ["a", "b", "c"]
    import imageio.v3 as iio

    for stem in ("a", "b", "c"):  # each pair's own scores
        ir, vis = iio.imread(folders["ir"] / f"{stem}.png"), iio.imread(folders["vis"] / f"{stem}.png")
        assert three.per_image["maximum"][stem] == M.evaluate(ir, vis, iio.imread(folders["maximum"] / f"{stem}.bmp"))
    for name in ("metrics_mean.csv", "average_metrics.csv", "maximum_metrics.csv", "metrics_mean.md"):
        assert (tmp_path / "three" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        evaluate_folders(folders["ir"], folders["vis"], fused, tmp_path / "zero", progress=False, workers=0)


def test_the_default_number_of_workers_is_the_environment_variable_or_the_usable_cores(monkeypatch):
    from tf_twogan.evaluate import default_workers

    monkeypatch.delenv("TWOGAN_EVALUATE_WORKERS", raising=False)
    assert default_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("TWOGAN_EVALUATE_WORKERS", "3")
    assert default_workers() == 3
    for bad in ("0", "two", "-1", ""):
        monkeypatch.setenv("TWOGAN_EVALUATE_WORKERS", bad)
        with pytest.raises(ConfigError, match="TWOGAN_EVALUATE_WORKERS must be a positive integer"):
            default_workers()


def test_with_two_bad_pairs_the_first_in_name_order_is_named_whatever_the_threads(folders, tmp_path):
    for stem in ("b", "c"):
        write_image(folders["average"] / f"{stem}.png", np.zeros((8, 8), np.uint8))
    for workers in (1, 3):
        with pytest.raises(ImageError, match=r"average[/\\]b\.png is \(8, 8\)"):
            evaluate_folders(folders["ir"], folders["vis"], [folders["average"]], tmp_path / f"out{workers}",
                             progress=False, workers=workers)
        assert not (tmp_path / f"out{workers}").exists()


def test_markdown_bolds_the_best_value_of_each_column_lower_is_better_for_rmse():
    means = {"one": {"EN": 7.0, "RMSE": 0.5}, "two": {"EN": 6.0, "RMSE": 0.25}}
    table = markdown_table(means, ["EN", "RMSE"])
    lines = table.splitlines()
    assert lines[0] == "| method | EN | RMSE |"
    assert lines[2] == "| one | **7.0000** | 0.5000 |"
    assert lines[3] == "| two | 6.0000 | **0.2500** |"


def test_missing_fused_counterpart_is_named(folders, tmp_path):
    (folders["maximum"] / "c.bmp").unlink()
    with pytest.raises(ImageError, match=r"maximum has no fused image for c"):
        evaluate_folders(folders["ir"], folders["vis"], [folders["average"], folders["maximum"]],
                         tmp_path / "out", progress=False)


def test_missing_source_is_named(folders, tmp_path):
    (folders["vis"] / "b.png").unlink()
    with pytest.raises(ImageError, match=r"pairs not found in both folders: b \(not in .*vis\)"):
        evaluate_folders(folders["ir"], folders["vis"], folders["average"], tmp_path / "out", progress=False)


def test_mismatched_size_names_the_files(folders, tmp_path):
    write_image(folders["average"] / "a.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageError, match=r"average/a\.png is \(10, 10\)"):
        evaluate_folders(folders["ir"], folders["vis"], folders["average"], tmp_path / "out", progress=False)


def test_fused_subset_of_pairs_is_evaluated_alone(folders, tmp_path):
    (folders["average"] / "c.png").unlink()
    result = evaluate_folders(folders["ir"], folders["vis"], folders["average"], tmp_path / "out", progress=False)
    assert list(result.per_image["average"]) == ["a", "b"]


def test_duplicate_method_names_are_rejected(folders, tmp_path):
    other = tmp_path / "elsewhere" / "average"
    other.mkdir(parents=True)
    with pytest.raises(ValueError, match="distinct names"):
        evaluate_folders(folders["ir"], folders["vis"], [folders["average"], other], tmp_path / "out", progress=False)


def test_vifb_layout_splits_stem_and_method_at_the_longest_pair_name(folders, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for stem in ("a", "b", "c"):
        os.link(folders["average"] / f"{stem}.png", flat / f"{stem}_avg_rule.png")
        os.link(folders["maximum"] / f"{stem}.bmp", flat / f"{stem}_max.bmp")
    result = evaluate_vifb_style(folders["ir"], folders["vis"], flat, tmp_path / "out", progress=False)
    assert result.methods == ("avg_rule", "max")
    reference = evaluate_folders(folders["ir"], folders["vis"], [folders["average"]], tmp_path / "ref", progress=False)
    assert result.per_image["avg_rule"] == reference.per_image["average"]


def test_vifb_layout_rejects_unparseable_names(folders, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    os.link(folders["average"] / "a.png", flat / "zz_avg.png")
    with pytest.raises(ImageError, match="zz_avg.png"):
        evaluate_vifb_style(folders["ir"], folders["vis"], flat, tmp_path / "out", progress=False)


def test_python_convention_is_passed_through(folders, tmp_path):
    matlab = evaluate_folders(folders["ir"], folders["vis"], folders["average"], tmp_path / "m", progress=False)
    python = evaluate_folders(folders["ir"], folders["vis"], folders["average"], tmp_path / "p",
                              convention="python", progress=False)
    assert python.means["average"]["SF"] != matlab.means["average"]["SF"]


def test_evaluate_module_does_not_import_tensorflow():
    code = "import sys, tf_twogan.evaluate; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_cli_evaluate_prints_the_markdown_table(folders, tmp_path):
    if not (REPO / "tf_twogan" / "cli.py").exists():
        pytest.skip("tf_twogan.cli not present")
    out = tmp_path / "cli"
    run = subprocess.run(
        [sys.executable, "-m", "tf_twogan.cli", "evaluate", "--ir", str(folders["ir"]), "--vis", str(folders["vis"]),
         "--fused", str(folders["average"]), "--fused", str(folders["maximum"]), "--out", str(out),
         "--metrics", "EN,SD", "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "| method | EN | SD |" in run.stdout
    assert (out / "metrics_mean.csv").is_file()


def test_cli_evaluate_takes_workers_and_refuses_zero_in_one_line(folders, tmp_path, capsys):
    from tf_twogan.cli import main

    base = ["evaluate", "--ir", str(folders["ir"]), "--vis", str(folders["vis"]), "--fused", str(folders["average"]),
            "--metrics", "EN,SD", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    assert "| average |" in capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "zero"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "workers must be a positive integer, got 0" in err
    assert not (tmp_path / "zero").exists()


def test_channels_mode_scores_colour_fused_images_per_channel(folders, tmp_path):
    rng = np.random.default_rng(5)
    colour = tmp_path / "colour"
    for stem in ("a", "b", "c"):
        write_image(colour / f"{stem}.png", rng.integers(0, 256, (40, 48, 3)).astype(np.uint8))
    result = evaluate_folders(folders["ir"], folders["vis"], colour, tmp_path / "out", metrics="EN,SD",
                              progress=False, color="channels")
    import imageio.v3 as iio

    fused = iio.imread(colour / "a.png")
    expected = np.mean([M.en(fused[..., k]) for k in range(3)])
    assert result.per_image["colour"]["a"]["EN"] == pytest.approx(expected, rel=1e-12)
    gray = evaluate_folders(folders["ir"], folders["vis"], colour, tmp_path / "gray", metrics="EN,SD", progress=False)
    assert gray.per_image["colour"]["a"]["EN"] != result.per_image["colour"]["a"]["EN"]
