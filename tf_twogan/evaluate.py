"""Evaluate folders of fused images: per-image CSVs, a mean table, a Markdown table, a plot.

No TensorFlow here.  Images pair by file stem (:func:`tf_twogan.images.pair_folders`);
colour images become gray with ``round(0.299 R + 0.587 G + 0.114 B)`` before the
metrics of :mod:`tf_twogan.metrics` are computed.  Two layouts of fused results:

* :func:`evaluate_folders` -- one folder per method, files named ``<stem>.<ext>``;
  the method is the folder's name (``twogan evaluate --fused DIR [--fused DIR ...]``).
* :func:`evaluate_vifb_style` -- one folder holding every method, files named
  ``<stem>_<method>.<ext>`` as VIFB publishes them.

Both write into ``out_dir`` (each file atomically):
``<method>_metrics.csv`` (one row per image), ``metrics_mean.csv`` (columns
``method,EN,MI,...``, one row per method), ``metrics_mean.md`` (the best value of
each column in bold) and ``metrics_mean.png`` (one panel per metric, methods side
by side, as the paper's Fig. 9).  Means skip NaN scores (e.g. SCD of a fused image
equal to a source), as VIFB's ``nanmean`` does.
"""
from __future__ import annotations

import csv
import io
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from tf_twogan import metrics as M
from tf_twogan.atomic import atomic_write
from tf_twogan.config import ConfigError
from tf_twogan.errors import OutputError
from tf_twogan.images import (MAX_PIXELS, ImageError, image_size, list_images, natural_key, pair_folders, read_image,
                              to_gray_uint8, to_unit_scale)

__all__ = ["EvaluationResult", "PixelBudget", "evaluate_folders", "evaluate_vifb_style", "LOWER_IS_BETTER"]

# every other metric is better when higher
LOWER_IS_BETTER = frozenset({"RMSE", "CE"})


@dataclass(frozen=True)
class EvaluationResult:
    """What an evaluation computed and wrote.

    ``per_image[method][image][metric]`` and ``means[method][metric]`` hold the
    scores; ``files`` maps ``"mean_csv"``, ``"markdown"``, ``"plot"`` and
    ``"csv:<method>"`` to the written paths.  ``str(result)`` is the Markdown table.
    """

    metrics: tuple[str, ...]
    convention: str
    per_image: dict[str, dict[str, dict[str, float]]]
    means: dict[str, dict[str, float]]
    files: dict[str, Path] = field(default_factory=dict)
    color: str = "gray"
    peak_pairs: int = 0  # the most pairs scored at once (workers, fewer for large pairs: PixelBudget)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.means)

    def markdown(self) -> str:
        return markdown_table(self.means, self.metrics)

    def __str__(self) -> str:
        return self.markdown()


# ----------------------------------------------------------------------------
# public entry points


def evaluate_folders(
    ir_dir: str | os.PathLike,
    vis_dir: str | os.PathLike,
    fused_dirs: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    metrics: Iterable[str] | str | None = None,
    convention: str = "matlab",
    progress: bool = True,
    color: str = "gray",
    pairs: Iterable[str] | None = None,
    workers: int | None = None,
    method_names: Sequence[str | None] | None = None,
    pixel_budget: int = MAX_PIXELS,
) -> EvaluationResult:
    """Score every fused folder against the source pairs; write the tables and plot.

    With ``pairs`` (e.g. :func:`~tf_twogan.images.split_names`) only those pairs are
    scored, and every fused folder must hold each of them.

    ``fused_dirs``: one folder per method (named by ``method_names``, one per folder,
    or where that is None or absent by the folder's name), each
    holding ``<stem>.<ext>`` for the pairs it fused.  All fused folders must hold
    the same stems, and each stem needs an infrared and a visible image; pairs
    without a fused image are not evaluated.  ``metrics`` and ``convention`` as in
    :func:`tf_twogan.metrics.evaluate`.  ``color="gray"`` (default) scores the
    gray images (RGB -> rounded BT.601 luma); ``color="channels"`` scores colour
    fused images per channel and averages, as VIFB's own tables do.  ``workers``:
    pairs scored at once, each in a thread (default: :func:`default_workers`), fewer
    while the pairs being scored would hold more than ``pixel_budget`` pixels
    (:class:`PixelBudget`); the scores do not depend on either.  Raises :class:`ImageError` naming
    the files for missing counterparts and mismatched sizes, and the pair that ran out of memory.
    """
    if isinstance(fused_dirs, (str, os.PathLike)):
        fused_dirs = [fused_dirs]
    folders = [Path(d) for d in fused_dirs]
    if not folders:
        raise ConfigError("no fused folders given")
    given = list(method_names) if method_names is not None else [None] * len(folders)
    if len(given) != len(folders):
        raise ConfigError(f"{len(given)} method names for {len(folders)} fused folders")
    names = [name or _method_name(folder) for name, folder in zip(given, folders)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"fused folders must have distinct names (they name the methods): {', '.join(duplicates)}")
    methods = {name: list_images(folder) for name, folder in zip(names, folders)}
    return _evaluate(ir_dir, vis_dir, methods, out_dir, metrics, convention, progress, color, pairs, workers, pixel_budget)


