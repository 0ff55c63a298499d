"""FusionGAN (Ma et al. 2019): original TF1 checkpoints and its test script's output.

The FusionGAN *baseline* itself is a configuration of the shared networks and
trainer (``preset(name, "fusiongan")`` in :mod:`tf_twogan.config`; ``twogan train
--method fusiongan``).  This module reads checkpoints written by the original code
(github.com/jiayi-ma/FusionGAN, ``model.py``: ``tf.train.Saver`` of the variables
``fusion_model/layerK/wK``, ``bK``, ``fusion_model/layerK/BatchNorm/{gamma, beta,
moving_mean, moving_variance}`` and ``fusion_model/layerK/weights_SN/u``) into our
Keras :class:`~tf_twogan.models.Generator`, and fuses an image pair in one of two
modes:

``compat`` reproduces what the original ``test_one_image.py`` saved:

1. each image read as gray float, scaled to [-1, 1], edge-padded by 6 pixels
   (``np.lib.pad(..., 'edge')``, 6 = the valid convolutions' margin);
2. the *raw* ``wK``/``bK`` (the script builds its own graph from the reader's
   tensors and never calls ``weights_spectral_norm``);
3. ``tf.contrib.layers.batch_norm`` with its default ``is_training=True``: batch
   statistics of the one image, and *fresh* variables (gamma 1, beta 0), because the
   script only initialises its BatchNorm variables and never restores them;
4. ``result * 127.5 + 127.5`` saved by ``scipy.misc.imsave``, which min-max
   stretches a float image to 0..255 (``scipy.misc.bytescale``).

``corrected`` is what the trained network computes: kernels divided by their
spectral norm (one power iteration from the stored ``u``, as the training graph
does), the restored BatchNorm scale, offset and moving statistics in inference mode,
and the output rounded to bytes without a stretch.

A FusionGAN trained here (``twogan train --method fusiongan``: a run folder with
``g.keras``) fuses the same way as a corrected original checkpoint, through
:func:`load_trained_generator` (``twogan fuse --checkpoint RUN_DIR``).
:class:`FusionGanFuser` puts either behind the interface the two-layer
:class:`~tf_twogan.inference.Fuser` has (files, folders, checks, resume).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .config import FUSIONGAN_GENERATOR, ConfigError, GeneratorConfig
from .errors import CheckpointError
from .fuser_base import BaseFuser, check_pair_shapes
from .images import ImageError

SCOPE = "fusion_model"
"""Variable scope of the original generator."""
PADDING = 6
"""Edge padding of ``test_one_image.py``: (5-1)/2 + (5-1)/2 + (3-1)/2 + (3-1)/2 = 6."""
MODES = ("compat", "corrected")
HIDDEN_LAYERS = 4
"""The original generator's conv+BatchNorm layers; layer 5 is the 1x1 output conv."""
BATCH_NORM_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


def resolve_prefix(path: str | os.PathLike) -> str:
    """The checkpoint prefix of ``path``: a prefix (``.../CGAN.model-3``) or its folder.

    A folder resolves through its ``checkpoint`` state file (what the original
    ``CGAN.save`` writes), i.e. to its newest checkpoint.
    """
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        if latest is None:
            raise CheckpointError(f"{path}: folder holds no TensorFlow checkpoint state file")
        return latest
    if not Path(f"{path}.index").is_file():
        raise CheckpointError(f"{path}: no checkpoint (expected {path}.index and {path}.data-*)")
    return str(path)


def original_variable_names(layers: int = HIDDEN_LAYERS + 1) -> list[str]:
    """Names of the generator variables the original ``model.py`` saves."""
    names = []
    for k in range(1, layers + 1):
        names += [f"{SCOPE}/layer{k}/w{k}", f"{SCOPE}/layer{k}/b{k}", f"{SCOPE}/layer{k}/weights_SN/u"]
        if k <= HIDDEN_LAYERS:
            names += [f"{SCOPE}/layer{k}/BatchNorm/{name}" for name in BATCH_NORM_NAMES]
    return names


