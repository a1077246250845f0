"""The HTML report: one self-contained file that shows what regularization did.

:func:`build_report` writes a single HTML file: every figure is a base64 PNG inside it,
the CSS is inline, there is no script, and a Content-Security-Policy forbids loading
anything, so it opens offline, from an e-mail attachment, on a phone (responsive layout,
viewport meta). It states the data, the search space, the chosen configuration, the
convention of lambda, the over-fitting diagnosis, and shows the figures of
:mod:`shrinkage.plots`.

A results directory (what ``shrinkage tune`` writes) holds::

    results.csv            one row per configuration (the search's cv_results_)
    model/                 the refit best estimator
    search.json            optional: data description, search space, 2-D points
    baseline.safetensors   optional: the unregularized fit's weights (histograms)
    report.html            this report

:func:`save_report_metadata` writes the two optional files; ``shrinkage report DIR``
rebuilds ``report.html`` from the directory alone. :func:`write_tune_report` is the one
call ``shrinkage tune`` makes after saving its search (metadata, the unregularized
baseline, the report); :func:`write_demo_report` is ``shrinkage demo``'s (an
unregularized network against a regularized one).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinkage.diagnosis import (
    Diagnosis,
    activation_summary,
    as_results_frame,
    as_text,
    best_index,
    diagnose_history,
    diagnose_search,
    grid_rows,
    group_columns,
    layer_indices,
    layer_weights,
    one_standard_error_index,
    placement_table,
)
from shrinkage.errors import ShrinkageError

__all__ = [
    "BASELINE_FILE",
    "METADATA_FILE",
    "REPORT_FILE",
    "RESULTS_FILE",
    "MODEL_DIR",
    "ReportInputs",
    "build_report",
    "render_html",
    "describe_data",
    "fit_baseline",
    "load_report_inputs",
    "save_report_metadata",
    "write_tune_report",
    "write_atomic",
    "write_demo_report",
]

RESULTS_FILE = "results.csv"
MODEL_DIR = "model"
METADATA_FILE = "search.json"
BASELINE_FILE = "baseline.safetensors"
REPORT_FILE = "report.html"

_METADATA_FORMAT = "shrinkage.search-metadata"
_METADATA_VERSION = 1
#: 2-D points kept in search.json for the decision boundary: enough to see the shape.
_MAX_POINTS = 2000
_DPI = 100
_TOP_ROWS = 10
#: scorings whose ``1 - score`` is an error the diagnosis can read (rate or unexplained R²).
_ERROR_SCORINGS = ("accuracy", "balanced_accuracy", "r2")


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
            one-standard-error rule); default :func:`~shrinkage.diagnosis.best_index`.
        activations: a saved :func:`~shrinkage.diagnosis.activation_summary`, shown when
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


# --------------------------------------------------------------------------- files


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A reader never sees a half-written file, and an interrupted write leaves the old one.

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); a report is meant to be shared and served.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


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


def _search_settings(search: Any) -> dict[str, Any]:
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
    space = _search_settings(search) if search is not None else {}
    meta["search_space"] = {**space, **dict(search_space or {})}
    chosen = getattr(search, "best_estimator_", None)
    if chosen is not None and X is not None:
        try:
            meta["activations"] = activation_summary(chosen, X)
        except ShrinkageError:
            pass  # a linear model has no hidden layer to summarize
    if _plane(X):
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
        write_atomic(folder / BASELINE_FILE, save(tensors))
    text = json.dumps(_jsonable(meta), indent=1, allow_nan=False)
    return write_atomic(folder / METADATA_FILE, text + "\n")


def _plane(X: Any) -> bool:
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


def fit_baseline(estimator: Any, X: Any, y: Any) -> Any:
    """The unregularized twin of ``estimator``: same settings and seed, ``strength=0``.

    Its weights are the grey histograms of the report: what the chosen penalty changed.

    Args:
        estimator: a fitted or unfitted estimator with a ``strength`` parameter.
        X: training rows.
        y: targets.

    Returns:
        A new fitted estimator.
    """
    from sklearn.base import clone

    twin = clone(estimator)
    params = twin.get_params(deep=False)
    seed = getattr(estimator, "seed_", None)
    if "random_state" in params and params["random_state"] is None and seed is not None:
        # Same initialization and minibatch order as the chosen fit: only lambda differs.
        twin.set_params(random_state=int(seed))
    return twin.set_params(strength=0.0).fit(X, y)


def write_tune_report(
    out_dir: str | os.PathLike,
    search: Any,
    X: Any,
    y: Any,
    *,
    data: Mapping[str, Any] | None = None,
    baseline: bool = True,
    title: str | None = None,
) -> Path:
    """What ``shrinkage tune`` and ``shrinkage demo`` call after saving the search.

    Saves :func:`save_report_metadata` (with an unregularized baseline fitted by
    :func:`fit_baseline` when ``baseline`` and the search has a ``best_estimator_``), then
    builds ``report.html`` from the search in memory (``results.csv`` and ``model/`` need
    not be written yet).

    Args:
        out_dir: the results directory.
        search: the fitted search.
        X: the training rows (raw, as given to the search).
        y: their targets.
        data: the data description (default: :func:`describe_data` of ``X``, ``y``).
        baseline: fit the unregularized twin of the chosen model for the histograms.
        title: the report's heading.

    Returns:
        The path of ``report.html``.
    """
    chosen = getattr(search, "best_estimator_", None)
    if data is None:
        task = "classification" if hasattr(chosen, "classes_") else None
        data = describe_data(X, y, task=task)
    twin = fit_baseline(chosen, X, y) if baseline and chosen is not None else None
    save_report_metadata(out_dir, search=search, data=data, baseline=twin, X=X, y=y, title=title)
    return build_report(
        search,
        Path(out_dir) / REPORT_FILE,
        baseline=twin,
        data=data,
        search_space=_search_settings(search),
        X=X if _plane(X) else None,
        y=y if _plane(X) else None,
        title=title,
    )


def write_demo_report(
    path: str | os.PathLike,
    chosen: Any,
    baseline: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    search: Any = None,
    data: Mapping[str, Any] | None = None,
    title: str = "shrinkage demo: over-fitting on two moons",
) -> Path:
    """The report of ``shrinkage demo``: an unregularized network against a regularized one.

    Each network is diagnosed from its train and test accuracy (the seed's story: the
    unregularized network fits its training rows and not the test rows, high variance; the
    penalty closes the gap); the figures are the weight histograms (chosen over
    unregularized), the chosen network's learning curves, the two decision boundaries
    and, when a ``search`` is given, its validation curve, path and placement study.

    Args:
        path: where to write the report.
        chosen: the regularized estimator, fitted on the training rows.
        baseline: the unregularized estimator, fitted on the same rows.
        X_train: training rows (two features).
        y_train: training labels.
        X_test: test rows.
        y_test: test labels.
        search: an optional fitted search on the training rows.
        data: the data description (default: rows, features and class counts, train/test).
        title: the heading.

    Returns:
        The path written.
    """
    from shrinkage.diagnosis import diagnose_estimator

    if data is None:
        data = describe_data(X_train, y_train, task="classification")
        data["test rows"] = int(np.shape(X_test)[0])
    thresholds = (
        {"baseline_error": float(data["baseline_error"])} if "baseline_error" in data else {}
    )
    diagnoses = [
        (
            f"{name}: train vs test accuracy",
            diagnose_estimator(model, X_train, y_train, X_test, y_test, **thresholds),
        )
        for name, model in (("unregularized", baseline), ("chosen", chosen))
    ]
    inputs = ReportInputs(
        estimator=chosen,
        baseline=baseline,
        data=dict(data),
        X=X_train,
        y=y_train,
        title=title,
        diagnoses=diagnoses,
    )
    if search is not None:
        inputs.results = as_results_frame(search)
        inputs.chosen_index = getattr(search, "best_index_", None)
        inputs.search_space = _search_settings(search)
    return write_atomic(path, render_html(inputs))


def _load_estimator(folder: Path) -> Any:
    from shrinkage.persistence import load

    return load(folder)


def load_report_inputs(results_dir: str | os.PathLike) -> ReportInputs:
    """Read a results directory (``results.csv``, ``model/``, optional metadata).

    Raises:
        ShrinkageError: the directory or its ``results.csv`` does not exist.
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ShrinkageError(f"The results directory {str(folder)!r} does not exist.")
    csv = folder / RESULTS_FILE
    if not csv.is_file():
        raise ShrinkageError(
            f"The results directory {str(folder)!r} has no {RESULTS_FILE}; "
            "run 'shrinkage tune' to create it."
        )
    frame = as_results_frame(pd.read_csv(csv))
    inputs = ReportInputs(results=frame)
    if (folder / MODEL_DIR).is_dir():
        inputs.estimator = _load_estimator(folder / MODEL_DIR)
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ShrinkageError(f"The file {str(meta_path)!r} is not valid JSON: {err}.") from None
        inputs.data = dict(meta.get("data") or {})
        inputs.search_space = dict(meta.get("search_space") or {})
        inputs.title = str(meta.get("title") or inputs.title)
        if isinstance(meta.get("best_index"), int) and 0 <= meta["best_index"] < len(frame):
            inputs.chosen_index = meta["best_index"]
        if isinstance(meta.get("activations"), list):
            inputs.activations = meta["activations"]
        points = meta.get("points")
        if points:
            X = np.asarray(points["X"], dtype=float)
            columns = points.get("columns")
            inputs.X = pd.DataFrame(X, columns=columns) if columns else X
            inputs.y = None if points.get("y") is None else np.asarray(points["y"])
    if (folder / BASELINE_FILE).is_file():
        from safetensors.numpy import load_file

        inputs.baseline = load_file(str(folder / BASELINE_FILE))
    return inputs