def evaluate_vifb_style(
    ir_dir: str | os.PathLike,
    vis_dir: str | os.PathLike,
    fused_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    metrics: Iterable[str] | str | None = None,
    convention: str = "matlab",
    progress: bool = True,
    methods: Iterable[str] | None = None,
    color: str = "gray",
    workers: int | None = None,
    pixel_budget: int = MAX_PIXELS,
) -> EvaluationResult:
    """Like :func:`evaluate_folders` for one folder of ``<stem>_<method>.<ext>`` files.

    The stem is the longest infrared/visible pair name followed by ``_``; the rest
    of the file name is the method (``manCall_Hybrid_MSD.jpg`` -> pair ``manCall``,
    method ``Hybrid_MSD``).  ``methods`` restricts and orders the methods; by
    default all are evaluated, in alphabetical order.  ``color="channels"``
    reproduces VIFB's own per-channel scores of colour results.
    """
    sources = list_images(ir_dir)
    stems = sorted(sources, key=len, reverse=True)
    grouped: dict[str, dict[str, Path]] = {}
    unmatched = []
    for file_stem, path in list_images(fused_dir).items():
        stem = next((s for s in stems if file_stem.startswith(s + "_") and len(file_stem) > len(s) + 1), None)
        if stem is None:
            unmatched.append(path.name)
            continue
        grouped.setdefault(file_stem[len(stem) + 1:], {})[stem] = path
    if unmatched:
        raise ImageError(f"{fused_dir}: files not named <pair>_<method> for a pair in {ir_dir}: {', '.join(unmatched)}")
    if methods is None:
        order = sorted(grouped, key=str.lower)
    else:
        order = [str(m) for m in methods]
        missing = [m for m in order if m not in grouped]
        if missing:
            raise ImageError(f"{fused_dir}: no fused images for method(s) {', '.join(missing)}")
    return _evaluate(ir_dir, vis_dir, {m: grouped[m] for m in order}, out_dir, metrics, convention, progress, color,
                     workers=workers, pixel_budget=pixel_budget)


# ----------------------------------------------------------------------------
# evaluation


def _method_name(folder: Path) -> str:
    name = folder.resolve().name if folder.name in ("", ".", "..") else folder.name
    if not name:
        raise ConfigError(f"{folder}: cannot name a method after this folder")
    return name


def _fused_stems(methods: Mapping[str, Mapping[str, Path]], pairs: Iterable[str] | None = None) -> list[str]:
    """The stems to evaluate in natural order, ``pairs`` or else every fused stem; every method must have them all."""
    wanted = {str(name) for name in pairs} if pairs is not None else set().union(*map(set, methods.values()))
    problems = [f"method {method} has no fused image for {', '.join(sorted(wanted - set(files), key=natural_key))}"
                for method, files in methods.items() if wanted - set(files)]
    if problems:
        raise ImageError("fused images do not pair up: " + "; ".join(problems))
    return sorted(wanted, key=natural_key)


def _read_gray(path: Path) -> np.ndarray:
    return to_gray_uint8(read_image(path, MAX_PIXELS))


def _read_as_stored(path: Path) -> np.ndarray:
    image = read_image(path, MAX_PIXELS)
    return to_unit_scale(image) if image.dtype == np.uint16 else image


class PixelBudget:
    """Admits pairs to scoring in order while the pairs being scored hold at most ``limit`` pixels.

    Scoring holds about 120 bytes per pixel (the images and the metrics' float
    copies), so ``workers`` threads on large pairs exhausted memory that one pair
    at a time fits in (two 49-megapixel pairs: 11.8 GB).  A pair larger than the
    limit is scored alone.  ``peak_pairs`` is the most pairs admitted at once.
    """

    def __init__(self, limit: int) -> None:
        if type(limit) is not int or limit < 1:
            raise ConfigError(f"pixel_budget must be a positive integer, got {limit!r}")
        self.limit, self.peak_pairs = limit, 0
        self._pixels = self._pairs = self._next = 0
        self._condition = threading.Condition()

    @contextmanager
    def hold(self, ticket: int, pixels: int) -> Iterator[None]:
        """Wait until pair number ``ticket`` (0, 1, ... in order) fits, hold its ``pixels`` meanwhile."""
        with self._condition:
            self._condition.wait_for(lambda: self._next == ticket and (
                self._pairs == 0 or self._pixels + pixels <= self.limit))
            self._next += 1
            self._pixels, self._pairs = self._pixels + pixels, self._pairs + 1
            self.peak_pairs = max(self.peak_pairs, self._pairs)
            self._condition.notify_all()
        try:
            yield
        finally:
            with self._condition:
                self._pixels, self._pairs = self._pixels - pixels, self._pairs - 1
                self._condition.notify_all()


