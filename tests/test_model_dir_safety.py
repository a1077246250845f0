"""Tampered model directories are refused in one line, and nothing in them is executed.

A model directory is ``model.json`` + the weights file it names (see
:mod:`shrinkage.estimators`). Each case below damages a saved directory the way a
truncated copy, a hand edit or an attacker would, then ``load`` must raise
``ShrinkageError`` with the exact one-line message. Cases marked *consistent* also rewrite
the checksum in ``model.json`` (and renames the weights file after it), as an attacker
would, so that the checks behind the checksum (safetensors parsing, names, shapes, dtypes)
are the ones that refuse.

The pickle payloads open a marker file when unpickled; the marker must never appear.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MODEL_FILE, MLPClassifier, load, save

MARKER = "PWNED"
WEIGHTS = "model/{weights}"  # the weights file model.json names once tampered
JSON = f"model/{MODEL_FILE}"


def weights_file(directory: Path) -> Path:
    """The weights file model.json names (read raw: the JSON may already be tampered)."""
    return directory / json.loads((directory / MODEL_FILE).read_text())["weights"]["file"]


class _Payload:
    """Unpickling this calls ``open(path, "w")``, creating ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def payload(path: Path) -> bytes:
    return pickle.dumps(_Payload(str(path)))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, np.ndarray, pd.DataFrame]:
    """A small fitted classifier saved once; each test works on a copy."""
    X = pd.DataFrame({"a": np.linspace(0, 1, 20), "c": ["x", "y"] * 10})
    y = np.array([0, 1] * 10)
    model = MLPClassifier(hidden_layer_sizes=(4,), epochs=3, random_state=0).fit(X, y)
    directory = tmp_path_factory.mktemp("saved") / "model"
    save(model, directory)
    return directory, model.predict_proba(X), X


@pytest.fixture
def model_dir(saved, tmp_path, monkeypatch) -> Path:
    # Messages quote the path as given: load("model") from inside tmp_path keeps them exact.
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved[0], tmp_path / "model")
    return tmp_path / "model"


