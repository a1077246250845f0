"""The saved-model format: safetensors for the weights, JSON for the rest, one atomic commit.

This module owns the format (files, checksum, atomic replacement, the envelope of
``model.json``); each estimator class owns its own content (``_to_config`` /
``_from_config`` / ``_expected_tensors``) and registers itself with :func:`register`, so
this module never imports an estimator.

A saved model is a directory (format version 2)::

    model/
      model.json                          format version, estimator class and parameters,
                                          architecture, plan, preprocessing, classes,
                                          history and metrics, and the name, size, SHA-256
                                          and tensor shapes of the weights file
      weights-<first 16 hex of its SHA-256>.safetensors
                                          layers.{i}.weight and layers.{i}.bias, float32

``model.json`` is the commit: a weights file is never changed once written (its name is
its content), so a save writes the new weights file beside the old one and then replaces
``model.json`` with one ``os.replace``. A reader reads ``model.json`` once and then the
weights file it names: it always sees one whole model, old or new, and never a mixture. A
save keeps the previous weights file (a reader may be about to open it) and removes older
ones, and anything a killed save left behind. Saves to one directory are serialized by a
lock on the directory (released by the system when a process dies): the second of two
concurrent saves is refused in one line. Format version 1 (``weights.safetensors``,
written by shrinkage 0.1) is still read.

Loading never unpickles: it reads JSON and safetensors only, validates ``model.json``
against one schema with bounds (:mod:`shrinkage.estimators._schema`), refuses a weights
file larger than its architecture needs before reading it, checks the checksum, the
tensor names, dtypes and shapes, and refuses anything else with a one-line
:class:`~shrinkage.errors.ShrinkageError`.

Only a directory that is empty, new, or holds a shrinkage model (by the ``format`` field of
its ``model.json``) is written to, and only the files named above are ever replaced or
removed: anything else in it (notes, evaluations) stays.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_safetensors
from safetensors.torch import save as _save_safetensors

from shrinkage._io import (
    atomic_write,
    check_writable_folder,
    fsync_path,
    parse_json,
    path_problem,
    read_bounded,
    read_json,
)
from shrinkage._version import __version__
from shrinkage.errors import ShrinkageError, check_device
from shrinkage.estimators._schema import SchemaError, validate

try:  # POSIX: a lock the system releases when its process dies, even by SIGKILL
    import fcntl
except ImportError:  # pragma: no cover - Windows: saves are not serialized
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "WEIGHTS_FILE",
    "check_output_dir",
    "is_model_dir",
    "load",
    "read_metadata",
    "register",
    "save",
    "weights_path",
]

FORMAT = "shrinkage.model"
FORMAT_VERSION = 2
#: The format versions this release reads.
READ_VERSIONS = (1, 2)
MODEL_FILE = "model.json"
#: The weights file of format version 1; version 2 names it after its checksum.
WEIGHTS_FILE = "weights.safetensors"

# model.json is small (its history is the largest part); a bigger one was not written here.
_MAX_JSON_BYTES = 64 * 2**20
# A safetensors file is 8 bytes of header length, the JSON header, then the data: the header
# of an MLP is well under this per tensor.
_HEADER_BYTES = 1024
_HEADER_BYTES_PER_TENSOR = 256
# A reader whose weights file was removed by a newer save reads model.json again.
_READ_ATTEMPTS = 8

_VERSIONED = re.compile(r"weights-[0-9a-f]{16}\.safetensors")
# What a killed save can leave: atomic_write's temporaries of our two kinds of file.
_LEFTOVER = re.compile(
    r"\.(model\.json|weights-[0-9a-f]{16}\.safetensors)\..+\.tmp|\.shrinkage-probe-.+"
)

#: The estimator classes a model directory may hold, by class name (see :func:`register`).
_CLASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make an estimator class saveable and loadable.

    The class provides ``_to_config(self) -> (dict, {name: tensor})`` (the JSON content and
    the weights), ``_expected_tensors(config) -> {name: shape}`` (classmethod: what the
    weights file must hold) and ``_from_config(config, tensors, device)`` (classmethod).
    """
    _CLASSES[cls.__name__] = cls
    return cls


def _weights_name(sha256: str) -> str:
    return f"weights-{sha256[:16]}.safetensors"


# --------------------------------------------------------------------------- what is there


def _owned_model_json(folder: Path) -> dict[str, Any] | None:
    """The parsed ``model.json`` of ``folder`` when it is a shrinkage model's (its ``format``
    field), else None. A damaged one of ours still counts as ours."""
    path = folder / MODEL_FILE
    try:
        meta = read_json(path, _MAX_JSON_BYTES, "The model file")
    except ShrinkageError:
        return None
    if isinstance(meta, dict) and meta.get("format") == FORMAT:
        return meta
    return None


