"""The whole fusion chain as one functional Keras model (docs/DESIGN.md section 6; issue 23).

``ir`` and ``vis`` (float32 ``[N, H, W, 1]`` on 0..255) go in, ``fused`` (float32
``[N, H, W, 1]`` on 0..255) comes out: G1([IR, VIS]) and G2([VIS, IR]) feed G3, each
generator reflect-padding its own input, exactly the chain that training defines.
Because it is a functional model, Keras' own ``model.export`` writes it as a
SavedModel, ONNX, OpenVINO IR or LiteRT file (:mod:`tf_twogan.export`), and a
runtime without TensorFlow can fuse with it (:mod:`tf_twogan.runtime`).

Example:
    >>> model = chain_model("tf_twogan/checkpoints/sharp")
    >>> fused = model([ir, vis])          # both (1, H, W, 1) on 0..255
"""
from __future__ import annotations

import os

import keras
from keras import layers

from .inference import load_chain
from .models import Generator

INPUT_NAMES = ("ir", "vis")
"""The chain's inputs, in order."""
INPUT_RANGE = (0.0, 255.0)
"""The value range of its inputs and output (float32 grey levels)."""


def build_chain_model(g1: Generator, g2: Generator, g3: Generator, swap_second_layer: bool = False,
                      name: str = "twogan_chain") -> keras.Model:
    """``[ir, vis]`` on 0..255 -> fused on 0..255, from three generators (BatchNorm in inference mode)."""
    ir, vis = (keras.Input((None, None, 1), name=input_name, dtype="float32") for input_name in INPUT_NAMES)
    to_unit = layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit")
    ir_vis = to_unit(layers.Concatenate(name="ir_vis")([ir, vis]))
    vis_ir = to_unit(layers.Concatenate(name="vis_ir")([vis, ir]))
    irv, vir = g1(ir_vis, training=False), g2(vis_ir, training=False)
    first = layers.Concatenate(name="first_layer")([vir, irv] if swap_second_layer else [irv, vir])
    fused = layers.Rescaling(127.5, offset=127.5, name="fused")(g3(first, training=False))
    return keras.Model([ir, vis], fused, name=name)


def chain_model(checkpoint: str | os.PathLike | None = None) -> keras.Model:
    """The chain of a two-layer checkpoint or run folder (default: the shipped one)."""
    return build_chain_model(*load_chain(checkpoint))
