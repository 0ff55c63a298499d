"""Soak: fuse many pairs in one process with one ``inference.Fuser``; does resident memory grow?

Cycles over the real TNO, RoadScene and VIFB pairs (mixed sizes; VIFB's visible images
are in colour), reading, fusing and writing each pair with :meth:`Fuser.fuse_files`
exactly as ``twogan fuse`` does, and reads the resident set size (``VmRSS`` of
``/proc/self/status``) after every pair.  Goal: no growth between the first and the
last 100 pairs.

    python benchmarks/bench_soak.py                        # 500 pairs, shipped checkpoint if any
    python benchmarks/bench_soak.py --pairs 2000 --checkpoint runs/lite_tno

Without a checkpoint folder (``--checkpoint`` or the shipped one) the chain is a
random-weight generator triple of the ``lite`` widths: memory behaviour does not
depend on the weights.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, load_note  # noqa: E402


def rss_mib() -> float:
    """Resident set size of this process in MiB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def source_pairs() -> list[tuple[str, Path, Path]]:
    """(name, ir, vis) of every TNO, RoadScene and VIFB pair whose two images have the same size.

    (A few RoadScene pairs are unregistered raw frames of different sizes, which
    ``twogan fuse`` refuses; they are left out.)
    """
    from tf_twogan.images import pair_folders, read_image

    pairs = []
    for dataset in ("tno", "roadscene", "vifb"):
        folder = DATA / dataset
        if (folder / "ir").is_dir():
            pairs += [(f"{dataset}_{name}", ir, vis) for name, ir, vis in pair_folders(folder / "ir", folder / "vis")
                      if read_image(ir).shape[:2] == read_image(vis).shape[:2]]
    if not pairs:
        from tf_twogan import inference

        samples = Path(inference.__file__).parent / "samples"
        pairs = [(f"sample_{name}", ir, vis) for name, ir, vis in pair_folders(samples / "ir", samples / "vis")]
    return pairs


def make_fuser(checkpoint: str | None):
    """A Fuser of ``checkpoint``, of the shipped checkpoint, or of random lite-width generators."""
    from tf_twogan.inference import Fuser

    try:
        return Fuser(checkpoint), checkpoint or "shipped checkpoint"
    except FileNotFoundError:
        if checkpoint is not None:
            raise
    from tf_twogan.config import preset
    from tf_twogan.models import Generator

    settings = preset("lite").generator
    generators = []
    for number in (1, 2, 3):
        generator = Generator.from_settings(settings, name=f"g{number}")
        generator.build()
        generators.append(generator)
    return Fuser(generators=(*generators, False)), f"random weights, lite widths {settings.widths}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500, help="pairs to fuse (default 500)")
    parser.add_argument("--window", type=int, default=100, help="pairs compared at the start and the end (default 100)")
    parser.add_argument("--checkpoint", help="checkpoint or run folder (default: the shipped one, else random weights)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    import tensorflow as tf  # noqa: F401 (imported before the first reading, like any fusing process)

    pairs = source_pairs()
    fuser, described = make_fuser(args.checkpoint)
    print(f"{len(pairs)} distinct pairs, fuser: {described}; RSS after loading {rss_mib():.1f} MiB; {load_note()}")
    rss, seconds = [], []
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        for count, (name, ir, vis) in enumerate(itertools.islice(itertools.cycle(pairs), args.pairs), start=1):
            tick = time.perf_counter()
            fuser.fuse_files(ir, vis, Path(out) / f"{name}.png")
            seconds.append(time.perf_counter() - tick)
            rss.append(rss_mib())
            if count % 100 == 0:
                print(f"  {count:5d} pairs  RSS {rss[-1]:7.1f} MiB  {np.mean(seconds[-100:]):.3f} s/pair  {load_note()}")
        total = time.perf_counter() - started
    first, last = np.array(rss[:args.window]), np.array(rss[-args.window:])
    result = {
        "pairs": args.pairs, "distinct_pairs": len(pairs), "fuser": described,
        "rss_first_mean_mib": float(first.mean()), "rss_first_max_mib": float(first.max()),
        "rss_last_mean_mib": float(last.mean()), "rss_last_max_mib": float(last.max()),
        "growth_mean_mib": float(last.mean() - first.mean()), "growth_max_mib": float(last.max() - first.max()),
        "rss_at_end_of_first_cycle_mib": float(rss[min(len(pairs), len(rss)) - 1]), "rss_final_mib": float(rss[-1]),
        "seconds_total": total, "seconds_per_pair_median": float(np.median(seconds)),
        "load_average_end": load_note(),
    }
    print(f"first {args.window} pairs: RSS mean {result['rss_first_mean_mib']:.1f} MiB, max {result['rss_first_max_mib']:.1f} MiB")
    print(f"last {args.window} pairs:  RSS mean {result['rss_last_mean_mib']:.1f} MiB, max {result['rss_last_max_mib']:.1f} MiB")
    print(f"growth: mean {result['growth_mean_mib']:+.1f} MiB, max {result['growth_max_mib']:+.1f} MiB; "
          f"{args.pairs} pairs in {total:.0f} s (median {result['seconds_per_pair_median']:.3f} s/pair); {load_note()}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
