"""The SavedModel for TF Serving: signature, equality with in-process fusion, serving paths."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorflow as tf  # a hard dependency (setup.cfg): never skipped

from tf_twogan.export import ExportError, export_savedmodel, rest_request_body  # noqa: E402
from tf_twogan.inference import Fuser  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory) -> Path:
    return export_savedmodel(tiny_checkpoint, tmp_path_factory.mktemp("export") / "twogan" / "1")


@pytest.fixture(scope="module")
def in_process(tiny_checkpoint) -> Fuser:
    return Fuser(tiny_checkpoint, tile=0)


def batch(height: int, width: int, size: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random images (like photographs, unlike white noise) [size, H, W, 1] on 0..255."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    images = [ndimage.gaussian_filter(rng.uniform(0, 255, (height, width)), 2) for _ in range(2 * size)]
    images = [255 * (x - x.min()) / (x.max() - x.min()) for x in images]
    stack = np.stack(images).astype(np.float32)[..., None]
    return stack[:size], stack[size:]


def expected(fuser: Fuser, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
    return np.stack([fuser.fuse_arrays(a[..., 0], b[..., 0], as_float=True) for a, b in zip(ir, vis)])[..., None]


def test_export_layout_and_signature(exported):
    assert exported.name == "1" and (exported / "saved_model.pb").is_file() and (exported / "variables").is_dir()
    assert [p.name for p in exported.parent.iterdir()] == ["1"]  # no temporary folder left beside it
    loaded = tf.saved_model.load(str(exported))
    assert set(loaded.signatures) == {"serving_default", "serving_uint8", "serving_images"}
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {"ir", "vis"}
    for spec in inputs.values():
        assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, None, None, 1]
    assert set(signature.structured_outputs) == {"fused"}


@pytest.mark.parametrize("shape", [(2, 37, 45), (1, 53, 29), (3, 5, 6)])
def test_loaded_model_equals_in_process_fusion(exported, in_process, shape):
    ir, vis = batch(shape[1], shape[2], shape[0], seed=sum(shape))
    loaded = tf.saved_model.load(str(exported))
    fused = loaded.signatures["serving_default"](ir=tf.constant(ir), vis=tf.constant(vis))["fused"].numpy()
    assert fused.shape == ir.shape
    reference = expected(in_process, ir, vis)
    assert np.abs(fused - reference).max() <= 1e-3
    assert fused.std() > 1  # the chain is not a constant
    as_uint8 = loaded.signatures["serving_uint8"](ir=tf.constant(ir.round().astype(np.uint8)),
                                                  vis=tf.constant(vis.round().astype(np.uint8)))["fused"].numpy()
    assert as_uint8.dtype == np.uint8
    rounded = expected(in_process, ir.round(), vis.round())
    assert np.abs(as_uint8.astype(float) - np.clip(np.floor(rounded + 0.5), 0, 255)).max() <= 1


@pytest.mark.parametrize("case, message", [
    ("colour vis", "vis must have 1 channel"), ("2+2 channels", "ir must have 1 channel"),
    ("sizes differ", "differ in batch size, height or width"), ("too small", "at least 5 pixels"),
    ("NaN", "vis contains NaN"), ("above 255", "vis has values above 255"), ("negative", "ir has values below 0")])
def test_signatures_refuse_inputs_they_cannot_fuse(exported, case, message):
    ir, vis = batch(13, 11, 1, seed=5)
    ir, vis = {"colour vis": (ir, np.repeat(vis, 3, axis=-1)), "2+2 channels": (np.repeat(ir, 2, -1), np.repeat(vis, 2, -1)),
               "sizes differ": (ir, vis[:, :12]), "too small": (ir[:, :4], vis[:, :4]),
               "NaN": (ir, np.where(vis > 128, np.nan, vis)), "above 255": (ir, vis + 1),
               "negative": (ir - 1, vis)}[case]
    loaded = tf.saved_model.load(str(exported))
    for name in ("serving_default", "serving_uint8"):
        if name == "serving_uint8" and case in ("NaN", "above 255", "negative"):
            continue  # not expressible in uint8
        cast = (lambda x: x.astype(np.uint8)) if name == "serving_uint8" else (lambda x: x)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures[name](ir=tf.constant(cast(ir)), vis=tf.constant(cast(vis)))


def _encoded(image: np.ndarray, extension: str = ".png") -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=extension)


def test_image_signature_takes_encoded_pairs_and_returns_png(exported, in_process):
    """What TF Serving's REST API sends as {"b64": ...}: encoded files; colour visible kept."""
    import imageio.v3 as iio

    rng = np.random.default_rng(6)
    ir = rng.integers(0, 256, (19, 23), dtype=np.uint8)
    colour, gray = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8), rng.integers(0, 256, (19, 23), dtype=np.uint8)
    signature = tf.saved_model.load(str(exported)).signatures["serving_images"]
    fused = signature(ir_bytes=tf.constant([_encoded(ir)] * 3),
                      vis_bytes=tf.constant([_encoded(colour), _encoded(gray), _encoded(np.stack([gray] * 3, -1))]))
    images = [iio.imread(encoded) for encoded in fused["fused_bytes"].numpy()]
    expected_images = [in_process.fuse_arrays(ir, colour), in_process.fuse_arrays(ir, gray), in_process.fuse_arrays(ir, gray)]
    assert [image.shape for image in images] == [(19, 23, 3), (19, 23), (19, 23)]  # gray stored as RGB stays gray
    for image, reference in zip(images, expected_images):
        assert np.abs(image.astype(int) - reference).max() <= 1
    jpeg = signature(ir_bytes=tf.constant([_encoded(ir)]), vis_bytes=tf.constant([_encoded(colour, ".jpg")]))
    assert iio.imread(jpeg["fused_bytes"].numpy()[0]).shape == (19, 23, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="differ in size"):
        signature(ir_bytes=tf.constant([_encoded(ir)]), vis_bytes=tf.constant([_encoded(gray[:, :20])]))