# --------------------------------------------------------------------------- HTML pieces

_CSS = """
:root { color-scheme: light; --ink: #1c2330; --muted: #5b6473; --line: #e2e5ea;
  --card: #ffffff; --bg: #f4f5f7; --accent: #2463eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; -webkit-text-size-adjust: 100%; }
main { max-width: 1040px; margin: 0 auto; padding: 16px; }
header h1 { margin: 8px 0 2px; font-size: 1.6rem; }
header p { margin: 0; color: var(--muted); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 18px; margin: 14px 0; }
h2 { font-size: 1.2rem; margin: 4px 0 10px; }
h3 { font-size: 1rem; margin: 12px 0 6px; }
p, li { overflow-wrap: anywhere; }
code { background: #eef1f5; border-radius: 4px; padding: 0 4px; font-size: 0.92em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr));
  gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.card .label { color: var(--muted); font-size: 0.85rem; }
.card .value { font-size: 1.15rem; font-weight: 600; overflow-wrap: anywhere; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-weight: 600;
  font-size: 0.9rem; }
.badge.variance { background: #fde2e1; color: #9b1c1c; }
.badge.bias { background: #fef3c7; color: #8a5300; }
.badge.balanced { background: #dcfce7; color: #166534; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: 0.9rem; min-width: 50%; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
td:first-child { white-space: normal; min-width: 9em; }
th { background: #f7f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td { white-space: normal; overflow-wrap: anywhere; }
table.kv td:first-child { color: var(--muted); white-space: nowrap; width: 1%; }
tr.best td { background: #fff8db; }
figure { margin: 12px 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; }
.note { color: var(--muted); font-size: 0.9rem; }
footer { color: var(--muted); font-size: 0.85rem; text-align: center; margin: 18px 0; }
@media (max-width: 640px) {
  body { font-size: 15px; }
  main { padding: 8px; }
  section { padding: 10px 12px; border-radius: 8px; }
  header h1 { font-size: 1.3rem; }
  th, td { padding: 3px 6px; }
}
"""

