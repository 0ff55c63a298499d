"""HDF5 patch stores (docs/DESIGN.md section 10): writing, validating and reading.

A store holds aligned square patches of two or more image kinds (``ir``/``vis`` for
stage 1, ``irv``/``vir`` for the second layer) as uint8 datasets of shape
(N, P, P, 1), gzip-compressed in chunks of :data:`CHUNK_PATCHES`; an ``index``
(source, y, x) saying where each patch was cut; the whole source images under
``sources/<kind>/<name>`` (so the second-layer store can be made from the store
alone); and attributes with the format, its version, patch size, stride, source
names and their files' SHA-256, and the SHA-256 of every dataset's content
(``content_sha256``, checked by :func:`verify_store`).  Files are written to a temporary name and renamed into
place.  No TensorFlow here.

One module of about 400 lines on purpose: writing, validating and reading share the
format's constants and checks, and splitting them would put one file format in three places.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .atomic import atomic_write
from .datasets import split_file
from .errors import TwoGanError
from .images import (MAX_PIXELS, ImageError, pair_folders, read_gray_uint8, refuse_output_over_inputs, require_free_space,
                     split_names)
from .locking import remove_stray_temporaries

FORMAT_NAME = "tf_twogan.patch_store"
FORMAT_VERSION = 1
CHUNK_PATCHES = 64
SOURCE_KINDS = ("ir", "vis")
REQUIRED_ATTRIBUTES = ("format", "format_version", "patch_size", "stride", "kinds", "source_names", "patch_count")


class StoreError(TwoGanError, ValueError):
    """A patch store is missing, truncated, of another format or mismatched; the message names it."""


def patch_positions(height: int, width: int, patch_size: int, stride: int) -> np.ndarray:
    """Top-left corners (y, x) of every patch, row by row: y, x in range(0, side - P + 1, stride)."""
    ys = np.arange(0, height - patch_size + 1, stride)
    xs = np.arange(0, width - patch_size + 1, stride)
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)


def crop_patches(image: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """All patches of a 2-D image in :func:`patch_positions` order: (K, P, P, 1), a copy."""
    return np.concatenate(list(crop_patch_blocks(image, patch_size, stride)))


def crop_patch_blocks(image: np.ndarray, patch_size: int, stride: int, patches: int = CHUNK_PATCHES * 16) -> Iterator[np.ndarray]:
    """:func:`crop_patches` in consecutive blocks of whole patch rows (about ``patches`` each), so memory stays bounded."""
    windows = sliding_window_view(image, (patch_size, patch_size))[::stride, ::stride]
    rows = max(1, patches // max(1, windows.shape[1]))
    for first in range(0, max(1, windows.shape[0]), rows):
        yield windows[first:first + rows].reshape(-1, patch_size, patch_size)[..., None].copy()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index_bytes(patches: int) -> int:
    """Bytes of a store's ``index`` dataset: (source, y, x) int32 per patch."""
    return patches * 3 * 4


def _progress(total: int, description: str, enabled: bool):
    from .console import tqdm

    return tqdm(total=total, desc=description, unit="patch", disable=not enabled, leave=False)


