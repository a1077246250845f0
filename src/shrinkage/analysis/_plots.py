"""Pictures of what regularization did (matplotlib).

Every ``plot_*`` function takes ``ax=None`` and returns what it drew on: one
``matplotlib.axes.Axes`` for the single-panel plots, an array of axes for the per-layer
histograms and the two-panel learning curves. With ``ax=None`` a new pyplot figure is
made; pass axes to draw into a figure of your own (the report does, on figures that
never touch pyplot's global state).

=============================  ======================================================
function                       draws
=============================  ======================================================
:func:`plot_validation_curve`  train and CV score vs strength (log x), one line per
                               kind / placement, ±1 std band, best and one-SE points
:func:`plot_regularization_path`  per-layer weight L2 norm vs strength; for L1 and
                               elastic net also the fraction of zero weights
:func:`plot_placement_study`   per-layer L2 norm vs strength for each placement
:func:`plot_weight_histograms` one panel per layer: unregularized vs chosen weights
:func:`plot_learning_curves`   data loss and penalty (left), train and validation score
                               (right) per epoch
:func:`plot_decision_boundary` the decision regions of a model on 2-D data
=============================  ======================================================

Longer than the package's ~600-line habit: six independent figure functions, each with its
own axes, legend and labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from shrinkage.analysis._activations import layer_weights
from shrinkage.analysis._results import (
    as_results_frame,
    as_text,
    best_index,
    grid_rows,
    group_columns,
    layer_indices,
    one_standard_error_index,
)
from shrinkage.errors import ShrinkageError

__all__ = [
    "plot_decision_boundary",
    "plot_learning_curves",
    "plot_placement_study",
    "plot_regularization_path",
    "plot_validation_curve",
    "plot_weight_histograms",
]

_LAMBDA = "penalty strength λ"
#: One marker per class in a decision boundary's points.
_CLASS_MARKERS = ("o", "^", "s", "D", "v", "P", "X")


def _plain(text: object) -> str:
    """A label from the user's data (a column name, a placement) drawn as the text it is:
    an unescaped ``$`` would start matplotlib's mathtext, and ``$\\nosuchcmd{x}$`` would
    fail the whole figure."""
    return str(text).replace("$", r"\$")


_SPARSE_KINDS = ("l1", "elastic_net", "elasticnet")


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, layout="constrained")[1]


def _axes_row(ax: Any, n: int, what: str, size: tuple[float, float]) -> np.ndarray:
    if ax is None:
        import matplotlib.pyplot as plt

        figsize = (size[0] * n, size[1])
        return np.atleast_1d(
            plt.subplots(1, n, figsize=figsize, layout="constrained", squeeze=False)[1][0]
        )
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if len(axes) != n:
        raise ShrinkageError(
            f"The 'ax' parameter of {what} must hold {n} axes. Got {len(axes)} instead."
        )
    return axes


def _log_scale(ax: Axes, which: str = "x") -> None:
    """A log axis with plain-text labels (``1e-04``) and two minor ticks per decade.

    Matplotlib's default log labels are mathtext and its minor ticks eight per decade;
    both cost more to draw than the rest of a figure (the report has a time budget).
    """
    from matplotlib import ticker

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(ticker.LogFormatter())
    axis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
    # Labels some minor ticks when the axis spans less than about a decade.
    axis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False))


def _fmt(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _group_label(frame: pd.DataFrame, columns: list[str], index: Any) -> str:
    parts = []
    for column in columns:
        value = frame[column].loc[index]
        if column == "param_l1_ratio":
            if pd.notna(value):
                parts.append(f"l1_ratio={_fmt(value)}")
        else:
            parts.append(str(value))
    return " · ".join(parts)


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows sorted by strength) for each kind/placement/l1_ratio combination."""
    columns = group_columns(frame)
    if not columns:
        return [("", frame.sort_values("param_strength", kind="stable"))]
    keys = frame[columns].apply(as_text).apply(tuple, axis=1)
    out = []
    for key in dict.fromkeys(keys):
        rows = frame[keys == key].sort_values("param_strength", kind="stable")
        out.append((_group_label(frame, columns, rows.index[0]), rows))
    return out