def is_model_dir(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a shrinkage model, damaged or not.

    Args:
        directory: any path.

    Returns:
        True when it is a directory whose ``model.json`` is JSON with ``"format":
        "shrinkage.model"``.
    """
    folder = Path(os.fspath(directory))
    return folder.is_dir() and _owned_model_json(folder) is not None


def _current_weights(meta: dict[str, Any] | None) -> str | None:
    """The weights file a model.json of ours names, when it is a name we write."""
    entry = meta.get("weights") if meta is not None else None
    name = entry.get("file") if isinstance(entry, dict) else None
    if isinstance(name, str) and (name == WEIGHTS_FILE or _VERSIONED.fullmatch(name)):
        return name
    return None


def _check_target(target: Path, overwrite: bool) -> str | None:
    """Refuse a target that is not ours to write; return the weights file of the model
    already there (None: no model)."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ShrinkageError(
            f"The model directory '{target}' {path_problem(target, err)}."
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        kind = "a file" if stat.S_ISREG(info.st_mode) else "not a directory"
        raise ShrinkageError(
            f"The model directory '{target}' exists and is {kind}, not a directory."
        )
    entries = os.listdir(target)
    if MODEL_FILE in entries:
        meta = _owned_model_json(target)
        if meta is None:
            raise ShrinkageError(
                f"The directory '{target}' holds a {MODEL_FILE} that is not a shrinkage model's "
                "(another tool's model?); refusing to write there. Choose another directory."
            )
        if not overwrite:
            raise ShrinkageError(
                f"The directory '{target}' already holds a shrinkage model; pass "
                "overwrite=True (CLI: --force) to replace it, or choose another directory."
            )
        return _current_weights(meta)
    foreign = [name for name in entries if not _is_ours(name)]
    if foreign:
        raise ShrinkageError(
            f"The model directory '{target}' exists and is not a shrinkage model (it has no "
            f"{MODEL_FILE} but holds {foreign[0]!r}); refusing to write there. Choose a new "
            "or empty directory."
        )
    return None  # empty, or only what a killed first save left


def _is_ours(name: str) -> bool:
    return bool(_VERSIONED.fullmatch(name) or _LEFTOVER.fullmatch(name))


def check_output_dir(directory: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Check that ``directory`` can receive a model, before any work is done.

    Args:
        directory: where :func:`save` will write.
        overwrite: whether a model already there may be replaced.

    Returns:
        The directory as a path.

    Raises:
        ShrinkageError: it is a file, a non-empty directory that is not a shrinkage model,
            a model while ``overwrite`` is false, or a place where nothing can be created.
    """
    target = Path(os.fspath(directory))
    _check_target(target, overwrite)
    check_writable_folder(target, "The model directory")
    return target


# --------------------------------------------------------------------------- save


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the save lock of ``folder``; another save holding it is an error, not a wait."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ShrinkageError(
                f"Another process is saving a model to '{folder}' right now; this save was not "
                "made. Save again once it has finished."
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _clean(folder: Path, keep: set[str], retired: str | None) -> None:
    """Remove what no reader can need any more: weights files of older versions, a retired
    format-1 weights file, and a killed save's temporaries. Nothing else is touched."""
    for name in os.listdir(folder):
        if name in keep:
            continue
        if name == retired or _is_ours(name):
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()


def save(
    estimator: Any,
    directory: str | os.PathLike,
    *,
    target: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Save a fitted :class:`~shrinkage.estimators.MLPClassifier` / ``MLPRegressor``.

    The weights go to ``weights-<hash>.safetensors``, everything else to ``model.json`` (see
    the module docstring), and the new model becomes visible in one atomic step. A
    directory that holds anything but a shrinkage model is refused; files of the user's in
    a model directory are kept.

    Args:
        estimator: the fitted estimator.
        directory: the model directory (created, with its parents, if needed).
        target: the name of the target column, recorded for ``shrinkage predict``.
        overwrite: replace a model already in ``directory`` (as Keras's ``save``); False
            refuses it.

    Returns:
        The directory.

    Raises:
        ShrinkageError: the estimator is not fitted, the directory cannot be used or
            written (the model there, if any, is then unchanged), or another process is
            saving to it at the same moment.

    Example:
        >>> save(clf, "model/")  # doctest: +SKIP
        >>> load("model/").predict(X)  # doctest: +SKIP
    """
    if not hasattr(estimator, "model_"):
        raise ShrinkageError(
            f"This {type(estimator).__name__} is not fitted yet; call fit() before save()."
        )
    name = type(estimator).__name__
    if _CLASSES.get(name) is not type(estimator):
        raise ShrinkageError(
            f"save() handles {', '.join(_CLASSES) or 'registered estimators'}; got {name}."
        )
    folder = Path(os.fspath(directory))
    _check_target(folder, overwrite)

    config, tensors = estimator._to_config()
    tensors = {k: t.detach().to("cpu", torch.float32).contiguous() for k, t in tensors.items()}
    data = _save_safetensors(tensors, metadata={"format": FORMAT})
    digest = hashlib.sha256(data).hexdigest()
    weights = _weights_name(digest)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "shrinkage_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "estimator": name,
        **config,
        "target": None if target is None else str(target),
        "weights": {
            "file": weights,
            "sha256": digest,
            "bytes": len(data),
            "tensors": {key: list(t.shape) for key, t in tensors.items()},
        },
    }
    text = json.dumps(meta, indent=2, allow_nan=False)

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            # Again under the lock: another process may have saved here since the first check.
            current = _check_target(folder, overwrite)
            atomic_write(folder / weights, data)
            fsync_path(folder)
            atomic_write(folder / MODEL_FILE, text)  # the commit
            fsync_path(folder)
            keep = {weights} | ({current} if current and _VERSIONED.fullmatch(current) else set())
            _clean(folder, keep, retired=current if current == WEIGHTS_FILE else None)
    except OSError as err:  # a full disk, a read-only or vanished folder: the old model stays
        reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
        raise ShrinkageError(
            f"The model directory '{folder}' could not be written: {reason}."
        ) from None
    return folder


# --------------------------------------------------------------------------- load


def _folder(directory: str | os.PathLike) -> Path:
    folder = Path(os.fspath(directory))
    try:
        info = os.stat(folder)
    except OSError as err:
        raise ShrinkageError(
            f"The model directory '{folder}' {path_problem(folder, err)}."
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise ShrinkageError(f"The model path '{folder}' is a file; expected a model directory.")
    return folder


def _bad(path: Path, what: str) -> ShrinkageError:
    """The one-line error for a ``model.json`` whose content does not describe a model."""
    return ShrinkageError(f"The model file '{path}' is malformed: {what}.")


def _parse_metadata(folder: Path) -> tuple[dict[str, Any], bytes]:
    """``model.json`` read once, checked against the schema; and its raw bytes."""
    path = folder / MODEL_FILE
    try:
        info = os.stat(path)
    except FileNotFoundError:
        # `shrinkage tune` writes its refit model one level down, in OUT_DIR/model/.
        inner = folder / "model"
        hint = f" Did you mean '{inner}/'?" if (inner / MODEL_FILE).is_file() else ""
        raise ShrinkageError(
            f"'{folder}' is not a shrinkage model directory: {MODEL_FILE} is missing.{hint}"
        ) from None
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise ShrinkageError(
            f"'{folder}' is not a shrinkage model directory: {MODEL_FILE} is a directory."
        )
    raw = read_bounded(path, _MAX_JSON_BYTES, "The model file")
    meta = parse_json(raw, path, "The model file")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ShrinkageError(f"The model file '{path}' is not a shrinkage model (no 'format').")
    version = meta.get("format_version")
    if type(version) is not int or version not in READ_VERSIONS:
        raise ShrinkageError(
            f"The model file '{path}' has format version {version!r:.40}; this shrinkage "
            f"{__version__} reads versions {', '.join(map(str, READ_VERSIONS))}."
        )
    try:
        validate(meta)
    except SchemaError as err:
        raise _bad(path, str(err)) from None
    name = meta["estimator"]
    if name not in _CLASSES:
        raise _bad(path, f"'estimator' must be one of {', '.join(_CLASSES)}; got {name!r}")
    if _CLASSES[name]._task != meta["task"]:
        raise _bad(
            path, f"'task' must be {_CLASSES[name]._task!r} for {name}; got {meta['task']!r}"
        )
    expected_file = WEIGHTS_FILE if version == 1 else _weights_name(meta["weights"]["sha256"])
    if meta["weights"]["file"] != expected_file:
        raise _bad(
            path, f"'weights.file' must be {expected_file!r}; got {meta['weights']['file']!r}"
        )
    return meta, raw


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``model.json`` of a saved model (the weights are not read).

    Args:
        directory: the model directory.

    Returns:
        The parsed metadata, valid against the schema.

    Raises:
        ShrinkageError: a missing directory or file, invalid JSON, another format, or a
            field that does not fit the schema (named).
    """
    return _parse_metadata(_folder(directory))[0]


def weights_path(directory: str | os.PathLike) -> Path:
    """The weights file of the model saved in ``directory`` (what its ``model.json`` names).

    Args:
        directory: the model directory.

    Returns:
        ``directory / "weights-<16 hex>.safetensors"`` (``weights.safetensors`` for format 1).

    Raises:
        ShrinkageError: as :func:`read_metadata`.
    """
    folder = _folder(directory)
    return folder / _parse_metadata(folder)[0]["weights"]["file"]


def _weights_limit(meta: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> int:
    """The most bytes the weights file of this architecture can take."""
    data = sum(4 * _numel(shape) for shape in expected.values())
    return 8 + _HEADER_BYTES + _HEADER_BYTES_PER_TENSOR * len(expected) + data


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def _read_weights(
    folder: Path, meta: dict[str, Any], expected: dict[str, tuple[int, ...]], what: str
) -> dict[str, torch.Tensor] | None:
    """The weights file, checked against its size, checksum and the ``expected`` shapes;
    None when the file is gone (a newer save removed it: read model.json again)."""
    entry = meta["weights"]
    path = folder / entry["file"]
    limit = _weights_limit(meta, expected)
    if "bytes" in entry and entry["bytes"] > limit:
        raise _bad(
            folder / MODEL_FILE,
            f"'weights.bytes' is {entry['bytes']}; the architecture {what} needs at most {limit}",
        )
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ShrinkageError(f"The weights file '{path}' {path_problem(path, err)}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ShrinkageError(f"The weights file '{path}' is a directory, not a file.")
    if stat.S_ISREG(info.st_mode) and info.st_size > limit:
        raise ShrinkageError(
            f"The weights file '{path}' is {info.st_size} bytes; the architecture {what} "
            f"needs at most {limit}: it is not this model's weights."
        )
    data = read_bounded(path, limit, "The weights file")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ShrinkageError(
            f"The weights file '{path}' does not match the checksum in {MODEL_FILE}: it was "
            "truncated or modified after saving."
        )
    try:
        tensors = _load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as err:
        text = " ".join(str(err).split())
        raise ShrinkageError(
            f"The weights file '{path}' is not a valid safetensors file ({text})."
        ) from None
    if set(tensors) != set(expected):
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        raise ShrinkageError(
            f"The weights file '{path}' does not fit the architecture {what}: "
            f"missing tensors {missing}, unexpected tensors {extra}."
        )
    for name, shape in expected.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != shape or tensor.dtype != torch.float32:
            raise ShrinkageError(
                f"The weights file '{path}' has {name} of shape {tuple(tensor.shape)} and dtype "
                f"{tensor.dtype}; the architecture {what} needs shape {shape}, float32."
            )
        if not torch.isfinite(tensor).all():
            raise ShrinkageError(f"The weights file '{path}' has NaN or infinite values in {name}.")
    return tensors


def _unchanged(folder: Path, raw: bytes) -> bool:
    """Whether ``model.json`` still holds ``raw`` (no save has committed since it was read)."""
    try:
        return read_bounded(folder / MODEL_FILE, _MAX_JSON_BYTES, "The model file") == raw
    except ShrinkageError:
        return False


def load(directory: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a model saved by :func:`save`, without unpickling anything.

    ``model.json`` is read once and the weights file it names is read next; when a save
    running meanwhile has already removed that file, ``model.json`` is read again. So a
    load concurrent with saves returns the old model or the new one, whole.

    Args:
        directory: the model directory.
        device: where to put the network.

    Returns:
        The fitted :class:`~shrinkage.estimators.MLPClassifier` or ``MLPRegressor``.

    Raises:
        ShrinkageError: a missing directory or file, invalid JSON, a field outside the
            schema, a weights file larger than the architecture needs, a checksum mismatch,
            a file that is not safetensors (a pickle, say), tensors whose names or shapes
            do not fit the architecture, or metadata that does not describe a valid model.
    """
    folder = _folder(directory)
    json_path = folder / MODEL_FILE
    device = check_device(device)
    for _ in range(_READ_ATTEMPTS):
        meta, raw = _parse_metadata(folder)
        cls = _CLASSES[meta["estimator"]]
        try:
            expected, what = cls._expected_tensors(meta)
        except ShrinkageError as err:
            raise _bad(json_path, str(err).rstrip(".")) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise _bad(json_path, f"{type(err).__name__}: {err}") from None
        recorded = {
            k: tuple(v) if isinstance(v, list) else v for k, v in meta["weights"]["tensors"].items()
        }
        if recorded != expected:
            raise _bad(
                json_path, f"'weights.tensors' does not list the tensors of the architecture {what}"
            )
        tensors = _read_weights(folder, meta, expected, what)
        if tensors is not None:
            break
        if _unchanged(folder, raw):
            path = folder / meta["weights"]["file"]
            raise ShrinkageError(f"The weights file '{path}' is missing.")
    else:
        raise ShrinkageError(
            f"The model in '{folder}' changed {_READ_ATTEMPTS} times while it was being read; "
            "load it again once the saves to it have finished."
        )
    try:
        return cls._from_config(meta, tensors, device)
    except ShrinkageError as err:
        raise _bad(json_path, str(err).rstrip(".")) from None
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise _bad(json_path, f"{type(err).__name__}: {err}") from None
