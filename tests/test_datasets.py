"""``twogan data`` and tf_twogan.datasets: the data root, the SHA-256 manifest, fetch from local archives, shipped splits.

No network: archives are zip files built here from a few TNO files of the data root,
served as ``file://`` URLs or by a loopback HTTP server that honours byte ranges.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from helpers import DATA, REPO, TNO
from tf_twogan.cli import main
from tf_twogan.datasets import (DATA_ENV, WORK_FOLDER, Dataset, DatasetError, checksums, data_root, fetch, load_manifest,
                                shared_data, split_file, verify)
from tf_twogan.images import split_names

PAIRS = ("2", "24")  # two small TNO pairs (about 0.2 and 0.3 MB each)
TOP = "FusionGAN-0123abc"  # GitHub archives hold one top folder, <repository>-<commit>


def tiny_copy(folder: Path) -> Path:
    """``folder/tno/{ir,vis}`` with the two pairs, copied from the data root."""
    for kind in ("ir", "vis"):
        (folder / "tno" / kind).mkdir(parents=True)
        for name in PAIRS:
            shutil.copyfile(TNO / kind / f"{name}.bmp", folder / "tno" / kind / f"{name}.bmp")
    return folder / "tno"


def tiny_manifest(tmp_path: Path, url: str = "") -> Path:
    """A manifest of the two pairs, as FusionGAN's repository names them (Test_ir, Test_vi)."""
    files = checksums(tiny_copy(tmp_path / "reference"))
    entry = dict(title="two TNO pairs", pairs=len(PAIRS), bytes=1, licence="CC BY 4.0", citation="Toet 2014",
                 repository="https://github.com/jiayi-ma/FusionGAN", url=url,
                 folders={"ir": "Test_ir", "vis": "Test_vi"}, files=files)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"tno": entry}))
    return path


def tiny_archive(path: Path, leave_out: str | None = None) -> Path:
    """A zip laid out like FusionGAN's repository archive: the pairs, plus files the dataset does not take."""
    with zipfile.ZipFile(path, "w") as bundle:
        for kind, theirs in (("ir", "Test_ir"), ("vis", "Test_vi")):
            for name in PAIRS:
                if f"{kind}/{name}.bmp" != leave_out:
                    bundle.write(TNO / kind / f"{name}.bmp", f"{TOP}/{theirs}/{name}.bmp")
        bundle.write(TNO / "ir" / "2.bmp", f"{TOP}/Train_ir/2.bmp")
        bundle.writestr(f"{TOP}/README.md", "FusionGAN\n")
    return path


@pytest.mark.needs_data("tno")
def test_shipped_manifest_verifies_the_data_roots_tno(capsys):
    assert main(["data", "verify", "tno"]) == 0
    assert f"{DATA / 'tno'}: 82 files verified" in capsys.readouterr().out  # 41 pairs


@pytest.mark.needs_data("tno")
def test_verify_names_a_damaged_and_a_missing_file_and_exits_2(tmp_path, capsys):
    manifest = tiny_manifest(tmp_path)
    root = tmp_path / "root"
    folder = tiny_copy(root)
    (folder / "notes.txt").write_text("mine")
    assert main(["data", "verify", "tno", "--root", str(root), "--manifest", str(manifest)]) == 0
    data = bytearray((folder / "vis" / "24.bmp").read_bytes())
    data[5000] ^= 1
    (folder / "vis" / "24.bmp").write_bytes(bytes(data))
    (folder / "ir" / "2.bmp").unlink()
    capsys.readouterr()
    assert main(["data", "verify", "tno", "--root", str(root), "--manifest", str(manifest)]) == 2
    out, err = capsys.readouterr()
    assert "missing: ir/2.bmp; damaged (SHA-256 differs): vis/24.bmp" in out
    assert f"{folder / 'notes.txt'}: not in the manifest" in out
    assert len(err.splitlines()) == 1 and "damaged or incomplete: tno" in err
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.needs_data("tno")
def test_fetch_unpacks_renames_and_verifies_a_local_archive_given_by_path(tmp_path, capsys):
    archive = tiny_archive(tmp_path / "fusiongan.zip")
    manifest, root = tiny_manifest(tmp_path, "https://example.invalid/unused.zip"), tmp_path / "root"
    assert main(["data", "fetch", "tno", "--root", str(root), "--manifest", str(manifest), "--quiet", "--url", str(archive)]) == 0
    assert capsys.readouterr().out.strip() == f"{root / 'tno'}: verified"
    for kind in ("ir", "vis"):
        assert sorted(path.name for path in (root / "tno" / kind).iterdir()) == ["2.bmp", "24.bmp"]
        assert (root / "tno" / kind / "24.bmp").read_bytes() == (TNO / kind / "24.bmp").read_bytes()
    assert sorted(path.name for path in root.iterdir()) == ["tno"]  # no work folder, no archive left