def write_patch_store(
    out: str | os.PathLike,
    sources: Sequence[tuple[str, dict[str, np.ndarray]]],
    patch_size: int = 128,
    stride: int = 12,
    attributes: dict | None = None,
    keep_sources: bool = True,
    progress: bool = True,
) -> Path:
    """Cut aligned patches from named groups of same-size images and write a store atomically.

    ``sources`` is ``[(name, {kind: 2-D uint8 image})]`` with the same kinds in every
    entry.  Images smaller than one patch contribute no patches; a store with no
    patch at all is refused.
    """
    if not sources:
        raise StoreError(f"{out}: no source images to cut patches from")
    kinds = tuple(sources[0][1])
    counts = []
    for name, images in sources:
        shapes = {kind: image.shape for kind, image in images.items()}
        if tuple(images) != kinds or len(set(shapes.values())) != 1:
            raise StoreError(f"{out}: source {name!r} has kinds/shapes {shapes}, expected kinds {kinds} of one size")
        counts.append(len(patch_positions(*next(iter(shapes.values())), patch_size, stride)))
    total = int(sum(counts))
    if total == 0:
        raise StoreError(f"{out}: no {patch_size}x{patch_size} patch fits in any source image")

    stored_bytes = total * patch_size * patch_size * len(kinds) + index_bytes(total)
    if keep_sources:
        stored_bytes += sum(image.nbytes for _, images in sources for image in images.values())
    remove_stray_temporaries(Path(out).parent, out)  # a killed earlier write's (up to the store's size), before counting space
    require_free_space(out, stored_bytes + 2**20, "the uncompressed patches")
    # h5py writes through a Python file object: a full disk then raises OSError here
    # (atomic_write reports it naming the store) instead of crashing inside libhdf5.
    target = Path(out)
    with atomic_write(out) as temporary, open(temporary, "w+b") as raw, h5py.File(raw, "w") as handle, \
            _progress(total, f"writing {target.name}", progress) as bar:
        datasets = {kind: handle.create_dataset(
            kind, (total, patch_size, patch_size, 1), dtype="u1", chunks=(min(CHUNK_PATCHES, total), patch_size, patch_size, 1),
            compression="gzip", compression_opts=1) for kind in kinds}
        index = np.zeros((total, 3), dtype=np.int32)
        digests = {kind: hashlib.sha256() for kind in kinds}
        start = 0
        for source_number, ((name, images), count) in enumerate(zip(sources, counts)):
            if count:
                height, width = next(iter(images.values())).shape
                index[start:start + count, 0] = source_number
                index[start:start + count, 1:] = patch_positions(height, width, patch_size, stride)
                for kind, image in images.items():
                    row = start
                    for patches in crop_patch_blocks(image, patch_size, stride):
                        datasets[kind][row:row + len(patches)] = patches
                        digests[kind].update(patches.tobytes())
                        row += len(patches)
            if keep_sources:
                for kind, image in images.items():
                    key = f"sources/{kind}/{name}"
                    handle.create_dataset(key, data=image, compression="gzip", compression_opts=1)
                    digests[key] = hashlib.sha256(np.ascontiguousarray(image).tobytes())
            start += count
            bar.update(count)
        handle.create_dataset("index", data=index)
        digests["index"] = hashlib.sha256(index.tobytes())
        handle.attrs.update({
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "patch_size": patch_size,
            "stride": stride,
            "kinds": json.dumps(kinds),
            "source_names": json.dumps([name for name, _ in sources]),
            "patch_count": total,
            "content_sha256": json.dumps({key: digest.hexdigest() for key, digest in sorted(digests.items())}),
            **{key: value if isinstance(value, (int, float, str)) else json.dumps(value) for key, value in (attributes or {}).items()},
        })
    return target


def prepare_store(
    ir_dir: str | os.PathLike,
    vis_dir: str | os.PathLike,
    out: str | os.PathLike,
    split: str | os.PathLike | None = None,
    subset: str = "train",
    patch_size: int = 128,
    stride: int = 12,
    progress: bool = True,
) -> Path:
    """``twogan prepare``: pair IR/VIS images by name, cut patches, write a store.

    With ``split`` (a shipped split by name, e.g. ``tno``, or a JSON file with lists of
    pair names per subset) only the pairs of ``subset`` are used.  Images are read as
    8-bit gray (gray-as-RGB keeps its channel, colour becomes BT.601 luma).
    """
    names = None
    if split is not None:
        split = split_file(split)
        try:
            names = split_names(split, subset)
        except ImageError as error:  # a split file is part of what the store is made from
            raise StoreError(str(error)) from None
    refuse_output_over_inputs(out, (ir_dir, vis_dir, split))
    pairs = pair_folders(ir_dir, vis_dir, names)
    sources, hashes = [], {}
    for name, ir_path, vis_path in pairs:
        ir, vis = read_gray_uint8(ir_path, MAX_PIXELS), read_gray_uint8(vis_path, MAX_PIXELS)
        if ir.shape != vis.shape:
            raise ImageError(f"{ir_path} and {vis_path}: sizes differ ({ir.shape[1]}x{ir.shape[0]} vs {vis.shape[1]}x{vis.shape[0]})")
        sources.append((name, {"ir": ir, "vis": vis}))
        hashes[name] = {"ir": sha256_file(ir_path), "vis": sha256_file(vis_path)}
    attributes = {"source_sha256": hashes, "created_with": {
        "ir_dir": str(ir_dir), "vis_dir": str(vis_dir), "split": None if split is None else str(split),
        "subset": subset if split is not None else None}}
    return write_patch_store(out, sources, patch_size, stride, attributes, progress=progress)


