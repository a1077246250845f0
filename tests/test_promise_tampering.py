"""Promise: an edited file is refused in one line, before it is used, never half-read.

* ``model.json`` is checked against one schema with bounds at load (types are exact:
  ``true`` is not 1, ``5.0`` is not a width, ``"541"`` is not a list; ``1e400`` and
  ``"[" * 200000`` are not numbers or structures to parse; fields that must agree are
  compared), so that no tampered value reaches ``predict``, ``inspect`` or ``fit --init``.
* A weights file larger than its architecture needs is refused by its size, unread (a 1 GiB
  or 40 GiB sparse file costs nothing).
* A tampered results directory (``results.csv``, ``baseline.safetensors``, ``search.json``)
  and tampered checkpoint chunks (``--resume``) are refused in one line naming the file.

Each case runs through the command line; :func:`_hostile.check_refused` checks the shape.
(``tests/test_model_dir_safety.py`` holds the weights-file tampering and the pickle
payloads, which are never executed.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _hostile import check_refused, run_cli, snapshot, tiny_tune


def _set(*keys, value):
    def tamper(meta: dict) -> None:
        node = meta
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return tamper


def _on_file(tamper):
    """Mark a tamper that edits the file itself (for what json.dumps cannot write)."""
    tamper.on_file = True
    return tamper


def _raw(old: str, new: str):
    """Replace text in model.json as written."""

    @_on_file
    def tamper(path: Path) -> None:
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return tamper


def _whole(data: str | bytes):
    @_on_file
    def tamper(path: Path) -> None:
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return tamper


# (id, tamper of the parsed JSON or of the file, what the line must hold)
MODEL_JSON = [
    ("seed-float", _set("seed", value=1.5), "'seed' must be an integer in [0, "),
    ("seed-text", _set("seed", value="0"), "'seed' must be an integer"),
    ("n-iter-float", _set("n_iter", value=2.5), "'n_iter' must be an integer"),
    ("best-epoch-text", _set("best_epoch", value="3"), "'best_epoch' must be an integer"),
    ("best-epoch-beyond-history", _set("best_epoch", value=99), "'best_epoch' must be at most"),
    ("seed-1e400", _raw('"seed": 0', '"seed": 1e400'), "is not valid JSON (the number 1e400"),
    ("n-iter-1e400", _raw('"n_iter": 3', '"n_iter": 1e400'), "is not valid JSON (the number"),
    ("best-epoch-1e400", _raw('"best_epoch": 3', '"best_epoch": 1e400'), "is not valid JSON"),
    ("n-features-1e400", _raw('"n_features_in": 3', '"n_features_in": 1e400'), "not valid JSON"),
    ("version-1e400", _raw('"format_version": 2', '"format_version": 1e400'), "not valid JSON"),
    ("huge-integer", _raw('"seed": 0', '"seed": ' + "9" * 5000), "is not valid JSON"),
    ("brackets-200000", _whole("[" * 200_000), "is not valid JSON (it is nested too deeply)"),
    (
        "brackets-in-history",
        _raw('"history": [', '"history": ' + "[" * 200_000),
        "is not valid JSON",
    ),
    ("n-features-wrong", _set("n_features_in", value=5), "'feature_names_in' must be a list of"),
    ("n-features-negative", _set("n_features_in", value=-1), "'n_features_in' must be an integer"),
    (
        "n-features-without-names",
        lambda m: (m.update(n_features_in=2), m.update(feature_names_in=None)),
        "'n_features_in' is 2 but the preprocessor reads 3 columns",
    ),
    (
        "feature-names-mismatched",
        _set("feature_names_in", value=["x", "y", "z"]),
        "'feature_names_in' does not list the columns the preprocessor reads",
    ),
    ("feature-names-repeated", _set("feature_names_in", value=["a", "a", "c"]), "distinct"),
    ("metrics-junk", _set("metrics", value="junk"), "'metrics' must be an object"),
    ("metrics-score-text", _set("metrics", "train_score", value="high"), "must be a number"),
    ("metrics-epochs-wrong", _set("metrics", "epochs", value=7), "'metrics.epochs' must be"),
    ("history-junk", _set("history", value=[1, 2, 3]), "'history[0]' must be an object"),
    ("history-epoch-text", _set("history", 0, "epoch", value="a"), "'history[0].epoch' must"),
    ("history-loss-text", _set("history", 1, "data_loss", value="x"), "'history[1].data_loss'"),
    ("history-unordered", _set("history", 1, "epoch", value=3), "increasing epoch order"),
    ("classes-repeated", _set("classes", "values", value=[1, 1]), "'classes.values[1]' must be"),
    ("classes-kind-mismatch", _set("classes", "kind", value="U"), "'classes.values[0]' must be"),
    ("sizes-text", _set("architecture", "sizes", value="541"), "'architecture.sizes' must be a"),
    ("sizes-float", _set("architecture", "sizes", value=[3.0, 4.0, 1.0]), "must be an integer"),
    ("sizes-huge", _set("architecture", "sizes", value=[3, 2**20, 2**20, 1]), "at most"),
    ("format-version-true", _set("format_version", value=True), "has format version True"),
    ("target-number", _set("target", value=5), "'target' must be a string"),
    ("task-mismatch", _set("task", value="regression"), "'classes' must be null for a regression"),
    ("weights-bytes-huge", _set("weights", "bytes", value=2**32), "'weights.bytes' is"),
    ("weights-file-path", _set("weights", "file", value="../data.csv"), "'weights.file' must be"),
    ("unknown-field", _set("exec", value="print(1)"), "'exec' must be absent (unknown)"),
    ("not-utf8", _whole(b"\xff\xfe{}"), "is not valid JSON ('utf-8' codec"),
]

COMMANDS = {
    "predict": ["predict", "M", "data.csv", "-o", "p.csv"],
    "inspect": ["inspect", "M"],
    "fit-init": ["fit", "data.csv", "--target", "y", "--init", "M", "--epochs", "1", "-o", "o"],
}


def _tamper(place: Path, change) -> None:
    path = place / "M" / "model.json"
    if getattr(change, "on_file", False):
        change(path)
        return
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta, indent=2))


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in MODEL_JSON], ids=[c[0] for c in MODEL_JSON]
)
def test_a_tampered_model_json_is_refused_in_one_line(place, capsys, command, change, expected):
    _tamper(place, change)
    before = snapshot(place)
    code, out, err = run_cli(COMMANDS[command], capsys)
    check_refused(code, out, err, expected)
    assert "M/model.json" in err
    assert snapshot(place) == before


def _weights(place: Path) -> Path:
    meta = json.loads((place / "M" / "model.json").read_text())
    return place / "M" / meta["weights"]["file"]


@pytest.mark.parametrize("size", [2**30, 40 * 2**30], ids=["1GiB", "40GiB"])
def test_a_weights_file_larger_than_its_architecture_is_refused_unread(place, capsys, size):
    with open(_weights(place), "r+b") as handle:
        handle.truncate(size)  # sparse: no disk, and no memory unless someone reads it
    code, out, err = run_cli(COMMANDS["predict"], capsys)
    check_refused(code, out, err, f"is {size} bytes; the architecture [3, 4, 1] needs at most")


# --------------------------------------------------------------------------- results dirs

_TUNE = tiny_tune("--refine", "-o", "out")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, hostile_model):
    """A finished `tune --refine` run (grid chunks keep their weights), to copy and tamper."""
    from shrinkage.cli import main

    root = tmp_path_factory.mktemp("tuned")
    hostile_model[0].to_csv(root / "data.csv", index=False)
    here = os.getcwd()
    os.chdir(root)
    try:
        main(_TUNE)
    except SystemExit as exit_:
        assert exit_.code == 0
    finally:
        os.chdir(here)
    return root


@pytest.fixture
def copy(tuned, tmp_path, monkeypatch):
    shutil.copytree(tuned, tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    return tmp_path / "run"


def _text(name: str, text: str | bytes):
    def tamper(root: Path) -> None:
        path = root / "out" / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return tamper


def _edit_json(name: str, change):
    def tamper(root: Path) -> None:
        path = root / "out" / name
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))

    return tamper


def _fifo(name: str):
    def tamper(root: Path) -> None:
        (root / "out" / name).unlink()
        os.mkfifo(root / "out" / name)

    return tamper


REPORT = [
    ("results-empty", _text("results.csv", ""), "results.csv' is empty"),
    ("results-junk", _text("results.csv", "a,b\n1,2\n"), "is not a search's results"),
    ("results-binary", _text("results.csv", b"\x89PNG\x00\xff" * 100), "results.csv' is not a"),
    (
        "results-text-scores",
        lambda r: (
            pd.read_csv(r / "out/results.csv")
            .assign(mean_test_score="high")
            .to_csv(r / "out/results.csv", index=False)
        ),
        "is not a search's results",
    ),
    ("results-fifo", _fifo("results.csv"), "results.csv' is a FIFO"),
    ("baseline-junk", _text("baseline.safetensors", b"\x00" * 64), "is not a safetensors file"),
    ("baseline-pickle", _text("baseline.safetensors", b"\x80\x04K\x01."), "not a safetensors"),
    ("search-json-nested", _text("search.json", "[" * 200_000), "nested too deeply"),
    ("search-json-list", _text("search.json", "[]"), "search.json' is not an object"),
    ("search-json-junk", _text("search.json", "{nope"), "search.json' is not valid JSON"),
    (
        "search-json-points",
        _edit_json("search.json", lambda m: m.update(points={"X": "junk"})),
        "search.json' is malformed",
    ),
    (
        "search-json-data",
        _edit_json("search.json", lambda m: m.update(data=[1, 2])),
        "search.json' is malformed",
    ),
    ("model-junk", _text("model/model.json", "{}"), "is not a shrinkage model"),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [c[1:] for c in REPORT], ids=[c[0] for c in REPORT]
)
def test_a_tampered_results_directory_is_refused_by_report(copy, capsys, tamper, expected):
    tamper(copy)
    before = snapshot(copy)
    code, out, err = run_cli(["report", "out", "-o", "again.html"], capsys)
    check_refused(code, out, err, expected)
    assert snapshot(copy) == before


def _chunk(copy: Path, suffix: str = ".json") -> Path:
    return copy / "out" / "chunks" / f"grid-chunk-00000{suffix}"


def _chunk_text(text: str | bytes):
    def tamper(copy: Path) -> None:
        _chunk(copy).write_bytes(text if isinstance(text, bytes) else text.encode())

    return tamper


def _chunk_edit(change, rehash: bool = False):
    def tamper(copy: Path) -> None:
        from shrinkage.search._checkpoint import _checksum

        payload = json.loads(_chunk(copy).read_text())
        change(payload)
        if rehash:  # as an attacker who knows the checksum's recipe
            payload["checksum"] = _checksum(payload["rows"])
        _chunk(copy).write_text(json.dumps(payload))

    return tamper


def _sparse_chunk(copy: Path) -> None:
    with open(_chunk(copy), "r+b") as handle:
        handle.truncate(300 * 2**20)


def _chunk_fifo(copy: Path) -> None:
    _chunk(copy).unlink()
    os.mkfifo(_chunk(copy))


def _states_junk(copy: Path) -> None:
    _chunk(copy, ".safetensors").write_bytes(b"\x00" * 128)


def _states_reshaped(copy: Path) -> None:
    """Weights of the wrong shape under a recorded checksum (an attacker's consistent edit):
    a (1,) tensor would broadcast into any weight if it were copied unchecked."""
    import hashlib

    from safetensors.numpy import load, save

    path = _chunk(copy, ".safetensors")
    flat = {name: np.zeros(1, np.float32) for name in load(path.read_bytes())}
    data = save(flat, metadata={"format": "shrinkage.checkpoint"})
    path.write_bytes(data)
    payload = json.loads(_chunk(copy).read_text())
    payload["states"] = hashlib.sha256(data).hexdigest()
    _chunk(copy).write_text(json.dumps(payload))
    for refined in (copy / "out" / "chunks").glob("refine-chunk-*"):
        refined.unlink()  # as if killed before the refinement: it must start from these


RESUME = [
    ("not-json", _chunk_text("{nope"), "(it is not valid JSON: "),
    ("a-list", _chunk_text("[]"), "(it is not a shrinkage checkpoint)"),
    ("binary", _chunk_text(b"\xff\xfe\x00" * 50), "(it is not UTF-8 text)"),
    ("nested", _chunk_text("[" * 200_000), "(it is nested too deeply)"),
    ("old-format", _chunk_edit(lambda p: p.pop("format")), "another version of shrinkage"),
    (
        "score-edited",
        _chunk_edit(lambda p: p["rows"][0].update(test_score=1.0)),
        "its rows do not match its checksum",
    ),
    ("checksum-removed", _chunk_edit(lambda p: p.pop("checksum")), "do not match its checksum"),
    (
        "rows-junk-rehashed",
        _chunk_edit(lambda p: p.update(rows=[1, 2]), rehash=True),
        "row 0 is not an object",
    ),
    (
        "row-field-junk-rehashed",
        _chunk_edit(lambda p: p["rows"][0].update(diverged="no"), rehash=True),
        "row 0 has diverged='no'",
    ),
    (
        "row-layers-junk-rehashed",
        _chunk_edit(lambda p: p["rows"][1].pop("weight_l2_layer1"), rehash=True),
        "row 1 does not have the layers of the other rows",
    ),
    (
        "candidate-junk-rehashed",
        _chunk_edit(lambda p: p["rows"][0].update(candidate=10**9), rehash=True),
        "holds candidates [1000000000",
    ),
    ("sparse-300MiB", _sparse_chunk, "is 314572800 bytes; at most"),
    ("fifo", _chunk_fifo, "is a FIFO (named pipe), not a regular file"),
    ("states-junk", _states_junk, "does not match the checksum its .json file records"),
    (
        "states-reshaped-rehashed",
        _states_reshaped,
        "The warm-start weights of candidate 4 (from a checkpoint) do not fit the network",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [c[1:] for c in RESUME], ids=[c[0] for c in RESUME]
)
def test_a_tampered_chunk_is_refused_by_resume(copy, capsys, tamper, expected):
    tamper(copy)
    before = snapshot(copy)
    code, out, err = run_cli([*_TUNE, "--resume"], capsys)
    check_refused(code, out, err, expected)
    assert "grid-chunk-00000" in err or "checkpoint" in err
    after = snapshot(copy)
    if "warm-start" in expected:  # refused in the refinement, after the grid's results.csv
        del before["out/results.csv"], after["out/results.csv"]
    assert after == before
