"""shrinkage._io: the one atomic writer."""

import os

import pandas as pd
import pytest

from shrinkage import _io
from shrinkage._io import atomic_write, write_csv
from shrinkage.errors import ShrinkageError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    atomic_write(target, "old")
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(_io.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.html"]  # the temporary file is gone


def test_write_csv_writes_the_frame_without_its_index(tmp_path):
    path = write_csv(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "t.csv")
    assert path.read_text(encoding="utf-8") == "a,b\n1,x\n2,y\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_a_failing_writer_leaves_no_temporary_file(tmp_path):
    def half(handle):
        handle.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "x.csv", half, text=True)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- only our files


def test_atomic_write_keeps_a_replaced_files_mode(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write(target, "new")
    assert target.read_text() == "new" and oct(target.stat().st_mode & 0o777) == oct(0o640)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_atomic_write_replaces_only_a_regular_file(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "symlink":
        (tmp_path / "real").write_text("mine")
        os.symlink(tmp_path / "real", target)
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    with pytest.raises(ShrinkageError, match="only a regular file is replaced"):
        atomic_write(target, "new")
    assert sorted(os.listdir(tmp_path)) == sorted(["out"] + (["real"] if kind == "symlink" else []))
    if kind == "symlink":
        assert (tmp_path / "real").read_text() == "mine"


def test_read_bounded_refuses_a_fifo_and_a_file_over_its_bound(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ShrinkageError, match=r"is a FIFO \(named pipe\), not a regular file"):
        _io.read_bounded(tmp_path / "pipe", 10, "The file")  # returns at once: no blocking
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(ShrinkageError, match="is 11 bytes; at most 10 are expected here"):
        _io.read_bounded(tmp_path / "big", 10, "The file")
    assert _io.read_bounded(tmp_path / "big", 4, "The file", head=True) == b"xxxx"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN is not allowed"),
        ('{"a": 1e400}', "the number 1e400 is out of range"),
        ("[" * 200_000, "it is nested too deeply"),
    ],
)
def test_read_json_is_as_strict_as_the_writer(tmp_path, text, reason):
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(ShrinkageError) as caught:
        _io.read_json(tmp_path / "x.json", 2**20, "The file")
    assert str(caught.value) == f"The file '{tmp_path / 'x.json'}' is not valid JSON ({reason})."


def test_check_input_file_names_what_the_path_is(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    os.symlink("nowhere", tmp_path / "broken")
    for name, problem in (
        ("loop", "is a symbolic link loop"),
        ("broken", "is a broken symbolic link (to 'nowhere')"),
        ("missing", "does not exist"),
    ):
        with pytest.raises(ShrinkageError) as caught:
            _io.check_input_file(tmp_path / name, "The data file")
        assert str(caught.value) == f"The data file '{tmp_path / name}' {problem}."


def test_check_writable_folder_probes_and_leaves_nothing(tmp_path):
    assert _io.check_writable_folder(tmp_path / "a" / "b", "The folder") == tmp_path / "a" / "b"
    assert os.listdir(tmp_path) == []
    with pytest.raises(ShrinkageError, match="cannot be written"):
        _io.check_writable_folder("/proc/shrinkage-probe", "The folder")
