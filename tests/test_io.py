"""shrinkage._io: the one atomic writer."""

import os

import pandas as pd
import pytest

from shrinkage import _io
from shrinkage._io import atomic_write, write_csv


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
