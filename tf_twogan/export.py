"""SavedModel export of the whole fusion chain for TF Serving (docs/DESIGN.md section 6).

The SavedModel holds G1, G2 and G3 and one function per signature:

``serving_default``
    inputs ``ir``, ``vis``: float32 ``[batch, H, W, 1]`` on 0..255 (dynamic batch, H, W;
    H, W >= 5); output ``fused``: float32 ``[batch, H, W, 1]`` on 0..255.
``serving_uint8``
    the same with uint8 inputs and output (rounded half up, clipped).

It is written into a numbered version folder (``<model>/<version>/``, the layout TF
Serving watches) atomically: saved into a hidden temporary folder beside it, then
renamed, so a server polling ``<model>/`` never loads a half-written version.

Example:
    >>> export_savedmodel(None, "export/twogan/1")      # the shipped checkpoint
    $ docker run -p 8501:8501 -v $PWD/export/twogan:/models/twogan -e MODEL_NAME=twogan tensorflow/serving
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .images import OutputError
from .locking import temporary_prefix
from .errors import TwoGanError

SIGNATURES = ("serving_default", "serving_uint8")


class ExportError(TwoGanError, ValueError):
    """The export target cannot be used; the message says why."""


def _fusion_module(checkpoint: str | os.PathLike | None):
    import tensorflow as tf

    from .inference import load_chain

    g1, g2, g3, swap = load_chain(checkpoint)

    class FusionChain(tf.Module):
        """G1([IR, VIS]), G2([VIS, IR]) -> G3, on the 0..255 scale; BatchNorm in inference mode."""

        def __init__(self) -> None:
            super().__init__(name="twogan")
            self.g1, self.g2, self.g3 = g1, g2, g3
            self.swap_second_layer = swap
            # The underlying tf.Variables, listed on the module itself: without them the
            # TF1-style loader of TF Serving and `saved_model_cli run` finds the variables
            # uninitialised (keras-team/keras#19274; Keras' ExportArchive does the same).
            self.variables_to_restore = [variable.value for g in (g1, g2, g3) for variable in g.variables]

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="ir"),
                                      tf.TensorSpec([None, None, None, 1], tf.float32, name="vis")])
        def fuse(self, ir, vis):
            pair = (tf.concat([ir, vis], axis=-1) - 127.5) / 127.5
            irv = self.g1(pair, training=False)
            vir = self.g2(pair[..., ::-1], training=False)
            first = tf.concat([vir, irv] if self.swap_second_layer else [irv, vir], axis=-1)
            return {"fused": self.g3(first, training=False) * 127.5 + 127.5}

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.uint8, name="ir"),
                                      tf.TensorSpec([None, None, None, 1], tf.uint8, name="vis")])
        def fuse_uint8(self, ir, vis):
            fused = self.fuse(tf.cast(ir, tf.float32), tf.cast(vis, tf.float32))["fused"]
            return {"fused": tf.cast(tf.clip_by_value(tf.floor(fused + 0.5), 0.0, 255.0), tf.uint8)}

    return FusionChain()


def export_savedmodel(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write the SavedModel of ``checkpoint`` (default: the shipped one) to ``out_dir``.

    ``out_dir`` must end in a numeric version folder that does not exist yet, e.g.
    ``export/twogan/1``.  Returns ``out_dir``.
    """
    import tensorflow as tf

    out_dir = Path(out_dir)
    if not out_dir.name.isdigit():
        raise ExportError(f"{out_dir}: the last folder must be a numeric model version, e.g. {out_dir / '1'} "
                          "(TF Serving loads <model>/<version>/)")
    if out_dir.exists():
        raise ExportError(f"{out_dir}: already exists; choose a new version number")
    module = _fusion_module(checkpoint)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=temporary_prefix(), suffix=f".{out_dir.name}", dir=out_dir.parent))
    try:
        try:
            tf.saved_model.save(module, str(temporary), signatures={
                "serving_default": module.fuse.get_concrete_function(),
                "serving_uint8": module.fuse_uint8.get_concrete_function(),
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
