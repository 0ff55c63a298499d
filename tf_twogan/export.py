"""Export of the whole fusion chain: a SavedModel for TF Serving, or an ONNX, OpenVINO IR or LiteRT
file for :mod:`tf_twogan.runtime` (docs/DESIGN.md section 6, docs/INFERENCE.md "Deploy").

:func:`export_model` writes any of the four formats.  ONNX, OpenVINO and LiteRT files
carry the chain of :func:`tf_twogan.chain.build_chain_model` at float32, written by
Keras' own ``model.export``, with a :class:`~tf_twogan.runtime.ChainMetadata` inside
the file (ONNX ``metadata_props``, OpenVINO ``rt_info``, a ``.tflite`` ``metadata``
entry, each under the key ``tf_twogan``); the output is named ``fused`` in each.  Each
file is renamed into place complete (OpenVINO: the ``.bin`` first, then the ``.xml``).

The SavedModel holds G1, G2 and G3 and one function per signature:

``serving_default``
    inputs ``ir``, ``vis``: float32 ``[batch, H, W, 1]`` on 0..255 (dynamic batch, H, W;
    H, W >= 5); output ``fused``: float32 ``[batch, H, W, 1]`` on 0..255.
``serving_uint8``
    the same with uint8 inputs and output (rounded half up, clipped).
``serving_images``
    inputs ``ir_bytes``, ``vis_bytes``: string ``[batch]`` of encoded images (PNG, JPEG,
    BMP, GIF; a colour visible image keeps its colour, as in :mod:`tf_twogan.colour`);
    output ``fused_bytes``: string ``[batch]`` of PNG images.  Over TF Serving's REST
    API the bytes travel as ``{"b64": ...}`` (the ``_bytes`` suffix asks for that).

Every signature checks what it is given (one channel, equal sizes, at least 5 pixels a
side, float values finite and on 0..255) and fails with an ``InvalidArgumentError``
naming the input: a signature's declared shape is not enforced when it is called.

It is written into a numbered version folder (``<model>/<version>/``, the layout TF
Serving watches) atomically: saved into a hidden temporary folder beside it, then
renamed, so a server polling ``<model>/`` never loads a half-written version.

Example:
    >>> export_savedmodel(None, "export/twogan/1")      # the shipped checkpoint
    $ docker run -p 8501:8501 -v $PWD/export/twogan:/models/twogan -e MODEL_NAME=twogan tensorflow/serving
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write, temporary_suffix
from .images import OutputError
from .locking import remove_stray_temporaries, temporary_prefix
from .errors import TwoGanError
from .runtime import EXPORT_PRECISIONS, FORMATS as FILE_FORMATS, METADATA_KEY, OUTPUT_NAME, ChainMetadata, install_hint

SIGNATURES = ("serving_default", "serving_uint8", "serving_images")
FORMATS = ("savedmodel", *FILE_FORMATS)
"""What :func:`export_model` writes."""
EXPORTERS = {"onnx": (("tf2onnx", "onnx"), "onnx"), "openvino": (("openvino",), "openvino"),
             "litert": (("ai_edge_litert",), "litert")}
"""Format -> (the modules its export needs beyond TensorFlow, the install extra that brings them)."""
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class ExportError(TwoGanError, ValueError):
    """The export target cannot be used; the message says why."""


def _fusion_module(checkpoint: str | os.PathLike | None):
    import tensorflow as tf

    from .chain import build_chain_model
    from .colour import CB_TO_B, CB_TO_G, CR_TO_G, CR_TO_R, RGB_TO_CBCR
    from .images import BT601_LUMA
    from .inference import load_chain

    g1, g2, g3, swap = load_chain(checkpoint)
    min_size = max(g1.margin, g3.margin) + 1
    pair_spec = [tf.TensorSpec([None, None, None, 1], tf.float32, name="ir"),
                 tf.TensorSpec([None, None, None, 1], tf.float32, name="vis")]
    bytes_spec = [tf.TensorSpec([None], tf.string, name="ir_bytes"), tf.TensorSpec([None], tf.string, name="vis_bytes")]

    def check_pair(ir, vis):
        """``(ir, vis)`` once checked: what the chain cannot fuse is refused (a signature's declared shape
        is not enforced when called).  The checks are control dependencies of the returned tensors, so
        they run before any op of the chain (which would otherwise fail first with its own message)."""
        checks = []
        for name, image in (("ir", ir), ("vis", vis)):
            checks.append(tf.debugging.assert_rank(image, 4, message=f"{name} must be [batch, H, W, 1]"))
            checks.append(tf.debugging.assert_equal(tf.shape(image)[-1], 1, message=f"{name} must have 1 channel ([batch, H, W, 1]); "
                                                    "fuse colour through the serving_images signature"))
            checks.append(tf.debugging.assert_greater_equal(tf.reduce_min(tf.shape(image)[1:3]), min_size,
                                                            message=f"{name}: height and width must be at least {min_size} pixels"))
            if image.dtype.is_floating:
                checks.append(tf.debugging.assert_all_finite(image, message=f"{name} contains NaN or infinite values"))
                checks.append(tf.debugging.assert_greater_equal(tf.reduce_min(image), 0.0,
                                                                message=f"{name} has values below 0 (expected 0..255)"))
                checks.append(tf.debugging.assert_less_equal(tf.reduce_max(image), 255.0,
                                                             message=f"{name} has values above 255 (expected 0..255)"))
        checks.append(tf.debugging.assert_equal(tf.shape(ir)[:3], tf.shape(vis)[:3],
                                                message="ir and vis differ in batch size, height or width"))
        with tf.control_dependencies([check for check in checks if check is not None]):
            return tf.identity(ir), tf.identity(vis)

    def to_uint8(image):
        return tf.cast(tf.clip_by_value(tf.floor(image + 0.5), 0.0, 255.0), tf.uint8)

    def split_luma(image):
        """uint8 [H, W, C] -> (luma, cb, cr, is_colour) as tf_twogan.colour.split_luma (gray as RGB stays gray)."""
        rgb = tf.cast(tf.cond(tf.shape(image)[-1] < 3, lambda: tf.repeat(image[..., :1], 3, axis=-1),
                              lambda: image[..., :3]), tf.float32)
        colour = tf.logical_not(tf.reduce_all(tf.equal(rgb[..., :1], rgb)))
        luma = tf.where(colour, tf.tensordot(rgb, tf.constant(BT601_LUMA, tf.float32), 1), rgb[..., 0])
        chroma = tf.tensordot(rgb, tf.constant(RGB_TO_CBCR.T), 1)
        return luma, chroma[..., 0], chroma[..., 1], colour

    class FusionChain(tf.Module):
        """G1([IR, VIS]), G2([VIS, IR]) -> G3, on the 0..255 scale; BatchNorm in inference mode."""

        def __init__(self) -> None:
            super().__init__(name="twogan")
            self.chain = build_chain_model(g1, g2, g3, swap)
            # The underlying tf.Variables, listed on the module itself: without them the
            # TF1-style loader of TF Serving and `saved_model_cli run` finds the variables
            # uninitialised (keras-team/keras#19274; Keras' ExportArchive does the same).
            self.variables_to_restore = [variable.value for variable in self.chain.variables]

        @tf.function(input_signature=pair_spec)
        def fuse(self, ir, vis):
            ir, vis = check_pair(ir, vis)
            return {"fused": self.chain([ir, vis], training=False)}

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.uint8, name="ir"),
                                      tf.TensorSpec([None, None, None, 1], tf.uint8, name="vis")])
        def fuse_uint8(self, ir, vis):
            ir, vis = check_pair(ir, vis)
            fused = self.chain([tf.cast(ir, tf.float32), tf.cast(vis, tf.float32)], training=False)
            return {"fused": to_uint8(fused)}

        @tf.function(input_signature=bytes_spec)
        def fuse_images(self, ir_bytes, vis_bytes):
            """Encoded PNG/JPEG/BMP/GIF pairs -> PNG bytes, colour as in tf_twogan.colour."""
            return {"fused_bytes": tf.map_fn(lambda pair: self.fuse_encoded(*pair), (ir_bytes, vis_bytes),
                                             fn_output_signature=tf.string)}

        def fuse_encoded(self, ir_bytes, vis_bytes):
            (ir, _, _, _), (vis, cb, cr, colour) = (split_luma(tf.io.decode_image(
                encoded, expand_animations=False, dtype=tf.uint8)) for encoded in (ir_bytes, vis_bytes))
            tf.debugging.assert_equal(tf.shape(ir), tf.shape(vis), message="ir and vis images differ in size")
            luma = self.fuse(ir[None, ..., None], vis[None, ..., None])["fused"][0, ..., 0]
            return tf.cond(colour,
                           lambda: tf.io.encode_png(to_uint8(tf.stack(
                               [luma + CR_TO_R * cr, luma + CB_TO_G * cb + CR_TO_G * cr, luma + CB_TO_B * cb], -1))),
                           lambda: tf.io.encode_png(to_uint8(luma)[..., None]))

    return FusionChain()


def export_savedmodel(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write the SavedModel of ``checkpoint`` (default: the shipped one) to ``out_dir``.

    ``out_dir`` must end in a numeric version folder that does not exist yet, e.g.
    ``export/twogan/1``.  Returns ``out_dir``.
    """
    import tensorflow as tf

    out_dir = Path(out_dir)
    if not (out_dir.name.isascii() and out_dir.name.isdigit()):  # TF Serving reads 0-9 only; str.isdigit takes '²'
        raise ExportError(f"{out_dir}: the last folder must be a numeric model version, e.g. {out_dir / '1'} "
                          "(TF Serving loads <model>/<version>/)")
    if out_dir.exists():
        raise ExportError(f"{out_dir}: already exists; choose a new version number")
    module = _fusion_module(checkpoint)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stray_temporaries(out_dir.parent)  # versions a killed export left half-written (hidden from TF Serving, not from the disk)
    temporary = Path(tempfile.mkdtemp(prefix=temporary_prefix(), suffix=f".{out_dir.name}", dir=out_dir.parent))
    try:
        try:
            tf.saved_model.save(module, str(temporary), signatures={
                "serving_default": module.fuse.get_concrete_function(),
                "serving_uint8": module.fuse_uint8.get_concrete_function(),
                "serving_images": module.fuse_images.get_concrete_function(),
            })
        except (tf.errors.ResourceExhaustedError, OSError) as error:
            if "No space left" not in str(error) and getattr(error, "errno", None) != errno.ENOSPC:
                raise
            raise OutputError(f"{out_dir}: cannot be written: No space left on device (nothing written)") from None
        os.chmod(temporary, 0o755)  # mkdtemp's 0700 would hide the model from a server running as another user
        os.rename(temporary, out_dir)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return out_dir


