"""A results directory: what ``shrinkage tune`` writes, and how a report reads it back.

A results directory holds::

    tune.json              what marks the directory as ours: the files we wrote in it
    results.csv            one row per configuration (the search's cv_results_)
    model/                 the refit best estimator
    chunks/                the finished chunks of the search (for --resume)
    search.json            optional: data description, search space, 2-D points
    baseline.safetensors   optional: the unregularized fit's weights (histograms)
    report.html            the report

:func:`check_results_dir` accepts only a new or empty directory or one that ``tune.json``
marks as a results directory; :func:`claim_results_dir` creates that marker and
:func:`record_files` lists in it every file written, so that only those are ever replaced
or deleted (:func:`owned_files`). :func:`save_report_metadata` writes the two optional
files; :func:`load_report_inputs` reads the directory into :class:`ReportInputs`,
everything a report can show, refusing a damaged file in one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinkage._io import (
    atomic_write,
    check_input_file,
    check_writable_folder,
    parse_json,
    path_problem,
    read_bounded,
    read_json,
)
from shrinkage.analysis import (
    Diagnosis,
    activation_summary,
    as_results_frame,
    best_index,
    layer_weights,
)
from shrinkage.errors import ShrinkageError

RESULTS_FILE = "results.csv"
MODEL_DIR = "model"
CHUNKS_DIR = "chunks"
METADATA_FILE = "search.json"
BASELINE_FILE = "baseline.safetensors"
REPORT_FILE = "report.html"
MANIFEST_FILE = "tune.json"

_METADATA_FORMAT = "shrinkage.search-metadata"
_METADATA_VERSION = 1
_MANIFEST_FORMAT = "shrinkage.results"
_MANIFEST_VERSION = 1
# What a results directory's small files may weigh at most (results.csv: a row per
# configuration; search.json: up to 2000 points; baseline: an MLP's weights).
_MAX_MANIFEST_BYTES = 16 * 2**20
_MAX_METADATA_BYTES = 64 * 2**20
_MAX_RESULTS_BYTES = 256 * 2**20
_MAX_BASELINE_BYTES = 4 * 2**30
#: 2-D points kept in search.json for the decision boundary: enough to see the shape.
_MAX_POINTS = 2000


@dataclass
class ReportInputs:
    """Everything a report can show; each part is optional and its section says so.

    Attributes:
        results: the search's results, one row per configuration.
        estimator: the chosen (refit) estimator.
        baseline: the unregularized fit (an estimator, a module, or name → weights).
        data: a description of the data (``rows``, ``features``, ``target``, ``task``…).
        search_space: what was searched (merged over what ``results`` shows);
            ``scoring`` says what the scores are.
        X: rows for the decision boundary (2 features) and the activations.
        y: their targets.
        title: the report's heading.
        chosen_index: the search's chosen row (``best_index_``; it may follow the
            one-standard-error rule); default :func:`~shrinkage.analysis.best_index`.
        activations: a saved :func:`~shrinkage.analysis.activation_summary`, shown when
            there are no rows ``X`` to compute it from.
        diagnoses: more ``(measured on, Diagnosis)`` rows for the diagnosis table (e.g.
            each network of the demo on its train and test rows), listed first.
    """

    results: pd.DataFrame | None = None
    estimator: Any = None
    baseline: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, Any] = field(default_factory=dict)
    X: Any = None
    y: Any = None
    title: str = "shrinkage report"
    chosen_index: int | None = None
    activations: list[dict[str, Any]] | None = None
    diagnoses: list[tuple[str, Diagnosis]] = field(default_factory=list)

    def chosen_row(self) -> int:
        """The row of ``results`` the report presents as chosen: ``chosen_index`` when it is
        a row, else the best mean validation score (:func:`~shrinkage.analysis.best_index`)."""
        if self.chosen_index is not None and 0 <= self.chosen_index < len(self.results):
            return int(self.chosen_index)
        return best_index(self.results)


def describe_data(
    X: Any,
    y: Any = None,
    *,
    source: str | None = None,
    target: str | None = None,
    task: str | None = None,
    preprocessing: str | None = None,
) -> dict[str, Any]:
    """A short, JSON-ready description of a data set for the report.

    Args:
        X: the feature rows (array or DataFrame).
        y: the targets (class counts are listed for up to 20 classes).
        source: where the data came from (a file name, "make_moons(…)").
        target: the target column's name.
        task: ``"classification"`` or ``"regression"``.
        preprocessing: what was done to the inputs (e.g. standardized).

    Returns:
        ``{"source", "rows", "features", "feature_names", "target", "task", "classes",
        "preprocessing"}`` (absent keys omitted).
    """
    shape = np.shape(X)
    out: dict[str, Any] = {
        "rows": int(shape[0]),
        "features": int(shape[1]) if len(shape) > 1 else 1,
    }
    if source:
        out["source"] = str(source)
    if isinstance(X, pd.DataFrame):
        out["feature_names"] = [str(c) for c in X.columns]
    if target:
        out["target"] = str(target)
    if task:
        out["task"] = str(task)
    if y is not None and task != "regression":
        values, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        if len(values) <= 20:
            out["classes"] = {str(v): int(c) for v, c in zip(values, counts)}
    if preprocessing:
        out["preprocessing"] = str(preprocessing)
    return out


#: SearchCV settings worth stating in the report's search space.
_SEARCH_SETTINGS = (
    "strengths",
    "kinds",
    "l1_ratios",
    "placements",
    "cv",
    "validation_fraction",
    "scoring",
    "one_standard_error",
    "refine",
    "refine_points",
    "refine_epochs",
    "random_state",
)


def search_settings(search: Any) -> dict[str, Any]:
    """The search space and choice rule of a fitted search, as JSON-ready values."""
    out: dict[str, Any] = {}
    for name in _SEARCH_SETTINGS:
        value = getattr(search, name, None)
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, list | tuple):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        if isinstance(value, str | int | float | bool | list):
            out[name] = value
        elif name == "cv":
            out[name] = type(value).__name__
    for name in ("n_splits_", "scoring_"):
        value = getattr(search, name, None)
        if isinstance(value, str | int | np.integer):
            out[name.rstrip("_")] = value.item() if isinstance(value, np.generic) else value
    return out


def save_report_metadata(
    out_dir: str | os.PathLike,
    *,
    search: Any = None,
    data: Mapping[str, Any] | None = None,
    search_space: Mapping[str, Any] | None = None,
    baseline: Any = None,
    X: Any = None,
    y: Any = None,
    title: str | None = None,
) -> Path:
    """Save what ``results.csv`` and ``model/`` cannot tell the report.

    Writes ``search.json`` (the chosen row, the search space and choice rule, the data
    description, the title, the hidden activations of the chosen model on ``X`` and, for
    2-feature data, up to 2000 points for the decision boundary) and, when ``baseline`` is
    given, ``baseline.safetensors`` (the unregularized fit's weight matrices). Both
    atomically.

    Args:
        out_dir: the results directory.
        search: the fitted search (``best_index_``, its settings, ``best_estimator_``).
        data: from :func:`describe_data` (or any JSON-ready mapping).
        search_space: more search-space entries (override the search's).
        baseline: the unregularized fit: an estimator, an ``nn.Module`` or name → array.
        X: the raw rows (points kept only when they have exactly 2 features).
        y: their targets.
        title: the report's heading.

    Returns:
        The path of ``search.json``.
    """
    folder = Path(out_dir)
    meta: dict[str, Any] = {"format": _METADATA_FORMAT, "version": _METADATA_VERSION}
    if title:
        meta["title"] = str(title)
    if search is not None and getattr(search, "best_index_", None) is not None:
        meta["best_index"] = int(search.best_index_)
    meta["data"] = dict(data or {})
    space = search_settings(search) if search is not None else {}
    meta["search_space"] = {**space, **dict(search_space or {})}
    chosen = getattr(search, "best_estimator_", None)
    if chosen is not None and X is not None:
        try:
            meta["activations"] = activation_summary(chosen, X)
        except ShrinkageError:
            pass  # a linear model has no hidden layer to summarize
    if is_plane(X):
        points = np.asarray(X, dtype=float)[:_MAX_POINTS]
        meta["points"] = {
            "columns": [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None,
            "X": points.round(6).tolist(),
            "y": None if y is None else np.asarray(y)[:_MAX_POINTS].tolist(),
        }
    if baseline is not None:
        from safetensors.numpy import save

        tensors = {
            name: np.ascontiguousarray(w, dtype=np.float32) for name, w in layer_weights(baseline)
        }
        atomic_write(folder / BASELINE_FILE, save(tensors))
    text = json.dumps(_jsonable(meta), indent=1, allow_nan=False)
    return atomic_write(folder / METADATA_FILE, text + "\n")


def is_plane(X: Any) -> bool:
    """Whether ``X`` is rows of exactly two numeric features (a decision boundary's plane)."""
    if X is None or np.ndim(X) != 2 or np.shape(X)[1] != 2:
        return False
    try:
        np.asarray(X, dtype=float)
    except (TypeError, ValueError):  # a categorical column: no plane to draw
        return False
    return True


def _jsonable(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _load_estimator(folder: Path) -> Any:
    from shrinkage.estimators import load

    return load(folder)


# --------------------------------------------------------------------------- ownership


def _manifest(folder: Path) -> dict[str, Any] | None:
    """``tune.json`` of ``folder`` when it is ours (its ``format`` field), else None."""
    try:
        meta = read_json(folder / MANIFEST_FILE, _MAX_MANIFEST_BYTES, "The results file")
    except ShrinkageError:
        return None
    if isinstance(meta, dict) and meta.get("format") == _MANIFEST_FORMAT:
        files = meta.get("files")
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            return meta
    return None


def check_results_dir(out_dir: str | os.PathLike, option: str = "--output") -> Path:
    """Check, before any work, that ``shrinkage tune`` may write its results in ``out_dir``.

    It must be new, an empty directory (empty subdirectories allowed), or a results
    directory that ``tune`` wrote (marked by ``tune.json``), and files must be creatable
    there.

    Args:
        out_dir: the directory.
        option: the option that named it, for the message.

    Returns:
        The directory.

    Raises:
        ShrinkageError: anything else is there (a file, a directory of the user's), or
            nothing can be created there.
    """
    folder = Path(os.fspath(out_dir))
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        entries = []
    except NotADirectoryError:
        raise ShrinkageError(
            f"The '{option}' path '{folder}' exists and is not a directory."
        ) from None
    except OSError as err:
        raise ShrinkageError(
            f"The '{option}' path '{folder}' {path_problem(folder, err)}."
        ) from None
    if entries and _manifest(folder) is None and _holds_files(folder):
        raise ShrinkageError(
            f"The '{option}' directory '{folder}' is not empty and is not a results directory "
            f"of shrinkage tune (it has no {MANIFEST_FILE}); nothing in it is replaced. Choose "
            "a new or empty directory."
        )
    check_writable_folder(folder, f"The '{option}' directory")
    return folder


def _holds_files(folder: Path) -> bool:
    """Whether anything but (nested) empty directories is in ``folder``: those are no one's
    work, and a directory of them counts as empty."""
    for _, _, files in os.walk(folder):
        if files:
            return True
    return any(
        os.path.islink(os.path.join(root, d)) for root, dirs, _ in os.walk(folder) for d in dirs
    )


def claim_results_dir(out_dir: str | os.PathLike) -> None:
    """Create ``out_dir`` (and its parents) and mark it as a results directory of ours.

    Call :func:`check_results_dir` first; an existing ``tune.json`` is kept as it is.

    Args:
        out_dir: the directory.
    """
    folder = Path(os.fspath(out_dir))
    folder.mkdir(parents=True, exist_ok=True)
    if _manifest(folder) is None:
        _write_manifest(folder, [])


def _write_manifest(folder: Path, files: list[str]) -> None:
    meta = {"format": _MANIFEST_FORMAT, "version": _MANIFEST_VERSION, "files": sorted(files)}
    atomic_write(folder / MANIFEST_FILE, json.dumps(meta, indent=1) + "\n")


def owned_files(out_dir: str | os.PathLike) -> list[str]:
    """The files ``tune.json`` lists as written by us in ``out_dir``.

    Args:
        out_dir: a results directory.

    Returns:
        Paths relative to ``out_dir`` (empty when it has no valid ``tune.json``).
    """
    meta = _manifest(Path(os.fspath(out_dir)))
    return [] if meta is None else list(meta["files"])


def record_files(out_dir: str | os.PathLike, names: list[str]) -> None:
    """Add ``names`` to the files ``tune.json`` lists (rewritten atomically when it changes).

    List a file *before* writing it: then the list always covers what is on disk.

    Args:
        out_dir: a results directory (claimed by :func:`claim_results_dir`).
        names: paths relative to ``out_dir``.
    """
    folder = Path(os.fspath(out_dir))
    listed = owned_files(folder)
    new = [name for name in names if name not in listed]
    if new:
        _write_manifest(folder, listed + new)


def forget_files(out_dir: str | os.PathLike, names: list[str]) -> None:
    """Remove ``names`` from the files ``tune.json`` lists, once they are deleted.

    Args:
        out_dir: a results directory.
        names: paths relative to ``out_dir``.
    """
    folder = Path(os.fspath(out_dir))
    listed = owned_files(folder)
    kept = [name for name in listed if name not in set(names)]
    if len(kept) != len(listed):
        _write_manifest(folder, kept)


# --------------------------------------------------------------------------- reading


def _bad_file(path: Path, why: str) -> ShrinkageError:
    return ShrinkageError(
        f"The results file '{path}' {why}; run 'shrinkage tune' again to write it."
    )


# Columns of a results table that must hold numbers (NaN allowed).
_NUMERIC = {
    "param_strength",
    "param_l1_ratio",
    "mean_test_score",
    "std_test_score",
    "rank_test_score",
    "mean_train_score",
    "std_train_score",
    "mean_fit_time",
    "std_fit_time",
    "mean_score_time",
    "std_score_time",
    "n_diverged",
}
_NUMERIC_PATTERN = re.compile(r"split[0-9]+_(test|train)_score|(weight_l2|sparsity)_layer[0-9]+")


def _read_results(path: Path) -> pd.DataFrame:
    import io

    data = read_bounded(path, _MAX_RESULTS_BYTES, "The results file")
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        raise _bad_file(path, "is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise _bad_file(path, f"is not a CSV table ({' '.join(str(err).split())})") from None
    try:
        frame = as_results_frame(frame)
        for column in frame.columns:
            if column in _NUMERIC or _NUMERIC_PATTERN.fullmatch(str(column)):
                frame[column] = pd.to_numeric(frame[column], errors="raise")
        if "rank_test_score" in frame and not frame["rank_test_score"].dropna().ge(1).all():
            raise ValueError("'rank_test_score' holds ranks below 1")
        return frame
    except ShrinkageError as err:
        raise _bad_file(path, f"is not a search's results ({str(err).rstrip('.')})") from None
    except (KeyError, ValueError, TypeError) as err:
        raise _bad_file(path, f"is not a search's results ({type(err).__name__}: {err})") from None


def _read_metadata(path: Path, inputs: ReportInputs, n_rows: int) -> None:
    meta = parse_json(
        read_bounded(path, _MAX_METADATA_BYTES, "The results file"), path, "The results file"
    )
    if not isinstance(meta, dict):
        raise _bad_file(path, "is not an object")
    try:
        inputs.data = _plain(meta.get("data") or {}, "data")
        inputs.search_space = _plain(meta.get("search_space") or {}, "search_space")
        inputs.title = str(meta.get("title") or inputs.title)
        best = meta.get("best_index")
        if type(best) is int and 0 <= best < n_rows:
            inputs.chosen_index = best
        activations = meta.get("activations")
        if isinstance(activations, list) and all(isinstance(a, dict) for a in activations):
            inputs.activations = activations
        points = meta.get("points")
        if points:
            if not isinstance(points, dict):
                raise ValueError("'points' is not an object")
            X = np.asarray(points["X"], dtype=float)
            if X.ndim != 2 or X.shape[1] != 2 or not np.isfinite(X).all():
                raise ValueError("'points.X' is not rows of 2 finite numbers")
            columns = points.get("columns")
            if columns is not None and (
                not isinstance(columns, list)
                or len(columns) != 2
                or not all(isinstance(c, str) for c in columns)
            ):
                raise ValueError("'points.columns' is not 2 names")
            y = points.get("y")
            if y is not None:
                y = np.asarray(y)
                if y.shape != (len(X),) or y.dtype.kind not in "biufU":
                    raise ValueError("'points.y' is not one label per point")
            inputs.X = pd.DataFrame(X, columns=columns) if columns else X
            inputs.y = y
    except (KeyError, TypeError, ValueError) as err:
        raise _bad_file(path, f"is malformed ({' '.join(str(err).split())})") from None


def _plain(value: Any, name: str) -> dict[str, Any]:
    """A mapping of names to plain values (strings, numbers, lists, small mappings)."""
    if not isinstance(value, dict):
        raise ValueError(f"'{name}' is not an object")
    return {str(k): v for k, v in value.items()}


def _read_baseline(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = read_bounded(path, _MAX_BASELINE_BYTES, "The results file")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise _bad_file(path, f"is not a safetensors file ({' '.join(str(err).split())})") from None
    for name, array in tensors.items():
        if array.ndim < 1 or array.dtype.kind != "f" or not np.isfinite(array).all():
            raise _bad_file(path, f"has a tensor {name!r:.60} that is not finite weights")
    # In the order they were written (the layers' order), which the parser does not keep.
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    return dict(sorted(tensors.items(), key=lambda item: header[item[0]]["data_offsets"][0]))


def load_report_inputs(results_dir: str | os.PathLike) -> ReportInputs:
    """Read a results directory (``results.csv``, ``model/``, optional metadata).

    Every file is read with a size bound and checked; a damaged one is refused in one line
    naming it.

    Raises:
        ShrinkageError: the directory or its ``results.csv`` does not exist, or a file in
            it cannot be read or is malformed.
    """
    folder = Path(results_dir)
    try:
        if not os.path.isdir(folder):
            os.stat(folder)
            raise ShrinkageError(f"The results directory '{folder}' is not a directory.")
    except OSError as err:
        raise ShrinkageError(
            f"The results directory '{folder}' {path_problem(folder, err)}."
        ) from None
    csv = folder / RESULTS_FILE
    if not os.path.lexists(csv):
        raise ShrinkageError(
            f"The results directory '{folder}' has no {RESULTS_FILE}; "
            "run 'shrinkage tune' to create it."
        )
    check_input_file(csv, "The results file")
    frame = _read_results(csv)
    inputs = ReportInputs(results=frame)
    if (folder / MODEL_DIR).is_dir():
        inputs.estimator = _load_estimator(folder / MODEL_DIR)
    meta_path = folder / METADATA_FILE
    if os.path.lexists(meta_path):
        _read_metadata(meta_path, inputs, len(frame))
    baseline = folder / BASELINE_FILE
    if os.path.lexists(baseline):
        inputs.baseline = _read_baseline(baseline)
    return inputs


# --------------------------------------------------------------------------- HTML pieces
