"""Save and load fitted estimators: safetensors for the weights, JSON for the rest.

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
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_safetensors
from safetensors.torch import save as _save_safetensors

import shrinkage
from shrinkage import penalties as P
from shrinkage.data import Preprocessor
from shrinkage.errors import ShrinkageError
from shrinkage.models import MLP
from shrinkage.penalties import Penalty
from shrinkage.plan import Plan

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "WEIGHTS_FILE",
    "load",
    "read_metadata",
    "save",
]

FORMAT = "shrinkage.model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"

# model.json is small; a bigger one was not written by save().
_MAX_JSON_BYTES = 64 * 2**20


def _estimator_classes() -> dict[str, type]:
    from shrinkage.estimators import MLPClassifier, MLPRegressor

    return {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}


# --------------------------------------------------------------------------- JSON values


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN / inf: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _penalty_spec_to_json(spec: Any) -> Any:
    if isinstance(spec, Penalty):
        return {"penalty_object": P.serialize(spec)}
    if isinstance(spec, tuple):
        return list(spec)
    return spec


def _penalty_spec_from_json(spec: Any) -> Any:
    if isinstance(spec, dict) and "penalty_object" in spec:
        return P.deserialize(spec["penalty_object"])
    if isinstance(spec, list):
        return tuple(spec)
    return spec


def _params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out["hidden_layer_sizes"] = [int(h) for h in np.atleast_1d(params["hidden_layer_sizes"])]
    out["penalty"] = _penalty_spec_to_json(params["penalty"])
    placement = params["placement"]
    out["placement"] = placement if isinstance(placement, str) else [int(i) for i in placement]
    layers = params["layer_penalties"]
    out["layer_penalties"] = (
        None
        if layers is None
        else {str(int(k)): _penalty_spec_to_json(v) for k, v in layers.items()}
    )
    state = params["random_state"]
    # A RandomState object cannot be written; the seed it gave is saved as "seed".
    out["random_state"] = state if state is None or isinstance(state, int) else None
    for key, value in out.items():
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def _params_from_json(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    out["penalty"] = _penalty_spec_from_json(params["penalty"])
    if isinstance(params["placement"], list):
        out["placement"] = tuple(params["placement"])
    layers = params["layer_penalties"]
    if layers is not None:
        out["layer_penalties"] = {int(k): _penalty_spec_from_json(v) for k, v in layers.items()}
    return out


def _classes_to_json(classes: np.ndarray) -> dict[str, Any]:
    values = classes.tolist()
    kind = classes.dtype.kind
    if kind == "O" and all(isinstance(v, str) for v in values):
        kind = "U"
    return {"values": values, "kind": kind}


def _classes_from_json(entry: Any) -> np.ndarray:
    values, kind = entry["values"], entry["kind"]
    if kind == "U":
        return np.array(values, dtype=object)
    if kind in "biuf":
        return np.array(
            values, dtype={"b": bool, "i": np.int64, "u": np.uint64, "f": np.float64}[kind]
        )
    return np.array(values, dtype=object)


# --------------------------------------------------------------------------- save


def _metadata(
    estimator: Any, tensors: dict[str, torch.Tensor], digest: str, target: str | None
) -> dict[str, Any]:
    model: MLP = estimator.model_
    history = [
        {key: _finite_or_none(value) for key, value in row.items()} for row in estimator.history_
    ]
    last = history[-1] if history else {}
    feature_names = getattr(estimator, "feature_names_in_", None)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "shrinkage_version": shrinkage.__version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "estimator": type(estimator).__name__,
        "task": estimator._task,
        "params": _params_to_json(estimator.get_params(deep=False)),
        "architecture": {
            "sizes": list(model.sizes),
            "activation": model.activation_name,
        },
        "plan": estimator.plan_.get_config(),
        "preprocessor": estimator.preprocessor_.to_config(),
        "classes": _classes_to_json(estimator.classes_) if hasattr(estimator, "classes_") else None,
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if feature_names is None else [str(n) for n in feature_names],
        "target": target,
        "seed": int(estimator.seed_),
        "n_iter": int(estimator.n_iter_),
        "best_epoch": int(estimator.best_epoch_),
        "metrics": {
            "epochs": len(history),
            "train_score": last.get("train_score"),
            "val_score": last.get("val_score"),
            "data_loss": last.get("data_loss"),
            "penalty": last.get("penalty"),
        },
        "history": history,
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": digest,
            "tensors": {name: list(t.shape) for name, t in tensors.items()},
        },
    }


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # directories cannot be fsynced on some platforms
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


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
    if type(estimator).__name__ not in _estimator_classes():
        raise ShrinkageError(
            f"save() handles MLPClassifier and MLPRegressor; got {type(estimator).__name__}."
        )
    folder = check_output_dir(directory)
    parent = folder.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)

    tensors = {
        name: tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in estimator.model_.state_dict().items()
    }
    data = _save_safetensors(tensors, metadata={"format": FORMAT})
    digest = hashlib.sha256(data).hexdigest()
    meta = _metadata(estimator, tensors, digest, None if target is None else str(target))
    text = json.dumps(meta, indent=2, allow_nan=False)

    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=parent))
    try:
        _write_bytes(staging / WEIGHTS_FILE, data)
        _write_bytes(staging / MODEL_FILE, text.encode("utf-8"))
        _fsync(staging)
        _swap(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync(parent)
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
        raise ShrinkageError(
            f"'{folder}' is not a shrinkage model directory: {MODEL_FILE} is missing."
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
            f"shrinkage {shrinkage.__version__} reads version {FORMAT_VERSION}."
        )
    return meta


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _bad(path: Path, what: str) -> ShrinkageError:
    return ShrinkageError(f"The model file '{path}' is malformed: {what}.")


def _read_weights(folder: Path, meta: dict[str, Any], sizes: list[int]) -> dict[str, torch.Tensor]:
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
    expected: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        expected[f"layers.{i}.weight"] = (n_out, n_in)
        expected[f"layers.{i}.bias"] = (n_out,)
    if set(tensors) != set(expected):
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        raise ShrinkageError(
            f"The weights file '{path}' does not fit the architecture {sizes}: "
            f"missing tensors {missing}, unexpected tensors {extra}."
        )
    for name, shape in expected.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != shape or tensor.dtype != torch.float32:
            raise ShrinkageError(
                f"The weights file '{path}' has {name} of shape {tuple(tensor.shape)} and dtype "
                f"{tensor.dtype}; the architecture {sizes} needs shape {shape}, float32."
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
    from shrinkage.errors import check_device

    classes = _estimator_classes()
    name = meta.get("estimator")
    if name not in classes:
        raise _bad(json_path, f"'estimator' must be one of {', '.join(classes)}; got {name!r}")
    try:
        architecture = meta["architecture"]
        sizes = [int(s) for s in architecture["sizes"]]
        activation = str(architecture["activation"])
        params = _params_from_json(meta["params"])
        estimator = classes[name](**params)
        settings = estimator._resolve_params()
    except ShrinkageError as err:
        raise _bad(json_path, str(err).rstrip(".")) from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise _bad(json_path, f"{type(err).__name__}: {err}") from None
    if len(sizes) < 2 or sizes[1:-1] != list(settings.hidden) or activation != settings.activation:
        raise _bad(
            json_path,
            f"the architecture {sizes} ({activation}) does not match the parameters "
            f"hidden_layer_sizes={settings.hidden}, activation={settings.activation!r}",
        )

    tensors = _read_weights(folder, meta, sizes)
    try:
        model = MLP(sizes[0], sizes[1:-1], sizes[-1], activation)
        model.load_state_dict(tensors)
        preprocessor = Preprocessor.from_config(meta["preprocessor"])
        plan = Plan.from_config(meta["plan"])
        plan.resolve(model)
        history = list(meta["history"])
        n_features_in = int(meta["n_features_in"])
        classes_ = None if meta.get("classes") is None else _classes_from_json(meta["classes"])
    except ShrinkageError as err:
        raise _bad(json_path, str(err).rstrip(".")) from None
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise _bad(json_path, f"{type(err).__name__}: {err}") from None
    if preprocessor.n_features_out_ != sizes[0]:
        raise _bad(
            json_path,
            f"the preprocessor gives {preprocessor.n_features_out_} features but the network "
            f"takes {sizes[0]}",
        )
    if name == "MLPClassifier":
        if classes_ is None or len(classes_) < 2:
            raise _bad(json_path, "a classifier needs at least 2 'classes'")
        if sizes[-1] != (1 if len(classes_) == 2 else len(classes_)):
            raise _bad(json_path, f"{len(classes_)} classes do not fit {sizes[-1]} outputs")
        estimator.classes_ = classes_
    elif sizes[-1] != 1:
        raise _bad(json_path, f"a regressor has 1 output, not {sizes[-1]}")

    estimator.model_ = model.to(check_device(device))
    estimator.preprocessor_ = preprocessor
    estimator.plan_ = plan
    estimator.history_ = history
    estimator.n_features_in_ = n_features_in
    if meta.get("feature_names_in") is not None:
        estimator.feature_names_in_ = np.array(meta["feature_names_in"], dtype=object)
    estimator.seed_ = int(meta.get("seed", 0))
    estimator.n_iter_ = int(meta.get("n_iter", len(history)))
    estimator.best_epoch_ = int(meta.get("best_epoch", len(history)))
    estimator.layer_weights_ = estimator._layer_weights()
    return estimator
