"""images.pair_folders: the one place where two folders pair up by file stem (fuse, prepare, evaluate)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tf_twogan.images import ImageError, pair_folders, write_image


def folders(tmp_path: Path, first: list[str], second: list[str]) -> tuple[Path, Path]:
    """Two folders holding a tiny image for each name (``.png`` in the first, ``.bmp`` in the second)."""
    for folder, names, suffix in (("ir", first, ".png"), ("vis", second, ".bmp")):
        for name in names:
            write_image(tmp_path / folder / f"{name}{suffix}", np.zeros((4, 4), np.uint8))
    return tmp_path / "ir", tmp_path / "vis"


def test_every_stem_pairs_in_natural_order_across_suffixes(tmp_path):
    ir, vis = folders(tmp_path, ["10", "2", "b", "1"], ["1", "b", "2", "10"])
    assert pair_folders(ir, vis) == [(name, ir / f"{name}.png", vis / f"{name}.bmp") for name in ("1", "2", "10", "b")]


def test_unmatched_stems_are_listed_per_folder_unless_skipped(tmp_path):
    ir, vis = folders(tmp_path, ["1", "2", "10"], ["2", "10", "11"])
    with pytest.raises(ImageError) as error:
        pair_folders(ir, vis)
    message = str(error.value)
    assert "do not pair up" in message and f"only in {ir}: 1" in message and f"only in {vis}: 11" in message
    assert "--skip-unmatched" in message
    assert [name for name, _, _ in pair_folders(ir, vis, skip_unmatched=True)] == ["2", "10"]


def test_no_name_in_common_is_an_error_even_when_skipping(tmp_path):
    ir, vis = folders(tmp_path, ["a"], ["b"])
    with pytest.raises(ImageError, match="no image names in common"):
        pair_folders(ir, vis, skip_unmatched=True)


def test_names_select_pairs_in_their_order_and_each_must_be_in_both(tmp_path):
    ir, vis = folders(tmp_path, ["1", "2", "3", "only_ir"], ["1", "2", "3"])
    assert [name for name, _, _ in pair_folders(ir, vis, names=["3", "1", "3"])] == ["3", "1"]  # unmatched others ignored
    with pytest.raises(ImageError, match=re.escape(f"pairs not found in both folders: only_ir (not in {vis}), 9 (not in {ir}, {vis})")):
        pair_folders(ir, vis, names=["1", "only_ir", "9"])
    with pytest.raises(ImageError, match="list of pairs to use is empty"):
        pair_folders(ir, vis, names=[])
