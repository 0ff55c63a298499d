"""The ``twogan`` command: a thin argparse layer over the package's public functions.

Errors the user can fix (bad paths, images, stores, configs) print one line naming
the file and the problem and exit with status 2; ``--debug`` shows the traceback.
TensorFlow is imported only by the subcommands that need it.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from .checkpoints import default_preset
from .config import METHODS, PRESETS, SECOND_LAYER_INITS, SECOND_LAYER_TARGETS, ConfigError
from .console import VERBOSE_ENV, import_tensorflow_quietly
from .errors import TwoGanError, one_line
from .export import FORMATS as EXPORT_FORMATS
from .runtime import EXPORT_PRECISIONS
from .images import ImageError

# Subcommands that import TensorFlow: it is imported up front, with its log lines hidden.
TENSORFLOW_COMMANDS = ("train", "fuse", "export", "demo")
QUICK_EXIT_COMMANDS = ("fuse", "evaluate", "export", "demo")  # see run()

# TwoGanError covers ConfigError, ImageError, StoreError, InferenceError, ExportError and
# CheckpointError; OSError covers missing files, permissions and full disks (the message
# names the path).  Any other exception is a bug: it propagates with its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (TwoGanError, OSError)


def _prepare(args: argparse.Namespace) -> None:
    from .store import PatchStore, prepare_store, verify_store

    if args.verify:
        extra = [flag for flag, value in (("--vis", args.vis), ("--out", args.out)) if value is not None]
        if extra:
            raise ConfigError(f"--verify checks an existing store: leave out {', '.join(extra)}")
        print("\n".join(verify_store(args.verify)))
        return
    missing = [flag for flag, value in (("--vis", args.vis), ("--out", args.out)) if value is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} required with --ir (or --verify STORE alone)")
    if args.subset is not None and args.split is None:
        raise ConfigError("--subset needs --split")
    from .config import preset

    data = preset("paper", args.method).data
    for flag, value in (("--patch", args.patch), ("--stride", args.stride)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} must be a positive integer, got {value}")
    path = prepare_store(args.ir, args.vis, args.out, split=args.split, subset=args.subset or "train",
                         patch_size=args.patch or data.patch_size, stride=args.stride or data.stride, progress=not args.quiet)
    with PatchStore(path) as store:
        print(f"{path}: {len(store)} patch pairs of {store.patch_size}x{store.patch_size} from {len(store.source_names)} image pairs")


def resolve_config(args: argparse.Namespace):
    """The preset (or ``--config`` file) with the command line's overrides applied (validated)."""
    from .config import TwoGanConfig, preset

    if args.config is not None:
        if args.preset is not None or args.method is not None:
            raise ConfigError("--config gives the whole configuration: leave out --preset and --method")
        base = TwoGanConfig.from_json(args.config)
    else:
        base = preset(args.preset or default_preset(), args.method or "twogan")
    overrides = {key: value for key, value in (("epochs", args.epochs), ("steps_per_epoch", args.steps_per_epoch),
                                                ("batch_size", args.batch_size), ("seed", args.seed),
                                                ("learning_rate", args.learning_rate), ("precision", args.precision))
                 if value is not None}
    if args.swap_second_layer:
        overrides["swap_second_layer"] = True
    second = {key: value for key, value in (("intensity_target", args.second_layer_intensity),
                                            ("gradient_target", args.second_layer_gradient),
                                            ("init", args.second_layer_init),
                                            ("epochs", args.second_layer_epochs)) if value is not None}
    return base.replace(train=overrides, second_layer=second)