# No script, no fetch: the report can load nothing but its own inline images and styles.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_KIND_TERMS = {
    "l2": "λ·Σw²",
    "l1": "λ·Σ|w|",
    "elastic_net": "λ·(ρ·Σ|w| + (1−ρ)·Σw²), ρ = l1_ratio",
    "group_lasso": "λ·Σ_rows √n_in·‖w_row‖",
    "exp_abs": "λ·Σ(exp(|w|) − 1)",
    "l2sp": "λ·Σ(w − w₀)²",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if math.isnan(number):
        return "–"
    return f"{number:.{digits}g}"


def _table(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str] | None,
    *,
    highlight: int = -1,
    css: str = "",
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header) if header else ""
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_num(c)}</td>'
            if isinstance(c, int | float | np.number) and not isinstance(c, bool)
            else f"<td>{_e(c)}</td>"
            for c in row
        )
        body.append(f'<tr class="best">{cells}</tr>' if i == highlight else f"<tr>{cells}</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    table = f'<table class="{css}">' if css else "<table>"
    return f'<div class="scroll">{table}{thead}<tbody>{"".join(body)}</tbody></table></div>'


def _pairs(mapping: Mapping[str, Any]) -> str:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = _short_list(value)
        elif isinstance(value, float):
            value = _num(value)
        rows.append((str(key).replace("_", " "), str(value)))
    return _table(rows, None, css="kv")


def _short_list(values: Sequence[Any], limit: int = 16) -> str:
    shown = [_num(v) if isinstance(v, float) else str(v) for v in values[:limit]]
    more = f", … ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(shown) + more


#: fixed margins in inches instead of a layout engine: constrained or tight layout measures
#: every tick label and would take most of the report's time budget.
_MARGINS = {"left": 0.75, "right": 0.2, "bottom": 0.55, "top": 0.35, "wspace": 0.3}


def _figure_html(
    draw: Callable[[Any], Any],
    figsize: tuple[float, float],
    caption: str,
    alt: str,
    **margins: float,
) -> str:
    """Draw into a pyplot-free Figure and embed it as a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    inches = {**_MARGINS, **margins}
    width, height = figsize
    fig.subplots_adjust(
        left=inches["left"] / width,
        right=1 - inches["right"] / width,
        bottom=inches["bottom"] / height,
        top=1 - inches["top"] / height,
        wspace=inches["wspace"],
    )
    try:
        draw(fig)
    except ShrinkageError as err:
        return f'<p class="note">{_e(caption)}: not drawn ({_e(err)})</p>'
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(alt)}" '
        f'width="{round(figsize[0] * _DPI)}" height="{round(figsize[1] * _DPI)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


# --------------------------------------------------------------------------- the sections


def _chosen(inputs: ReportInputs) -> dict[str, Any]:
    """The chosen configuration: the chosen results row, or the estimator's parameters.

    The estimator wins when it is not the row's configuration (the demo shows its own
    regularized network next to a search): the cards must describe the model the figures
    show. The row's CV scores are kept only when they are that model's.
    """
    from_model = _estimator_config(inputs.estimator)
    if inputs.results is None:
        return from_model
    row = inputs.results.iloc[_chosen_index(inputs)]
    out = {
        k.removeprefix("param_"): row[k]
        for k in inputs.results.columns
        if str(k).startswith("param_") and not _is_missing(row[k])
    }
    if from_model and not _same_config(from_model, out):
        return from_model
    for key in ("mean_test_score", "std_test_score", "mean_train_score"):
        if key in row:
            out[key] = row[key]
    return out


def _is_missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _estimator_config(estimator: Any) -> dict[str, Any]:
    params = _estimator_params(estimator)
    if not params:
        return {}
    if isinstance(params.get("penalty"), str):
        params["kind"] = params["penalty"]
    if params.get("kind") != "elastic_net":
        params.pop("l1_ratio", None)
    return {k: params[k] for k in ("kind", "strength", "placement", "l1_ratio") if k in params}


def _same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    for key in ("kind", "strength", "placement", "l1_ratio"):
        if key not in a or key not in b:
            continue
        left, right = a[key], b[key]
        if key in ("strength", "l1_ratio"):
            if not math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif _placement_text(left) != _placement_text(right):
            return False
    return True


def _placement_text(value: Any) -> str:
    """``(0, 2)`` and ``"0,2"`` (how cv_results_ writes layer lists) read the same."""
    if isinstance(value, list | tuple):
        return ",".join(str(int(v)) for v in value)
    return str(value)


def _chosen_index(inputs: ReportInputs) -> int:
    if inputs.chosen_index is not None and 0 <= inputs.chosen_index < len(inputs.results):
        return int(inputs.chosen_index)
    return best_index(inputs.results)


def _estimator_params(estimator: Any) -> dict[str, Any]:
    if estimator is None or not hasattr(estimator, "get_params"):
        return {}
    return {
        k: v
        for k, v in estimator.get_params(deep=False).items()
        if isinstance(v, str | int | float | bool | tuple | list | type(None))
    }


def _search_space(inputs: ReportInputs) -> dict[str, Any]:
    """What was searched, read from the results, completed by the saved settings."""
    given = dict(inputs.search_space)
    space: dict[str, Any] = {}
    frame = inputs.results
    if frame is not None:
        grid = frame[grid_rows(frame)]
        refined = len(frame) - len(grid)
        space["configurations"] = f"{len(grid)}" + (f" + {refined} refined" if refined else "")
        for column in ("param_strength", "param_kind", "param_placement", "param_l1_ratio"):
            if column in grid:
                values = grid[column].dropna().unique().tolist()
                if column == "param_strength":
                    values = sorted(float(v) for v in values)
                if values:
                    space[column.removeprefix("param_")] = values
        splits = [c for c in frame.columns if re.fullmatch(r"split\d+_test_score", str(c))]
        if splits:
            space["folds"] = len(splits)
            space["models trained"] = len(frame) * len(splits)
        if "mean_fit_time" in frame:
            space["mean fit time per model (s)"] = round(float(frame["mean_fit_time"].mean()), 4)
    # The saved settings say what the results cannot (scoring, choice rule); the lists the
    # results already show are not repeated.
    for key, plural in (
        ("strength", "strengths"),
        ("kind", "kinds"),
        ("placement", "placements"),
        ("l1_ratio", "l1_ratios"),
    ):
        value = given.pop(plural, None)
        if key not in space and value is not None:
            space[key] = value
    if "elastic_net" not in [str(k) for k in space.get("kind", [])]:
        space.pop("l1_ratio", None)
    n_splits = given.pop("n_splits", None)
    cv = given.pop("cv", None)
    if "folds" not in space and (n_splits or cv) is not None:
        space["folds"] = n_splits or cv
    if "one_standard_error" in given:
        one_se = bool(given.pop("one_standard_error"))
        space["choice rule"] = (
            "largest strength within one standard error of the best"
            if one_se
            else "best mean CV score"
        )
    if "refine" in given:
        refine, points = bool(given.pop("refine")), given.pop("refine_points", None)
        epochs = given.pop("refine_epochs", None)
        if refine:
            space["refine"] = f"{points} points around the best" + (
                f", {epochs} more epochs" if epochs else ""
            )
        else:
            space["refine"] = "no"
    given.pop("refine_points", None)
    given.pop("refine_epochs", None)
    space.update(given)
    return space


def _convention_html(chosen: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    kind = str(chosen.get("kind", "l2")).lower()
    strength = chosen.get("strength")
    lam = float(strength) if strength is not None and not pd.isna(strength) else None
    term = _KIND_TERMS.get(kind, f"λ·Ω(W) ({kind})")
    parts = [
        "<p>Strengths use the <b>Keras meaning</b>: the penalty is added, as written, to the "
        f"<b>mean</b> data loss: <code>J = mean loss + {_e(term)}</code>, summed over the "
        "weight matrices of the regularized layers (biases are not penalized). "
        "<code>L2(λ)</code> adds <code>λ·Σw²</code>, whose gradient is <code>2λ·w</code>.</p>"
    ]
    m = data.get("rows")
    rows = [
        ("Keras / shrinkage", "λ·Σw² added to the mean loss", "λ", _num(lam) if lam else "λ"),
        (
            "course (m examples)",
            "(λ_c / 2m)·Σw²",
            "λ_c = 2m·λ",
            _num(2 * m * lam) + f" (m = {m})" if lam and m else "–",
        ),
        ("torch weight_decay (SGD)", "gradient + wd·w", "wd = 2λ", _num(2 * lam) if lam else "–"),
        (
            "scikit-learn alpha (batch n)",
            "(α / 2n)·Σw²",
            "α = 2n·λ",
            "depends on the batch size n",
        ),
    ]
    parts.append(_table(rows, ("convention", "term", "equivalent", "for the chosen λ")))
    parts.append(
        '<p class="note">The L2 rows are exact equivalents for plain SGD; Adam with '
        "<code>weight_decay</code> differs (AdamW decouples the decay). For L1 the "
        "term is <code>λ·Σ|w|</code> with gradient <code>λ·sign(w)</code>.</p>"
    )
    return "".join(parts)


def _badge(diagnosis: Diagnosis) -> str:
    css = {"high variance": "variance", "high bias": "bias"}.get(diagnosis.verdict, "balanced")
    return f'<span class="badge {css}">{_e(diagnosis.verdict)}</span>'


def _search_label(inputs: ReportInputs) -> str:
    """The search row's label: "chosen…" when it is the shown model, else what it is."""
    row = inputs.results.iloc[_chosen_index(inputs)]
    config = {k.removeprefix("param_"): row[k] for k in row.index if str(k).startswith("param_")}
    shown = _estimator_config(inputs.estimator)
    if not shown or _same_config(shown, config):
        return "chosen configuration, cross-validated"
    return (
        f"the search's choice ({config.get('kind', '')} λ={_num(config.get('strength'))} on "
        f"{config.get('placement', '')}), cross-validated"
    )