class PatchStore:
    """Read-only view of a patch store that validates it on opening.

    Args:
        path: the ``.h5`` file.
        kinds: patch datasets the caller needs (e.g. ``("ir", "vis")``).
        patch_size: the expected patch size, if the caller needs one.

    Raises :class:`StoreError` naming the file for a missing or truncated file,
    another format or version, a patch size other than expected, or datasets that
    are missing or disagree in length.  Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, kinds: Iterable[str] = (), patch_size: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such patch store")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as error:
            raise StoreError(f"{self.path}: not a readable HDF5 patch store (truncated or corrupt? {error})") from None
        try:
            self._validate(tuple(kinds), patch_size)
        except Exception:
            self.file.close()
            raise

    def _validate(self, kinds: tuple[str, ...], patch_size: int | None) -> None:
        """Check every attribute and the datasets' dtypes and shapes (cheap: nothing is decompressed)."""
        try:
            self._check_attributes(patch_size)
            self._check_datasets(kinds)
        except StoreError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as error:  # an unreadable or mangled attribute/object
            raise StoreError(f"{self.path}: damaged patch store ({type(error).__name__}: {error})") from None

    def _check_attributes(self, patch_size: int | None) -> None:
        attrs = self.file.attrs
        if attrs.get("format") != FORMAT_NAME:
            raise StoreError(f"{self.path}: not a tf_twogan patch store (format attribute {attrs.get('format')!r})")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{self.path}: store format version {attrs.get('format_version')}, this tf_twogan reads version {FORMAT_VERSION}")
        missing = [name for name in REQUIRED_ATTRIBUTES if name not in attrs]
        if missing:
            raise StoreError(f"{self.path}: missing attribute(s) {', '.join(missing)} (damaged, or not made by twogan prepare)")
        for name in ("patch_size", "stride", "patch_count"):
            value = attrs[name]
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
                raise StoreError(f"{self.path}: attribute {name} must be a positive integer, got {value!r}")
        for name in ("kinds", "source_names"):
            value = self.attribute(name)
            if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value) or (name == "kinds" and not value):
                raise StoreError(f"{self.path}: attribute {name} must be a JSON list of names, got {str(attrs[name])[:80]!r}")
        if patch_size is not None and attrs["patch_size"] != patch_size:
            raise StoreError(f"{self.path}: patches are {attrs['patch_size']}x{attrs['patch_size']}, expected {patch_size}x{patch_size}")

    def _check_datasets(self, kinds: tuple[str, ...]) -> None:
        missing = [name for name in dict.fromkeys((*kinds, *self.kinds, "index")) if not isinstance(self.file.get(name), h5py.Dataset)]
        if missing:
            raise StoreError(f"{self.path}: missing dataset(s) {', '.join(missing)}")
        count, side = len(self), self.patch_size
        for kind in self.kinds:
            dataset = self.file[kind]
            if dataset.dtype != np.uint8 or dataset.shape[1:] != (side, side, 1):
                raise StoreError(f"{self.path}: dataset {kind} is {dataset.dtype} {dataset.shape}, "
                                 f"expected uint8 (N, {side}, {side}, 1)")
        index = self.file["index"]
        if index.ndim != 2 or index.shape[1] != 3 or not np.issubdtype(index.dtype, np.integer):
            raise StoreError(f"{self.path}: dataset index is {index.dtype} {index.shape}, expected integers (N, 3)")
        lengths = {name: self.file[name].shape[0] for name in (*self.kinds, "index")}
        if any(length != count for length in lengths.values()):
            raise StoreError(f"{self.path}: dataset lengths {lengths} disagree with patch_count {count}")

    def check_layout(self) -> None:
        """The index must be exactly the patch grid (patch size, stride) of each stored source image.

        Catches a wrong ``stride`` or ``source_names`` up front, instead of when the
        second-layer store is cut after GAN 1 and GAN 2 have trained.  Stores without
        source images (the second-layer store) have nothing to check against.
        """
        names, index = self.source_names, self.index
        if "sources" not in self.file:
            return
        if index.size and (index[:, 0].min() < 0 or index[:, 0].max() >= len(names)):
            raise StoreError(f"{self.path}: index names source numbers outside the {len(names)} source_names")
        for number, name in enumerate(names):
            key = f"sources/{SOURCE_KINDS[0]}/{name}"
            if not all(f"sources/{kind}/{name}" in self.file for kind in SOURCE_KINDS):
                raise StoreError(f"{self.path}: has no source images for {name!r} (source_names and sources disagree)")
            expected = patch_positions(*self.file[key].shape[:2], self.patch_size, self.stride)
            if not np.array_equal(index[index[:, 0] == number, 1:], expected):
                raise StoreError(f"{self.path}: patch positions of source {name!r} are not the {self.patch_size}-pixel "
                                 f"grid at stride {self.stride} (wrong stride attribute, or a damaged index)")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(json.loads(self.file.attrs["kinds"]))

    @property
    def patch_size(self) -> int:
        return int(self.file.attrs["patch_size"])

    @property
    def stride(self) -> int:
        return int(self.file.attrs["stride"])

    @property
    def source_names(self) -> list[str]:
        return json.loads(self.file.attrs["source_names"])

    @property
    def index(self) -> np.ndarray:
        """(N, 3) int32: source number (into :attr:`source_names`), y, x."""
        return self.file["index"][...]

    def attribute(self, name: str, default=None):
        value = self.file.attrs.get(name, default)
        try:
            return json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            return value

    def __len__(self) -> int:
        return int(self.file.attrs["patch_count"])

    def read(self, kind: str, start: int, stop: int) -> np.ndarray:
        """Patches ``start:stop`` of one kind, (n, P, P, 1) uint8; a read error is a :class:`StoreError` naming the store."""
        try:
            return self.file[kind][start:stop]
        except OSError as error:
            raise StoreError(f"{self.path}: dataset {kind} cannot be read at patches {start}:{stop} (damaged? {error})") from None

    def source_image(self, kind: str, name: str) -> np.ndarray:
        """The whole source image of one kind and pair, as stored at preparation."""
        key = f"sources/{kind}/{name}"
        if key not in self.file:
            raise StoreError(f"{self.path}: has no source image {key}")
        return self.file[key][...]

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "PatchStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def derive_store(
    store_path: str | os.PathLike,
    out: str | os.PathLike,
    transform: Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]],
    attributes: dict | None = None,
    progress: bool = True,
) -> Path:
    """A store of new image kinds made from each source pair of another store.

    ``transform(name, {"ir": ..., "vis": ...})`` returns whole uint8 images of new
    kinds (the second layer's I_IRV and I_VIR); they are cut at the same positions as
    the parent store's patches.  Used for stage 2 of training (docs/DESIGN.md section 4).
    """
    with PatchStore(store_path) as parent:
        names, patch_size, stride = parent.source_names, parent.patch_size, parent.stride
        sources = [(name, transform(name, {kind: parent.source_image(kind, name) for kind in SOURCE_KINDS})) for name in names]
    derived = {"derived_from": str(store_path), "derived_from_sha256": sha256_file(store_path), **(attributes or {})}
    return write_patch_store(out, sources, patch_size, stride, derived, keep_sources=False, progress=progress)