def _train(args: argparse.Namespace) -> None:
    config = resolve_config(args)
    from .training import train

    if args.first_layer_from is not None and config.method != "twogan":
        raise ConfigError("--first-layer-from is for the two-layer GAN (--method twogan)")
    run = train(args.store, args.out, config, verbose=0 if args.quiet else "auto", strategy=args.strategy,
                first_layer_from=args.first_layer_from)
    networks = "g/d .keras, history_fusiongan.csv" if config.method == "fusiongan" else "g1/g2/g3 and d1/d2/d3 .keras, history_gan*.csv"
    print(f"{run.root}: finished ({networks}, logs/)")


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_folders, evaluate_vifb_style

    fused, names = _named_folders(args.fused, args.name)
    for flag, folders in (("--ir", [args.ir]), ("--vis", [args.vis]), ("--fused", fused)):
        for folder in folders:
            if Path(folder).is_file():
                what = "fused images" if flag == "--fused" else "images"
                raise ConfigError(f"{folder}: is a file, not a folder of {what} ({flag} takes a folder)")

    metrics = None if args.metrics is None else [name.strip() for name in args.metrics.split(",") if name.strip()]
    options = dict(metrics=metrics, convention=args.convention, progress=not args.quiet, color=args.color, workers=args.workers)
    if args.methods_from_suffix:
        if len(args.fused) != 1:
            raise ConfigError("--methods-from-suffix takes exactly one --fused folder (holding <pair>_<method> files)")
        if args.split is not None:
            raise ConfigError("--split selects pairs of folders by name: it does not combine with --methods-from-suffix")
        if any(names):
            raise ConfigError("--methods-from-suffix takes the method names from the file names: leave out --name and =NAME")
        result = evaluate_vifb_style(args.ir, args.vis, fused[0], args.out, **options)
    else:
        result = evaluate_folders(args.ir, args.vis, fused, args.out, pairs=_subset(args), method_names=names, **options)
    table = Path(args.out) / "metrics_mean.md"
    print(table.read_text() if table.is_file() else result)


def _named_folders(fused: list[str], names: list[str] | None) -> tuple[list[str], list[str | None]]:
    """The ``--fused`` folders and their method names: ``--name`` in order, or ``DIR=NAME``, else None (the folder's name).

    ``DIR=NAME`` is split at the last ``=`` unless the whole argument is an existing folder.
    """
    if names is not None and len(names) != len(fused):
        raise ConfigError(f"--name given {len(names)} time(s) for {len(fused)} --fused folder(s): give one name per folder")
    folders, given = [], []
    for index, argument in enumerate(fused):
        folder, equals, name = argument.rpartition("=")
        if not equals or not name or Path(argument).is_dir():
            folder, name = argument, None
        if names is not None:
            name = names[index]
        folders.append(folder)
        given.append(name)
    return folders, given


def _subset(args: argparse.Namespace) -> list[str] | None:
    """The pair names of ``--subset`` in ``--split`` (None without ``--split``)."""
    if args.subset is not None and args.split is None:
        raise ConfigError("--subset needs --split")
    if args.split is None:
        return None
    if args.subset is None:
        raise ConfigError("--split needs --subset (e.g. --subset test)")
    from .images import split_names

    return split_names(args.split, args.subset)


def _fuse(args: argparse.Namespace) -> None:
    for flag, path in (("--ir", args.ir), ("--vis", args.vis)):
        if not Path(path).exists():
            raise ImageError(f"{path}: no such file or folder ({flag})")
    from .video import is_video

    if is_video(args.ir) or is_video(args.vis):
        _fuse_video(args)
        return
    from .fuser_base import check_fuse_paths
    from .fusiongan import is_trained_run

    names = _subset(args)
    check_fuse_paths(args.ir, args.vis, args.out, names)  # before a network is loaded
    if args.model is not None:
        fuser, what = _runtime_fuser(args), f" ({args.model})"
    elif args.fusiongan_checkpoint is not None or (args.checkpoint is not None and is_trained_run(args.checkpoint)):
        fuser, what = _fusiongan_fuser(args)
    else:
        from .inference import Fuser

        fuser, what = Fuser(args.checkpoint, precision=args.precision or "float32", tile=args.tile), ""
    written = fuser.fuse_paths(args.ir, args.vis, args.out, skip_unmatched=args.skip_unmatched, progress=not args.quiet,
                               names=names, resize_vis=args.resize_vis)
    skipped = getattr(written, "skipped", [])
    if skipped:
        print(f"{args.out}: kept {len(skipped)} output(s) already complete from an earlier run (delete them to fuse again)")
    print(written[0] if len(written) == 1 else f"{args.out}: {len(written)} fused images{what}")