def plot_validation_curve(
    results: Any,
    ax: Axes | None = None,
    *,
    train: bool = True,
    mark_chosen: bool = True,
    mark_one_se: bool = True,
    chosen: int | None = None,
) -> Axes:
    """Train and cross-validated score against the penalty strength.

    One colour per kind / placement / l1_ratio combination (those that vary); the CV mean
    is a solid line with a ±1 ``std_test_score`` band, the train mean a dashed line (with
    more than two groups the legend lists the train lines once).
    Strength 0 cannot sit on a log axis: its CV score is a dotted horizontal line.
    Refinement rows (``stage == "refine"``: warm-started, trained longer) are crosses, not
    points of the curve. The chosen
    configuration is a star, the one-standard-error choice
    (:func:`shrinkage.analysis.one_standard_error_index`) an open circle.

    Args:
        results: a search, its ``cv_results_`` or a results DataFrame (``param_strength``,
            ``mean_test_score``; ``std_test_score`` and ``mean_train_score`` if present).
        ax: the axes to draw on (default: a new figure).
        train: draw the train score too.
        mark_chosen: mark the chosen configuration (a star).
        mark_one_se: mark the one-standard-error configuration.
        chosen: the row the search chose (default: a search's ``best_index_``, else
            :func:`shrinkage.analysis.best_index`); the star marks it.

    Returns:
        The axes.
    """
    frame = as_results_frame(results)
    if "param_strength" not in frame:
        raise ShrinkageError("The search results lack the column 'param_strength'.")
    if chosen is None:
        chosen = getattr(results, "best_index_", None)
    star = best_index(frame) if chosen is None else int(chosen)
    ax = _axes(ax)
    frame = frame.assign(param_strength=frame["param_strength"].astype(float))
    positive = frame["param_strength"] > 0
    groups = _groups(frame)
    # Past two groups a legend line per train curve hides the plot: one shared entry instead.
    compact = len(groups) > 2
    for i, (label, rows) in enumerate(groups):
        color = f"C{i % 10}"
        name = f"{_plain(label)} " if label else ""
        refined = rows[~grid_rows(rows) & (rows["param_strength"] > 0)]
        rows = rows[grid_rows(rows)]
        zero, rows = rows[rows["param_strength"] <= 0], rows[rows["param_strength"] > 0]
        if not refined.empty:
            ax.plot(
                refined["param_strength"],
                refined["mean_test_score"].astype(float),
                color=color,
                marker="x",
                linestyle="none",
                label=f"{name}refined CV".strip(),
            )
        if not zero.empty:
            ax.axhline(
                float(zero["mean_test_score"].mean()),
                color=color,
                linestyle=":",
                linewidth=1,
                label=f"{name}λ = 0 (CV)",
            )
        if rows.empty:
            continue
        x = rows["param_strength"].to_numpy()
        mean = rows["mean_test_score"].to_numpy(dtype=float)
        ax.plot(x, mean, color=color, marker=".", label=f"{name}CV".strip())
        if "std_test_score" in rows:
            std = rows["std_test_score"].to_numpy(dtype=float)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.18, linewidth=0)
        if train and "mean_train_score" in rows:
            tmean = rows["mean_train_score"].to_numpy(dtype=float)
            train_label = "_nolegend_" if compact else f"{name}train".strip()
            ax.plot(x, tmean, color=color, linestyle="--", label=train_label)
    if compact and train and "mean_train_score" in frame:
        ax.plot([], [], color="0.3", linestyle="--", label="train (dashed, group colour)")
    for enabled, index, style, text in (
        (mark_chosen, star, {"marker": "*", "markersize": 15}, "chosen"),
        (mark_one_se, one_standard_error_index(frame), {"marker": "o", "markersize": 10}, "one-SE"),
    ):
        if not enabled:
            continue
        row = frame.loc[index]
        if row["param_strength"] > 0:
            ax.plot(
                [row["param_strength"]],
                [row["mean_test_score"]],
                linestyle="none",
                markerfacecolor="none" if text == "one-SE" else "gold",
                markeredgecolor="black",
                label=f"{text}: λ={float(row['param_strength']):.3g}",
                **style,
            )
    if positive.any():
        _log_scale(ax)
    ax.set_xlabel(_LAMBDA)
    ax.set_ylabel("score")
    ax.set_title("Validation curve")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return ax