def _thresholds(inputs: ReportInputs) -> dict[str, float]:
    """A ``baseline_error`` saved with the data (the task's Bayes / human error)."""
    value = inputs.data.get("baseline_error")
    return {"baseline_error": float(value)} if isinstance(value, int | float) else {}


def _diagnosis_html(inputs: ReportInputs) -> tuple[str, Diagnosis | None]:
    found: list[tuple[str, Diagnosis]] = list(inputs.diagnoses)
    scoring = str(inputs.search_space.get("scoring") or "accuracy")
    notes = []
    if inputs.results is not None and "mean_train_score" in inputs.results:
        if scoring in _ERROR_SCORINGS:
            try:
                found.append(
                    (
                        _search_label(inputs),
                        diagnose_search(
                            inputs.results, _chosen_index(inputs), **_thresholds(inputs)
                        ),
                    )
                )
            except ShrinkageError as err:
                notes.append(f"Cross-validated scores not diagnosed: {err}")
        else:
            notes.append(
                f"The search scored with {scoring}, which is not an error rate or R²; "
                "the cross-validated scores are not diagnosed."
            )
    history = getattr(inputs.estimator, "history_", None)
    if history:
        try:
            found.append(
                (
                    "refit model, last epoch (validation rows)",
                    diagnose_history(history, **_thresholds(inputs)),
                )
            )
        except ShrinkageError as err:
            notes.append(f"The refit model's learning history was not diagnosed: {err}")
    note_html = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    if not found:
        return note_html + '<p class="note">No train and validation scores to diagnose.</p>', None
    rows = [
        (
            where,
            f"{d.train_error:.2%}",
            f"{d.val_error:.2%}",
            f"{100 * d.gap:.1f} pts",
            d.verdict,
            f"{d.direction} λ",
        )
        for where, d in found
    ]
    # The headline is the chosen model's verdict; other rows (a baseline) are context.
    first = next((d for where, d in found if where.startswith("chosen")), found[0][1])
    text = (
        f"<p>{_badge(first)} {_e(first.advice[0].upper() + first.advice[1:])}.</p>"
        + _table(rows, ("measured on", "train error", "validation error", "gap", "verdict", "λ"))
        + '<p class="note">Error = 1 − score (accuracy or R²). Rules, checked in this order: '
        f"train error above the baseline error ({first.baseline_error:.0%}) by more than "
        f"{first.bias_threshold:.0%} ⇒ high bias (decrease λ); validation error above train "
        f"error by more than {first.variance_threshold:.0%} ⇒ high variance (increase λ); "
        "otherwise balanced. Example: 1% train vs 11% validation error is high variance.</p>"
        + note_html
    )
    return text, first


