"""Fusing with an exported chain, without TensorFlow: ONNX Runtime, OpenVINO or LiteRT (issue 23).

``twogan export --format onnx|openvino|litert`` (:func:`tf_twogan.export.export_model`)
writes the chain of :mod:`tf_twogan.chain` at float32 with its :class:`ChainMetadata`
inside the file: ONNX ``metadata_props``, OpenVINO ``rt_info`` of the ``.xml``, a
``metadata`` entry of the ``.tflite`` flatbuffer, each under the key :data:`METADATA_KEY`
as JSON.  :class:`RuntimeFuser` runs such a file through the runtime its suffix names
(``.onnx`` onnxruntime, ``.xml`` OpenVINO, ``.tflite`` ai-edge-litert) and does what
:class:`~tf_twogan.inference.Fuser` does around the network: colour through the luma
(:class:`~tf_twogan.fuser_base.LumaFuser`), files and folders
(:class:`~tf_twogan.fuser_base.BaseFuser`), videos (:func:`tf_twogan.video.fuse_video`
with ``fuser=``), and exact tiling of large images (:func:`tf_twogan.tiling.plan_halo_tiles`
with the halo the metadata gives).  Nothing here imports TensorFlow: a single-pair
``twogan fuse --model`` starts in a fraction of the TensorFlow path's time (README, Deploy).

All three files have dynamic height and width.  LiteRT allocates its tensors for one
shape: its signature runner resizes the input tensors and re-allocates when a call
brings a new shape (a whole image, or one of the at most four tile shapes of a tiled
image), so repeated frames of one size pay it once.

Example:
    >>> fuser = RuntimeFuser("twogan.onnx")
    >>> fuser.fuse_files("ir/1.png", "vis/1.png", "fused/1.png")
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import TwoGanError
from .fuser_base import LumaFuser
from .inference import check_tile
from .tiling import plan_halo_tiles

METADATA_KEY = "tf_twogan"
"""The key under which each exported file holds its :class:`ChainMetadata` (JSON)."""
FORMATS = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}
"""Export format -> file suffix."""
EXTRAS = {"onnx": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino"), "litert": ("ai_edge_litert", "litert")}
"""Format -> (the runtime's module, the install extra that brings it)."""
PRECISIONS = ("float32", "bfloat16")
EXPORT_PRECISIONS = ("float32", "int8")
"""Precision of the chain's weights and activations in the file (int8: ONNX only, :mod:`tf_twogan.quantize`)."""
OUTPUT_NAME = "fused"
"""The exported chain's output (its inputs: ``ir``, ``vis``)."""


class ModelFileError(TwoGanError, ValueError):
    """An exported model file cannot be used (missing, not a model, not a chain, runtime not installed)."""


def install_hint(extra: str) -> str:
    """How to install an optional extra of this package."""
    return f'pip install "tf_twogan[{extra}]"'


def format_of(path: str | os.PathLike) -> str:
    """The export format a file's suffix names; :class:`ModelFileError` for any other suffix."""
    suffix = Path(path).suffix.lower()
    for name, known in FORMATS.items():
        if suffix == known:
            return name
    raise ModelFileError(f"{path}: not an exported model: the suffix must be "
                         f"{', '.join(f'{s} ({n})' for n, s in FORMATS.items())}")


def import_runtime(format: str, path: str | os.PathLike):
    """The runtime module for ``format``, or a :class:`ModelFileError` naming the extra to install."""
    import importlib

    module, extra = EXTRAS[format]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelFileError(f"{path}: needs {module} to run, which is not installed: {install_hint(extra)}") from None


@dataclass(frozen=True)
class ChainMetadata:
    """What an exported chain expects and what exact tiling needs, stored inside the file.

    Inputs ``ir``, ``vis`` and output ``fused``: float32 ``[N, H, W, 1]`` (NHWC, one
    channel) on 0..255.  Each generator reflect-pads by its margin, so a side needs at
    least :attr:`min_size` pixels, and a tile run with :attr:`halo` pixels of context on
    each side equals whole-image inference.  :attr:`precision` is ``int8`` for a chain
    quantized by :mod:`tf_twogan.quantize` (inputs and output stay float32), with
    :attr:`calibration` naming the pairs its activation ranges came from.
    """

    checkpoint: str
    preset: str | None
    first_margin: int
    second_margin: int
    widest_layer: int
    swap_second_layer: bool = False
    inputs: tuple[str, ...] = ("ir", "vis")
    output: str = OUTPUT_NAME
    layout: str = "NHWC"
    channels: int = 1
    dtype: str = "float32"
    value_range: tuple[float, ...] = (0.0, 255.0)
    package_version: str = ""
    format_version: int = 1
    precision: str = "float32"
    calibration: str | None = None

    def __post_init__(self) -> None:
        for name in ("first_margin", "second_margin", "widest_layer"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if tuple(self.inputs) != ("ir", "vis") or self.layout != "NHWC" or self.channels != 1 or self.dtype != "float32":
            raise ValueError(f"inputs {self.inputs}, layout {self.layout}, {self.channels} channel(s), {self.dtype}: "
                             "expected ir, vis NHWC 1-channel float32")
        if self.precision not in EXPORT_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(EXPORT_PRECISIONS)}, got {self.precision!r}")

    @property
    def halo(self) -> int:
        """Context a tile needs on each side for exact tiling: both margins."""
        return self.first_margin + self.second_margin

    @property
    def min_size(self) -> int:
        """Smallest image side the chain's reflect padding allows."""
        return max(self.first_margin, self.second_margin) + 1

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "halo": self.halo, "min_size": self.min_size}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, path: str | os.PathLike) -> "ChainMetadata":
        """Parse the stored JSON; :class:`ModelFileError` naming ``path`` if it is absent or not ours."""
        if text is None:
            raise ModelFileError(f"{path}: has no {METADATA_KEY} metadata: not a chain written by `twogan export` "
                                 "(export one with twogan export --format ...)")
        try:
            fields = json.loads(text)
            for derived in ("halo", "min_size"):
                fields.pop(derived, None)
            if fields.get("format_version") != 1:
                raise ValueError(f"format_version {fields.get('format_version')!r}, expected 1")
            return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()})
        except (ValueError, TypeError) as error:
            raise ModelFileError(f"{path}: unusable {METADATA_KEY} metadata: {error}") from None