@pytest.mark.needs_data("tno")
def test_fetch_restarts_a_partial_download_the_server_will_not_resume(tmp_path):
    archive = tiny_archive(tmp_path / "fusiongan.zip")
    entry = load_manifest(tiny_manifest(tmp_path, archive.as_uri()))
    work = tmp_path / "root" / WORK_FOLDER / "tno"
    work.mkdir(parents=True)
    (work / "url.txt").write_text(archive.as_uri())
    (work / "archive.zip.part").write_bytes(b"\0" * 1000)  # an interrupted download (file:// ignores ranges)
    assert verify(entry["tno"], fetch("tno", tmp_path / "root", progress=False, manifest=entry)).ok


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one file and honours ``Range: bytes=N-`` (206), counting the bytes it sends."""

    sent: list[int] = []

    def do_GET(self):
        data = Path(self.translate_path(self.path)).read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])
        self.sent.append(len(data) - start)

    def log_message(self, *args):
        pass


@pytest.mark.needs_data("tno")
def test_fetch_resumes_a_partial_download_where_the_server_honours_ranges(tmp_path):
    archive = tiny_archive(tmp_path / "fusiongan.zip")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/fusiongan.zip"
        entry = load_manifest(tiny_manifest(tmp_path, url))
        work = tmp_path / "root" / WORK_FOLDER / "tno"
        work.mkdir(parents=True)
        (work / "url.txt").write_text(url)
        half = archive.stat().st_size // 2
        (work / "archive.zip.part").write_bytes(archive.read_bytes()[:half])
        RangeHandler.sent.clear()
        assert verify(entry["tno"], fetch("tno", tmp_path / "root", progress=False, manifest=entry)).ok
        assert RangeHandler.sent == [archive.stat().st_size - half]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.needs_data("tno")
@pytest.mark.parametrize("damage", ["file left out", "archive cut short"])
def test_a_failed_fetch_leaves_no_dataset_that_verify_accepts(tmp_path, damage, capsys):
    archive = tiny_archive(tmp_path / "fusiongan.zip", leave_out="vis/24.bmp" if damage == "file left out" else None)
    if damage == "archive cut short":
        archive.write_bytes(archive.read_bytes()[:-3000])
    manifest, root = tiny_manifest(tmp_path, archive.as_uri()), tmp_path / "root"
    assert main(["data", "fetch", "tno", "--root", str(root), "--manifest", str(manifest), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and ("missing: vis/24.bmp" in err if damage == "file left out" else "damaged archive" in err)
    assert not (root / "tno").exists()
    assert main(["data", "verify", "tno", "--root", str(root), "--manifest", str(manifest)]) == 2
    tiny_archive(archive)  # the source repaired: the same command now succeeds
    assert main(["data", "fetch", "tno", "--root", str(root), "--manifest", str(manifest), "--quiet"]) == 0


@pytest.mark.needs_data("tno")
def test_fetch_leaves_an_existing_damaged_dataset_alone(tmp_path):
    entry = load_manifest(tiny_manifest(tmp_path, tiny_archive(tmp_path / "fusiongan.zip").as_uri()))
    folder = tiny_copy(tmp_path / "root")
    (folder / "ir" / "24.bmp").write_bytes(b"mine")
    with pytest.raises(DatasetError, match=r"damaged \(SHA-256 differs\): ir/24.bmp"):
        fetch("tno", tmp_path / "root", progress=False, manifest=entry)
    assert (folder / "ir" / "24.bmp").read_bytes() == b"mine"


def test_data_path_prints_the_datasets_folder_or_one_line_naming_the_fetch_command(tmp_path, capsys):
    (tmp_path / "tno").mkdir()
    assert main(["data", "path", "tno", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'tno'}\n"
    assert main(["data", "path", "vifb", "--root", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and f"get it with `twogan data fetch vifb --root {tmp_path}`" in err
    assert main(["data", "path", "tnoo", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'tnoo' (known: tno, roadscene, vifb)" in capsys.readouterr().err


def test_data_root_is_the_option_then_the_environment_then_shared_data_beside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    beside = REPO.parent / "shared" / "data"
    assert data_root() == (beside if beside.is_dir() else tmp_path / "cache" / "tf_twogan" / "data")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(tmp_path / "mine") == tmp_path / "mine"


def test_a_test_without_its_dataset_skips_only_in_a_clone_without_shared_data_and_outside_ci(monkeypatch, tmp_path):
    import helpers

    def ending(name: str) -> tuple[str, str]:
        """How ``need_dataset(name)`` ends a test: ("Skipped" | "Failed", reason), or ("runs", "")."""
        try:
            helpers.need_dataset(name)
        except (pytest.skip.Exception, pytest.fail.Exception) as end:
            return type(end).__name__, str(end)
        return "runs", ""

    monkeypatch.delenv(helpers.NEED_DATA_ENV, raising=False)
    cache = tmp_path / "cache"  # the per-user cache: no ../shared/data beside the clone
    monkeypatch.setattr(helpers, "DATA", cache)
    reason = f"RoadScene not found under {cache}: run `twogan data fetch roadscene`"
    assert ending("roadscene") == ("Skipped", reason)
    monkeypatch.setenv(helpers.NEED_DATA_ENV, "1")  # as .ci/run sets it
    assert ending("roadscene") == ("Failed", reason)
    monkeypatch.delenv(helpers.NEED_DATA_ENV)
    monkeypatch.setattr(helpers, "DATA", shared_data())  # the development and CI layout
    assert ending("no_such_dataset") == ("Failed", f"no_such_dataset not found under {shared_data()}: "
                                         "run `twogan data fetch no_such_dataset`")
    (cache / "roadscene").mkdir(parents=True)
    monkeypatch.setattr(helpers, "DATA", cache)
    assert ending("roadscene") == ("runs", "")


def test_shipped_splits_name_manifest_pairs_and_tno_is_the_projects_31_10_split():
    assert split_names("tno", "test") == ["1", "5", "11", "13", "14", "17", "21", "27", "31", "45"]
    train = split_names("tno", "train")
    assert len(train) == 31 and not set(train) & set(split_names("tno", "test"))
    assert split_names("tno", "test") == split_names(split_file("tno"), "test")  # by name = by file
    manifest = load_manifest()
    for name, subset in (("tno", "train"), ("tno", "test"), ("roadscene", "all"), ("vifb", "all")):
        stems = {Path(path).stem for path in manifest[name].files if path.startswith("ir/")}
        assert set(split_names(name, subset)) <= stems
    tno_pairs = {Path(path).stem for path in manifest["tno"].files if path.startswith("ir/")}
    assert set(train) | set(split_names("tno", "test")) == tno_pairs
    assert len(split_names("roadscene", "all")) == 221 and len(split_names("vifb", "all")) == 21
    assert split_file("no_such_split") == Path("no_such_split")  # anything else is a file name


@pytest.mark.needs_data("tno")
def test_prepare_takes_a_shipped_split_by_name(tmp_path, capsys):
    out = tmp_path / "test.h5"
    assert main(["prepare", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--split", "tno", "--subset", "test",
                 "--stride", "400", "--out", str(out), "--quiet"]) == 0
    assert "from 10 image pairs" in capsys.readouterr().out


def test_an_unknown_split_name_is_one_line_listing_the_shipped_splits(tmp_path, capsys):
    assert main(["prepare", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--split", "tnoo", "--subset", "test",
                 "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "tnoo: cannot read split file" in err and "shipped splits: roadscene, tno, vifb" in err
    assert not (tmp_path / "x.h5").exists()


def test_manifest_entries_are_complete():
    for entry in load_manifest().values():
        assert isinstance(entry, Dataset) and entry.url.startswith("https://github.com/") and entry.url.endswith(".zip")
        assert {path.split("/")[0] for path in entry.files} == set(entry.folders)
        assert len([path for path in entry.files if path.startswith("ir/")]) == entry.pairs
