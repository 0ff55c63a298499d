"""HDF5 patch stores: content, counts, attributes, atomic writes, refusal of bad stores."""
import json

import h5py
import numpy as np
import pytest

from helpers import MINI_PAIRS, TNO, tno_split
from tf_twogan.images import ImageError, read_gray_uint8
from tf_twogan.store import PatchStore, StoreError, patch_positions, prepare_store, sha256_file


def test_patch_i_equals_the_source_crop_at_its_recorded_position(mini_store):
    with PatchStore(mini_store, ("ir", "vis"), patch_size=128) as store:
        index, names = store.index, store.source_names
        assert names == MINI_PAIRS
        sources = {(kind, name): read_gray_uint8(next((TNO / kind).glob(f"{name}.*"))) for kind in ("ir", "vis") for name in names}
        for i in np.linspace(0, len(store) - 1, 9).astype(int):
            source, y, x = index[i]
            for kind in ("ir", "vis"):
                expected = sources[kind, names[source]][y:y + 128, x:x + 128]
                np.testing.assert_array_equal(store.read(kind, i, i + 1)[0, ..., 0], expected)
        np.testing.assert_array_equal(store.source_image("ir", "24"), sources["ir", "24"])


def test_patch_count_and_attributes(mini_store):
    with PatchStore(mini_store) as store:
        shapes = [read_gray_uint8(next((TNO / "ir").glob(f"{n}.*"))).shape for n in MINI_PAIRS]
        assert len(store) == sum(len(patch_positions(h, w, 128, 48)) for h, w in shapes)
        assert store.file["ir"].dtype == np.uint8 and store.file["ir"].shape == (len(store), 128, 128, 1)
        assert (store.patch_size, store.stride) == (128, 48)
        hashes = store.attribute("source_sha256")
        assert hashes["2"]["vis"] == sha256_file(next((TNO / "vis").glob("2.*")))
    assert not list(mini_store.parent.glob(".*tmp*")), "temporary file left behind"


@pytest.mark.needs_data("tno")
def test_tno_training_split_gives_36829_patch_pairs():
    # counted from the real images with the store's own position rule (the full
    # store itself is written by benchmarks/bench_prepare.py)
    total = sum(len(patch_positions(*read_gray_uint8(next((TNO / "ir").glob(f"{name}.*"))).shape, 128, 12))
                for name in tno_split()["train"])
    assert total == 36_829


def test_positions_follow_range_rule():
    assert patch_positions(130, 140, 128, 12).tolist() == [[0, 0], [0, 12]]
    assert len(patch_positions(127, 500, 128, 12)) == 0


def test_reader_refuses_other_versions_sizes_and_truncation(mini_store, tmp_path):
    with pytest.raises(StoreError, match="expected 132x132"):
        PatchStore(mini_store, patch_size=132)
    with pytest.raises(StoreError, match="missing dataset"):
        PatchStore(mini_store, kinds=("irv",))
    other = tmp_path / "old.h5"
    other.write_bytes(mini_store.read_bytes())
    with h5py.File(other, "a") as handle:
        handle.attrs["format_version"] = 99
    with pytest.raises(StoreError, match="format version 99"):
        PatchStore(other)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(mini_store.read_bytes()[: 100_000])
    with pytest.raises(StoreError, match="truncated.h5"):
        PatchStore(truncated)
    with pytest.raises(StoreError, match="no such patch store"):
        PatchStore(tmp_path / "absent.h5")


def test_prepare_names_mismatched_pairs_and_sizes(tmp_path):
    import imageio.v3 as iio

    ir, vis = tmp_path / "ir", tmp_path / "vis"
    ir.mkdir(), vis.mkdir()
    iio.imwrite(ir / "a.png", np.zeros((130, 130), np.uint8))
    iio.imwrite(vis / "a.png", np.zeros((130, 131), np.uint8))
    with pytest.raises(ImageError, match="sizes differ"):
        prepare_store(ir, vis, tmp_path / "s.h5", progress=False)
    iio.imwrite(ir / "b.png", np.zeros((130, 130), np.uint8))
    with pytest.raises(ImageError, match="only in .*ir: b"):
        prepare_store(ir, vis, tmp_path / "s.h5", progress=False)
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.needs_data("tno")
def test_split_file_selects_the_subset(tmp_path, mini_split):
    split = json.loads(mini_split.read_text())
    store = prepare_store(TNO / "ir", TNO / "vis", tmp_path / "test.h5", split=mini_split, subset="test", stride=200, progress=False)
    with PatchStore(store) as s:
        assert s.source_names == split["test"]


def test_verify_passes_a_fresh_store_and_names_a_modified_dataset(mini_store, tmp_path):
    from tf_twogan.cli import main
    from tf_twogan.store import verify_store

    report = verify_store(mini_store)
    assert "datasets match their SHA-256" in report[0] and "4 of 4 source files" in report[1]
    assert main(["prepare", "--verify", str(mini_store)]) == 0
    tampered = tmp_path / "tampered.h5"
    tampered.write_bytes(mini_store.read_bytes())
    with h5py.File(tampered, "a") as handle:
        handle["vis"][5] = 255 - handle["vis"][5]
    with pytest.raises(StoreError, match="dataset vis does not match"):
        verify_store(tampered)
    assert main(["prepare", "--verify", str(tampered)]) == 2


@pytest.mark.needs_data("tno")
def test_verify_notices_a_changed_source_file(tmp_path):
    import shutil

    from tf_twogan.store import verify_store

    ir, vis = tmp_path / "ir", tmp_path / "vis"
    ir.mkdir(), vis.mkdir()
    for kind, folder in (("ir", ir), ("vis", vis)):
        shutil.copy(next((TNO / kind).glob("2.*")), folder)
    store = prepare_store(ir, vis, tmp_path / "s.h5", stride=100, progress=False)
    assert verify_store(store)
    source = next(vis.glob("2.*"))
    data = source.read_bytes()
    source.write_bytes(data[:-1] + bytes([255 - data[-1]]))
    with pytest.raises(StoreError, match="has changed"):
        verify_store(store)