def _top_table(inputs: ReportInputs) -> str:
    """The best configurations by mean CV score, the chosen one highlighted."""
    frame = inputs.results
    order = frame.sort_values("mean_test_score", ascending=False, kind="stable")
    chosen, best = _chosen_index(inputs), best_index(frame)
    one_se = one_standard_error_index(frame)
    shown = list(order.index[:_TOP_ROWS])
    if chosen not in shown:  # the one-SE choice may rank lower; always show it
        shown.append(chosen)
    params = [c for c in ("param_strength", "param_kind", "param_placement") if c in frame]
    params += [c for c in group_columns(frame) if c not in params]
    if "stage" in frame and as_text(frame["stage"]).nunique() > 1:
        params.append("stage")
    scores = [
        c
        for c in ("mean_test_score", "std_test_score", "mean_train_score", "mean_fit_time")
        if c in frame
    ]
    rows, highlight = [], -1
    for position, index in enumerate(shown):
        row = frame.loc[index]
        marks = [
            text
            for text, hit in (
                ("chosen", index == chosen),
                ("best", index == best),
                ("one-SE", index == one_se),
            )
            if hit
        ]
        if index == chosen:
            highlight = position
        rows.append([*[row[c] for c in params], *[float(row[c]) for c in scores], ", ".join(marks)])
    header = [c.removeprefix("param_") for c in params] + scores + [""]
    return _table(rows, header, highlight=highlight)