def _pair_pixels(path: Path, budget: int) -> int:
    """The pixels of a pair from its infrared image's header; the whole budget where the header is unreadable."""
    size = image_size(path, MAX_PIXELS)
    return size[0] * size[1] if size else budget


def _evaluate(ir_dir, vis_dir, methods, out_dir, metrics, convention, progress, color="gray",
              pairs: Iterable[str] | None = None, workers: int | None = None,
              pixel_budget: int = MAX_PIXELS) -> EvaluationResult:
    from .console import tqdm

    names = M.metric_names(metrics)
    if convention not in M.CONVENTIONS:
        raise ConfigError(f"convention must be one of {M.CONVENTIONS}, got {convention!r}")
    if color not in M.COLORS:
        raise ConfigError(f"color must be one of {M.COLORS}, got {color!r}")
    if workers is not None and (type(workers) is not int or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    budget = PixelBudget(pixel_budget)
    read = _read_gray if color == "gray" else _read_as_stored
    # every fused image needs both sources (names: the fused images, in natural order)
    sources = pair_folders(ir_dir, vis_dir, names=_fused_stems(methods, pairs))
    folders = {ir_dir, vis_dir, *(path.parent for files in methods.values() for path in files.values())}
    for folder in folders:  # an output named like an input would overwrite it
        if Path(out_dir).resolve() == Path(folder).resolve():
            raise ImageError(f"{out_dir}: is an input folder; choose another output folder")

    # from the headers, before any thread waits for its turn (a pair that raised here would never take it)
    pair_pixels = [_pair_pixels(ir_path, budget.limit) for _, ir_path, _ in sources]

    def score_pair(ticket: int) -> dict[str, dict[str, float]]:
        """Every method's scores of pair number ``ticket`` within the pixel budget; out of memory as an ImageError."""
        stem, ir_path, vis_path = sources[ticket]
        pixels = pair_pixels[ticket]
        with budget.hold(ticket, pixels):
            try:
                return scores_of(stem, ir_path, vis_path)
            except MemoryError:
                raise ImageError(f"{ir_path}, {vis_path}: out of memory scoring pair {stem} ({pixels / 1e6:.1f} "
                                 "megapixels); free memory, or score one pair at a time (--workers 1)") from None

    def scores_of(stem: str, ir_path: Path, vis_path: Path) -> dict[str, dict[str, float]]:
        """Every method's scores of one pair (its sources read once)."""
        ir, vis = read(ir_path), read(vis_path)
        if ir.shape[:2] != vis.shape[:2]:
            raise ImageError(f"sizes differ: {ir_path} is {ir.shape[:2]}, {vis_path} is {vis.shape[:2]}")
        scores = {}
        for method, files in methods.items():
            fused = read(files[stem])
            if fused.shape[:2] != ir.shape[:2]:
                raise ImageError(f"sizes differ: {files[stem]} is {fused.shape[:2]}, "
                                 f"its sources {ir_path.name}, {vis_path.name} are {ir.shape[:2]}")
            try:
                scores[method] = M.evaluate(ir, vis, fused, metrics=names, convention=convention, color=color)
            except ValueError as error:  # e.g. an image below SSIM's window
                raise ImageError(f"{files[stem]}: {error}") from None
        return scores

    per_image: dict[str, dict[str, dict[str, float]]] = {m: {} for m in methods}
    bar = tqdm(total=len(sources) * len(methods), desc="evaluate", unit="image", disable=not progress)
    # numpy and scipy release the GIL inside their loops, so threads score pairs side by side
    pool = ThreadPoolExecutor(max_workers=workers or default_workers())
    try:
        for (stem, _, _), scores in zip(sources, pool.map(score_pair, range(len(sources)))):  # in order: the first bad pair is named
            for method, row in scores.items():
                per_image[method][stem] = row
            bar.update(len(methods))
    finally:
        pool.shutdown(cancel_futures=True)  # after an error: the pairs not started are dropped
        bar.close()
    means = {m: {k: _over_defined(np.mean, [row[k] for row in per_image[m].values()]) for k in names} for m in methods}
    result = EvaluationResult(tuple(names), convention, per_image, means, color=color, peak_pairs=budget.peak_pairs)
    result.files.update(write_outputs(result, out_dir))
    return result


def default_workers() -> int:
    """Pairs scored at once by default: ``TWOGAN_EVALUATE_WORKERS`` if set, else the CPU cores this process may use.

    Set the variable to 1 where other processes already keep every core busy (the
    test suite does so under pytest-xdist): threads on a full machine only add
    switching between them.
    """
    text = os.environ.get("TWOGAN_EVALUATE_WORKERS")
    if text is None:
        return len(os.sched_getaffinity(0))
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) < 1:  # int() refuses '²'
        raise ConfigError(f"TWOGAN_EVALUATE_WORKERS must be a positive integer, got {text!r}")
    return int(text)


