from __future__ import annotations

from pathlib import Path

import pytest

from lakestack.lake.volumes import VolumePathError, resolve_path
from lakestack.runtime.dbutils import DBUtils
from lakestack.runtime.fs import FileInfo, FsError

from .conftest import MakeContext


def test_resolve_volume_dbfs_and_file_paths(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    expected = root / "warehouse" / "main" / "iris" / "raw" / "a" / "b.csv"
    assert resolve_path("/Volumes/main/iris/raw/a/b.csv", root) == expected
    assert resolve_path("dbfs:/Volumes/main/iris/raw/a/b.csv", root) == expected
    assert resolve_path("/Volumes/main/iris/raw", root) == root / "warehouse/main/iris/raw"
    assert resolve_path("file:/tmp/x.csv", root) == Path("/tmp/x.csv")
    assert resolve_path("file:///tmp/x.csv", root) == Path("/tmp/x.csv")
    assert resolve_path("data/x.csv", root) == Path("data/x.csv")


def test_resolve_rejects_short_and_escaping_volume_paths(tmp_path: Path) -> None:
    with pytest.raises(
        VolumePathError,
        match=r"'/Volumes/main/iris' is not a volume path: "
        r"expected /Volumes/<catalog>/<schema>/<volume>/\.\.\.",
    ):
        resolve_path("/Volumes/main/iris", tmp_path)
    with pytest.raises(VolumePathError, match="leaves its volume"):
        resolve_path("/Volumes/main/iris/raw/../../other/v/x", tmp_path)
    with pytest.raises(VolumePathError, match="DBFS root path"):
        resolve_path("dbfs:/tmp/x", tmp_path)


def test_fs_on_volumes_inside_a_job(dbutils: DBUtils, in_job: MakeContext, tmp_path: Path) -> None:
    ctx = in_job(workspace_root=str(tmp_path / "ws"))
    fs = dbutils.fs
    assert fs.mkdirs("/Volumes/main/iris/raw/in")
    assert fs.put("/Volumes/main/iris/raw/in/a.csv", "x,y\n1,2\n")
    with pytest.raises(FsError, match="already exists; pass overwrite=True"):
        fs.put("/Volumes/main/iris/raw/in/a.csv", "again")
    local = Path(ctx.workspace_root) / "warehouse/main/iris/raw/in/a.csv"
    assert local.read_text() == "x,y\n1,2\n"
    assert fs.head("dbfs:/Volumes/main/iris/raw/in/a.csv", 3) == "x,y"

    [entry] = fs.ls("/Volumes/main/iris/raw/in")
    assert isinstance(entry, FileInfo)
    assert entry.path == "dbfs:/Volumes/main/iris/raw/in/a.csv"
    assert (entry.name, entry.size) == ("a.csv", 8)
    assert entry.modificationTime > 0
    assert fs.ls("/Volumes/main/iris/raw")[0].name == "in/"

    with pytest.raises(FsError, match="is a folder; pass recurse=True"):
        fs.cp("/Volumes/main/iris/raw/in", "/Volumes/main/iris/raw/copy")
    fs.cp("/Volumes/main/iris/raw/in", "/Volumes/main/iris/raw/copy", recurse=True)
    fs.mv("/Volumes/main/iris/raw/copy/a.csv", "/Volumes/main/iris/raw/b.csv")
    assert [f.name for f in fs.ls("/Volumes/main/iris/raw")] == ["b.csv", "copy/", "in/"]
    assert fs.rm("/Volumes/main/iris/raw/in", recurse=True)
    assert not fs.rm("/Volumes/main/iris/raw/in")
    with pytest.raises(FsError, match="ls: '/Volumes/main/iris/raw/in' does not exist"):
        fs.ls("/Volumes/main/iris/raw/in")


def test_fs_outside_a_job_uses_the_bundle_workspace(dbutils: DBUtils, tmp_path: Path) -> None:
    (tmp_path / "lakestack.yml").write_text("bundle: {name: x}\n")
    nested = tmp_path / "notebooks"
    nested.mkdir()
    import os

    os.chdir(nested)
    dbutils.fs.put("/Volumes/c/s/v/f.txt", "hi")
    assert (tmp_path / ".lakestack/warehouse/c/s/v/f.txt").read_text() == "hi"


def test_fs_local_paths(dbutils: DBUtils, tmp_path: Path) -> None:
    dbutils.fs.put(f"file:{tmp_path}/a.txt", "abc")
    dbutils.fs.cp(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert [f.path for f in dbutils.fs.ls(str(tmp_path))][:2] == [
        f"file:{tmp_path}/a.txt",
        f"file:{tmp_path}/b.txt",
    ]