def _weights_html(inputs: ReportInputs) -> str:
    if inputs.estimator is None:
        return ""
    from shrinkage.diagnostics import weight_table

    table = weight_table(inputs.estimator)
    if not table:
        return ""
    header = list(table[0].keys())
    rows = [[row.get(k) for k in header] for row in table]
    rows = [[str(v) if isinstance(v, tuple | list) else v for v in row] for row in rows]
    return "<h3>Weights of the chosen model</h3>" + _table(rows, header)


def _activations_html(inputs: ReportInputs) -> str:
    summary = inputs.activations
    if inputs.estimator is not None and inputs.X is not None:
        try:
            summary = activation_summary(inputs.estimator, inputs.X)
        except ShrinkageError:
            pass  # a linear model has no hidden layer
    if not summary:
        return ""
    header = list(summary[0].keys())
    return (
        "<h3>Hidden activations on the data rows</h3>"
        + _table([[row[k] for k in header] for row in summary], header)
        + '<p class="note">A dead unit outputs 0 for every row (a ReLU that never fires: no '
        "gradient reaches its weights).</p>"
    )


def _figures_html(inputs: ReportInputs) -> str:
    from shrinkage import plots

    parts = []
    frame = inputs.results
    if frame is not None and "param_strength" in frame:
        parts.append(
            _figure_html(
                lambda fig: plots.plot_validation_curve(
                    frame, fig.add_subplot(), chosen=_chosen_index(inputs)
                ),
                (7.5, 4.4),
                "Validation curve: mean train (dashed) and cross-validated (solid, ±1 std band) "
                "score against λ. Star: the chosen configuration; open circle: the strongest "
                "λ within one standard error of the best.",
                "validation curve",
            )
        )
        if layer_indices(frame):
            parts.append(
                _figure_html(
                    lambda fig: plots.plot_regularization_path(frame, fig.add_subplot()),
                    (7.5, 4.2),
                    "Regularization path: each layer's weight L2 norm (and, for L1, its "
                    "fraction of zero weights) against λ, for the chosen kind and placement.",
                    "regularization path",
                    right=0.8,
                )
            )
        if (
            "param_placement" in frame
            and as_text(frame["param_placement"]).nunique() > 1
            and layer_indices(frame)
        ):
            parts.append(
                _figure_html(
                    lambda fig: plots.plot_placement_study(
                        placement_table(frame), fig.add_subplot()
                    ),
                    (7.5, 4.4),
                    "Placement: per-layer weight norms when the penalty is on all layers, "
                    "the hidden layers only, or the output layer only. Penalizing only the "
                    "output layer lets the weight move into the hidden layer.",
                    "placement study",
                )
            )
    if inputs.estimator is not None:
        n_layers = len(layer_weights(inputs.estimator))
        width = min(max(3.6 * n_layers, 7.0), 10.0)
        parts.append(
            _figure_html(
                lambda fig: plots.plot_weight_histograms(
                    inputs.estimator,
                    inputs.baseline,
                    fig.subplots(1, n_layers, squeeze=False)[0],
                ),
                (width, 3.0),
                "Weights per layer: the chosen model (red outline)"
                + (" over the unregularized fit (grey)." if inputs.baseline is not None else "."),
                "weight histograms",
                left=0.6,
                top=0.3,
                wspace=0.25,
            )
        )
        if getattr(inputs.estimator, "history_", None):
            parts.append(
                _figure_html(
                    lambda fig: plots.plot_learning_curves(inputs.estimator, fig.subplots(1, 2)),
                    (8.5, 3.4),
                    "Learning curves of the refit model: the data loss and the penalty "
                    "λ·Ω(W) apart (left); train score, and validation score when the fit held "
                    "rows out (right).",
                    "learning curves",
                    wspace=0.28,
                )
            )
        if _plane(inputs.X):
            pair = hasattr(inputs.baseline, "predict")
            models = [inputs.baseline, inputs.estimator] if pair else [inputs.estimator]
            names = ["unregularized", "chosen"] if pair else ["chosen"]

            def boundaries(fig: Any) -> None:
                axes = fig.subplots(1, len(models), squeeze=False)[0]
                for axis, model, name in zip(axes, models, names):
                    plots.plot_decision_boundary(model, inputs.X, inputs.y, axis)
                    axis.set_title(f"Decision boundary: {name}")

            parts.append(
                _figure_html(
                    boundaries,
                    (10.0, 4.2) if pair else (6.0, 4.6),
                    (
                        "Decision boundaries of the unregularized and the chosen model on "
                        "the data rows: the penalty smooths the boundary."
                        if pair
                        else "Decision boundary of the chosen model on the data rows."
                    ),
                    "decision boundary",
                    right=0.1,
                    wspace=0.35,
                )
            )
    return "".join(parts) or '<p class="note">Nothing to draw.</p>'