def _pick_group(
    frame: pd.DataFrame, kind: str | None, placement: str | None
) -> tuple[pd.DataFrame, str, str]:
    best = frame.loc[best_index(frame)]
    chosen = {}
    for column, value in (("param_kind", kind), ("param_placement", placement)):
        if column not in frame:
            continue
        wanted = str(best[column]) if value is None else str(value)
        values = as_text(frame[column])
        if wanted not in set(values):
            raise ShrinkageError(
                f"The '{column.removeprefix('param_')}' parameter must be one of "
                f"{', '.join(sorted(set(values)))}. Got {value!r} instead."
            )
        frame = frame[values == wanted]
        chosen[column] = wanted
    if "param_l1_ratio" in frame and as_text(frame["param_l1_ratio"]).nunique() > 1:
        # A path is drawn for one l1_ratio: the best row's if it is in the slice.
        target = str(best["param_l1_ratio"])
        ratios = as_text(frame["param_l1_ratio"])
        frame = frame[ratios == (target if target in set(ratios) else ratios.iloc[0])]
    return frame, chosen.get("param_kind", ""), chosen.get("param_placement", "")


def plot_regularization_path(
    results: Any,
    ax: Axes | None = None,
    *,
    kind: str | None = None,
    placement: str | None = None,
) -> Axes:
    """Per-layer weight L2 norm against strength; for L1 / elastic net, also sparsity.

    Uses the search's ``weight_l2_layer{i}`` columns (``sqrt(sum(w**2))`` of layer ``i``'s
    weights, averaged over folds and over rows sharing a strength) and, for the sparse
    kinds, ``sparsity_layer{i}`` (fraction of zero weights) on a right-hand axis.

    Args:
        results: a search, its ``cv_results_`` or a results DataFrame.
        ax: the axes to draw on (default: a new figure).
        kind: the ``param_kind`` to draw (default: the best configuration's).
        placement: the ``param_placement`` to draw (default: the best configuration's).

    Returns:
        The axes of the norms (the sparsity axes, if any, is its ``twinx``).
    """
    frame = as_results_frame(results)
    layers = layer_indices(frame)
    if "param_strength" not in frame or not layers:
        raise ShrinkageError(
            "The search results need 'param_strength' and 'weight_l2_layer{i}' columns "
            "for a regularization path."
        )
    rows, kind_used, placement_used = _pick_group(frame, kind, placement)
    rows = rows[grid_rows(rows)]
    rows = rows.assign(param_strength=rows["param_strength"].astype(float))
    rows = rows[rows["param_strength"] > 0]
    by = rows.groupby("param_strength")
    ax = _axes(ax)
    norms = by[[f"weight_l2_layer{i}" for i in layers]].mean()
    for i in layers:
        ax.plot(norms.index, norms[f"weight_l2_layer{i}"], marker=".", label=f"layer {i} ‖W‖₂")
    _log_scale(ax)
    if len(norms) and (norms.to_numpy() > 0).all():
        _log_scale(ax, "y")
    ax.set_xlabel(_LAMBDA)
    ax.set_ylabel("weight L2 norm")
    title = "Regularization path"
    if kind_used or placement_used:
        title += f" ({' on '.join(p for p in (kind_used, placement_used) if p)})"
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    sparse_layers = layer_indices(frame, "sparsity")
    if kind_used.lower() in _SPARSE_KINDS and sparse_layers:
        twin = ax.twinx()
        zeros = by[[f"sparsity_layer{i}" for i in sparse_layers]].mean()
        for i in sparse_layers:
            twin.plot(
                zeros.index,
                zeros[f"sparsity_layer{i}"],
                linestyle="--",
                color=f"C{layers.index(i) if i in layers else i}",
                label=f"layer {i} zeros",
            )
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel("fraction of zero weights")
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, fontsize="small", loc="best")
    return ax