# ----------------------------------------------------------------------------- one session per runtime

class _OnnxSession:
    def __init__(self, path: Path, precision: str | None, threads: int) -> None:
        onnxruntime = import_runtime("onnx", path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)

    def __call__(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"ir": ir, "vis": vis})[0]


class _OpenVinoSession:
    """OpenVINO on the CPU; ``precision`` float32 or bfloat16 sets ``INFERENCE_PRECISION_HINT``,
    None keeps OpenVINO's default (bfloat16 on CPUs with AVX512_BF16 or AMX, else float32)."""

    def __init__(self, path: Path, precision: str | None, threads: int) -> None:
        openvino = import_runtime("openvino", path)
        core = openvino.Core()
        model = core.read_model(str(path))
        self.metadata = model.get_rt_info([METADATA_KEY]).astype(str) if model.has_rt_info([METADATA_KEY]) else None
        config = {"INFERENCE_NUM_THREADS": threads}
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = {"float32": "f32", "bfloat16": "bf16"}[precision]
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.names = [port.get_any_name() for port in self.compiled.inputs]

    @property
    def precision(self) -> str:
        """The precision OpenVINO runs at (``f32``, ``bf16``)."""
        return self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def __call__(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        feeds = {"ir": ir, "vis": vis}
        return self.request.infer([feeds[name] for name in self.names])[0].copy()


class _LiteRtSession:
    def __init__(self, path: Path, precision: str | None, threads: int) -> None:
        import_runtime("litert", path)
        from ai_edge_litert.interpreter import Interpreter

        content = path.read_bytes()
        self.metadata = tflite_metadata(content).get(METADATA_KEY)
        self.runner = Interpreter(model_content=content, num_threads=threads).get_signature_runner()
        self.started = False

    def __call__(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        from .console import stderr_captured, verbose_requested

        if self.started or verbose_requested():
            outputs = self.runner(ir=ir, vis=vis)  # resizes and re-allocates when the shape changes
        else:
            with stderr_captured():  # the first call's C++ log line "Created TensorFlow Lite XNNPACK delegate"
                outputs = self.runner(ir=ir, vis=vis)
            self.started = True
        return next(iter(outputs.values()))


SESSIONS = {"onnx": _OnnxSession, "openvino": _OpenVinoSession, "litert": _LiteRtSession}


def tflite_metadata(content: bytes) -> dict[str, str]:
    """The ``metadata`` entries of a ``.tflite`` flatbuffer as text (name -> value); {} for none."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    entries = (model.Metadata(index) for index in range(model.MetadataLength()))
    return {entry.Name().decode(): model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode(errors="replace")
            for entry in entries}


def open_session(path: Path, precision: str | None, threads: int):
    """The runtime session of an exported file; one-line :class:`ModelFileError` if it cannot be loaded."""
    format = format_of(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file" if not path.exists() else f"{path}: is not a file")
    if precision is not None and precision not in PRECISIONS:
        raise ModelFileError(f"precision must be one of {', '.join(PRECISIONS)} or None, got {precision!r}")
    if precision == "bfloat16" and format != "openvino":
        raise ModelFileError(f"{path}: {format} models run at float32; bfloat16 is for OpenVINO (.xml) models")
    import_runtime(format, path)
    try:
        return SESSIONS[format](path, precision, threads)
    except ModelFileError:
        raise
    except Exception as error:  # each runtime has its own exception types for a file it cannot parse
        reason = " ".join(str(error).split())[:200]
        raise ModelFileError(f"{path}: cannot be loaded as a model by {EXTRAS[format][0]} ({reason})") from None


def cpu_threads() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class RuntimeFuser(LumaFuser):
    """Fuse IR/VIS pairs with a chain exported by ``twogan export --format onnx|openvino|litert``.

    Args:
        model: the ``.onnx``, OpenVINO ``.xml`` (its ``.bin`` beside it) or ``.tflite`` file.
        tile: output tile side for exact tiling; ``None`` tiles automatically as
            :class:`~tf_twogan.inference.Fuser` does (above 1440 x 1440 for lite); ``0`` never tiles.
        precision: ``"float32"`` (default); ``"bfloat16"`` (OpenVINO only); ``None``: the
            runtime's default (OpenVINO picks bfloat16 on CPUs with AVX512_BF16 or AMX).
        threads: CPU threads of the runtime (default: the cores this process may use).

    Example:
        >>> fuser = RuntimeFuser("twogan.xml", tile=512)
        >>> fused = fuser.fuse_arrays(ir, vis)         # uint8, vis's colour kept
    """

    def __init__(self, model: str | os.PathLike, tile: int | None = None, precision: str | None = "float32",
                 threads: int | None = None) -> None:
        check_tile(tile)
        self.path, self.tile, self.precision = Path(model), tile, precision
        self.format = format_of(self.path)
        self.session = open_session(self.path, precision, threads or cpu_threads())
        self.metadata = ChainMetadata.from_json(self.session.metadata, self.path)

    @property
    def min_size(self) -> int:
        """Smallest image side the chain allows."""
        return self.metadata.min_size

    @property
    def widest_layer(self) -> int:
        """Channels of the chain's widest layer, as its metadata records."""
        return self.metadata.widest_layer

    def fuse_luma(self, ir: np.ndarray, vis: np.ndarray, progress: bool = False) -> np.ndarray:
        """Fuse two gray images (uint8, or float on 0..255) of the same size; float32 (H, W) on 0..255."""
        height, width = ir.shape
        tile = self.tile_for(height, width)
        fused = np.empty((height, width), np.float32)
        plans = plan_halo_tiles(height, width, tile, self.metadata.halo)
        for plan in self.tile_bar(plans, height, width, tile, progress):
            ir_block, vis_block = (np.ascontiguousarray(image[plan.input_rows, plan.input_cols], np.float32)[None, ..., None]
                                   for image in (ir, vis))
            fused[plan.rows, plan.cols] = self.session(ir_block, vis_block)[0, plan.crop_rows, plan.crop_cols, 0]
        return fused