def _fuse_video(args: argparse.Namespace) -> None:
    """``twogan fuse`` with video files: frame by frame into a video (tf_twogan.video)."""
    from .video import fuse_video, is_video

    for flag, path in (("--ir", args.ir), ("--vis", args.vis)):
        if not is_video(path):
            raise ImageError(f"{path}: not a video file ({flag}); give two videos, two image files or two folders")
    for flag, used in (("--fusiongan-checkpoint", args.fusiongan_checkpoint is not None), ("--skip-unmatched", args.skip_unmatched),
                       ("--split", args.split is not None), ("--resize-vis", args.resize_vis)):
        if used:
            raise ConfigError(f"{flag} is not supported for video inputs")
    fuser = _runtime_fuser(args) if args.model is not None else None
    print(fuse_video(args.ir, args.vis, args.out, fuser, checkpoint=args.checkpoint, precision=args.precision, tile=args.tile,
                     codec=args.codec, progress=not args.quiet))


def _runtime_fuser(args: argparse.Namespace):
    """The :class:`~tf_twogan.runtime.RuntimeFuser` of ``--model`` (an exported file; no TensorFlow)."""
    from .runtime import RuntimeFuser

    for flag, used in (("--checkpoint", args.checkpoint is not None), ("--fusiongan-checkpoint", args.fusiongan_checkpoint is not None)):
        if used:
            raise ConfigError(f"--model and {flag} exclude each other (the model file holds the network)")
    return RuntimeFuser(args.model, tile=args.tile, precision=args.precision or "float32")


def _fusiongan_fuser(args: argparse.Namespace):
    """``(FusionGanFuser, label)`` for ``--fusiongan-checkpoint`` (an original TF1 checkpoint, compat or
    corrected) or ``--checkpoint RUN`` of ``twogan train --method fusiongan`` (corrected)."""
    from .fusiongan import FusionGanFuser

    if args.fusiongan_checkpoint is not None and args.checkpoint is not None:
        raise ConfigError("--checkpoint and --fusiongan-checkpoint exclude each other")
    source = args.fusiongan_checkpoint or args.checkpoint
    for flag, used in (("--tile", args.tile is not None), ("--precision bfloat16", args.precision == "bfloat16")):
        if used:
            raise ConfigError(f"{flag} is not supported for a FusionGAN network ({source})")
    if args.fusiongan_checkpoint is None:
        return FusionGanFuser.from_run(args.checkpoint), " (FusionGAN run)"
    mode = "corrected" if args.fusiongan_corrected else "compat"
    return FusionGanFuser.from_original(args.fusiongan_checkpoint, mode), f" (FusionGAN {mode})"


def _export(args: argparse.Namespace) -> None:
    from .export import export_model

    written = export_model(args.checkpoint, args.out, format=args.format, precision=args.precision,
                           calibration=args.calibration)
    if args.format == "savedmodel":
        print(f"{written}: SavedModel (signature serving_default: ir, vis -> fused)")
    else:
        print(f"{written}: {args.format} model at {args.precision} (inputs ir, vis -> fused; "
              f"run it with twogan fuse --model {written})")


def _demo(args: argparse.Namespace) -> None:
    from .demo import demo

    demo(args.out, checkpoint=args.checkpoint)


def _data(args: argparse.Namespace) -> None:
    """``twogan data list|fetch|verify|path`` (tf_twogan.datasets)."""
    from .datasets import dataset, dataset_dir, describe, fetch, load_manifest, verify

    manifest = load_manifest(*([args.manifest] if args.manifest else []))
    if args.action == "list":
        print("\n\n".join(describe(entry, args.root) for entry in manifest.values()))
    elif args.action == "fetch":
        print(f"{fetch(args.name, args.root, url=args.url, progress=not args.quiet, manifest=manifest)}: verified")
    elif args.action == "path":
        print(dataset_dir(dataset(args.name, manifest).name, args.root))
    else:
        from .datasets import DatasetError, data_root

        names = [args.name] if args.name else [name for name in manifest if (data_root(args.root) / name).is_dir()]
        if not names:
            raise DatasetError(f"{data_root(args.root)}: no dataset found; get one with `twogan data fetch NAME` (twogan data list)")
        failed = []
        for name in names:
            check = verify(dataset(name, manifest), dataset_dir(name, args.root))
            for unknown in check.unknown:
                print(f"{check.folder / unknown}: not in the manifest (not checked)")
            print(f"{check.folder}: {len(manifest[name].files)} files verified" if check.ok else check.problem())
            failed += [] if check.ok else [name]
        if failed:
            raise DatasetError(f"{data_root(args.root)}: damaged or incomplete: {', '.join(failed)} (files named above)")