def read_original_generator(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The generator variables of an original FusionGAN checkpoint, by original name.

    Checks that every variable exists and that the shapes chain as the original
    generator's do: ``wK`` (k, k, c_in, c_out), ``bK`` and the BatchNorm vectors
    (c_out,), ``weights_SN/u`` (1, c_out), two input channels, one output channel.
    """
    import tensorflow as tf

    prefix = resolve_prefix(path)
    try:  # the index opens even when the .data file is missing or damaged: read the tensors here too
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        variables = {name: np.asarray(reader.get_tensor(name), dtype=np.float32)
                     for name in original_variable_names() if name in shapes}
    except Exception as error:  # tf raises DataLossError, NotFoundError, OpError, IndexError, ...
        raise CheckpointError(f"{prefix}: cannot read checkpoint ({type(error).__name__}: {error})") from None
    missing = [name for name in original_variable_names() if name not in variables]
    if missing:
        raise CheckpointError(f"{prefix}: not an original FusionGAN checkpoint, missing {', '.join(missing[:4])}"
                              + (f" and {len(missing) - 4} more" if len(missing) > 4 else ""))
    channels = 2
    for k in range(1, HIDDEN_LAYERS + 2):
        kernel = variables[f"{SCOPE}/layer{k}/w{k}"]
        if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1] or kernel.shape[2] != channels:
            raise CheckpointError(f"{prefix}: {SCOPE}/layer{k}/w{k} has shape {kernel.shape}, expected (k, k, {channels}, c)")
        width = kernel.shape[3]
        expected = {f"{SCOPE}/layer{k}/b{k}": (width,), f"{SCOPE}/layer{k}/weights_SN/u": (1, width)}
        if k <= HIDDEN_LAYERS:
            expected.update({f"{SCOPE}/layer{k}/BatchNorm/{name}": (width,) for name in BATCH_NORM_NAMES})
        for name, shape in expected.items():
            if variables[name].shape != shape:
                raise CheckpointError(f"{prefix}: {name} has shape {variables[name].shape}, expected {shape}")
        channels = width
    if channels != 1 or variables[f"{SCOPE}/layer5/w5"].shape[0] != 1:
        raise CheckpointError(f"{prefix}: {SCOPE}/layer5/w5 must be a 1x1 conv to one channel")
    return variables


def l2_normalize(x: np.ndarray, epsilon: float = 1e-12) -> np.ndarray:
    """``utils.l2_norm`` of the original: x / (||x|| + epsilon) over all entries."""
    return x / (np.sqrt(np.sum(np.square(x))) + epsilon)


def spectral_norm(kernel: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray]:
    """sigma and the updated u of ``utils.weights_spectral_norm`` (one power iteration).

    W = kernel reshaped to (-1, c_out); v = l2(u W^T); u' = l2(v W); sigma = v W u'^T.
    The training graph divides the kernel by this sigma.
    """
    w = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    v = l2_normalize(u.astype(np.float64) @ w.T)
    u_new = l2_normalize(v @ w)
    return float((v @ w @ u_new.T).item()), u_new


def generator_settings(variables: Mapping[str, np.ndarray]) -> GeneratorConfig:
    """Our generator settings for the checkpoint's widths and kernel sizes.

    Spectral normalisation is folded into the loaded kernels (corrected) or not
    applied (compat), so the Keras generator carries plain convolutions; padding is
    the caller's (edge, :data:`PADDING`).
    """
    kernels = [variables[f"{SCOPE}/layer{k}/w{k}"] for k in range(1, HIDDEN_LAYERS + 1)]
    return GeneratorConfig(widths=tuple(int(w.shape[3]) for w in kernels), kernel_sizes=tuple(int(w.shape[0]) for w in kernels),
                           input_mode="paired", conv_bias=True, pad_mode="none", spectral_norm=False,
                           leaky_slope=FUSIONGAN_GENERATOR.leaky_slope)


def load_original_generator(path: str | os.PathLike, mode: str = "compat"):
    """An original FusionGAN checkpoint as our Keras :class:`~tf_twogan.models.Generator`.

    ``mode="compat"``: raw kernels and biases, BatchNorm scale 1 and offset 0 (run
    it with ``training=True``, as :func:`fuse_original` does, for batch statistics).
    ``mode="corrected"``: kernels divided by their spectral norm and the restored
    BatchNorm variables (run it with ``training=False``).  The generator is float32,
    ``pad_mode="none"``: a (H+12, W+12) input gives a (H, W) output.
    """
    import keras

    from .models import Generator

    _check_mode(mode)
    variables = read_original_generator(path)
    generator = Generator.from_settings(generator_settings(variables), name="fusiongan_original", dtype="float32")
    generator.build()
    convs = [generator.hidden_layers[3 * i] for i in range(HIDDEN_LAYERS)] + [generator.output_conv]
    norms = [generator.hidden_layers[3 * i + 1] for i in range(HIDDEN_LAYERS)]
    for k, conv in enumerate(convs, start=1):
        kernel = variables[f"{SCOPE}/layer{k}/w{k}"]
        if mode == "corrected":
            sigma, _ = spectral_norm(kernel, variables[f"{SCOPE}/layer{k}/weights_SN/u"])
            kernel = (kernel / sigma).astype(np.float32)
        conv.kernel.assign(kernel)
        conv.bias.assign(variables[f"{SCOPE}/layer{k}/b{k}"])
    for k, norm in enumerate(norms, start=1):
        if mode == "corrected":
            for name in BATCH_NORM_NAMES:
                getattr(norm, name).assign(variables[f"{SCOPE}/layer{k}/BatchNorm/{name}"])
        else:
            norm.gamma.assign(keras.ops.ones_like(norm.gamma))
            norm.beta.assign(keras.ops.zeros_like(norm.beta))
    return generator


def is_trained_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder of ``twogan train --method fusiongan``."""
    from .config import TwoGanConfig

    folder = Path(path)
    return (folder / "config.json").is_file() and TwoGanConfig.from_json(folder / "config.json").method == "fusiongan"


def load_trained_generator(run_dir: str | os.PathLike):
    """The generator ``g.keras`` of a ``twogan train --method fusiongan`` run, for ``corrected`` fusion."""
    from .networks_io import load_network

    path = Path(run_dir) / "g.keras"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no g.keras (the FusionGAN run has not finished)")
    return load_network(path)


def scipy_bytescale(image: np.ndarray) -> np.ndarray:
    """``scipy.misc.imsave``'s conversion of a float image to bytes (``bytescale``).

    (x - min) * 255 / (max - min), clipped to 0..255, plus 0.5, truncated to uint8;
    a constant image maps to 0.  The arithmetic stays in the image's dtype, as in
    scipy (float32 for the original script's output).
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    low, high = image.min(), image.max()
    span = high - low
    scale = 255.0 / (span if span != 0 else 1)
    return (np.clip((image - low) * image.dtype.type(scale), 0, 255) + image.dtype.type(0.5)).astype(np.uint8)


def original_input(image: np.ndarray) -> np.ndarray:
    """``test_one_image.input_setup`` for one image: (x - 127.5) / 127.5, edge pad 6."""
    scaled = (np.asarray(image, dtype=np.float64) - 127.5) / 127.5
    return np.pad(scaled, PADDING, mode="edge")


def original_output(generator, ir: np.ndarray, vis: np.ndarray, mode: str = "compat") -> np.ndarray:
    """The generator's float output ``result * 127.5 + 127.5``, (H, W) float32, before saving.

    ``ir`` and ``vis`` are gray images of one size on the 0..255 scale.  In
    ``compat`` mode BatchNorm runs in training mode (statistics of this image).
    """
    _check_mode(mode)
    ir, vis = np.asarray(ir), np.asarray(vis)
    if ir.ndim != 2 or ir.shape != vis.shape:
        raise ImageError(f"ir and vis must be gray images of one size, got {ir.shape} and {vis.shape}")
    pair = np.stack([original_input(ir), original_input(vis)], axis=-1)[None].astype(np.float32)
    result = np.asarray(generator(pair, training=mode == "compat"), dtype=np.float32)
    return (result * np.float32(127.5) + np.float32(127.5))[0, ..., 0]


def to_bytes(image: np.ndarray, mode: str = "compat") -> np.ndarray:
    """Save-time byte conversion: min-max stretch (compat) or round half up and clip (corrected)."""
    from .images import to_uint8

    _check_mode(mode)
    return scipy_bytescale(image) if mode == "compat" else to_uint8(image)


def fuse_original(ir: np.ndarray, vis: np.ndarray, checkpoint, mode: str = "compat") -> np.ndarray:
    """Fuse one gray pair (0..255 arrays, same size) with an original FusionGAN checkpoint.

    ``checkpoint`` is a checkpoint prefix or folder (a path), or a generator from
    :func:`load_original_generator` or :func:`load_trained_generator` (loaded for
    ``mode``).  Returns the uint8 (H, W) image that ``test_one_image.py`` would have
    written (``compat``), or the corrected network's output (``corrected``); see the
    module docstring.  To fuse many pairs or files, use :class:`FusionGanFuser`.

    Example:
        >>> fused = fuse_original(read_gray(ir_path), read_gray(vis_path), "checkpoint/CGAN_120/CGAN.model-3")
    """
    is_path = isinstance(checkpoint, (str, os.PathLike))
    fuser = FusionGanFuser.from_original(checkpoint, mode) if is_path else FusionGanFuser(checkpoint, mode)
    return fuser.fuse_gray(ir, vis)


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """An image file as gray float on 0..255, like ``scipy.misc.imread(flatten=True)``.

    Gray files keep their values; colour becomes the BT.601 luma without rounding
    (PIL's ``convert('F')``); 16-bit files are scaled to 0..255.
    """
    from .images import read_image, to_gray

    return to_gray(read_image(path))


class FusionGanFuser(BaseFuser):
    """FusionGAN's generator behind the common fuser interface (files, folders, checks, resume).

    Args:
        generator: a generator from :func:`load_original_generator` (loaded in ``mode``)
            or :func:`load_trained_generator` (``corrected``).
        mode: ``"compat"`` (the original test script's output) or ``"corrected"``.

    Build it with :meth:`from_original` (an original TF1 checkpoint) or :meth:`from_run`
    (a ``twogan train --method fusiongan`` run folder).  Images are fused as
    :func:`read_gray` reads them (colour becomes its BT.601 luma) and written as uint8
    gray, the original script's loop over ``Test_ir``/``Test_vi`` for folders.

    Example:
        >>> FusionGanFuser.from_original("checkpoint/CGAN_120", "compat").fuse_folders("Test_ir", "Test_vi", "result")
    """

    def __init__(self, generator, mode: str = "corrected") -> None:
        _check_mode(mode)
        self.generator, self.mode = generator, mode

    @classmethod
    def from_original(cls, checkpoint: str | os.PathLike, mode: str = "compat") -> "FusionGanFuser":
        """An original FusionGAN checkpoint (prefix or folder) in ``mode``."""
        return cls(load_original_generator(checkpoint, mode), mode)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike) -> "FusionGanFuser":
        """The ``g.keras`` of a FusionGAN trained here, in ``corrected`` mode (what it computes)."""
        return cls(load_trained_generator(run_dir), "corrected")

    def fuse_gray(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """Two gray 0..255 arrays of one size -> the uint8 image the mode saves."""
        return to_bytes(original_output(self.generator, ir, vis, self.mode), self.mode)

    def check_arrays(self, ir: np.ndarray, vis: np.ndarray, ir_label: str = "ir", vis_label: str = "vis") -> None:
        """Raise :class:`ImageError` naming the images if they differ in size."""
        check_pair_shapes(np.shape(ir), np.shape(vis), ir_label, vis_label)

    def fuse_arrays(self, ir: np.ndarray, vis: np.ndarray, *, ir_label: str = "ir", vis_label: str = "vis",
                    progress: bool = False) -> np.ndarray:
        """Fuse a pair as read by :func:`~tf_twogan.images.read_image` (gray or colour); uint8 (H, W).

        ``progress`` is accepted for the common interface; one pair is one step.
        """
        from .images import to_gray

        self.check_arrays(ir, vis, ir_label, vis_label)
        return self.fuse_gray(to_gray(ir), to_gray(vis))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"FusionGAN checkpoint mode must be one of {', '.join(MODES)}, got {mode!r}")