def plot_placement_study(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Per-layer L2 norm against strength: a colour per layer, a line style and marker per
    placement.

    Args:
        table: the long frame of :func:`shrinkage.analysis.placement_table` or
            :func:`shrinkage.search.placement_study` (``strength``, ``placement``,
            ``layer``, ``weight_l2``); placement ``"none"`` rows (the unregularized fit)
            become horizontal dotted lines.
        ax: the axes to draw on (default: a new figure).

    Returns:
        The axes.
    """
    missing = {"strength", "placement", "layer", "weight_l2"} - set(table.columns)
    if missing:
        raise ShrinkageError(
            f"The placement table lacks the column(s) {', '.join(sorted(missing))}."
        )
    ax = _axes(ax)
    # One colour per layer; per placement a line style *and* a marker, so the placements stay
    # apart where the lines cross or overlap (and in grey print).
    styles = ["-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)), (0, (3, 1, 1, 1, 1, 1))]
    markers = ["o", "s", "^", "D", "v"]
    placements = [p for p in dict.fromkeys(as_text(table["placement"])) if p != "none"]
    layers = sorted(table["layer"].unique())
    for layer_pos, layer in enumerate(layers):
        color = f"C{layer_pos % 10}"
        mine = table[table["layer"] == layer]
        base = mine[(mine["placement"] == "none") | (mine["strength"] <= 0)]
        if not base.empty:
            ax.axhline(
                float(base["weight_l2"].mean()),
                color=color,
                linestyle=":",
                linewidth=1,
                label=f"layer {_plain(layer)}, λ = 0",
            )
        for p_pos, placement in enumerate(placements):
            rows = mine[(mine["placement"] == placement) & (mine["strength"] > 0)]
            rows = rows.sort_values("strength")
            ax.plot(
                rows["strength"],
                rows["weight_l2"],
                color=color,
                linestyle=styles[p_pos % len(styles)],
                marker=markers[p_pos % len(markers)],
                markersize=5,
                markerfacecolor="white" if p_pos % 2 else color,
                label=f"layer {_plain(layer)}, penalty on {_plain(placement)}",
            )
    _log_scale(ax)
    ax.set_xlabel(_LAMBDA)
    ax.set_ylabel("weight L2 norm")
    ax.set_title("Per-layer norms by placement")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="best")
    return ax


def plot_weight_histograms(
    chosen: Any,
    baseline: Any = None,
    ax: Any = None,
    *,
    bins: int = 40,
    labels: tuple[str, str] = ("chosen", "unregularized"),
) -> np.ndarray:
    """One histogram panel per layer: the chosen model's weights over the baseline's.

    Args:
        chosen: the regularized model (anything :func:`layer_weights` takes).
        baseline: the unregularized model, same layers (optional).
        ax: a sequence of one axes per layer (default: a new figure with one row).
        bins: bins per panel, shared by both models.
        labels: legend labels of ``chosen`` and ``baseline``.

    Returns:
        An array of the axes, one per layer.
    """
    from matplotlib import ticker

    mine = layer_weights(chosen)
    base = layer_weights(baseline) if baseline is not None else None
    if base is not None and [w.shape for _, w in base] != [w.shape for _, w in mine]:
        raise ShrinkageError(
            "The 'baseline' weights must have the chosen model's layer shapes "
            f"{[w.shape for _, w in mine]}. Got {[w.shape for _, w in base]} instead."
        )
    axes = _axes_row(ax, len(mine), "plot_weight_histograms", (3.2, 2.8))
    for i, (axis, (name, weights)) in enumerate(zip(axes, mine)):
        values = [weights.ravel()] + ([base[i][1].ravel()] if base is not None else [])
        low = min(float(v.min()) for v in values if v.size)
        high = max(float(v.max()) for v in values if v.size)
        edges = np.linspace(low, high if high > low else low + 1e-12, bins + 1)
        if base is not None:
            axis.hist(
                values[1],
                bins=edges,
                histtype="stepfilled",
                color="0.65",
                alpha=0.6,
                label=labels[1],
            )
        axis.hist(
            values[0], bins=edges, histtype="step", color="C3", linewidth=1.6, label=labels[0]
        )
        axis.set_title(f"{_plain(name)} {tuple(weights.shape)}", fontsize="small")
        axis.set_xlabel("weight")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(4))
        # Few, short count labels, so they never run into the axis label.
        axis.yaxis.set_major_locator(ticker.MaxNLocator(4, integer=True))
        axis.yaxis.set_major_formatter(ticker.FuncFormatter(_short_count))
        if i == 0:
            axis.set_ylabel("count")
            axis.legend(fontsize="x-small")
    return axes


def _short_count(value: float, position: int) -> str:
    """``850``, ``1.2k``, ``35k``: a histogram count in at most four characters."""
    if abs(value) >= 1000:
        shown = f"{value / 1000:.1f}".rstrip("0").rstrip(".")
        return f"{shown}k"
    return f"{value:g}"


def _history_frame(history: Any) -> pd.DataFrame:
    history = getattr(history, "history_", history)
    frame = pd.DataFrame(list(history)) if not isinstance(history, pd.DataFrame) else history
    if frame.empty:
        raise ShrinkageError("The 'history' parameter is empty: there is no epoch to plot.")
    return frame


def plot_learning_curves(history: Any, ax: Any = None) -> np.ndarray:
    """Per epoch: data loss and penalty (left panel), train and validation score (right).

    The penalty is the Keras-meaning term ``Σ λ·Ω(W)`` added to the mean data loss; drawn
    apart from the data loss so the trade-off is visible. The validation data loss
    (``val_loss``) is drawn when the history has one.

    Args:
        history: an estimator (its ``history_``), a list of per-epoch dicts with
            ``data_loss``, ``penalty``, ``total``, ``train_score``, ``val_score``, or a
            DataFrame of them.
        ax: two axes (default: a new figure with two panels).

    Returns:
        The two axes ``[losses, scores]``.
    """
    frame = _history_frame(history)
    axes = _axes_row(ax, 2, "plot_learning_curves", (4.2, 3.2))
    epochs = (
        frame["epoch"].to_numpy(dtype=float) if "epoch" in frame else np.arange(1, len(frame) + 1)
    )
    loss_ax, score_ax = axes
    drawn = []
    for column, style, label in (
        ("data_loss", {"color": "C0"}, "train data loss"),
        ("val_loss", {"color": "C1"}, "validation data loss"),
        ("penalty", {"color": "C3", "linestyle": "--"}, "penalty λ·Ω(W)"),
        ("total", {"color": "0.4", "linestyle": ":"}, "total"),
    ):
        if column in frame and frame[column].notna().any():
            drawn.append((frame[column].to_numpy(dtype=float), label, style))
    # Log scale shows the penalty next to a loss orders of magnitude larger; a term that is
    # 0 (no penalty yet) is left out of a log plot rather than breaking it.
    log = bool(drawn) and (drawn[0][0][np.isfinite(drawn[0][0])] > 0).all()
    for values, label, style in drawn:
        if log:
            values = np.where(values > 0, values, np.nan)
            if np.isnan(values).all():
                continue
        loss_ax.plot(epochs, values, label=label, **style)
    if log:
        _log_scale(loss_ax, "y")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("Loss terms")
    loss_ax.grid(True, alpha=0.3)
    loss_ax.legend(fontsize="x-small")
    for column, color, label in (
        ("train_score", "C0", "train score"),
        ("val_score", "C1", "validation score"),
    ):
        if column in frame and frame[column].notna().any():
            score_ax.plot(epochs, frame[column].to_numpy(dtype=float), color=color, label=label)
    score_ax.set_xlabel("epoch")
    score_ax.set_ylabel("score")
    score_ax.set_title("Scores")
    score_ax.grid(True, alpha=0.3)
    score_ax.legend(fontsize="x-small")
    return axes


def plot_decision_boundary(
    estimator: Any,
    X: Any,
    y: Any = None,
    ax: Axes | None = None,
    *,
    resolution: int = 150,
) -> Axes:
    """The decision regions of a fitted model over 2-D inputs, with the points on top.

    Binary classifiers show the probability of the second class as a colour map and the
    0.5 contour; other classifiers the predicted class; regressors the prediction. The
    points have a marker and a colour per class (a legend says which).

    Args:
        estimator: a fitted model with ``predict`` (``predict_proba`` used when present).
        X: the rows, exactly two feature columns (an array or a DataFrame).
        y: the targets, colouring the points (optional).
        ax: the axes to draw on (default: a new figure).
        resolution: grid points per axis.

    Returns:
        The axes.
    """
    frame = X if isinstance(X, pd.DataFrame) else None
    points = np.asarray(X, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ShrinkageError(
            f"The 'X' parameter must have exactly 2 feature columns for a decision boundary. "
            f"Got shape {points.shape} instead."
        )
    ax = _axes(ax, (5.0, 4.2))
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.08 * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    query: Any = pd.DataFrame(grid, columns=frame.columns) if frame is not None else grid
    classes = getattr(estimator, "classes_", None)
    if hasattr(estimator, "predict_proba") and classes is not None and len(classes) == 2:
        z = np.asarray(estimator.predict_proba(query))[:, 1].reshape(gx.shape)
        mesh = ax.contourf(gx, gy, z, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
        ax.contour(gx, gy, z, levels=[0.5], colors="black", linewidths=1.2)
        ax.figure.colorbar(mesh, ax=ax, label=f"P(y = {classes[1]})")
    else:
        pred = np.asarray(estimator.predict(query)).ravel()
        if classes is not None:
            codes = np.searchsorted(np.asarray(classes), pred)
            z = codes.reshape(gx.shape).astype(float)
            ax.contourf(
                gx, gy, z, levels=np.arange(len(classes) + 1) - 0.5, cmap="tab10", alpha=0.4
            )
        else:
            z = pred.astype(float).reshape(gx.shape)
            mesh = ax.contourf(gx, gy, z, levels=12, cmap="viridis", alpha=0.6)
            ax.figure.colorbar(mesh, ax=ax, label="prediction")
    if y is not None:
        target = np.asarray(y).ravel()
        labels, codes = np.unique(target, return_inverse=True)
        binary = len(labels) <= 2
        # A marker *and* a fill per class: the classes stay apart over any background (and
        # in grey print): dark circles with a white rim, white triangles with a dark rim, ...
        colors = ["#08306b", "white"] if binary else [f"C{i % 10}" for i in range(len(labels))]
        edges = ["white", "#67000d"] if binary else ["black"] * len(labels)
        for code, label in enumerate(labels):
            mine = codes == code
            ax.scatter(
                points[mine, 0],
                points[mine, 1],
                marker=_CLASS_MARKERS[code % len(_CLASS_MARKERS)],
                s=30,
                color=colors[code],
                edgecolors=edges[code],
                linewidths=0.9,
                label=f"class {_plain(label)}",
            )
        ax.legend(fontsize="small", loc="best")
    else:
        ax.scatter(points[:, 0], points[:, 1], s=10, color="black")
    names = list(frame.columns) if frame is not None else ["x₁", "x₂"]
    ax.set_xlabel(_plain(names[0]))
    ax.set_ylabel(_plain(names[1]))
    ax.set_title("Decision boundary")
    return ax