def _tf_serving_decode(body: dict) -> dict[str, np.ndarray]:
    """What TF Serving's REST API does with a :predict body (row or columnar format)."""
    if "inputs" in body:
        return {name: np.asarray(value, np.float32) for name, value in body["inputs"].items()}
    rows = body["instances"]
    return {name: np.stack([np.asarray(row[name], np.float32) for row in rows]) for name in rows[0]}


@pytest.mark.parametrize("form", ["inputs", "instances"])
def test_tf_serving_rest_bodies_run_through_the_signature(exported, in_process, form):
    ir, vis = batch(21, 17, 2, seed=4)
    body = json.loads(json.dumps(rest_request_body(ir, vis, form=form)))  # exactly what curl would send
    assert body["signature_name"] == "serving_default"
    assert (form in body) and len(body) == 2
    signature = tf.saved_model.load(str(exported)).signatures[body["signature_name"]]
    tensors = _tf_serving_decode(body)
    fused = signature(**{name: tf.constant(value) for name, value in tensors.items()})["fused"].numpy()
    assert fused.shape == (2, 21, 17, 1)
    assert np.abs(fused - expected(in_process, ir, vis)).max() <= 1e-3
    single = rest_request_body(ir[0, ..., 0], vis[0, ..., 0], form=form)
    assert _tf_serving_decode(json.loads(json.dumps(single)))["ir"].shape == (1, 21, 17, 1)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Run a command; the timeout only guards against a hang (120 s ran out under load 9 in a full-suite run)."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, env=environment)


def test_saved_model_cli_show_and_run_with_npy_inputs(exported, in_process, tmp_path):
    cli = str(Path(sys.executable).with_name("saved_model_cli"))
    if not Path(cli).exists():
        cli = "saved_model_cli"
    shown = _cli(cli, "show", "--dir", str(exported), "--tag_set", "serve", "--signature_def", "serving_default")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("shape: (-1, -1, -1, 1)") == 3
    assert "inputs['ir']" in shown.stdout and "inputs['vis']" in shown.stdout and "outputs['fused']" in shown.stdout

    ir, vis = batch(19, 23, 2, seed=9)
    np.save(tmp_path / "ir.npy", ir)
    np.save(tmp_path / "vis.npy", vis)
    ran = _cli(cli, "run", "--dir", str(exported), "--tag_set", "serve", "--signature_def", "serving_default",
               "--inputs", f"ir={tmp_path / 'ir.npy'};vis={tmp_path / 'vis.npy'}", "--outdir", str(tmp_path / "out"))
    assert ran.returncode == 0, ran.stderr[-2000:]
    fused = np.load(tmp_path / "out" / "fused.npy")
    assert np.abs(fused - expected(in_process, ir, vis)).max() <= 1e-3


def test_export_refuses_bad_targets_and_cli_exports(tiny_checkpoint, exported, tmp_path, capsys):
    with pytest.raises(ExportError, match="numeric"):
        export_savedmodel(tiny_checkpoint, tmp_path / "model" / "latest")
    with pytest.raises(ExportError, match="already exists"):
        export_savedmodel(tiny_checkpoint, exported)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        export_savedmodel(tmp_path / "nowhere", tmp_path / "model" / "2")
    assert not (tmp_path / "model").exists() or not any((tmp_path / "model").iterdir())

    from tf_twogan.cli import main

    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "served" / "7")]) == 0
    assert (tmp_path / "served" / "7" / "saved_model.pb").is_file()
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "served" / "7")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_an_export_removes_the_version_folder_a_killed_export_left_and_nothing_else(tiny_checkpoint, tmp_path):
    """A SIGKILL'd export leaves a hidden half-written version folder (TF Serving ignores it, the disk does not):
    the next export in that model folder removes it, and keeps a live writer's, the user's and other versions."""
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    model = tmp_path / "twogan"
    stale = model / f".twogan-tmp.{done.pid}.k1ll3d_x.1"
    kept = [model / f".twogan-tmp.{os.getpid()}.l1vewr1t.3", model / ".backup.tmp", model / "1"]
    for folder in (stale, *kept):
        (folder / "variables").mkdir(parents=True)
        (folder / "variables" / "variables.index").write_bytes(b"partial")
    assert export_savedmodel(tiny_checkpoint, model / "2") == model / "2"
    assert not stale.exists()
    assert all((folder / "variables" / "variables.index").read_bytes() == b"partial" for folder in kept)
    assert sorted(path.name for path in model.iterdir()) == sorted([".backup.tmp", kept[0].name, "1", "2"])