def add_data_parser(commands) -> None:
    """``twogan data``: list, fetch and verify the TNO, RoadScene and VIFB datasets (docs/DATA.md)."""
    data = commands.add_parser("data", help="list, fetch or verify the datasets (TNO, RoadScene, VIFB)",
                               description="The datasets live in the data root: --root, else $TWOGAN_DATA, else ../shared/data "
                               "beside the repository, else ~/.cache/tf_twogan/data (docs/DATA.md).")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each dataset: what, pairs, size, licence, citation, source, where")
    fetching = actions.add_parser("fetch", help="download a dataset from its public source, unpack it to <root>/NAME, verify it")
    fetching.add_argument("name", metavar="NAME", help="tno, roadscene or vifb")
    fetching.add_argument("--url", help="the archive to download instead of the manifest's: a URL or a local .zip file "
                          "(e.g. one downloaded by hand)")
    fetching.add_argument("--quiet", action="store_true", help="no progress bar")
    checking = actions.add_parser("verify", help="check every file against the shipped SHA-256 manifest")
    checking.add_argument("name", metavar="NAME", nargs="?", help="one dataset (default: every dataset found in the root)")
    locating = actions.add_parser("path", help="print the dataset's folder, <root>/NAME (for scripts: --ir \"$(twogan data path tno)/ir\")")
    locating.add_argument("name", metavar="NAME", help="tno, roadscene or vifb")
    for parser in (listing, fetching, checking, locating):
        parser.add_argument("--root", help="data root (default: $TWOGAN_DATA, else ../shared/data, else ~/.cache/tf_twogan/data)")
        parser.add_argument("--manifest", help="a manifest JSON instead of the shipped tf_twogan/datasets.json (e.g. for a mirror)")
    data.set_defaults(handler=_data)


