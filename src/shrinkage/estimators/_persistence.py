"""The saved-model format: safetensors for the weights, JSON for the rest.

This module owns the format (files, checksum, atomic replacement, the envelope of
``model.json``); each estimator class owns its own content (``_to_config`` /
``_from_config`` / ``_expected_tensors``) and registers itself with :func:`register`, so
this module never imports an estimator.

A saved model is a directory::

    model/
      model.json           format version, estimator class and parameters, architecture,
                           plan, preprocessing, classes, history and metrics, and the
                           SHA-256, names and shapes of the tensors
      weights.safetensors  layers.{i}.weight and layers.{i}.bias, float32

Loading never unpickles: it reads JSON and safetensors only, checks the checksum, the
tensor names, dtypes and shapes against the architecture, and refuses anything else with
a one-line :class:`~shrinkage.errors.ShrinkageError`.

Saving is atomic: the new directory is written under a temporary sibling name and then
swapped in by two renames, so an interrupted save leaves the previous model in place.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_safetensors
from safetensors.torch import save as _save_safetensors

from shrinkage._io import atomic_write, fsync_path
from shrinkage._version import __version__
from shrinkage.errors import ShrinkageError, check_device

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "WEIGHTS_FILE",
    "check_output_dir",
    "load",
    "read_metadata",
    "register",
    "save",
]

FORMAT = "shrinkage.model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"

# model.json is small; a bigger one was not written by save().
_MAX_JSON_BYTES = 64 * 2**20


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


# --------------------------------------------------------------------------- save


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ShrinkageError(
            f"The model directory '{target}' exists and is a file, not a directory."
        )
    if target.is_dir() and any(target.iterdir()) and not (target / MODEL_FILE).is_file():
        raise ShrinkageError(
            f"The model directory '{target}' exists and is not a shrinkage model (it has no "
            f"{MODEL_FILE}); refusing to replace it. Choose a new or empty directory."
        )


def check_output_dir(directory: str | os.PathLike) -> Path:
    """Check that ``directory`` can receive a model, before any work is done.

    Args:
        directory: where :func:`save` will write.

    Returns:
        The directory as a path.

    Raises:
        ShrinkageError: it is a file, or a non-empty directory that is not a saved model.
    """
    target = Path(os.fspath(directory))
    _check_target(target)
    return target


def save(estimator: Any, directory: str | os.PathLike, *, target: str | None = None) -> Path:
    """Save a fitted :class:`~shrinkage.estimators.MLPClassifier` / ``MLPRegressor``.

    The weights go to ``weights.safetensors``, everything else to ``model.json`` (see the
    module docstring). An existing model directory is replaced atomically; a directory
    that holds anything else is refused.

    Args:
        estimator: the fitted estimator.
        directory: the model directory (created, with its parents, if needed).
        target: the name of the target column, recorded for ``shrinkage predict``.

    Returns:
        The directory.

    Raises:
        ShrinkageError: the estimator is not fitted, or the directory cannot be used.

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
    folder = check_output_dir(directory)
    parent = folder.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)

    config, tensors = estimator._to_config()
    tensors = {k: t.detach().to("cpu", torch.float32).contiguous() for k, t in tensors.items()}
    data = _save_safetensors(tensors, metadata={"format": FORMAT})
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
            "file": WEIGHTS_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "tensors": {key: list(t.shape) for key, t in tensors.items()},
        },
    }
    text = json.dumps(meta, indent=2, allow_nan=False)

    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=parent))
    try:
        atomic_write(staging / WEIGHTS_FILE, data)
        atomic_write(staging / MODEL_FILE, text)
        fsync_path(staging)
        _swap(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(parent)
    return folder


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old ``target`` survives any failure before the end."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


# --------------------------------------------------------------------------- load


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``model.json`` of a saved model (the weights are not read).

    Args:
        directory: the model directory.

    Returns:
        The parsed metadata.

    Raises:
        ShrinkageError: a missing directory or file, invalid JSON, or another format.
    """
    folder = Path(os.fspath(directory))
    if not folder.exists():
        raise ShrinkageError(f"The model directory '{folder}' does not exist.")
    if not folder.is_dir():
        raise ShrinkageError(f"The model path '{folder}' is a file; expected a model directory.")
    path = folder / MODEL_FILE
    if not path.is_file():
        # `shrinkage tune` writes its refit model one level down, in OUT_DIR/model/.
        inner = folder / "model"
        hint = f" Did you mean '{inner}/'?" if (inner / MODEL_FILE).is_file() else ""
        raise ShrinkageError(
            f"'{folder}' is not a shrinkage model directory: {MODEL_FILE} is missing.{hint}"
        )
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ShrinkageError(f"The model file '{path}' is too large to be a shrinkage model.")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        text = " ".join(str(err).split())
        raise ShrinkageError(f"The model file '{path}' is not valid JSON ({text}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ShrinkageError(f"The model file '{path}' is not a shrinkage model (no 'format').")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ShrinkageError(
            f"The model file '{path}' has format version {meta.get('format_version')!r}; this "
            f"shrinkage {__version__} reads version {FORMAT_VERSION}."
        )
    return meta


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _bad(path: Path, what: str) -> ShrinkageError:
    """The one-line error for a ``model.json`` whose content does not describe a model."""
    return ShrinkageError(f"The model file '{path}' is malformed: {what}.")


def _read_weights(
    folder: Path, meta: dict[str, Any], expected: dict[str, tuple[int, ...]], what: str
) -> dict[str, torch.Tensor]:
    """The weights file, checked against its checksum and the ``expected`` tensor shapes."""
    entry = meta.get("weights")
    json_path = folder / MODEL_FILE
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise _bad(json_path, "'weights' must record the file's sha256")
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ShrinkageError(f"The weights file '{path}' is missing.")
    data = path.read_bytes()
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


def load(directory: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a model saved by :func:`save`, without unpickling anything.

    Args:
        directory: the model directory.
        device: where to put the network.

    Returns:
        The fitted :class:`~shrinkage.estimators.MLPClassifier` or ``MLPRegressor``.

    Raises:
        ShrinkageError: a missing directory or file, invalid JSON, a checksum mismatch, a
            file that is not safetensors (a pickle, say), tensors whose names or shapes do
            not fit the architecture, or metadata that does not describe a valid model.
    """
    folder = Path(os.fspath(directory))
    meta = read_metadata(folder)
    json_path = folder / MODEL_FILE
    name = meta.get("estimator")
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _bad(json_path, f"'estimator' must be one of {', '.join(_CLASSES)}; got {name!r}")
    try:
        expected, what = cls._expected_tensors(meta)
    except ShrinkageError as err:
        raise _bad(json_path, str(err).rstrip(".")) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise _bad(json_path, f"{type(err).__name__}: {err}") from None
    tensors = _read_weights(folder, meta, expected, what)
    try:
        return cls._from_config(meta, tensors, check_device(device))
    except ShrinkageError as err:
        raise _bad(json_path, str(err).rstrip(".")) from None
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise _bad(json_path, f"{type(err).__name__}: {err}") from None