def _summary_html(inputs: ReportInputs, chosen: Mapping[str, Any], diagnosis: Any) -> str:
    cards = []
    for key, label in (
        ("kind", "penalty"),
        ("strength", "strength λ"),
        ("placement", "placement"),
        ("l1_ratio", "l1_ratio"),
    ):
        if key in chosen:
            cards.append((label, _num(chosen[key]) if key != "kind" else chosen[key]))
    if "mean_test_score" in chosen:
        std = chosen.get("std_test_score")
        cv = _num(chosen["mean_test_score"])
        cards.append(("CV score", cv + (f" ± {_num(std, 2)}" if std is not None else "")))
    if "mean_train_score" in chosen:
        cards.append(("train score", _num(chosen["mean_train_score"])))
    if diagnosis is not None:
        cards.append(("diagnosis", diagnosis.verdict))
    html_cards = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div></div>'
        for label, value in cards
    )
    return f'<div class="cards">{html_cards}</div>'


def render_html(inputs: ReportInputs) -> str:
    """The report as an HTML string (see :func:`build_report`)."""
    chosen = _chosen(inputs) if (inputs.results is not None or inputs.estimator) else {}
    diagnosis_text, diagnosis = _diagnosis_html(inputs)
    data = dict(inputs.data)
    if not data and inputs.estimator is not None:
        n_in = getattr(inputs.estimator, "n_features_in_", None)
        if n_in is not None:
            data["features"] = int(n_in)
    settings = _estimator_params(inputs.estimator)
    # Pictures before prose: the verdict and the figures come right after the choice.
    sections = [
        ("Chosen configuration", _summary_html(inputs, chosen, diagnosis)),
        ("Diagnosis", diagnosis_text),
        ("Figures", _figures_html(inputs)),
        (
            "Data",
            _pairs(data) if data else '<p class="note">No description of the data was saved.</p>',
        ),
        (
            "Search space",
            _pairs(_search_space(inputs))
            if (inputs.results is not None or inputs.search_space)
            else '<p class="note">No search: a single fit.</p>',
        ),
        ("The convention of λ", _convention_html(chosen, data)),
    ]
    details = _weights_html(inputs) + _activations_html(inputs)
    if settings:
        details += "<h3>Estimator settings</h3>" + _pairs(settings)
    if details:
        sections.append(("The chosen model", details))
    if inputs.results is not None:
        sections.append(("Best configurations by CV score", _top_table(inputs)))
    from shrinkage import __version__

    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    body = "".join(f"<section><h2>{_e(t)}</h2>{content}</section>" for t, content in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{_e(inputs.title)}</title><style>{_CSS}</style></head>"
        f"<body><main><header><h1>{_e(inputs.title)}</h1>"
        f"<p>What weight regularization did · generated {stamp}</p></header>"
        f"{body}<footer>shrinkage {_e(__version__)} · one self-contained file: "
        "no scripts, no network</footer></main></body></html>\n"
    )


