"""The image datasets: where they live (the data root), what they hold, how to get and check them.

``tf_twogan/datasets.json`` lists, for TNO, RoadScene and VIFB, the public archive each
comes from, which folders of that archive become ``<root>/<name>/{ir,vis,...}`` and the
SHA-256 of every file (docs/DATA.md).  :func:`fetch` downloads an archive (resuming a
partial download where the server allows it), unpacks the listed files into a work
folder, verifies them and only then renames the folder into place, so ``<root>/<name>``
is either absent or complete.  The splits the project uses ship in ``tf_twogan/splits``
(:func:`split_file`).  No TensorFlow here.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import TwoGanError
from .locking import FolderLock

MANIFEST = Path(__file__).with_name("datasets.json")
SPLITS = Path(__file__).with_name("splits")
DATA_ENV = "TWOGAN_DATA"
WORK_FOLDER = ".twogan-fetch"  # under the data root: downloads and unpacking in progress
CHUNK = 1 << 20


class DatasetError(TwoGanError, ValueError):
    """A dataset is missing, unknown, damaged, or cannot be fetched; the message names it."""


@dataclass(frozen=True)
class Dataset:
    """One dataset of the manifest.

    Args:
        name: folder name under the data root, e.g. ``tno``.
        title, licence, citation: what ``twogan data list`` shows.
        pairs: image pairs (IR, VIS) it holds.
        bytes: total size of its files.
        repository, url: where it comes from; ``url`` is the archive :func:`fetch` downloads.
        folders: our folder -> the archive folder it comes from, below the archive's top folder
            (``{"vis": "Test_vi"}`` renames FusionGAN's ``Test_vi`` to ``vis``).
        files: ``"<folder>/<file>"`` -> SHA-256 of every file of the dataset.
    """

    name: str
    title: str
    pairs: int
    bytes: int
    licence: str
    citation: str
    repository: str
    url: str
    folders: dict[str, str]
    files: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class Check:
    """What :func:`verify` found in a dataset folder."""

    folder: Path
    missing: list[str]
    damaged: list[str]
    unknown: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged

    def problem(self) -> str:
        """One line naming the missing and damaged files (empty when ``ok``)."""
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("missing", self.missing), ("damaged (SHA-256 differs)", self.damaged)) if names]
        return f"{self.folder}: " + "; ".join(parts) if parts else ""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the datasets: ``root``, else ``$TWOGAN_DATA``, else ``../shared/data`` beside
    the repository when it exists, else a per-user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    if root is not None:
        return Path(root)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    if shared_data().is_dir():
        return shared_data()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tf_twogan" / "data"


def shared_data() -> Path:
    """``../shared/data`` beside the repository: the development and CI layout (it may not exist)."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def fetch_command(name: str, root: str | os.PathLike | None = None) -> str:
    return f"twogan data fetch {name}" + (f" --root {root}" if root is not None else "")


def dataset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """``<data root>/<name>``; a missing one is a :class:`DatasetError` naming the ``twogan data fetch`` command."""
    folder = data_root(root) / name
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset {name!r} not found; get it with `{fetch_command(name, root)}`")
    return folder


def require_dataset(name: str, root: str | os.PathLike | None = None) -> Path:
    """:func:`dataset_dir` for scripts and notebooks: a missing dataset ends them with its one-line message."""
    try:
        return dataset_dir(name, root)
    except DatasetError as error:
        raise SystemExit(str(error)) from None


def load_manifest(path: str | os.PathLike = MANIFEST) -> dict[str, Dataset]:
    """The datasets of a manifest JSON (the shipped one by default), by name."""
    try:
        entries = json.loads(Path(path).read_text())
        return {name: Dataset(name=name, **entry) for name, entry in entries.items()}
    except (ValueError, TypeError) as error:
        raise DatasetError(f"{path}: not a dataset manifest ({error})") from None


def dataset(name: str, manifest: dict[str, Dataset] | None = None) -> Dataset:
    """The manifest's entry for ``name``; an unknown name is an error listing the known ones."""
    manifest = load_manifest() if manifest is None else manifest
    if name not in manifest:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(manifest)})")
    return manifest[name]


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: str | os.PathLike) -> dict[str, str]:
    """``{"<relative/posix/path>": sha256}`` of every file under ``folder``, sorted: a manifest's ``files``."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): sha256_file(path)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def verify(entry: Dataset, folder: str | os.PathLike) -> Check:
    """Check every file of ``entry`` in ``folder`` against its SHA-256; files it does not list are reported, not failed."""
    folder = Path(folder)
    missing, damaged = [], []
    for name, digest in entry.files.items():
        path = folder / name
        if not path.is_file():
            missing.append(name)
        elif sha256_file(path) != digest:
            damaged.append(name)
    unknown = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                     if path.is_file() and path.relative_to(folder).as_posix() not in entry.files)
    return Check(folder, missing, damaged, unknown)


def split_file(split: str | os.PathLike) -> Path:
    """A split given by name (a file of ``tf_twogan/splits``: ``tno``, ``roadscene``, ``vifb``) or by path."""
    shipped = SPLITS / f"{split}.json"
    return shipped if isinstance(split, str) and os.sep not in split and shipped.is_file() else Path(split)


def shipped_splits() -> list[str]:
    """Names of the splits in ``tf_twogan/splits``."""
    return sorted(path.stem for path in SPLITS.glob("*.json"))


def fetch(name: str, root: str | os.PathLike | None = None, url: str | None = None, progress: bool = True,
          manifest: dict[str, Dataset] | None = None) -> Path:
    """Download, unpack and verify dataset ``name`` into ``<root>/<name>``; returns that folder.

    The download goes to ``<root>/.twogan-fetch/<name>/`` (locked against a second fetch)
    and resumes there after an interruption when the server honours byte ranges, else
    starts again.  The files are unpacked into that folder too, verified, and renamed
    into place in one step.  An existing ``<root>/<name>`` is never touched: if it
    verifies it is returned, else the error names what is wrong with it.
    """
    entry = dataset(name, manifest)
    root = data_root(root)
    target = root / name
    if target.exists():
        check = verify(entry, target)
        if not check.ok:
            raise DatasetError(f"{check.problem()} (move the folder away to fetch it again)")
        return target
    work = root / WORK_FOLDER / name
    with FolderLock(work, "twogan data fetch"):
        archive = download(url or entry.url, work, progress)
        unpacked = work / "unpacked"
        shutil.rmtree(unpacked, ignore_errors=True)  # left by an interrupted fetch
        unpack(entry, archive, unpacked)
        check = verify(entry, unpacked)
        if not check.ok:
            archive.unlink()
            raise DatasetError(f"{url or entry.url}: the archive does not hold the dataset the manifest lists "
                               f"({check.problem()})")
        os.rename(unpacked, target)
        archive.unlink()
    shutil.rmtree(work, ignore_errors=True)
    try:
        (root / WORK_FOLDER).rmdir()
    except OSError:
        pass  # another dataset's fetch is under way
    return target


def download(url: str, work: Path, progress: bool = True) -> Path:
    """``url`` (or a local path) saved as ``work/archive.zip`` (kept across runs for the same URL), via a ``.part`` file.

    A partial ``.part`` of the same URL is resumed with an HTTP range request; a server
    (or a ``file://`` URL) that sends the whole file instead restarts it from the start.
    """
    from .console import tqdm

    if "://" not in url:  # a local file
        url = Path(url).resolve().as_uri()
    archive, part, source = work / "archive.zip", work / "archive.zip.part", work / "url.txt"
    if source.is_file() and source.read_text() != url:
        for path in (archive, part):
            path.unlink(missing_ok=True)
    source.write_text(url)
    if archive.is_file():
        return archive
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = offset > 0 and getattr(response, "status", None) == 206
            offset = offset if resumed else 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            with part.open("ab" if resumed else "wb") as handle, \
                    tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=work.name, disable=not progress) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    bar.update(len(block))
    except OSError as error:  # urllib.error.URLError is an OSError
        raise DatasetError(f"{url}: download failed ({getattr(error, 'reason', error)}); "
                           f"run the command again to resume or retry") from None
    if total is not None and part.stat().st_size != total:
        raise DatasetError(f"{url}: download ended early ({part.stat().st_size} of {total} bytes); run the command again to resume")
    os.replace(part, archive)
    return archive


def unpack(entry: Dataset, archive: Path, out: Path) -> None:
    """Extract the files ``entry`` lists from ``archive`` into ``out``, renaming its folders (``entry.folders``).

    Paths inside the archive are taken below its single top folder (GitHub's
    ``<repository>-<commit>/``).  Output paths come from the manifest, never from the
    archive, so an archive cannot write outside ``out``.
    """
    wanted = {}
    for name in entry.files:
        folder, _, rest = name.partition("/")
        wanted[str(PurePosixPath(entry.folders.get(folder, folder)) / rest)] = name
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                inner = member.filename.partition("/")[2]
                if inner in wanted:
                    path = out / wanted[inner]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with bundle.open(member) as source, path.open("wb") as sink:
                        shutil.copyfileobj(source, sink, CHUNK)
    except (zipfile.BadZipFile, EOFError) as error:
        archive.unlink(missing_ok=True)
        raise DatasetError(f"{archive}: damaged archive ({error}); deleted, run the command again to download it again") from None


def describe(entry: Dataset, root: str | os.PathLike | None = None) -> str:
    """``twogan data list``'s lines for one dataset."""
    folder = data_root(root) / entry.name
    state = "present" if folder.is_dir() else f"not fetched ({fetch_command(entry.name, root)})"
    lines = [f"{entry.name}: {entry.title}",
             f"  {entry.pairs} pairs, {len(entry.files)} files, {entry.bytes / 1e6:.1f} MB",
             f"  licence: {entry.licence}",
             f"  cite: {entry.citation}",
             f"  source: {entry.repository}, archive {entry.url}",
             f"  {folder}: {state}"]
    return "\n".join(lines)
