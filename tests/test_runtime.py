"""Exported ONNX / OpenVINO / LiteRT chains and fusing with them without TensorFlow (issue 23).

One file per format is exported once per session through ``twogan export`` from the
shipped ``sharp`` checkpoint; the runtimes' results are checked against the TensorFlow
:class:`~tf_twogan.inference.Fuser` on real pairs (TNO gray, RoadScene colour), the
"no TensorFlow" promise in a real subprocess, and user errors as one-line messages.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx  # in the test extra (setup.cfg): a missing runtime must fail, not skip
import pytest

from helpers import DATA, MINI_PAIRS, REPO, TNO
from test_reliability import assert_one_line_error, files_under, run_cli
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.images import read_gray_uint8, read_image, write_image
from tf_twogan.runtime import METADATA_KEY, ChainMetadata, RuntimeFuser, tflite_metadata
from tf_twogan.tiling import plan_halo_tiles

SHARP = checkpoint_dir("sharp")
pytestmark = pytest.mark.needs_data("tno", "roadscene")  # a TNO pair, a RoadScene colour crop, int8 calibration on TNO

SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}
RUNTIME_MODULES = {"onnx": "onnxruntime", "openvino": "openvino", "litert": "ai_edge_litert"}


class Exported(dict):
    """Format -> the sharp chain in that format, written by ``twogan export --format`` (in this process)
    on first use: a test worker exports only the formats its tests need, each once."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def __missing__(self, format: str) -> Path:
        from tf_twogan.cli import main

        path = self.folder / f"sharp{SUFFIXES[format]}"
        assert main(["export", "--checkpoint", str(SHARP), "--format", format, "--out", str(path)]) == 0
        self[format] = path
        return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Exported:
    return Exported(tmp_path_factory.mktemp("exported"))


@pytest.fixture(scope="module")
def tf_fuser():
    from tf_twogan.inference import Fuser

    return Fuser(SHARP, tile=0)


def colour_pair(folder: Path) -> tuple[Path, Path]:
    """An odd-sized (45 x 67) crop of a real RoadScene pair, visible in colour."""
    ir = read_image(DATA / "roadscene" / "ir" / "FLIR_00006.jpg")
    vis = read_image(DATA / "roadscene" / "vis" / "FLIR_00006.jpg")
    ir = ir[..., 0] if ir.ndim == 3 else ir
    assert vis.ndim == 3 and not np.array_equal(vis[..., 0], vis[..., 1])
    window = np.s_[60:105, 80:147]
    return write_image(folder / "ir.png", ir[window]), write_image(folder / "vis.png", vis[window])


