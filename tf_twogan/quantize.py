"""int8 post-training quantization of an exported ONNX chain (``twogan export --precision int8``).

onnxruntime's static quantization (``onnxruntime.quantization.quantize_static``): QDQ
format, int8 weights per output channel, uint8 activations whose ranges are the minimum
and maximum seen on a few calibration pairs.  Only the convolutions after the first of
each generator and the LeakyReLUs are quantized: the first convolution (2 input
channels) runs slower at int8 than at float32 in onnxruntime on an AVX-512/VNNI CPU, and
the tail (Tanh, the 0..255 mapping, concatenations, padding) stays float32 so that the
fused image keeps all its grey levels.  Measured speed and accuracy: docs/PERFORMANCE.md
("int8").  The file keeps its :class:`~tf_twogan.runtime.ChainMetadata` (``precision``
``int8``, ``calibration`` naming the pairs), so :class:`~tf_twogan.runtime.RuntimeFuser`
runs it unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from .images import pair_folders, read_gray_uint8, split_names

DEFAULT_PAIRS = 8
"""Calibration pairs taken from the TNO training split when no folder is given."""
QUANTIZED_OPS = ["Conv", "LeakyRelu"]


def calibration_pairs(folder: str | os.PathLike | None = None) -> tuple[list[tuple[Path, Path]], str]:
    """(ir, vis) paths to calibrate on, and a note naming them for the metadata.

    ``folder``: every pair of its ``ir/`` and ``vis/`` sub-folders; None: the first
    :data:`DEFAULT_PAIRS` pairs of the shipped TNO training split under the data root
    (:func:`tf_twogan.datasets.dataset_dir`), never a test pair.
    """
    from .datasets import dataset_dir

    if folder is None:
        root, names = dataset_dir("tno"), split_names("tno", "train")[:DEFAULT_PAIRS]
        note = f"TNO train split pairs {', '.join(names)}"
    else:
        root, names = Path(folder), None
    pairs = pair_folders(root / "ir", root / "vis", names)
    if folder is not None:
        note = f"{len(pairs)} pairs of {Path(folder).resolve()}"
    return [(ir, vis) for _, ir, vis in pairs], note


class _Pairs(CalibrationDataReader):
    """onnxruntime's calibration reader over gray pairs: one ``{"ir", "vis"}`` feed per pair."""

    def __init__(self, pairs: list[tuple[Path, Path]]) -> None:
        self.feeds = ({"ir": read_gray_uint8(ir).astype(np.float32)[None, ..., None],
                       "vis": read_gray_uint8(vis).astype(np.float32)[None, ..., None]} for ir, vis in pairs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def quantize_onnx(float_model: str | os.PathLike, out: str | os.PathLike, pairs: list[tuple[Path, Path]],
                  metadata: str) -> Path:
    """Write the int8 version of the float32 chain ``float_model`` to ``out`` with ``metadata`` (JSON) inside.

    The intermediate models go beside ``float_model`` (the export's scratch folder).
    """
    from .export import write_onnx_model

    scratch = Path(float_model).parent
    prepared, quantized = scratch / "prepared.onnx", scratch / "int8.onnx"
    # the chain's reflect padding defeats symbolic shape inference; ONNX's own inference suffices
    quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared)).graph
    weights = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    first_convs = [node.name for node in graph.node if node.op_type == "Conv" and weights[node.input[1]][1] == 2]
    quantize_static(str(prepared), str(quantized), _Pairs(pairs), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=first_convs)
    model = onnx.load(str(quantized))
    del model.metadata_props[:]
    return write_onnx_model(model, Path(out), metadata)