def add_subset_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--split SPLIT --subset NAME``: only the pairs a split lists (folder inputs)."""
    parser.add_argument("--split", metavar="SPLIT", help=f"a shipped split (tno, roadscene, vifb) or a JSON file listing "
                        f"pair names per subset: {verb} only the pairs of --subset")
    parser.add_argument("--subset", metavar="NAME", help="subset of --split, e.g. test")


class HintingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that names an unknown ``--option`` and suggests the closest valid one (difflib).

    Plain argparse reports a misspelt ``--ouput`` only after the required options,
    as "the following arguments are required: --out".  (``_actions`` is argparse's
    long-standing list of a parser's arguments; it has no public accessor.)
    """

    subcommands = False

    def add_subparsers(self, **kwargs):
        self.subcommands = True
        return super().add_subparsers(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        arguments = sys.argv[1:] if args is None else list(args)
        known = [option for action in self._actions for option in action.option_strings]
        for argument in arguments:
            if argument == "--" or (self.subcommands and not argument.startswith("-")):
                break  # the rest belongs to the subcommand's parser (or is not an option)
            flag = argument.split("=", 1)[0]
            if flag.startswith("--") and not any(option.startswith(flag) for option in known):
                close = difflib.get_close_matches(flag, known, n=1)
                self.error(f"unknown option {flag}" + (f" (did you mean {close[0]}?)" if close else ""))
        return super().parse_known_args(arguments, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = HintingParser(prog="twogan", description="Two-layer GAN for infrared + visible image fusion.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--verbose", action="store_true",
                        help=f"show TensorFlow's log lines (hidden by default; also {VERBOSE_ENV}=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = commands.add_parser(
        "prepare", help="cut IR/VIS image pairs into an HDF5 patch store",
        usage="twogan prepare [-h] (--ir IR --vis VIS --out OUT | --verify STORE) [--split SPLIT] [--subset SUBSET]\n"
              "                      [--method {twogan,fusiongan}] [--patch PATCH] [--stride STRIDE] [--quiet]")
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument("--ir", help="folder of infrared images (required with --vis and --out)")
    prepare.add_argument("--vis", help="folder of visible images, same file names (required with --ir)")
    prepare.add_argument("--out", help="output store, e.g. tno_train.h5 (required with --ir)")
    source.add_argument("--verify", metavar="STORE", help="re-check an existing store's checksums and sources instead")
    prepare.add_argument("--split", help="a shipped split (tno: train/test; roadscene, vifb: all) or a JSON file "
                         "listing pair names per subset")
    prepare.add_argument("--subset", help="subset of --split to use (default train)")
    prepare.add_argument("--method", choices=METHODS, default="twogan",
                         help="sets the default patch and stride: twogan 128/12, fusiongan 132/14")
    prepare.add_argument("--patch", type=int, help="patch side in pixels (default: the method's)")
    prepare.add_argument("--stride", type=int, help="patch stride in pixels (default: the method's)")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=_prepare)

    train = commands.add_parser(
        "train", help="train the two-layer GAN (resumes an interrupted run)", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train GAN 1 (G1), GAN 2 (G2), make the second-layer store, train GAN 3 (G3).",
        epilog="""progress:
  A header names each GAN ("GAN 2 of 3: G2, visible as input, ..."); after each epoch one
  line gives its losses and the chain's progress, elapsed time and time left. On a terminal
  Keras' progress bars run in between; piped or redirected, the output is plain text, one
  line per epoch. --quiet prints only the result.
resume and extend:
  Ctrl-C (or SIGTERM) stops, keeps every finished epoch and prints the command to rerun;
  rerunning the same command resumes at the last finished epoch and says so. Rerunning a
  finished run with a larger --epochs continues each GAN from its saved state (optimizer
  included): the result equals a run of that length from the start. When GAN 1 and 2 train
  further, the second-layer store is made again and GAN 3 is trained again.
collapse:
  After each epoch the generator fuses a fixed sample; output that is not a number, or that
  turns into one grey level everywhere, stops the run (exit 2) and keeps the backup of the
  last good epoch. A GAN still constant at its last epoch gets a warning: train it longer.""")
    train.add_argument("--store", required=True, help="patch store made by `twogan prepare`")
    train.add_argument("--out", required=True, help="run folder (rerun the same command to resume)")
    train.add_argument("--method", choices=METHODS, help="twogan (the paper, default) or fusiongan (the baseline)")
    train.add_argument("--preset", choices=PRESETS,
                       help="network widths and schedule (default: the shipped default model's, today sharp: about 70 min "
                       "on 2 CPU cores; paper: about 50 h on such a CPU, a GPU job)")
    train.add_argument("--config", help="a config JSON (e.g. a run's config.json, edited) instead of --preset/--method; "
                       "for ablations: every constant of the paper is a field")
    train.add_argument("--epochs", type=int, help="epochs of GAN 1 and GAN 2, and of GAN 3 unless the preset gives it its own "
                       "(sharp: 10, see --second-layer-epochs); a larger value on a finished run extends it")
    train.add_argument("--second-layer-epochs", type=int, metavar="N",
                       help="GAN 3's own epochs (default: the preset's; paper: --epochs); a larger value extends a finished run")
    train.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: one pass over the store)")
    train.add_argument("--batch-size", type=int, help="patches per batch")
    train.add_argument("--learning-rate", type=float, help="Adam learning rate")
    train.add_argument("--seed", type=int, help="seed; also makes TensorFlow ops deterministic")
    train.add_argument("--precision", choices=("float32", "mixed_bfloat16"), help="compute precision")
    train.add_argument("--swap-second-layer", action="store_true", help="G3 takes I_VIR as input and I_IRV as ground truth")
    train.add_argument("--second-layer-intensity", choices=SECOND_LAYER_TARGETS,
                       help="G3's intensity target: paper (I_IRV), irv, vir, max_first_layer or max_sources (per-pixel max)")
    train.add_argument("--second-layer-gradient", choices=SECOND_LAYER_TARGETS,
                       help="G3's gradient target: paper (I_VIR), irv, vir, max_first_layer or max_sources "
                       "(per pixel the Laplacian of larger magnitude)")
    train.add_argument("--second-layer-init", choices=SECOND_LAYER_INITS, help="G3 starts from random weights (scratch) or G1's")
    train.add_argument("--first-layer-from", metavar="RUN",
                       help="reuse the finished G1/G2 of this run folder or checkpoint (same first-layer config): only GAN 3 trains")
    train.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                       help="tf.distribute strategy: mirrored = all local GPUs, multiworker = the hosts in TF_CONFIG "
                       "(--batch-size is the global batch; see docs/RELIABILITY.md)")
    train.add_argument("--quiet", action="store_true", help="no progress bars or lines: only the result")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="the eight fusion metrics for folders of fused images")
    evaluate.add_argument("--ir", required=True, help="folder of infrared images")
    evaluate.add_argument("--vis", required=True, help="folder of visible images")
    evaluate.add_argument("--fused", required=True, action="append", metavar="DIR[=NAME]",
                          help="folder of fused images (repeatable: one method each, named after the folder or NAME)")
    evaluate.add_argument("--name", action="append", help="the method name of each --fused folder, in order (repeatable)")
    evaluate.add_argument("--out", required=True, help="folder for the CSV, Markdown and PNG results")
    evaluate.add_argument("--metrics", help="comma-separated metric names (default: the paper's eight)")
    evaluate.add_argument("--convention", choices=("matlab", "python"), default="matlab",
                          help="metric definitions: the MATLAB reference toolboxes (default) or the common Python evaluator")
    evaluate.add_argument("--methods-from-suffix", action="store_true",
                          help="one --fused folder holding <pair>_<method>.<ext> files (VIFB's layout)")
    evaluate.add_argument("--color", choices=("gray", "channels"), default="gray",
                          help="score colour results as BT.601 gray (default) or per channel as VIFB's tables do")
    add_subset_arguments(evaluate, "score")
    evaluate.add_argument("--workers", type=int, help="pairs scored at once, one thread each (default: "
                          "$TWOGAN_EVALUATE_WORKERS, else the CPU cores this process may use), fewer while large pairs would "
                          "hold more than 50 megapixels together; the scores do not depend on it")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_evaluate)

    fuse = commands.add_parser("fuse", help="fuse an IR/VIS pair of files, two folders paired by file name, or two videos")
    fuse.add_argument("--ir", required=True, help="infrared image file, folder or video (.mp4 .avi .mkv .mov)")
    fuse.add_argument("--vis", required=True, help="visible image file, folder or video (RGB keeps its colour)")
    fuse.add_argument("--out", required=True, help="output image file, folder for folder inputs (<name>.png), "
                      "or video file for video inputs")
    fuse.add_argument("--checkpoint", help="checkpoint or run folder with g1/g2/g3.keras, or a `twogan train --method fusiongan` run folder (default: the shipped one)")
    fuse.add_argument("--model", metavar="FILE", help="fuse with a model file written by `twogan export --format "
                      "onnx|openvino|litert` (.onnx, .xml, .tflite) through its runtime, without TensorFlow")
    fuse.add_argument("--tile", type=int, help="exact tiling with this tile side in pixels (default: automatic above "
                      "512x512 pixels for the paper widths, 1440x1440 for lite; 0: never tile)")
    fuse.add_argument("--precision", choices=("float32", "bfloat16"),
                      help="compute precision (default float32 for images; for videos bfloat16 where the CPU has "
                      "AVX512_BF16 or AMX, else float32; with --model float32, bfloat16 for OpenVINO only)")
    fuse.add_argument("--codec", choices=("libx264", "ffv1"), default="libx264",
                      help="video output: libx264 (H.264, CRF 17, default) or ffv1 (lossless, .mkv or .avi)")
    fuse.add_argument("--skip-unmatched", action="store_true", help="folder mode: fuse the pairs that match, ignore the rest")
    add_subset_arguments(fuse, "fuse")
    fuse.add_argument("--resize-vis", action="store_true",
                      help="resize each visible image onto its infrared image's grid (box filter, colour kept) first: "
                      "for pairs from two cameras, e.g. RoadScene as distributed")
    fuse.add_argument("--fusiongan-checkpoint", metavar="PREFIX",
                      help="fuse with an original FusionGAN TF1 checkpoint (prefix or its folder), reproducing its "
                      "test_one_image.py output (see docs/FUSIONGAN.md)")
    fuse.add_argument("--fusiongan-corrected", action="store_true",
                      help="with --fusiongan-checkpoint: spectral norm, restored BatchNorm statistics, no min-max stretch")
    fuse.add_argument("--quiet", action="store_true", help="no progress bar")
    fuse.set_defaults(handler=_fuse)

    export = commands.add_parser("export", help="write the fusion chain as a SavedModel for TF Serving, or as an ONNX, "
                                 "OpenVINO or LiteRT file for `twogan fuse --model`")
    export.add_argument("--checkpoint", help="two-layer GAN checkpoint or run folder (default: the shipped one); "
                        "FusionGAN runs (e.g. checkpoints/fusiongan_lite) cannot be exported")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="savedmodel",
                        help="savedmodel (default; TF Serving), onnx (.onnx), openvino (.xml + .bin) or litert (.tflite)")
    export.add_argument("--out", required=True, help="savedmodel: numbered version folder to create, e.g. export/twogan/1; "
                        "otherwise the model file, e.g. twogan.onnx")
    export.add_argument("--precision", choices=EXPORT_PRECISIONS, default="float32",
                        help="float32 (default) or int8 (onnx only: static quantization, about 1.6x faster on a "
                        "VNNI CPU, PSNR about 47 dB against float32; docs/PERFORMANCE.md)")
    export.add_argument("--calibration", metavar="DIR", help="int8: calibrate on every pair of DIR/ir and DIR/vis "
                        "(default: 8 TNO training pairs under the data root)")
    export.set_defaults(handler=_export)

    demo = commands.add_parser("demo", help="fuse the bundled sample pairs, print the metric table, draw a figure")
    demo.add_argument("--out", default="twogan_demo", help="output folder (default twogan_demo)")
    demo.add_argument("--checkpoint", help="checkpoint folder (default: the shipped one)")
    demo.set_defaults(handler=_demo)
    add_data_parser(commands)
    return parser