# --- tampering helpers -----------------------------------------------------------------


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join_safetensors(header: dict, body: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def edit_header(directory: Path, edit: Callable[[dict], None]) -> None:
    path = weights_file(directory)
    header, body = split_safetensors(path.read_bytes())
    edit(header)
    path.write_bytes(join_safetensors(header, body))


def edit_json(directory: Path, edit: Callable[[dict], None]) -> None:
    path = directory / MODEL_FILE
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def rehash(directory: Path) -> None:
    """What an attacker does after editing the weights: record the new checksum (and name
    the file after it, as save() does)."""
    path = weights_file(directory)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    path.rename(directory / f"weights-{digest[:16]}.safetensors")
    edit_json(
        directory,
        lambda meta: meta["weights"].update(
            sha256=digest, file=f"weights-{digest[:16]}.safetensors", bytes=len(data)
        ),
    )


def truncate(directory: Path) -> None:
    path = weights_file(directory)
    path.write_bytes(path.read_bytes()[:-20])


def truncate_consistent(directory: Path) -> None:
    truncate(directory)
    rehash(directory)


def shape(name: str, new: list[int]) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        edit_header(directory, lambda h: h[name].update(shape=new))
        rehash(directory)

    return tamper


def dtype_f16(directory: Path) -> None:
    # same bytes read as twice as many float16 values: the byte count still matches
    edit_header(directory, lambda h: h["layers.0.weight"].update(dtype="F16", shape=[8, 3]))
    rehash(directory)


def huge_header_length(directory: Path) -> None:
    path = weights_file(directory)
    path.write_bytes(struct.pack("<Q", 2**60) + path.read_bytes()[8:])
    rehash(directory)


def extra_tensor(directory: Path) -> None:
    path = weights_file(directory)
    header, body = split_safetensors(path.read_bytes())
    header["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(body), len(body) + 4]}
    path.write_bytes(join_safetensors(header, body + b"\0\0\0\0"))
    rehash(directory)


def nan_weight(directory: Path) -> None:
    path = weights_file(directory)
    header, body = split_safetensors(path.read_bytes())
    start = header["layers.0.bias"]["data_offsets"][0]
    body = body[:start] + struct.pack("<f", float("nan")) + body[start + 4 :]
    path.write_bytes(join_safetensors(header, body))
    rehash(directory)


def pickle_as_weights(directory: Path) -> None:
    (weights_file(directory)).write_bytes(payload(directory.parent / MARKER))


def pickle_as_weights_consistent(directory: Path) -> None:
    pickle_as_weights(directory)
    rehash(directory)


def torch_zip_as_weights(directory: Path) -> None:
    # torch.save's format: a zip holding data.pkl; here data.pkl is the payload
    with zipfile.ZipFile(weights_file(directory), "w") as archive:
        archive.writestr("archive/data.pkl", payload(directory.parent / MARKER))
    rehash(directory)


def pickle_as_json(directory: Path) -> None:
    (directory / MODEL_FILE).write_bytes(payload(directory.parent / MARKER))


def json_truncated(directory: Path) -> None:
    path = directory / MODEL_FILE
    path.write_text(path.read_text()[:100])


def json_nan(directory: Path) -> None:
    path = directory / MODEL_FILE
    path.write_text(path.read_text().replace('"n_iter": 3', '"n_iter": NaN'))


def json_set(*keys: str, value: object) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        def edit(meta: dict) -> None:
            node = meta
            for key in keys[:-1]:
                node = node[key]
            node[keys[-1]] = value

        edit_json(directory, edit)

    return tamper


def json_drop(*keys: str) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        def edit(meta: dict) -> None:
            node = meta
            for key in keys[:-1]:
                node = node[key]
            del node[keys[-1]]

        edit_json(directory, edit)

    return tamper


def weights_removed(directory: Path) -> None:
    weights_file(directory).unlink()


def weights_is_directory(directory: Path) -> None:
    weights_file(directory).unlink()
    weights_file(directory).mkdir()


_CHECKSUM = (
    f"The weights file '{WEIGHTS}' does not match the checksum in model.json: it was "
    "truncated or modified after saving."
)
_ARCH = "the architecture [3, 4, 1] needs shape"


class Prefix(str):
    """An expected message whose end is the safetensors library's own (version-dependent)."""


_NOT_SAFETENSORS = Prefix(f"The weights file '{WEIGHTS}' is not a valid safetensors file (")
_MALFORMED = f"The model file '{JSON}' is malformed: "
_NOT_A_MODEL = f"The model file '{JSON}' is not a shrinkage model (no 'format')."

# (id, tamper, exact message)
CASES = [
    ("truncated", truncate, _CHECKSUM),
    ("truncated-consistent", truncate_consistent, _NOT_SAFETENSORS),
    (
        "shape-transposed",
        shape("layers.0.weight", [3, 4]),
        f"The weights file '{WEIGHTS}' has layers.0.weight of shape (3, 4) and dtype "
        f"torch.float32; {_ARCH} (4, 3), float32.",
    ),
    ("shape-too-big", shape("layers.0.weight", [40, 3]), _NOT_SAFETENSORS),
    (
        "dtype-f16",
        dtype_f16,
        f"The weights file '{WEIGHTS}' has layers.0.weight of shape (8, 3) and dtype "
        f"torch.float16; {_ARCH} (4, 3), float32.",
    ),
    ("huge-header-length", huge_header_length, _NOT_SAFETENSORS),
    (
        "extra-tensor",
        extra_tensor,
        f"The weights file '{WEIGHTS}' does not fit the architecture [3, 4, 1]: missing "
        "tensors [], unexpected tensors ['extra'].",
    ),
    (
        "nan-weight",
        nan_weight,
        f"The weights file '{WEIGHTS}' has NaN or infinite values in layers.0.bias.",
    ),
    ("pickle-as-weights", pickle_as_weights, _CHECKSUM),
    ("pickle-as-weights-consistent", pickle_as_weights_consistent, _NOT_SAFETENSORS),
    ("torch-zip-as-weights", torch_zip_as_weights, _NOT_SAFETENSORS),
    (
        "pickle-as-json",
        pickle_as_json,
        f"The model file '{JSON}' is not valid JSON ('utf-8' codec can't decode byte 0x80 in "
        "position 0: invalid start byte).",
    ),
    (
        "json-truncated",
        json_truncated,
        Prefix(f"The model file '{JSON}' is not valid JSON (Unterminated string "),
    ),
    ("json-nan", json_nan, f"The model file '{JSON}' is not valid JSON (NaN is not allowed)."),
    ("json-format", json_set("format", value="pickle"), _NOT_A_MODEL),
    (
        "json-version",
        json_set("format_version", value=99),
        f"The model file '{JSON}' has format version 99; this shrinkage 0.1.0 reads versions 1, 2.",
    ),
    (
        "json-estimator",
        json_set("estimator", value="os.system"),
        _MALFORMED + "'estimator' must be one of MLPClassifier, MLPRegressor; got 'os.system'.",
    ),
    (
        "json-sizes",
        json_set("architecture", "sizes", value=[3, 5, 1]),
        _MALFORMED + "the architecture [3, 5, 1] (relu) does not match the parameters "
        "hidden_layer_sizes=(4,), activation='relu'.",
    ),
    (
        "json-sizes-text",
        json_set("architecture", "sizes", value="big"),
        _MALFORMED + "'architecture.sizes' must be a list of 2 to 65 items; got 'big'.",
    ),
    (
        "json-activation",
        json_set("architecture", "activation", value="__import__"),
        _MALFORMED + "'architecture.activation' must be one of 'relu', 'tanh', 'logistic', "
        "'sigmoid', 'gelu', 'identity'; got '__import__'.",
    ),
    (
        "json-params-extra",
        json_set("params", "exec", value="print(1)"),
        _MALFORMED + "MLPClassifier() got an unexpected keyword argument 'exec'.",
    ),
    (
        "json-strength",
        json_set("params", "strength", value=-1),
        _MALFORMED + "The 'strength' parameter must be a finite float in the range [0, inf). "
        "Got -1 instead.",
    ),
    (
        "json-checksum-missing",
        json_drop("weights", "sha256"),
        _MALFORMED + "'weights.sha256' is missing.",
    ),
    (
        "json-preprocessor",
        json_set("preprocessor", "numeric", value=[{"name": 1}]),
        _MALFORMED + "The preprocessor config is malformed: numeric[0]['mean'] must be a "
        "finite number; got None.",
    ),
    (
        "json-classes",
        json_set("classes", value={"values": [0], "kind": "i"}),
        _MALFORMED + "'classes.values' must be a list of 2 to 100000 items; got [0].",
    ),
    (
        "json-plan",
        json_set("plan", value={"rules": [{"select": {"x": 1}, "penalty": None}]}),
        _MALFORMED + "Invalid selector in a saved plan: {'x': 1}.",
    ),
    ("json-list", lambda d: (d / MODEL_FILE).write_text("[]"), _NOT_A_MODEL),
    ("weights-missing", weights_removed, f"The weights file '{WEIGHTS}' is missing."),
    (
        "weights-is-directory",
        weights_is_directory,
        f"The weights file '{WEIGHTS}' is a directory, not a file.",
    ),
]


@pytest.mark.parametrize(("tamper", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tampered_directory_is_refused(model_dir, tamper, message):
    tamper(model_dir)
    try:
        weights = weights_file(model_dir).name
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        weights = None
    message = type(message)(message.replace("{weights}", str(weights)))
    with pytest.raises(ShrinkageError) as caught:
        load("model")
    text = str(caught.value)
    assert text.strip() and len(text.splitlines()) == 1, text
    if isinstance(message, Prefix):
        assert text.startswith(message) and text.endswith(".")
    else:
        assert text == message
    assert not (model_dir.parent / MARKER).exists()


def test_payloads_are_live(tmp_path):
    # the payload really runs when unpickled, so the marker checks above mean something
    control = tmp_path / "control"
    pickle.loads(payload(control))
    assert control.exists()


@pytest.mark.parametrize("name", ["weights.pt", "model.pkl", "weights.bin", "extra.json"])
def test_extra_files_are_never_opened(saved, model_dir, name):
    """A file left beside the model is ignored: never unpickled, and the model unchanged."""
    (model_dir / name).write_bytes(payload(model_dir.parent / MARKER))
    torch.save({"x": _Payload(str(model_dir.parent / MARKER))}, model_dir / "state.pt")
    loaded = load("model")
    np.testing.assert_array_equal(loaded.predict_proba(saved[2]), saved[1])
    assert not (model_dir.parent / MARKER).exists()