def _over_defined(statistic, values: Sequence[float]) -> float:
    """``statistic`` (np.mean, np.std) of the values that are not NaN; NaN (without numpy's warning) when none is."""
    defined = [v for v in values if not math.isnan(v)]
    return float(statistic(defined)) if defined else float("nan")


# ----------------------------------------------------------------------------
# outputs


def _csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.10g}" if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def _best(values: Sequence[float], metric: str) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    return min(finite) if metric in LOWER_IS_BETTER else max(finite)


def markdown_table(means: Mapping[str, Mapping[str, float]], metrics: Sequence[str], digits: int = 4,
                   bold_best: bool = True) -> str:
    """Markdown table of the means, the best value of each column in bold (unless ``bold_best=False``)."""
    lines = ["| method | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    best = {k: _best([row[k] for row in means.values()], k) if bold_best else None for k in metrics}
    for method, row in means.items():
        cells = []
        for k in metrics:
            text = f"{row[k]:.{digits}f}"
            cells.append(f"**{text}**" if best[k] is not None and f"{best[k]:.{digits}f}" == text else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_means(result: EvaluationResult, path: str | os.PathLike) -> Path:
    """Fig. 9-style PNG: one panel per metric, one bar per method (best bar dark),
    whiskers at one standard deviation over the images."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods, metrics = list(result.means), list(result.metrics)
    columns = min(4 if len(methods) <= 8 else 2, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    width = max(3.2, 0.28 * len(methods) + 1.2)
    figure = Figure(figsize=(width * columns, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    positions = np.arange(len(methods))
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(rows, columns, index + 1)
        means = np.array([result.means[m][metric] for m in methods])
        spread = np.array([_over_defined(np.std, [v[metric] for v in result.per_image[m].values()]) for m in methods])
        best = _best(list(means), metric)
        colours = ["#1f4e79" if best is not None and v == best else "#8fb3d9" for v in means]
        axes.bar(positions, means, yerr=spread, color=colours, error_kw=dict(lw=0.6, capsize=1.5, ecolor="#444444"))
        direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        axes.set_title(f"{metric} ({direction})", fontsize=9)
        axes.set_xticks(positions, methods, rotation=90, fontsize=7)
        axes.tick_params(axis="y", labelsize=7)
        axes.grid(axis="y", lw=0.3, alpha=0.6)
        axes.set_axisbelow(True)
    figure.suptitle(f"Mean over {len(next(iter(result.per_image.values())))} image pairs "
                    f"({result.convention} convention, {result.color})", fontsize=10)
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    return Path(path)


def write_outputs(result: EvaluationResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the per-method CSVs, ``metrics_mean.csv``/``.md`` and ``metrics_mean.png``: all or none.

    Each file goes to its own temporary file first; only when all are complete are
    they renamed into place, so a full disk leaves none of them (and no temporary).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(result.metrics)
    files: dict[str, Path] = {}
    with ExitStack() as staged:
        def stage(key: str, name: str) -> Path:
            if (out / name).is_dir():  # before any output is renamed into place
                raise OutputError(f"{out / name}: is a folder, where this output file goes (nothing written)")
            files[key] = out / name
            return staged.enter_context(atomic_write(out / name))

        for method, rows in result.per_image.items():
            text = _csv_text(["image", *metrics], ([stem, *(row[k] for k in metrics)] for stem, row in rows.items()))
            stage(f"csv:{method}", f"{method}_metrics.csv").write_text(text, encoding="utf-8", newline="")
        mean_rows = ([method, *(row[k] for k in metrics)] for method, row in result.means.items())
        stage("mean_csv", "metrics_mean.csv").write_text(_csv_text(["method", *metrics], mean_rows), encoding="utf-8", newline="")
        stage("markdown", "metrics_mean.md").write_text(result.markdown(), encoding="utf-8", newline="")
        plot_means(result, stage("plot", "metrics_mean.png"))
    return files