def package_version() -> str:
    """The installed distribution's version (``tf_twogan.__version__`` when run from a source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tf_twogan")
    except PackageNotFoundError:
        from . import __version__
        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``twogan``; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    caller_handler = None  # SIGTERM's handler before train's, given back on return (main may run inside a notebook)
    if args.command == "train" and threading.current_thread() is threading.main_thread():
        caller_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command in TENSORFLOW_COMMANDS and getattr(args, "model", None) is None:  # fuse --model: no TensorFlow
            import_tensorflow_quietly(verbose=args.verbose)
        handler(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"twogan {args.command}: error: {one_line(error)}", file=sys.stderr)  # whatever the library wrote
        return 2
    except KeyboardInterrupt:
        print(f"twogan {args.command}: interrupted", file=sys.stderr)
        if args.command == "train":
            command = shlex.join(["twogan", *(sys.argv[1:] if argv is None else argv)])
            print(f"twogan train: the finished epochs are saved; to resume, run: {command}", file=sys.stderr)
        return 130
    finally:
        if caller_handler is not None:
            signal.signal(signal.SIGTERM, caller_handler)
    return 0


def _interrupt(signum: int, frame) -> None:
    """SIGTERM handler of ``twogan train``: stop as Ctrl-C does (the finished epochs are kept, the rerun command printed)."""
    raise KeyboardInterrupt


def run() -> None:
    """The ``twogan`` console command: :func:`main`, then, for the inference commands, a quick exit.

    Once TensorFlow is loaded, the interpreter's final clean-up of its modules and objects
    takes about 1.1 s on a 2-core machine (a fifth of a single-pair ``twogan fuse``;
    benchmarks/bench_startup.py).  When ``fuse``, ``evaluate``, ``export`` or ``demo``
    returns, every output is complete and closed (written atomically; files and locks
    closed) and the command registered no exit handler, so after flushing the process
    ends with ``os._exit``.  ``train`` (minutes to hours) exits normally, and so does an
    exception from :func:`main` (an internal bug), which prints its traceback.
    """
    argv = sys.argv[1:]
    code = main(argv)
    command = next((argument for argument in argv if not argument.startswith("-")), None)  # top-level options take no value
    if command in QUICK_EXIT_COMMANDS and "tensorflow" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
