"""Promise: no file is destroyed. An output path replaces only a file we wrote ourselves.

``predict -o`` refuses its own input, a path inside a model directory and anything that is
not a regular file (a read-only file, a FIFO, a symbolic link, a device); ``fit -o``
replaces only a shrinkage model (by the ``format`` field of its ``model.json``), only with
``--force``, and only its own files in it; ``tune -o`` writes only into a new or empty
directory or one it wrote (``tune.json``), and deletes only the files it lists. Every file
and directory written follows the umask, and a replaced file keeps its mode.

Each case checks the whole directory tree before and after (kind, mode, content, inode).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from _hostile import check_refused, run_cli, snapshot, tiny_tune

from shrinkage.estimators import load, save


def _weights(folder: str | Path) -> Path:
    meta = json.loads((Path(folder) / "model.json").read_text())
    return Path(folder) / meta["weights"]["file"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- predict -o


def _read_only(root: Path) -> str:
    Path("ro.csv").write_text("mine\n")
    os.chmod("ro.csv", 0o444)
    return "ro.csv"


def _fifo(root: Path) -> str:
    os.mkfifo("fifo.csv")
    return "fifo.csv"


def _symlink(root: Path) -> str:
    Path("target.csv").write_text("mine\n")
    os.symlink("target.csv", "link.csv")
    return "link.csv"


def _device(root: Path) -> str:
    try:  # a character device of our own (the null device's numbers), never a real /dev node
        os.mknod("dev.csv", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return "dev.csv"


def _hard_link(root: Path) -> str:
    os.link("data.csv", "hard.csv")
    return "hard.csv"


def _directory(root: Path) -> str:
    os.mkdir("somewhere")
    return "somewhere"


PREDICT_OUTPUTS = [
    ("input-itself", lambda r: "data.csv", "is the input 'data.csv'"),
    ("input-hard-link", _hard_link, "is the input 'data.csv'"),
    ("model-json", lambda r: "M/model.json", "is inside the model directory"),
    ("new-file-in-model-dir", lambda r: "M/predictions.csv", "is inside the model directory"),
    ("read-only-file", _read_only, "is read-only"),
    ("fifo", _fifo, "is a FIFO (named pipe)"),
    ("symlink", _symlink, "is a symbolic link; only a regular file is replaced"),
    ("device", _device, "is a character device; only a regular file is replaced"),
    ("directory", _directory, "is a directory; give a file name"),
]


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in PREDICT_OUTPUTS], ids=[c[0] for c in PREDICT_OUTPUTS]
)
def test_predict_refuses_an_output_that_is_not_ours_to_replace(place, capsys, make, expected):
    output = make(place)
    before = snapshot(place)
    code, out, err = run_cli(["predict", "M", "data.csv", "-o", output], capsys)
    check_refused(code, out, err, expected)
    assert snapshot(place) == before


def test_predict_replaces_a_regular_file_keeping_its_mode(place, capsys):
    Path("out.csv").write_text("old\n")
    os.chmod("out.csv", 0o640)
    code, _, err = run_cli(["predict", "M", "data.csv", "-o", "out.csv", "-q"], capsys)
    assert code == 0, err
    assert stat.S_IMODE(os.stat("out.csv").st_mode) == 0o640
    assert Path("out.csv").read_text().startswith("prediction,")


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_a_new_file_follows_the_umask(place, capsys, mask):
    old = os.umask(mask)
    try:
        code, _, err = run_cli(["predict", "M", "data.csv", "-o", "new.csv", "-q"], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat("new.csv").st_mode) == 0o666 & ~mask


# --------------------------------------------------------------------------- fit -o

_FIT = ["fit", "data.csv", "--target", "y", "--hidden", "3", "--epochs", "1", "-q"]


def _tfjs(root: Path) -> None:
    os.mkdir("out")
    Path("out/model.json").write_text(
        json.dumps({"format": "layers-model", "modelTopology": {}, "weightsManifest": []})
    )
    Path("out/group1-shard1of1.bin").write_bytes(b"\x00" * 64)


def _notes_only(root: Path) -> None:
    os.mkdir("out")
    Path("out/NOTES.md").write_text("mine")


def _file(root: Path) -> None:
    Path("out").write_text("mine")


def _junk_model_json(root: Path) -> None:
    os.mkdir("out")
    Path("out/model.json").write_text("not json at all")


FIT_OUTPUTS = [
    ("tfjs-model", _tfjs, "holds a model.json that is not a shrinkage model's"),
    ("tfjs-model-with-force", _tfjs, "holds a model.json that is not a shrinkage model's"),
    ("user-directory", _notes_only, "is not a shrinkage model (it has no model.json"),
    ("a-file", _file, "exists and is a file, not a directory"),
    ("junk-model-json", _junk_model_json, "holds a model.json that is not a shrinkage model's"),
]


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in FIT_OUTPUTS], ids=[c[0] for c in FIT_OUTPUTS]
)
def test_fit_refuses_a_directory_that_is_not_a_shrinkage_model(
    place, capsys, request, make, expected
):
    make(place)
    force = ["--force"] if "force" in request.node.callspec.id else []
    before = snapshot(place)
    code, out, err = run_cli([*_FIT, "-o", "out", *force], capsys)
    check_refused(code, out, err, expected)
    assert snapshot(place) == before


def test_fit_does_not_replace_a_model_without_force(place, capsys):
    before = snapshot(place)
    code, out, err = run_cli([*_FIT, "-o", "M"], capsys)
    check_refused(code, out, err, "already holds a shrinkage model; pass overwrite=True")
    assert "--force" in err
    assert snapshot(place) == before


def test_fit_force_replaces_only_the_models_own_files(place, capsys):
    Path("M/NOTES.md").write_text("my notes")
    os.mkdir("M/eval")
    Path("M/eval/scores.csv").write_text("a,b\n1,2\n")
    old_weights = _weights("M")
    code, _, err = run_cli([*_FIT, "-o", "M", "--force"], capsys)
    assert code == 0, err
    assert Path("M/NOTES.md").read_text() == "my notes"
    assert Path("M/eval/scores.csv").read_text() == "a,b\n1,2\n"
    assert _weights("M") != old_weights
    assert load("M").model_.sizes == [3, 3, 1]
    # a second replacement retires the first model's weights, and only those
    run_cli([*_FIT, "--seed", "1", "-o", "M", "--force"], capsys)
    assert not old_weights.exists()
    assert sorted(os.listdir("M"))[:2] == ["NOTES.md", "eval"]


def test_save_in_python_keeps_the_users_files_too(place, hostile_model):
    Path("M/NOTES.md").write_text("my notes")
    save(hostile_model[1], "M")
    save(hostile_model[1], "M")
    assert Path("M/NOTES.md").read_text() == "my notes"


# --------------------------------------------------------------------------- tune -o

_TUNE = tiny_tune()


def test_tune_refuses_a_directory_it_did_not_write(place, capsys):
    os.makedirs("out/chunks")
    Path("out/results.csv").write_text("my,own\n1,2\n")
    Path("out/chunks/mine-chunk-1.txt").write_text("mine")
    Path("out/chunks/grid-chunk-00000.json").write_text('{"mine": true}')
    before = snapshot(place)
    code, out, err = run_cli([*_TUNE, "-o", "out"], capsys)
    check_refused(code, out, err, "is not empty and is not a results directory of shrinkage tune")
    assert snapshot(place) == before


def test_tune_again_in_its_own_directory_keeps_the_users_files(place, capsys):
    mask = os.umask(0o027)
    try:
        code, _, err = run_cli([*_TUNE, "-o", "out"], capsys)
        assert code == 0, err
        listed = json.loads(Path("out/tune.json").read_text())["files"]
        ours = sorted(p.name for p in Path("out/chunks").iterdir())
        assert {f"chunks/{name}" for name in ours} <= set(listed)
        for name in ("results.csv", "report.html", "search.json", "model", "chunks"):
            assert name in listed
        # everything written follows the umask: 0640 files, 0750 directories
        for path in [Path("out"), Path("out/chunks"), Path("out/model")]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o750, path
        for path in [Path("out/results.csv"), Path("out/report.html"), _weights("out/model")]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
        # the user's files, beside ours and inside our chunks/ directory
        Path("out/NOTES.md").write_text("mine")
        Path("out/chunks/my-chunk-notes.txt").write_text("mine")
        Path("out/chunks/grid-chunk-00077.json").write_text('{"mine": true}')
        mine = {
            name: Path("out", name).read_text()
            for name in ("NOTES.md", "chunks/my-chunk-notes.txt", "chunks/grid-chunk-00077.json")
        }
        code, _, err = run_cli([*_TUNE, "--seed", "1", "-o", "out"], capsys)
        assert code == 0, err
        assert {name: Path("out", name).read_text() for name in mine} == mine
        assert load("out/model").seed_ is not None
    finally:
        os.umask(mask)
