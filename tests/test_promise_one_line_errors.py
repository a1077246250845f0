"""Promise: every bad input is one line on stderr, exit code 2, and nothing is written.

One table drives the test (:data:`CASES`): the command line, what is prepared first, and
the text the line must hold. :func:`_hostile.check_refused` checks the shape (exit 2, no
stdout, one ``Error:`` line, no traceback) and the directory tree is compared before and
after, so a refusal that leaves a half-made output directory fails too. Training is made
impossible for the unwritable-output cases: the check must come first.

The few inputs that are *not* errors (a column named like mathtext, a CSV field longer
than the csv module's default limit) must simply work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _hostile import Case, check_refused, run_cli, snapshot, tiny_tune

from shrinkage.estimators import load


def _write(name: str, text: str):
    def make(root: Path) -> None:
        Path(name).write_text(text)

    return make


def _targets(values) -> callable:
    rows = "\n".join(f"{i % 5},{v}" for i, v in enumerate(values))
    return _write("t.csv", f"a,y\n{rows}\n")


def _fifo(root: Path) -> None:
    os.mkfifo("pipe.csv")


def _link(name: str, target: str):
    def make(root: Path) -> None:
        os.symlink(target, name)

    return make


def _long_glob(root: Path) -> None:
    meta = json.loads(Path("M/model.json").read_text())
    meta["plan"]["rules"][0]["select"] = "layers.*" + "x" * 10_000
    Path("M/model.json").write_text(json.dumps(meta))


_FIT = ["fit", "data.csv", "--target", "y", "--epochs", "1", "-o", "out"]
_TUNE = ["tune", "data.csv", "--target", "y", "--epochs", "1", "--folds", "2", "-o", "out"]
_PREDICT = ["predict", "M", "data.csv", "-o", "p.csv"]

CASES = [
    # --- targets that are not what the task needs (sklearn tracebacks before)
    Case(
        "classification-on-continuous",
        ["fit", "houses.csv", "--target", "price", "--task", "classification", "-o", "out"],
        "The 'target' column 'price' is not a class label in row 1",
    ),
    Case(
        "init-classifier-on-continuous",
        ["fit", "houses.csv", "--target", "price", "--init", "M", "-o", "out"],
        "The 'target' column 'price' is not a class label in row 1",
    ),
    Case(
        "targets-0-and-1e20",
        ["fit", "t.csv", "--target", "y", "-o", "out"],
        "is not a class label in row 2 (got 1e+20",
        _targets([0, 1e20] * 10),
    ),
    Case(
        "targets-plus-minus-3e38",
        ["fit", "t.csv", "--target", "y", "-o", "out"],
        "is not a class label in row 1 (got 3e+38",
        _targets([3e38, -3e38] * 10),
    ),
    Case(
        "targets-python-ints-1e30",
        ["fit", "t.csv", "--target", "y", "--task", "classification", "-o", "out"],
        "has an integer beyond the int64 range in row 1",
        _targets([10**30 + i for i in range(20)]),
    ),
    # --- devices, grids, threads: refused before anything is created
    Case("fit-device-meta", [*_FIT, "--device", "meta"], "Got 'meta' instead."),
    Case("tune-device-meta", [*_TUNE, "--device", "meta"], "Got 'meta' instead."),
    Case("tune-grid-max-inf", [*_TUNE, "--grid-max", "inf"], "The '--grid-max' option must be"),
    Case("tune-grid-max-huge", [*_TUNE, "--grid-max", "1e300"], "The '--grid-max' option"),
    Case("tune-grid-too-fine", [*_TUNE, "--per-decade", "100000"], "strengths; at most 10000"),
    Case("tune-threads-100000", [*_TUNE, "--threads", "100000"], "The '--threads' parameter"),
    Case("tune-threads-0", [*_TUNE, "--threads", "0"], "The '--threads' parameter"),
    Case("tune-threads-minus-1", [*_TUNE, "--threads", "-1"], "The '--threads' parameter"),
    # --- outputs that cannot be written, found before any training
    Case("fit-out-proc", [*_FIT[:-1], "/proc/shrinkage-out"], "cannot be written"),
    Case("fit-out-sys", [*_FIT[:-1], "/sys/shrinkage-out"], "cannot be written"),
    Case("tune-out-proc", [*_TUNE[:-1], "/proc/shrinkage-out"], "cannot be written"),
    Case("tune-out-sys", [*_TUNE[:-1], "/sys/shrinkage-out"], "cannot be written"),
    Case("predict-out-proc", [*_PREDICT[:-1], "/proc/p.csv"], "cannot be written"),
    Case("predict-out-sys", [*_PREDICT[:-1], "/sys/p.csv"], "cannot be written"),
    Case("report-out-proc", ["report", "M", "-o", "/proc/r.html"], "cannot be written"),
    Case("report-out-sys", ["report", "M", "-o", "/sys/r.html"], "cannot be written"),
    Case("report-dir-proc", ["report", "/proc"], "cannot be written"),
    Case("demo-out-proc", ["demo", "-q", "-o", "/proc/shrinkage-demo"], "cannot be written"),
    # --- messages that must say what the path is, in one line
    Case("data-fifo", ["fit", "pipe.csv", "--target", "y", "-o", "out"], "is a FIFO", _fifo),
    Case(
        "data-dev-zero",
        ["fit", "zero.csv", "--target", "y", "-o", "out"],
        "'zero.csv' is a character device, not a regular file",
        _link("zero.csv", "/dev/zero"),
    ),
    Case(
        "data-proc-environ",
        ["fit", "env.csv", "--target", "y", "-o", "out"],
        "but no data rows.",  # its NUL-separated content is one header line, not "empty"
        _link("env.csv", "/proc/self/environ"),
    ),
    Case(
        "data-symlink-loop",
        ["fit", "loop.csv", "--target", "y", "-o", "out"],
        "The data file 'loop.csv' is a symbolic link loop.",
        _link("loop.csv", "loop.csv"),
    ),
    Case(
        "data-broken-symlink",
        ["fit", "gone.csv", "--target", "y", "-o", "out"],
        "The data file 'gone.csv' is a broken symbolic link (to 'nowhere.csv').",
        _link("gone.csv", "nowhere.csv"),
    ),
    Case(
        "newline-in-path",
        ["fit", "new\nline.csv", "--target", "y", "-o", "out"],
        "The data file 'new\\nline.csv' does not exist.",
    ),
    Case(
        "escape-sequence-in-path",
        ["fit", "\x1b[31mred.csv", "--target", "y", "-o", "out"],
        "The data file '\\x1b[31mred.csv' does not exist.",
    ),
    Case("long-glob-in-model", _PREDICT, " … ", _long_glob),
    Case("long-target-name", ["fit", "data.csv", "--target", "t" * 20_000, "-o", "o"], " … "),
    # --- loose parsing, tightened
    Case("strengths-empty-entry", [*_TUNE, "--strengths", "1e-3,,1e-2"], "Got '1e-3,,1e-2'"),
    Case("l2-underscore", [*_FIT, "--l2", "1_000"], "Got '1_000' instead."),
    Case("l2-full-width", [*_FIT, "--l2", "\uff11"], "Got '１' instead."),
    Case("epochs-full-width", [*_FIT[:-2], "--epochs", "\uff11\uff10", "-o", "out"], "'--epochs'"),
    Case("hidden-full-width", [*_FIT, "--hidden", "\uff18"], "The '--hidden' option must be"),
    Case("folds-underscore", [*_TUNE, "--folds", "1_0"], "The '--folds' option must be"),
    Case("lr-overflow", [*_FIT, "--lr", "1e400"], "The '--lr' option must be a number."),
    Case(
        "penalty-none-with-strength",
        [*_FIT, "--penalty", "none", "--strength", "0.01"],
        "--strength 0.01 has no effect with --penalty none",
    ),
]


@pytest.fixture
def untrainable(monkeypatch):
    """Training raises: a refusal that comes after training would show as a traceback."""
    from shrinkage.estimators._mlp import _BaseMLP
    from shrinkage.search import SearchCV

    def never(*args, **kwargs):
        raise RuntimeError("trained before checking the output path")

    monkeypatch.setattr(_BaseMLP, "fit", never)
    monkeypatch.setattr(SearchCV, "fit", never)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_writes_nothing(place, capsys, request, case):
    if case.setup is not None:
        case.setup(place)
    if "-out-" in case.id or case.id.startswith(("report-", "demo-")):
        request.getfixturevalue("untrainable")
    before = snapshot(place)
    code, out, err = run_cli(case.argv, capsys)
    check_refused(code, out, err, case.expected)
    assert len(err) <= 700
    assert snapshot(place) == before


# --------------------------------------------------------------------------- not errors


def test_a_column_named_like_broken_mathtext_is_drawn_as_text(place, capsys):
    name = "$\\nosuchcmd{x}$"
    frame = pd.read_csv("data.csv")[["a", "b", "y"]].rename(columns={"a": name})
    frame.to_csv("math.csv", index=False)
    code, _, err = run_cli(tiny_tune("-o", "out", data="math.csv"), capsys)
    assert code == 0, err
    html = Path("out/report.html").read_text(encoding="utf-8")
    assert "decision boundary" in html and "not drawn" not in html


@pytest.mark.parametrize("where", ["header", "first-row"])
def test_a_field_longer_than_the_csv_modules_limit_is_read(place, capsys, where):
    long = "v" * 200_000
    frame = pd.read_csv("data.csv")
    if where == "header":
        frame = frame.rename(columns={"c": long})
    else:
        frame["c"] = np.where(np.arange(len(frame)) % 2 == 0, long, "short")  # row 1 too
    frame.to_csv("wide.csv", index=False)
    code, _, err = run_cli(
        ["fit", "wide.csv", "--target", "y", "--epochs", "1", "-q", "-o", "wide"], capsys
    )
    assert code == 0, err
    model = load("wide")
    assert len(model.preprocessor_.feature_names_in_) == 3
    code, _, err = run_cli(["predict", "wide", "wide.csv", "-o", "p.csv", "-q"], capsys)
    assert code == 0, err