def build_report(
    source: Any = None,
    path: str | os.PathLike | None = None,
    *,
    results: Any = None,
    estimator: Any = None,
    baseline: Any = None,
    data: Mapping[str, Any] | None = None,
    search_space: Mapping[str, Any] | None = None,
    X: Any = None,
    y: Any = None,
    title: str | None = None,
) -> Path:
    """Write the self-contained HTML report and return its path.

    Args:
        source: a results directory (``results.csv``, ``model/``, ``search.json``,
            ``baseline.safetensors``), a fitted search (``cv_results_``,
            ``best_estimator_``), a fitted estimator, or ``None`` (keywords only).
        path: where to write (default: ``report.html`` in the results directory;
            required for other sources).
        results: search results (a ``cv_results_`` dict or a DataFrame); overrides.
        estimator: the chosen estimator; overrides.
        baseline: the unregularized fit (histograms); overrides.
        data: the data description (:func:`describe_data`); overrides.
        search_space: what was searched; merged over what the results show.
        X: rows for the decision boundary (2 features) and the activations.
        y: their targets.
        title: the heading.

    Returns:
        The path of the report, written atomically.

    Raises:
        ShrinkageError: no ``path`` for a source that is not a directory, or a directory
            without ``results.csv``.
    """
    if isinstance(source, str | os.PathLike):
        inputs = load_report_inputs(source)
        path = Path(source) / REPORT_FILE if path is None else path
    elif source is None:
        inputs = ReportInputs()
    elif hasattr(source, "cv_results_"):
        index = getattr(source, "best_index_", None)
        inputs = ReportInputs(
            results=as_results_frame(source),
            estimator=getattr(source, "best_estimator_", None),
            chosen_index=None if index is None else int(index),
        )
    elif hasattr(source, "predict"):
        inputs = ReportInputs(estimator=source)
    else:
        raise ShrinkageError(
            "The 'source' parameter must be a results directory, a fitted search or a fitted "
            f"estimator. Got {type(source).__name__} instead."
        )
    if path is None:
        raise ShrinkageError("The 'path' parameter is required unless 'source' is a directory.")
    if results is not None:
        inputs.results = as_results_frame(results)
    for name, value in (("estimator", estimator), ("baseline", baseline), ("X", X), ("y", y)):
        if value is not None:
            setattr(inputs, name, value)
    if data is not None:
        inputs.data = dict(data)
    if search_space is not None:
        inputs.search_space = {**inputs.search_space, **dict(search_space)}
    if title:
        inputs.title = str(title)
    if inputs.results is None and inputs.estimator is None:
        raise ShrinkageError("There is nothing to report: give search results or an estimator.")
    return write_atomic(path, render_html(inputs))