def rest_request_body(ir: np.ndarray, vis: np.ndarray, form: str = "inputs",
                      signature_name: str = "serving_default") -> dict[str, Any]:
    """A TF Serving REST ``:predict`` body for a batch of pairs (JSON-ready lists).

    ``ir``/``vis``: ``[batch, H, W, 1]`` (or ``[H, W]`` for one pair) on 0..255.
    ``form="inputs"`` is the columnar form ``{"inputs": {"ir": ..., "vis": ...}}``
    (response ``{"outputs": ...}``); ``"instances"`` the row form
    ``{"instances": [{"ir": ..., "vis": ...}, ...]}`` (response ``{"predictions": [...]}``).
    """
    ir, vis = (np.asarray(x, np.float32) for x in (ir, vis))
    if ir.ndim == 2:
        ir, vis = ir[None, ..., None], vis[None, ..., None]
    if ir.shape != vis.shape or ir.ndim != 4 or ir.shape[-1] != 1:
        raise ExportError(f"ir and vis must both be [batch, H, W, 1], got {ir.shape} and {vis.shape}")
    if form == "inputs":
        return {"signature_name": signature_name, "inputs": {"ir": ir.tolist(), "vis": vis.tolist()}}
    if form == "instances":
        return {"signature_name": signature_name,
                "instances": [{"ir": a.tolist(), "vis": b.tolist()} for a, b in zip(ir, vis)]}
    raise ExportError(f"form must be 'inputs' or 'instances', got {form!r}")


