"""``twogan demo``: fuse the bundled sample pairs, score them, draw a side-by-side figure.

The samples are small crops of held-out TNO pairs (``tf_twogan/samples``, see its
README); the checkpoint is the shipped one unless another is given.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .config import ConfigError
from .images import natural_key, pair_folders, read_image, write_image

# a file in every folder the demo writes: its outputs there are the demo's to replace
DEMO_MARK = ".twogan-demo"


def sample_pairs() -> list[tuple[str, Path, Path]]:
    """The bundled sample pairs: ``[(name, ir_path, vis_path)]``."""
    folder = Path(str(files("tf_twogan") / "samples"))
    return pair_folders(folder / "ir", folder / "vis")


def metrics_table(scores: dict[str, dict[str, float]]) -> str:
    """A Markdown table: one row per image and a mean row, one column per metric."""
    names = list(next(iter(scores.values())))
    cell = lambda value: f"{round(value, 4) + 0.0:.4f}"  # noqa: E731  (no "-0.0000")
    lines = ["| image | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for image in sorted(scores, key=natural_key):
        lines.append(f"| {image} | " + " | ".join(cell(scores[image][n]) for n in names) + " |")
    means = {n: float(np.mean([row[n] for row in scores.values()])) for n in names}
    lines.append("| **mean** | " + " | ".join(cell(means[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def side_by_side(rows: list[tuple[str, list[np.ndarray]]], titles: list[str], path: str | os.PathLike) -> Path:
    """A figure with one row per pair, one column per title (IR, VIS, fused ...); written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(len(rows), len(titles), figsize=(3 * len(titles), 2.7 * len(rows)), squeeze=False)
    for axis_row, (name, images) in zip(axes, rows):
        for axis, image, title in zip(axis_row, images, titles):
            axis.imshow(image, cmap="gray", vmin=0, vmax=255)
            axis.set_title(f"{name}: {title}", fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
    finally:
        plt.close(figure)
    return Path(path)


def claim_output_folder(out_dir: Path, outputs: list[Path]) -> None:
    """Mark ``out_dir`` as the demo's, refusing it if one of ``outputs`` exists there and the demo did not write it."""
    mark = out_dir / DEMO_MARK
    if not mark.is_file():
        existing = [path for path in outputs if path.exists() or path.is_symlink()]
        if existing:
            raise ConfigError(f"{existing[0]}: exists and was not written by twogan demo; choose another --out "
                              "(nothing was changed)")
    with atomic_write(mark) as temporary:
        temporary.write_text("written by twogan demo: the next twogan demo with this --out replaces its outputs here\n")


def _shipped_baseline():
    """``fuse(ir, vis)`` with the shipped FusionGAN baseline (gray in, uint8 gray out)."""
    from .checkpoints import checkpoint_dir
    from .fusiongan import FusionGanFuser
    from .images import to_gray_uint8

    fuser = FusionGanFuser.from_run(checkpoint_dir("fusiongan_lite"))
    return lambda ir, vis: fuser.fuse_gray(to_gray_uint8(ir), to_gray_uint8(vis))


def demo(out_dir: str | os.PathLike = "twogan_demo", checkpoint: str | os.PathLike | None = None,
         verbose: bool = True) -> dict[str, Any]:
    """Fuse the sample pairs into ``out_dir/fused/``, score them with the paper's eight
    metrics and TR (``out_dir/metrics.md``, printed) and draw ``out_dir/demo.png``.

    A file of these names that an earlier demo did not write (no ``.twogan-demo`` mark
    in ``out_dir``) is never replaced: a :class:`ConfigError` names it first.

    With the shipped checkpoint the figure also shows the shipped FusionGAN baseline
    (``checkpoints/fusiongan_lite``) beside ours, so the two can be compared at a glance.

    Returns ``{"fused": [paths], "metrics": {image: {metric: value}}, "table": str, "figure": path}``.
    """
    from .inference import Fuser
    from .metrics import evaluate

    out_dir = Path(out_dir)
    pairs = sample_pairs()
    claim_output_folder(out_dir, [out_dir / "metrics.md", out_dir / "demo.png",
                                  *(out_dir / "fused" / f"{name}.png" for name, _, _ in pairs)])
    fuser = Fuser(checkpoint)
    baseline = _shipped_baseline() if checkpoint is None else None
    written, scores, rows = [], {}, []
    for name, ir_path, vis_path in pairs:
        ir, vis = read_image(ir_path), read_image(vis_path)
        fused = fuser.fuse_arrays(ir, vis, ir_label=str(ir_path), vis_label=str(vis_path))
        written.append(write_image(out_dir / "fused" / f"{name}.png", fused))
        scores[name] = evaluate(ir, vis, fused)
        rows.append((name, [ir, vis] + ([baseline(ir, vis)] if baseline else []) + [fused]))
    table = metrics_table(scores)
    with atomic_write(out_dir / "metrics.md") as temporary:
        temporary.write_text(table)
    titles = ["infrared", "visible"] + (["FusionGAN baseline"] if baseline else []) + ["fused (ours)"]
    figure = side_by_side(rows, titles, out_dir / "demo.png")
    if verbose:
        source = checkpoint if checkpoint is not None else "the shipped checkpoint"
        print(f"Fused {len(written)} sample pairs with {source} into {out_dir / 'fused'}\n")
        print(table)
        print(f"metrics: {out_dir / 'metrics.md'}\nfigure:  {figure}")
    return {"fused": written, "metrics": scores, "table": table, "figure": figure}
