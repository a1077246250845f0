"""The CLI's workflows: the multi-step jobs behind ``shrinkage demo`` and ``shrinkage tune``.

They train (a search, the unregularized baseline a report compares against) and then
write a report, so they live above both :mod:`shrinkage.search` and
:mod:`shrinkage.report`, which never train.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shrinkage._io import atomic_write
from shrinkage._progress import ProgressBoard
from shrinkage.analysis import as_results_frame, diagnose_estimator
from shrinkage.report import (
    REPORT_FILE,
    ReportInputs,
    build_report,
    describe_data,
    is_plane,
    render_html,
    save_report_metadata,
    search_settings,
)
from shrinkage.search import SearchCV

__all__ = ["fit_baseline", "tune_demo", "write_demo_report", "write_tune_report"]


def fit_baseline(
    estimator: Any,
    X: Any,
    y: Any,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> Any:
    """The unregularized twin of ``estimator``: same settings and seed, ``strength=0``.

    Its weights are the grey histograms of the report: what the chosen penalty changed.

    Args:
        estimator: a fitted or unfitted estimator with a ``strength`` parameter.
        X: training rows.
        y: targets.
        progress: the estimator's ``fit(progress=...)`` hook.

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
    if params.get("layer_penalties"):  # a per-layer choice: no layer keeps its penalty
        twin.set_params(layer_penalties=None)
    return twin.set_params(strength=0.0).fit(X, y, progress=progress)


def write_tune_report(
    out_dir: str | os.PathLike,
    search: Any,
    X: Any,
    y: Any,
    *,
    data: Mapping[str, Any] | None = None,
    baseline: bool = True,
    title: str | None = None,
    board: ProgressBoard | None = None,
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
        board: shows the phases ``baseline`` (its epochs) and ``report``.

    Returns:
        The path of ``report.html``.
    """
    chosen = getattr(search, "best_estimator_", None)
    if data is None:
        task = "classification" if hasattr(chosen, "classes_") else None
        data = describe_data(X, y, task=task)
    twin = None
    if baseline and chosen is not None:
        hook = None
        if board is not None:
            board.start("baseline")
            hook = board.epoch_callback("baseline")
        twin = fit_baseline(chosen, X, y, progress=hook)
        if board is not None:
            board.finish("baseline")
    if board is not None:
        board.start("report")
    save_report_metadata(out_dir, search=search, data=data, baseline=twin, X=X, y=y, title=title)
    path = build_report(
        search,
        Path(out_dir) / REPORT_FILE,
        baseline=twin,
        data=data,
        search_space=search_settings(search),
        X=X if is_plane(X) else None,
        y=y if is_plane(X) else None,
        title=title,
    )
    if board is not None:
        board.finish("report")
    return path


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
        inputs.search_space = search_settings(search)
    return atomic_write(path, render_html(inputs))


def tune_demo(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    hidden: Sequence[int] = (500,),
    epochs: int = 4000,
    *,
    strengths: Sequence[float] | None = None,
    placements: Sequence[str] = ("all", "hidden", "output"),
    cv: int = 3,
    random_state: int = 0,
    n_threads: int | None = 1,
    progress: Callable[[Any], None] | None = None,
    **estimator_params: Any,
) -> tuple[dict[str, Any], float, SearchCV]:
    """Tune the strength and the placement of an L2 penalty on the demo's data.

    The default grid is 7 strengths (``1e-4 … 1``, 1.5 per decade) x 3 placements x 3
    folds = 63 candidates in one stack, then the best configuration is refit on all training
    rows and scored on the test rows.

    Args:
        X_train: training inputs (the demo: 30 ``make_moons`` rows).
        y_train: training labels.
        X_test: test inputs.
        y_test: test labels.
        hidden: hidden layer widths.
        epochs: training epochs of every candidate and of the refit.
        strengths: the strength grid; None: 7 values from 1e-4 to 1.
        placements: the placements to compare.
        cv: folds.
        random_state: the seed of the folds, the candidates and the refit.
        n_threads: torch threads for the search and the refit. One by default: these
            models are small, and on a busy 2-core machine a second OpenMP thread that
            waits for a core makes every kernel several times slower.
        progress: the search's ``fit(progress=...)`` hook.
        **estimator_params: more :class:`~shrinkage.estimators.MLPClassifier` parameters
            (``learning_rate``, ``batch_size``, ``optimizer``, ``activation`` …).

    Returns:
        ``(best_params, test_accuracy, search)``.
    """
    from shrinkage.estimators import MLPClassifier

    if strengths is None:
        strengths = np.logspace(-4, 0, 7)
    estimator = MLPClassifier(hidden_layer_sizes=tuple(hidden), epochs=epochs, **estimator_params)
    search = SearchCV(
        estimator,
        strengths=strengths,
        placements=placements,
        cv=cv,
        random_state=random_state,
        n_threads=n_threads,
    ).fit(X_train, y_train, progress=progress)
    accuracy = search.score(X_test, y_test)
    return search.best_params_, accuracy, search