def export_model(checkpoint: str | os.PathLike | None, out: str | os.PathLike, format: str = "savedmodel",
                 precision: str = "float32", calibration: str | os.PathLike | None = None) -> Path:
    """Export the chain of ``checkpoint`` (default: the shipped one) to ``out``; returns ``out``.

    ``format``: ``savedmodel`` (:func:`export_savedmodel`, ``out`` a new numbered version
    folder), ``onnx`` (``out`` ends in ``.onnx``), ``openvino`` (``.xml``, its weights in
    the ``.bin`` beside it) or ``litert`` (``.tflite``).  An existing ``out`` is refused.
    ``precision="int8"`` (ONNX only) quantizes the chain (:mod:`tf_twogan.quantize`),
    calibrated on the pairs of ``calibration`` (a folder with ``ir/`` and ``vis/``;
    default: TNO training pairs under the data root).

    Example:
        >>> export_model(None, "twogan.onnx", format="onnx")
        >>> RuntimeFuser("twogan.onnx").fuse_files("ir.png", "vis.png", "fused.png")
    """
    if format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if precision not in EXPORT_PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(EXPORT_PRECISIONS)}, got {precision!r}")
    if precision != "float32" and format != "onnx":
        raise ExportError(f"{out}: {precision} export is for ONNX (--format onnx); {format} is written at float32")
    if calibration is not None and precision != "int8":
        raise ExportError("a calibration folder is for --precision int8 only")
    if format == "savedmodel":
        return export_savedmodel(checkpoint, out)
    out = Path(out)
    suffix = FILE_FORMATS[format]
    if out.suffix.lower() != suffix:
        raise ExportError(f"{out}: a {format} model file must end in {suffix}, e.g. {out.with_suffix(suffix).name}")
    for target in (out, out.with_suffix(".bin")) if format == "openvino" else (out,):
        if target.exists() or target.is_symlink():
            raise ExportError(f"{target}: already exists; remove it or choose another name")
    _check_exporter(format, precision)
    if precision == "int8":
        from .quantize import calibration_pairs

        pairs, note = calibration_pairs(calibration)
    model, metadata = _chain_with_metadata(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stray_temporaries(out.parent, out)
    try:
        with tempfile.TemporaryDirectory(prefix=temporary_prefix(), suffix=temporary_suffix(out), dir=out.parent) as scratch:
            exported = Path(scratch) / f"keras{suffix}"
            logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # it logs each conversion step
            with warnings.catch_warnings():  # Keras' tf2onnx patch probes np.object, which numpy 2 warns about
                warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
                model.export(str(exported), format=format, verbose=False)
            if precision == "int8":
                from .quantize import quantize_onnx

                float_model = Path(scratch) / "float32.onnx"
                _write_onnx(exported, float_model, metadata.to_json())
                quantize_onnx(float_model, out, pairs, replace(metadata, precision="int8", calibration=note).to_json())
            else:
                WRITERS[format](exported, out, metadata.to_json())
    except OSError as error:
        if error.errno not in _NO_SPACE:
            raise
        raise OutputError(f"{out}: cannot be written: {os.strerror(error.errno)} (nothing written under this name)") from None
    return out


def _check_exporter(format: str, precision: str = "float32") -> None:
    """Refuse an export whose converter (or quantizer) is not installed, naming the extra that installs it."""
    import importlib

    modules, extra = EXPORTERS[format]
    for module in (*modules, "onnxruntime") if precision == "int8" else modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ExportError(f"exporting to {format} needs {module}, which is not installed: {install_hint(extra)}") from None


def _chain_with_metadata(checkpoint: str | os.PathLike | None):
    """The chain model of ``checkpoint`` (called once: Keras exports only a called model) and its metadata."""
    import json

    from .chain import build_chain_model
    from .checkpoints import checkpoint_dir
    from . import __version__
    from .inference import load_chain

    g1, g2, g3, swap = load_chain(checkpoint)
    folder = Path(checkpoint) if checkpoint is not None else checkpoint_dir()
    config = folder / "config.json"
    model = build_chain_model(g1, g2, g3, swap)
    blank = np.zeros((1, 16, 16, 1), np.float32)
    model([blank, blank])
    metadata = ChainMetadata(
        checkpoint=str(folder.resolve()), preset=json.loads(config.read_text())["preset"] if config.is_file() else None,
        first_margin=g1.margin, second_margin=g3.margin, widest_layer=max(max(g.settings.widths) for g in (g1, g2, g3)),
        swap_second_layer=swap, package_version=__version__)
    return model, metadata


def _write_onnx(exported: Path, out: Path, metadata: str) -> None:
    import onnx

    model = onnx.load(str(exported))
    produced = model.graph.output[0].name  # tf2onnx's "Identity:0"
    if len(model.graph.output[0].type.tensor_type.shape.dim) == 5:
        produced = _squeeze_leading_axis(model, produced)
    for node in model.graph.node:
        for index, name in enumerate(node.output):
            if name == produced:
                node.output[index] = OUTPUT_NAME
    model.graph.output[0].name = OUTPUT_NAME
    write_onnx_model(model, out, metadata)


def write_onnx_model(model, out: Path, metadata: str) -> Path:
    """Save an ONNX ``model`` (an ``onnx.ModelProto``) to ``out`` atomically, ``metadata`` (JSON) under :data:`METADATA_KEY`."""
    import onnx

    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata
    with atomic_write(out) as temporary:
        onnx.save(model, str(temporary))
    return out


def _squeeze_leading_axis(model, produced: str) -> str:
    """Drop the unit leading axis of an output ``[1, N, H, W, 1]``; returns the new output's name.

    Some exports (in some processes only, same inputs; the state that decides it was not
    found) leave tf2onnx's final Squeeze out: the values are right, one axis too many.
    """
    import onnx

    axes = onnx.numpy_helper.from_array(np.array([0], np.int64), name="fused_squeeze_axes")
    model.graph.initializer.append(axes)
    squeezed = f"{produced}_squeezed"
    model.graph.node.append(onnx.helper.make_node("Squeeze", [produced, axes.name], [squeezed], name="fused_squeeze"))
    del model.graph.output[0].type.tensor_type.shape.dim[0]
    return squeezed


def _write_openvino(exported: Path, out: Path, metadata: str) -> None:
    import openvino

    model = openvino.Core().read_model(str(exported))
    model.output(0).get_tensor().set_names({OUTPUT_NAME})
    model.set_rt_info(metadata, [METADATA_KEY])
    staged = exported.with_name("staged.xml")  # not the exported file: its .bin is mapped into memory
    openvino.save_model(model, str(staged), compress_to_fp16=False)  # float32 weights, as exported
    os.replace(staged.with_suffix(".bin"), out.with_suffix(".bin"))
    os.replace(staged, out)


def _write_litert(exported: Path, out: Path, metadata: str) -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(exported.read_bytes()), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata.encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_KEY, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    model.signatureDefs[0].outputs[0].name = OUTPUT_NAME  # Keras names it output_0
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with atomic_write(out) as temporary:
        temporary.write_bytes(builder.Output())


WRITERS = {"onnx": _write_onnx, "openvino": _write_openvino, "litert": _write_litert}
"""Format -> writer of Keras' exported file with the metadata added, into ``out``."""