def dataset_sha256(dataset: h5py.Dataset, rows: int = 4096) -> str:
    """SHA-256 of a dataset's raw C-order bytes, read ``rows`` entries at a time."""
    digest = hashlib.sha256()
    for start in range(0, dataset.shape[0], rows):
        digest.update(np.ascontiguousarray(dataset[start:start + rows]).tobytes())
    return digest.hexdigest()


def store_identity(path: str | os.PathLike) -> str:
    """A digest of the content checksums a store records: equal for stores of equal content, wherever they are."""
    with PatchStore(path) as store:
        recorded = store.file.attrs.get("content_sha256", "")
    return hashlib.sha256(str(recorded).encode()).hexdigest()


def verify_store(path: str | os.PathLike, check_sources: bool = True) -> list[str]:
    """``twogan prepare --verify``: re-check a store's structure, content and sources.

    Recomputes the SHA-256 of every dataset against ``content_sha256`` and, where the
    source image files are still at the recorded folders, their SHA-256 too.  Returns
    the lines of a report; raises :class:`StoreError` naming the first failing part.
    """
    report = []
    with PatchStore(path) as store:
        store.check_layout()
        expected = store.attribute("content_sha256")
        if not isinstance(expected, dict):
            raise StoreError(f"{store.path}: records no content checksum (made by an older tf_twogan?)")
        for key, digest in expected.items():
            if key not in store.file:
                raise StoreError(f"{store.path}: dataset {key} is missing")
            try:
                actual = dataset_sha256(store.file[key])
            except OSError as error:
                raise StoreError(f"{store.path}: dataset {key} cannot be read ({error})") from None
            if actual != digest:
                raise StoreError(f"{store.path}: dataset {key} does not match its recorded checksum (corrupt or modified)")
        report.append(f"{store.path}: {len(store)} patch pairs, {len(expected)} datasets match their SHA-256")
        created = store.attribute("created_with") or {}
        hashes = store.attribute("source_sha256") or {}
        if check_sources and hashes and created.get("ir_dir"):
            folders = {"ir": Path(created["ir_dir"]), "vis": Path(created["vis_dir"])}
            checked = 0
            for name, kinds in hashes.items():
                for kind, digest in kinds.items():
                    # the name is a file stem, not a pattern: "[1]" or "a*b" must match only themselves
                    matches = sorted(path for path in folders[kind].iterdir() if path.stem == name) if folders[kind].is_dir() else []
                    if not matches:
                        continue
                    if sha256_file(matches[0]) != digest:
                        raise StoreError(f"{store.path}: source {matches[0]} has changed since the store was made")
                    checked += 1
            report.append(f"{checked} of {2 * len(hashes)} source files found and unchanged")
    return report
