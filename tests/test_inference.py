"""Inference on real image files: exact tiling, colour, bit depths, errors, folders, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf  # a hard dependency: a missing one must fail, not skip the module

from helpers import make_checkpoint, random_gray
from tf_twogan import inference, tiling
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.config import TwoGanConfig, preset
from tf_twogan.images import ImageError, to_uint8
from tf_twogan.inference import Fuser
from tf_twogan.tiling import reflect_indices


def whole_image_chain(checkpoint: Path, ir: np.ndarray, vis: np.ndarray, swap: bool = False) -> np.ndarray:
    """The definition: G1([ir, vis]), G2([vis, ir]) -> G3, each generator padding its own input."""
    from tf_twogan.training import load_generators

    g1, g2, g3 = load_generators(checkpoint)
    x = (np.stack([ir, vis], axis=-1)[None].astype(np.float32) - 127.5) / 127.5
    irv, vir = g1(x, training=False), g2(x[..., ::-1], training=False)
    second = tf.concat([vir, irv] if swap else [irv, vir], axis=-1)
    return np.asarray(g3(second, training=False))[0, ..., 0] * 127.5 + 127.5


def sample_pair(name: str = "tno_13") -> tuple[np.ndarray, np.ndarray]:
    folder = Path(inference.__file__).parent / "samples"
    return iio.imread(folder / "ir" / f"{name}.png"), iio.imread(folder / "vis" / f"{name}.png")


@pytest.fixture(scope="module")
def fuser(tiny_checkpoint) -> Fuser:
    return Fuser(tiny_checkpoint, tile=0)


def test_reflect_indices_match_tf_pad_reflect():
    axis = np.arange(7)
    expected = np.asarray(tf.pad(axis, [[4, 4]], mode="REFLECT"))
    assert reflect_indices(-4, 11, 7).tolist() == expected.tolist()


@pytest.mark.parametrize("options", [{}, {"input_mode": "single", "spectral_norm": True, "conv_bias": False}])
def test_folded_batch_norm_stack_equals_the_keras_conv_stack(options):
    from tf_twogan.models import Generator

    generator = Generator(widths=(6, 5, 4, 3), **options)
    generator.build()
    rng = np.random.default_rng(11)
    generator.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in w.path
                           else rng.normal(0, 0.5, w.shape).astype(np.float32) for w in generator.weights])
    x = tf.constant(rng.uniform(-1, 1, (2, 19, 23, 2)).astype(np.float32))
    expected = generator.conv_stack(x, training=False).numpy()
    # spectral norm divides each kernel by its largest singular value, so its outputs vary less
    assert expected.shape == (2, 11, 15, 1) and expected.std() > 1e-4
    assert np.abs(inference.FoldedStack(generator)(x).numpy() - expected).max() <= min(1e-5, 1e-2 * expected.std())


@pytest.mark.parametrize("tile", [8, 13, 37, 64])
def test_tiled_fusion_equals_whole_image_inference(tiny_checkpoint, tile):
    ir, vis = sample_pair()
    ir, vis = ir[:101, :83], vis[:101, :83]  # neither side a multiple of any tile
    definition = whole_image_chain(tiny_checkpoint, ir, vis)
    assert definition.std() > 5  # the random network really depends on the input
    expected = Fuser(tiny_checkpoint, tile=0).fuse_arrays(ir, vis, as_float=True)
    assert np.abs(expected - definition).max() <= 1e-3  # folded BatchNorm: float rounding only
    tiled = Fuser(tiny_checkpoint, tile=tile).fuse_arrays(ir, vis, as_float=True)
    assert tiled.shape == (101, 83)
    assert np.abs(tiled - expected).max() <= 1e-4
    saved_tiled, saved_whole = to_uint8(tiled), to_uint8(expected)
    assert np.mean(saved_tiled == saved_whole) > 0.999
    assert np.abs(saved_tiled.astype(int) - saved_whole).max() <= 1


def test_tiling_with_swapped_second_layer_follows_the_config(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "swapped", seed=3, swap_second_layer=True)
    ir, vis = random_gray(45, 52, seed=3, count=2)
    expected = whole_image_chain(checkpoint, ir, vis, swap=True)
    unswapped = whole_image_chain(checkpoint, ir, vis, swap=False)
    tiled = Fuser(checkpoint, tile=16).fuse_arrays(ir, vis, as_float=True)
    assert np.abs(tiled - Fuser(checkpoint, tile=0).fuse_arrays(ir, vis, as_float=True)).max() <= 1e-4
    assert np.abs(tiled - expected).max() <= 1e-3
    assert np.abs(tiled - unswapped).max() > 1


def test_large_images_are_tiled_automatically(tiny_checkpoint, monkeypatch):
    assert tiling.auto_tile_side(256) == 512 and tiling.auto_tile_side(32) == 1440
    assert 4 * 256 * 512**2 <= tiling.ACTIVATION_BUDGET < 4 * 256 * 544**2  # the largest that fits
    monkeypatch.setattr(tiling, "ACTIVATION_BUDGET", 4 * 8 * 32 * 32)  # widest tiny layer: 8 channels
    auto = Fuser(tiny_checkpoint)
    assert auto.auto_tile == 32
    assert auto.tile_for(32, 32) == 32 and auto.tile_for(30, 34) == 34 and auto.tile_for(33, 32) == 32
    assert Fuser(tiny_checkpoint, tile=0).tile_for(4000, 4000) == 4000
    ir, vis = random_gray(57, 61, seed=5, count=2)
    assert auto.tile_for(57, 61) == 32
    whole = Fuser(tiny_checkpoint, tile=0).fuse_arrays(ir, vis, as_float=True)
    assert np.abs(auto.fuse_arrays(ir, vis, as_float=True) - whole).max() <= 1e-4


def test_bfloat16_stays_within_40_db_of_float32(tiny_checkpoint, fuser):
    ir, vis = sample_pair("tno_21")
    reference = fuser.fuse_arrays(ir, vis, as_float=True)
    half = Fuser(tiny_checkpoint, precision="bfloat16").fuse_arrays(ir, vis, as_float=True)
    assert half.dtype == np.float32 and not np.array_equal(half, reference)  # bf16 really ran
    psnr = 10 * np.log10(255.0**2 / np.mean((half - reference) ** 2))
    assert psnr >= 40


def test_rgb_visible_gives_rgb_output_with_its_chroma(fuser):
    ir, gray = sample_pair("tno_13")
    rng = np.random.default_rng(7)
    vis = np.clip(gray[..., None] + rng.integers(-40, 41, (1, 1, 3)) + rng.integers(-8, 9, gray.shape + (3,)), 0, 255).astype(np.uint8)
    fused = fuser.fuse_arrays(ir, vis)
    assert fused.shape == vis.shape and fused.dtype == np.uint8

    def ycbcr(rgb):  # BT.601 full range, written out independently of the package
        r, g, b = np.moveaxis(rgb.astype(np.float64), -1, 0)
        return 0.299 * r + 0.587 * g + 0.114 * b, 128 - 0.168736 * r - 0.331264 * g + 0.5 * b, 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    y_in, cb_in, cr_in = ycbcr(vis)
    y_out, cb_out, cr_out = ycbcr(fused)
    inside = (fused > 0).all(-1) & (fused < 255).all(-1)  # chroma survives where no channel clipped
    assert inside.mean() > 0.9
    assert np.abs(cb_out - cb_in)[inside].max() <= 1.5 and np.abs(cr_out - cr_in)[inside].max() <= 1.5
    fused_luma = fuser.fuse_arrays(ir, y_in, as_float=True)
    assert np.abs(y_out - fused_luma)[inside].max() <= 1.0
    assert np.abs(y_out - y_in).mean() > 1  # the luma was fused, not copied
    rgba = np.concatenate([vis, np.full(gray.shape + (1,), 17, np.uint8)], axis=-1)
    assert np.array_equal(fuser.fuse_arrays(ir, rgba), fused)


def test_sixteen_bit_and_gray_as_rgb_inputs_match_8_bit_gray(fuser):
    ir, vis = sample_pair("tno_13")
    expected = fuser.fuse_arrays(ir, vis)
    sixteen = fuser.fuse_arrays(ir.astype(np.uint16) * 257, vis.astype(np.uint16) * 257)
    assert np.array_equal(sixteen, expected)
    as_rgb = fuser.fuse_arrays(np.stack([ir] * 3, -1), np.stack([vis] * 3, -1))
    assert as_rgb.shape == vis.shape and np.array_equal(as_rgb, expected)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_fuse_files_reads_every_format_and_writes_same_size(fuser, tmp_path, suffix):
    ir, vis = sample_pair("tno_13")
    ir, vis = ir[:67, :95], vis[:67, :95]
    iio.imwrite(tmp_path / f"ir{suffix}", ir)
    iio.imwrite(tmp_path / f"vis{suffix}", np.stack([vis] * 3, -1))
    out = fuser.fuse_files(tmp_path / f"ir{suffix}", tmp_path / f"vis{suffix}", tmp_path / "out" / "fused.png")
    written = iio.imread(out)
    expected = fuser.fuse_arrays(iio.imread(tmp_path / f"ir{suffix}"), iio.imread(tmp_path / f"vis{suffix}"))
    assert written.shape == (67, 95) and np.array_equal(written, expected)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fused.png"]  # no temporary left


def test_sixteen_bit_file_round_trip(fuser, tmp_path):
    ir, vis = sample_pair("tno_13")
    iio.imwrite(tmp_path / "ir.png", ir.astype(np.uint16) * 257)
    iio.imwrite(tmp_path / "vis.png", vis)
    assert iio.imread(tmp_path / "ir.png").dtype == np.uint16
    out = fuser.fuse_files(tmp_path / "ir.png", tmp_path / "vis.png", tmp_path / "fused.png")
    assert np.array_equal(iio.imread(out), fuser.fuse_arrays(ir, vis))


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, Path, str]]:
    good = np.full((30, 30), 90, np.uint8)
    iio.imwrite(folder / "good.png", good)
    iio.imwrite(folder / "other_size.png", np.zeros((30, 31), np.uint8))
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    (folder / "empty.png").write_bytes(b"")
    iio.imwrite(folder / "nan.tif", np.where(np.eye(30, dtype=bool), np.nan, 50.0).astype(np.float32))
    iio.imwrite(folder / "tiny.png", np.zeros((4, 30), np.uint8))
    iio.imwrite(folder / "tiny_vis.png", np.zeros((4, 30), np.uint8))
    return {
        "size mismatch": (folder / "good.png", folder / "other_size.png", "differ in size"),
        "unreadable": (folder / "corrupt.png", folder / "good.png", "cannot be read"),
        "empty": (folder / "good.png", folder / "empty.png", "empty"),
        "nan": (folder / "nan.tif", folder / "good.png", "NaN"),
        "missing": (folder / "good.png", folder / "absent.png", "no such file"),
        "too small": (folder / "tiny.png", folder / "tiny_vis.png", "too small"),
    }


@pytest.mark.parametrize("case", ["size mismatch", "unreadable", "empty", "nan", "missing", "too small"])
def test_bad_inputs_name_the_file_and_leave_no_output(fuser, tmp_path, case):
    ir, vis, problem = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "fused.png"
    with pytest.raises(ImageError) as error:
        fuser.fuse_files(ir, vis, out)
    message = str(error.value)
    assert problem in message
    bad = vis if case in ("empty", "missing") else ir
    assert str(bad) in message
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_folders_pair_by_name_and_list_unmatched(fuser, tmp_path):
    ir_dir, vis_dir, out_dir = tmp_path / "ir", tmp_path / "vis", tmp_path / "fused"
    ir_dir.mkdir(), vis_dir.mkdir()
    for index, name in enumerate(["a", "b", "only_ir"]):
        iio.imwrite(ir_dir / f"{name}.png", random_gray(20 + index, 24, seed=index, count=2)[0])
    for index, name in enumerate(["a", "b", "only_vis"]):
        iio.imwrite(vis_dir / f"{name}.bmp", random_gray(20 + index, 24, seed=index, count=2)[1])
    with pytest.raises(ImageError) as error:
        fuser.fuse_folders(ir_dir, vis_dir, out_dir)
    assert "only_ir" in str(error.value) and "only_vis" in str(error.value)
    assert not out_dir.exists()
    written = fuser.fuse_folders(ir_dir, vis_dir, out_dir, skip_unmatched=True)
    assert [p.name for p in written] == ["a.png", "b.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.png", "b.png"]
    assert iio.imread(out_dir / "b.png").shape == (21, 24)


def test_missing_checkpoint_and_bad_options_are_named(tmp_path, tiny_checkpoint):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        Fuser(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="precision"):
        Fuser(tiny_checkpoint, precision="float16")
    with pytest.raises(ValueError, match="tile"):
        Fuser(tiny_checkpoint, tile=3)


def test_cli_fuse_files_folders_and_errors(tiny_checkpoint, tmp_path, capsys):
    from tf_twogan.cli import main

    ir, vis = sample_pair("tno_13")
    iio.imwrite(tmp_path / "ir.png", ir[:50, :60])
    iio.imwrite(tmp_path / "vis.png", vis[:50, :60])
    out = tmp_path / "fused.png"
    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.png"), "--out", str(out),
                 "--checkpoint", str(tiny_checkpoint), "--tile", "16"]) == 0
    expected = Fuser(tiny_checkpoint).fuse_arrays(ir[:50, :60], vis[:50, :60])
    assert np.array_equal(iio.imread(out), expected)

    ir_dir, vis_dir = tmp_path / "irs", tmp_path / "viss"
    ir_dir.mkdir(), vis_dir.mkdir()
    for name in ("x", "y"):
        iio.imwrite(ir_dir / f"{name}.png", ir[:30, :30])
    iio.imwrite(vis_dir / "x.png", vis[:30, :30])
    argv = ["fuse", "--ir", str(ir_dir), "--vis", str(vis_dir), "--out", str(tmp_path / "folder_out"),
            "--checkpoint", str(tiny_checkpoint)]
    capsys.readouterr()
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "only in" in error and "y" in error
    assert main(argv + ["--skip-unmatched", "--precision", "bfloat16"]) == 0
    assert sorted(p.name for p in (tmp_path / "folder_out").iterdir()) == ["x.png"]

    (tmp_path / "one").mkdir()
    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.png"), "--out", str(tmp_path / "one"),
                 "--checkpoint", str(tiny_checkpoint), "--quiet"]) == 0
    assert np.array_equal(iio.imread(tmp_path / "one" / "ir.png"), expected)  # a folder --out gets <ir name>.png
    before = iio.imread(tmp_path / "ir.png")
    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.png"), "--out", str(tmp_path),
                 "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "is an input image" in capsys.readouterr().err
    assert np.array_equal(iio.imread(tmp_path / "ir.png"), before)
    assert main(argv[:6] + [str(ir_dir)] + argv[7:] + ["--skip-unmatched"]) == 2
    assert "is an input folder" in capsys.readouterr().err

    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "missing.png"),
                 "--out", str(tmp_path / "never.png"), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "missing.png" in capsys.readouterr().err and not (tmp_path / "never.png").exists()


def test_demo_fuses_the_samples_prints_the_metrics_and_draws_a_figure(tiny_checkpoint, tmp_path, capsys):
    from tf_twogan.cli import main
    from tf_twogan.demo import sample_pairs
    from tf_twogan.metrics import DEFAULT_METRICS, evaluate

    samples = sample_pairs()
    assert 2 <= len(samples) <= 3
    assert sum(p.stat().st_size for _, a, b in samples for p in (a, b)) <= 2 * 2**20
    assert main(["demo", "--out", str(tmp_path / "demo"), "--checkpoint", str(tiny_checkpoint)]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| image"))
    assert [cell.strip() for cell in header.strip("|").split("|")][1:] == list(DEFAULT_METRICS)
    fuser = Fuser(tiny_checkpoint)
    for name, ir_path, vis_path in samples:
        ir, vis = iio.imread(ir_path), iio.imread(vis_path)
        fused = iio.imread(tmp_path / "demo" / "fused" / f"{name}.png")
        assert np.array_equal(fused, fuser.fuse_arrays(ir, vis))
        row = next(line for line in printed.splitlines() if line.startswith(f"| {name} |"))
        values = [float(cell) for cell in row.strip("|").split("|")[1:]]
        assert values == pytest.approx(list(evaluate(ir, vis, fused).values()), abs=1e-4)
    figure = iio.imread(tmp_path / "demo" / "demo.png")
    assert figure.ndim == 3 and figure.shape[0] > 500 and figure.shape[1] > 500
    assert (tmp_path / "demo" / "metrics.md").read_text().count("\n") == len(samples) + 3


def test_default_checkpoint_is_the_shipped_one():
    assert checkpoint_dir().name == "sharp"
    assert TwoGanConfig.from_json(checkpoint_dir() / "config.json") == preset("sharp")  # the model card's preset
    assert TwoGanConfig.from_json(checkpoint_dir("lite") / "config.json") == preset("lite")
    ir, vis = sample_pair("tno_13")
    fused = Fuser().fuse_arrays(ir, vis)
    assert fused.shape == ir.shape and fused.dtype == np.uint8
