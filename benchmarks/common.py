"""Shared benchmark plumbing: data paths, the machine's load, timing."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from tf_twogan.datasets import data_root

REPO = Path(__file__).resolve().parents[1]
DATA = data_root()  # $TWOGAN_DATA, else ../shared/data, else the user cache (docs/DATA.md)
TNO = DATA / "tno"


def load_note() -> str:
    """The 1-minute load average and core count: a number measured beside a background job says so."""
    one, _, _ = os.getloadavg()
    return f"load average {one:.2f} on {os.cpu_count()} cores" + (" (NOT idle: other work was running)" if one > 1.0 else "")


def best_of(function: Callable[[], object], repeats: int = 3) -> float:
    """Smallest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def write_json(path: str | os.PathLike | None, results: dict) -> None:
    """Also write a benchmark's results as JSON when ``--json PATH`` was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2) + "\n")