def max_difference(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("format", SUFFIXES)
def test_exported_chain_fuses_a_tno_pair_like_tensorflow(format, exported, tf_fuser, tmp_path):
    ir, vis = TNO / "ir" / "16.bmp", TNO / "vis" / "16.bmp"  # 256 x 256
    fused = RuntimeFuser(exported[format]).fuse_files(ir, vis, tmp_path / "runtime.png")
    expected = tf_fuser.fuse_files(ir, vis, tmp_path / "tf.png")
    assert max_difference(read_image(fused), read_image(expected)) <= 1


@pytest.mark.parametrize("format", SUFFIXES)
def test_exported_chain_tiles_an_odd_colour_pair_exactly(format, exported, tf_fuser, tmp_path):
    ir, vis = colour_pair(tmp_path)
    fuser = RuntimeFuser(exported[format], tile=16)
    assert fuser.tile_for(45, 67) == 16  # 3 x 5 tiles, edge tiles of 13 and 3 pixels
    fused = read_image(fuser.fuse_files(ir, vis, tmp_path / "runtime.png"))
    expected = read_image(tf_fuser.fuse_files(ir, vis, tmp_path / "tf.png"))  # whole image, untiled
    assert fused.shape == expected.shape == (45, 67, 3)
    assert max_difference(fused, expected) <= 1
    luma = fuser.fuse_arrays(read_image(ir), read_image(vis), as_float=True)
    whole = RuntimeFuser(exported[format], tile=0).fuse_arrays(read_image(ir), read_image(vis), as_float=True)
    np.testing.assert_allclose(luma, whole, atol=1e-3)  # tiles equal the whole image up to float rounding


def test_halo_tiles_cover_each_pixel_once_within_the_image():
    counts = np.zeros((45, 67), int)
    for plan in plan_halo_tiles(45, 67, 16, 8):
        counts[plan.rows, plan.cols] += 1
        for output, given, crop, size in ((plan.rows, plan.input_rows, plan.crop_rows, 45),
                                          (plan.cols, plan.input_cols, plan.crop_cols, 67)):
            assert 0 <= given.start and given.stop <= size
            assert given.start + crop.start == output.start and given.start + crop.stop == output.stop
            assert given.start in (0, output.start - 8) and given.stop in (size, output.stop + 8)
    assert (counts == 1).all()


def output_names(format: str, path: Path) -> list[str]:
    """The model's output names as each format's own reader finds them."""
    if format == "onnx":
        return [output.name for output in onnx.load(str(path)).graph.output]
    if format == "openvino":
        import openvino

        return [output.get_any_name() for output in openvino.Core().read_model(str(path)).outputs]
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(str(path)).get_signature_list()["serving_default"]["outputs"]


def stored_metadata(format: str, path: Path) -> dict:
    """The metadata JSON as each format's own reader finds it (not through RuntimeFuser)."""
    if format == "onnx":
        return json.loads({entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}[METADATA_KEY])
    if format == "openvino":
        import openvino

        return json.loads(openvino.Core().read_model(str(path)).get_rt_info([METADATA_KEY]).astype(str))
    return json.loads(tflite_metadata(path.read_bytes())[METADATA_KEY])


@pytest.mark.parametrize("format", SUFFIXES)
def test_exported_file_carries_its_metadata(format, exported):
    metadata = stored_metadata(format, exported[format])
    # sharp: four 3x3 convs per generator, so each reflect-pads by 4 pixels (margin 4)
    assert metadata["checkpoint"] == str(SHARP.resolve()) and metadata["preset"] == "sharp"
    assert (metadata["first_margin"], metadata["second_margin"], metadata["halo"], metadata["min_size"]) == (4, 4, 8, 5)
    assert metadata["inputs"] == ["ir", "vis"] and metadata["output"] == "fused"
    assert output_names(format, exported[format]) == ["fused"]
    assert (metadata["layout"], metadata["channels"], metadata["dtype"], metadata["value_range"]) == ("NHWC", 1, "float32", [0, 255])
    written = {exported[format], exported[format].with_suffix(".bin")} if format == "openvino" else {exported[format]}
    assert written <= files_under(exported[format].parent)
    assert all(path.name.startswith("sharp.") for path in files_under(exported[format].parent))  # no temporary left


CLI_WITHOUT_TENSORFLOW = """
import json, sys
from tf_twogan.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "imported": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
"""


def run_python(code: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("format", SUFFIXES)
def test_cli_fuse_model_imports_no_tensorflow(format, exported, tmp_path):
    ir, vis = colour_pair(tmp_path)
    out = tmp_path / "fused.png"
    done = run_python(CLI_WITHOUT_TENSORFLOW, "fuse", "--model", str(exported[format]), "--ir", str(ir), "--vis", str(vis),
                      "--out", str(out), "--tile", "16", "--quiet")
    assert done.returncode == 0 and done.stdout, done.stderr  # a crash shows its own message, not an IndexError
    assert json.loads(done.stdout.splitlines()[-1]) == {"code": 0, "imported": []}, done.stderr
    assert done.stderr == ""
    np.testing.assert_array_equal(read_image(out), RuntimeFuser(exported[format], tile=16).fuse_arrays(read_image(ir), read_image(vis)))


MISSING_RUNTIME = """
import sys
sys.modules[sys.argv[1]] = None  # the runtime is not installed
from tf_twogan.cli import run
sys.argv = ["twogan", *sys.argv[2:]]
run()
"""


@pytest.mark.parametrize("format", SUFFIXES)
def test_missing_runtime_is_a_one_line_error_naming_the_extra(format, exported, tmp_path):
    ir, vis = colour_pair(tmp_path)
    done = run_python(MISSING_RUNTIME, RUNTIME_MODULES[format], "fuse", "--model", str(exported[format]),
                      "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "fused.png"))
    assert_one_line_error(done.returncode, done.stderr, "fuse", str(exported[format]),
                          RUNTIME_MODULES[format], f'pip install "tf_twogan[{format}]"')
    assert not (tmp_path / "fused.png").exists()


def foreign_onnx(path: Path) -> Path:
    """A valid ONNX model that is not a chain written by twogan export (no metadata)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["ir", "vis"], ["fused"])], "add",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4, 4, 1]) for name in ("ir", "vis")],
                              [helper.make_tensor_value_info("fused", TensorProto.FLOAT, [1, 4, 4, 1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("kind, words", [
    ("missing.onnx", "no such model file"),
    ("text.onnx", "cannot be loaded as a model by onnxruntime"),
    ("text.xml", "cannot be loaded as a model by openvino"),
    ("text.tflite", "cannot be loaded as a model by ai_edge_litert"),
    ("model.pb", "suffix must be .onnx"),
    ("foreign.onnx", "has no tf_twogan metadata"),
])
def test_bad_model_file_is_a_one_line_error(kind, words, tmp_path, capsys):
    model = tmp_path / kind
    if kind.startswith("text"):
        model.write_text("not a model\n")
    elif kind == "model.pb":
        model.write_bytes(b"\x08\x01")
    elif kind == "foreign.onnx":
        foreign_onnx(model)
    ir, vis = TNO / "ir" / "16.bmp", TNO / "vis" / "16.bmp"
    code, err = run_cli(["fuse", "--model", str(model), "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "f.png")], capsys)
    assert_one_line_error(code, err, "fuse", str(model), words)
    assert not (tmp_path / "f.png").exists()


def test_fuse_model_refuses_a_checkpoint_and_bfloat16_outside_openvino(exported, tmp_path, capsys):
    ir, vis = TNO / "ir" / "16.bmp", TNO / "vis" / "16.bmp"
    argv = ["fuse", "--model", str(exported["onnx"]), "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "f.png")]
    assert_one_line_error(*run_cli([*argv, "--checkpoint", str(SHARP)], capsys), "fuse", "--model and --checkpoint")
    assert_one_line_error(*run_cli([*argv, "--precision", "bfloat16"], capsys), "fuse", "run at float32")


@pytest.mark.parametrize("name, format, words", [
    ("chain.onnx", "litert", "must end in .tflite"),
    ("chain.xml", "onnx", "must end in .onnx"),
    ("taken.onnx", "onnx", "already exists"),
    ("taken.xml", "openvino", "taken.bin: already exists"),
])
def test_export_refuses_a_bad_target_before_loading(name, format, words, tmp_path, capsys):
    (tmp_path / "taken.onnx").write_text("user file")
    (tmp_path / "taken.bin").write_text("user file")
    before = {path: path.read_text() for path in files_under(tmp_path)}
    code, err = run_cli(["export", "--format", format, "--out", str(tmp_path / name)], capsys)
    assert_one_line_error(code, err, "export", words)
    assert {path: path.read_text() for path in files_under(tmp_path)} == before


@pytest.mark.parametrize("format, module", [("onnx", "tf2onnx"), ("openvino", "openvino"), ("litert", "ai_edge_litert")])
def test_export_without_its_converter_names_the_extra(format, module, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # the library is not installed
    code, err = run_cli(["export", "--format", format, "--out", str(tmp_path / f"chain{SUFFIXES[format]}")], capsys)
    assert_one_line_error(code, err, "export", module, f'pip install "tf_twogan[{format}]"')
    assert files_under(tmp_path) == set()


def test_video_through_an_exported_model_equals_its_frames_without_tensorflow(exported, tmp_path):
    from test_video import FRAMES, decoded, expected_frames, make_pair

    ir, vis = make_pair(tmp_path / "in", "colour", suffix=".mkv")
    out = tmp_path / "fused.mkv"
    done = run_python(CLI_WITHOUT_TENSORFLOW, "fuse", "--model", str(exported["onnx"]), "--ir", str(ir), "--vis", str(vis),
                      "--out", str(out), "--codec", "ffv1", "--quiet")
    assert json.loads(done.stdout.splitlines()[-1]) == {"code": 0, "imported": []}, done.stderr
    frames = decoded(out)
    assert len(frames) == FRAMES
    for index, (got, want) in enumerate(zip(frames, expected_frames(RuntimeFuser(exported["onnx"]), ir, vis), strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"frame {index}")


def crop_pairs(folder: Path, names: list[str], window) -> Path:
    """``folder/ir``, ``folder/vis`` holding a crop of each named TNO pair (a small calibration or test set)."""
    for name in names:
        for kind in ("ir", "vis"):
            write_image(folder / kind / f"{name}.png", read_gray_uint8(TNO / kind / f"{name}.bmp")[window])
    return folder


def test_int8_chain_quantizes_all_but_the_first_convolutions_and_fuses_near_float32(exported, tmp_path):
    from tf_twogan.quantize import calibration_pairs, quantize_onnx

    calibration = crop_pairs(tmp_path / "calibration", MINI_PAIRS, np.s_[::4, ::4])  # training pairs only
    pairs, note = calibration_pairs(calibration)
    assert note == f"2 pairs of {calibration.resolve()}"
    metadata = ChainMetadata.from_json(json.dumps(stored_metadata("onnx", exported["onnx"])), "float32 chain")
    int8 = quantize_onnx(exported["onnx"], tmp_path / "int8.onnx", pairs,
                         replace(metadata, precision="int8", calibration=note).to_json())
    stored = stored_metadata("onnx", int8)
    assert (stored["precision"], stored["calibration"], stored["halo"]) == ("int8", note, 8)
    weights = [tensor for tensor in onnx.load(str(int8)).graph.initializer if len(tensor.dims) == 4]
    int8_weights = [tuple(tensor.dims) for tensor in weights if tensor.data_type == onnx.TensorProto.INT8]
    # sharp: per generator 2->32 (kept float32), 32->32, 32->16, 16->16 3x3 convs and a 16->1 1x1 output conv
    assert sorted(int8_weights) == sorted([(32, 32, 3, 3), (16, 32, 3, 3), (16, 16, 3, 3), (1, 16, 1, 1)] * 3)
    assert sum(tensor.dims[1] == 2 and tensor.data_type == onnx.TensorProto.FLOAT for tensor in weights) == 3
    ir, vis = (read_image(TNO / kind / "21.bmp")[200:264, 300:364] for kind in ("ir", "vis"))  # a test pair
    fused = RuntimeFuser(int8).fuse_arrays(ir, vis, as_float=True)
    reference = RuntimeFuser(exported["onnx"]).fuse_arrays(ir, vis, as_float=True)
    psnr = 10 * np.log10(255 ** 2 / np.mean((fused.astype(np.float64) - reference) ** 2))
    assert 35 <= psnr < 80  # close to float32, yet really computed at int8


@pytest.mark.parametrize("argv, words", [
    (["--format", "openvino", "--precision", "int8", "--out", "chain.xml"], "int8 export is for ONNX"),
    (["--format", "onnx", "--calibration", "calibration", "--out", "chain.onnx"], "for --precision int8 only"),
    (["--format", "onnx", "--precision", "int8", "--calibration", "calibration", "--out", "chain.onnx"], "calibration"),
])
def test_int8_export_refuses_a_bad_request_before_loading(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calibration" / "ir").mkdir(parents=True)  # no vis folder, no pairs
    code, err = run_cli(["export", *argv], capsys)
    assert_one_line_error(code, err, "export", words)
    assert files_under(tmp_path) == set()


def test_an_onnx_export_with_a_unit_leading_output_axis_is_written_with_the_chains_shape(exported, tmp_path):
    """tf2onnx, in some processes, leaves out the final Squeeze: ``[1, N, H, W, 1]`` with the right values (seen in CI).
    Written through the export's ONNX writer, such a graph fuses exactly as the normal export."""
    import onnx

    from tf_twogan.export import _write_onnx
    from tf_twogan.runtime import METADATA_KEY

    model = onnx.load(str(exported["onnx"]))
    normal = "raw:0"  # as tf2onnx names it, before the export renames it fused
    for node in model.graph.node:
        node.output[:] = [normal if name == "fused" else name for name in node.output]
    axes = onnx.numpy_helper.from_array(np.array([0], np.int64), name="unsqueeze_axes")
    model.graph.initializer.append(axes)
    model.graph.node.append(onnx.helper.make_node("Unsqueeze", [normal, axes.name], ["Identity:0"]))
    model.graph.output[0].name = "Identity:0"
    model.graph.output[0].type.tensor_type.shape.dim.insert(0, onnx.TensorShapeProto.Dimension(dim_value=1))
    metadata = next(entry.value for entry in model.metadata_props if entry.key == METADATA_KEY)
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "keras.onnx"))
    _write_onnx(tmp_path / "keras.onnx", tmp_path / "written.onnx", metadata)
    ir, vis = colour_pair(tmp_path)
    expected = RuntimeFuser(exported["onnx"]).fuse_arrays(read_image(ir), read_image(vis), as_float=True)
    np.testing.assert_array_equal(RuntimeFuser(tmp_path / "written.onnx").fuse_arrays(read_image(ir), read_image(vis), as_float=True), expected)
    assert output_names("onnx", tmp_path / "written.onnx") == ["fused"]
