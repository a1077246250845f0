"""Shared pieces of the adversarial suite (``tests/test_promise_*.py``).

The suite tries what a hostile or careless user does to the command line and to the files
it reads and writes, organised by the promise each case tests:

* ``test_promise_no_file_destroyed``: an output path never replaces or deletes a file we
  did not write;
* ``test_promise_atomic_swap``: a saved model is replaced in one step; readers, killers and
  concurrent writers see one whole model, old or new (real processes, ``tests/_procs.py``);
* ``test_promise_resume_identity``: ``--resume`` continues only the very same search, and
  silently wrong results (exploded training, integers beyond int64) are refused;
* ``test_promise_one_line_errors``: every bad input is one line on stderr, exit code 2,
  nothing written;
* ``test_promise_tampering``: edited model, results and checkpoint files are refused in
  one line, never half-read.

Each case table in those files is a list of ``Case`` rows; :func:`check_refused` is the one
assertion of "refused in one line": exit code 2, nothing on stdout, one line on stderr that
starts with ``Error:`` and contains the expected text, no traceback, and the files as they
were.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shrinkage.cli import main


@dataclass
class Case:
    """One hostile input: an id, the command line, and what the refusal must say."""

    id: str
    argv: list[str]
    expected: str
    setup: Any = None
    extra: dict = field(default_factory=dict)


def tiny_tune(*extra: str, data: str = "data.csv", target: str = "y") -> list[str]:
    """A `tune` command line that runs in seconds: 2 strengths, 2 folds, a 3-unit layer."""
    return [
        "tune", data, "--target", target, "--hidden", "3", "--epochs", "2", "--folds", "2",
        "--strengths", "0.01,0.1", "--quiet", *extra,
    ]  # fmt: skip


def run_cli(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run ``shrinkage ARGV`` in-process (as the console script does): (code, stdout, stderr)."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following links): its kind, mode and content hash."""
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = os.lstat(path)
            kind = stat.S_IFMT(info.st_mode)
            if stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            else:
                content = None
            rel = os.path.relpath(path, root)
            entries[rel] = (kind, stat.S_IMODE(info.st_mode), content, info.st_ino)
    return entries


def check_refused(code: int, out: str, err: str, expected: str) -> None:
    """The one shape of a refusal: exit 2, no stdout, one ``Error:`` line holding
    ``expected``, no traceback."""
    assert code == 2, (code, out, err)
    assert out == "", out
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("Error: "), err
    assert "Traceback" not in err, err
    assert expected in err, (expected, err)
