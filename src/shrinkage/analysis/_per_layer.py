"""Reading and drawing a per-layer search: the strengths chosen, and each rung's survivors.

:func:`layer_strength_table` and :func:`rung_table` read a search's results (the
``param_strength_layer{i}`` and ``rung`` columns of
:class:`~shrinkage.search.SearchCV` with ``per_layer=True`` / ``halving=True``);
:func:`plot_layer_strengths` draws the top configurations' per-layer strengths as parallel
coordinates on a log axis, coloured by CV score, and :func:`plot_rungs` each
configuration's validation score at each rung it reached.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from shrinkage.analysis._results import as_results_frame, best_index
from shrinkage.errors import ShrinkageError

__all__ = [
    "is_per_layer",
    "layer_strength_table",
    "plot_layer_strengths",
    "plot_rungs",
    "rung_table",
]

_LAYER = re.compile(r"^param_strength_layer(\d+)$")
_RUNG = re.compile(r"^rung(\d+)_test_score$")


def is_per_layer(results: Any) -> bool:
    """Whether search results hold per-layer strengths (``param_strength_layer{i}``)."""
    return any(_LAYER.match(str(c)) for c in as_results_frame(results).columns)


def _layer_columns(frame: pd.DataFrame) -> list[str]:
    found = sorted((int(m[1]), c) for c in frame.columns if (m := _LAYER.match(str(c))))
    if not found:
        raise ShrinkageError(
            "The search results have no param_strength_layer{i} columns (not a per-layer "
            "search); run SearchCV(per_layer=True)."
        )
    return [c for _, c in found]


def layer_strength_table(results: Any, top: int = 20) -> pd.DataFrame:
    """The ``top`` configurations by CV score with their per-layer strengths.

    With successive halving, only configurations of the last rung are ranked (the others
    were not trained to the end).

    Args:
        results: a per-layer search's results (anything ``as_results_frame`` reads).
        top: how many configurations.

    Returns:
        One row per configuration, best first: ``row`` (its index in the results),
        ``mean_test_score``, and ``layer{i}`` (the strength, 0 = not penalized).

    Raises:
        ShrinkageError: results without per-layer strengths.
    """
    frame = as_results_frame(results)
    columns = _layer_columns(frame)
    rows = frame
    if "rung" in frame and frame["rung"].notna().any():
        rows = frame[frame["rung"] == frame["rung"].max()]
    rows = rows.sort_values("mean_test_score", ascending=False, kind="stable").head(top)
    out = pd.DataFrame({"row": rows.index, "mean_test_score": rows["mean_test_score"].values})
    for i, column in enumerate(columns):
        out[f"layer{i}"] = rows[column].to_numpy(dtype=float)
    return out


def rung_table(results: Any) -> pd.DataFrame:
    """Each rung of a successive-halving search: who was ranked there and who went on.

    Returns:
        One row per rung: ``rung`` (0-based), ``epochs``, ``trained`` (configurations
        trained to it and scored there), ``kept`` (went on to the next rung; at the last
        rung, those the final ranking is made among), ``best`` and ``median`` fold-mean
        validation score at that rung.

    Raises:
        ShrinkageError: results without ``rung`` columns.
    """
    frame = as_results_frame(results)
    scores = sorted((int(m[1]), c) for c in frame.columns if (m := _RUNG.match(str(c))))
    if "rung" not in frame or not scores:
        raise ShrinkageError(
            "The search results have no rung columns (no successive halving); run "
            "SearchCV(halving=True)."
        )
    last = len(scores) - 1
    epochs = frame.groupby("rung")["rung_epochs"].first().to_dict()
    rows = []
    for j, column in scores:
        reached = frame[frame["rung"] >= j]
        values = reached[column].to_numpy(dtype=float)
        rows.append(
            {
                "rung": j,
                "epochs": int(epochs.get(j, 0)),
                "trained": len(reached),
                "kept": int((frame["rung"] > j).sum()) if j < last else len(reached),
                "best": float(np.nanmax(values)) if np.isfinite(values).any() else np.nan,
                "median": float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize).add_subplot()


def plot_layer_strengths(results: Any, ax: Axes | None = None, top: int = 20) -> Axes:
    """Parallel coordinates of the top configurations' per-layer strengths.

    One line per configuration across the layers (x), at its strength on a log axis (y);
    a layer left unpenalized sits on the "none" row below the smallest strength. Colour:
    the configuration's mean CV score (the scale starts at the lower quartile of those
    shown); the chosen one (the best) is drawn thick in red.

    Args:
        results: a per-layer search's results.
        ax: where to draw (default: a new figure).
        top: how many configurations (:func:`layer_strength_table`).

    Returns:
        The axes.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import FormatStrFormatter

    table = layer_strength_table(results, top)
    ax = _axes(ax, (7.0, 4.2))
    layers = [c for c in table.columns if c.startswith("layer")]
    values = table[layers].to_numpy(dtype=float)
    positive = values[values > 0]
    floor = positive.min() / 10 if len(positive) else 1e-6
    shown = np.where(values > 0, values, floor)
    scores = table["mean_test_score"].to_numpy(dtype=float)
    finite = scores[np.isfinite(scores)]
    # From the lower quartile up: one poor configuration among the top ones would otherwise
    # paint all the others the same colour.
    low = float(np.percentile(finite, 25)) if len(finite) else 0.0
    norm = Normalize(low, finite.max()) if len(finite) else Normalize(0, 1)
    if norm.vmin == norm.vmax:
        norm = Normalize(norm.vmin - 1e-9, norm.vmax + 1e-9)
    cmap = colormaps["viridis"]
    x = np.arange(len(layers))
    chosen = best_index(results)
    for k in range(len(table) - 1, -1, -1):  # the best drawn last, on top
        score = scores[k]
        color = cmap(norm(score)) if np.isfinite(score) else "0.7"
        if int(table["row"].iloc[k]) == chosen:
            continue
        ax.plot(x, shown[k], "-o", color=color, lw=1.2, ms=3, alpha=0.85)
    picked = np.flatnonzero(table["row"].to_numpy() == chosen)
    for k in picked:
        ax.plot(x, shown[k], "-o", color="#c0392b", lw=2.8, ms=5, label="chosen", zorder=5)
    ax.set_yscale("log")
    ax.axhline(floor, color="0.6", lw=0.8, ls=":")
    ticks = [t for t in ax.get_yticks() if t > floor * 1.5]
    ax.set_yticks([floor, *ticks])
    ax.set_yticklabels(["none", *[f"{t:g}" for t in ticks]])
    ax.set_ylim(floor / 2, max(values.max() * 2, floor * 10))
    ax.set_xticks(x)
    ax.set_xticklabels([f"layer {i}" for i in x])
    ax.set_ylabel("strength λ of the layer (log)")
    ax.set_title(f"Per-layer strengths of the top {len(table)} configurations")
    bar = ax.figure.colorbar(
        ScalarMappable(norm, cmap), ax=ax, label="mean CV score", pad=0.02, extend="min"
    )
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.4g"))
    if len(picked):
        ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_rungs(results: Any, ax: Axes | None = None) -> Axes:
    """Each configuration's fold-mean validation score at every rung it reached.

    x: the rungs' epochs (log); a grey point for a configuration dropped at that rung, a
    line through the rungs for those that went on, the survivors of the last rung in
    colour and the chosen one in red. The count at each rung is written under it.

    Args:
        results: a successive-halving search's results.
        ax: where to draw (default: a new figure).

    Returns:
        The axes.
    """
    frame = as_results_frame(results)
    table = rung_table(frame)
    ax = _axes(ax, (7.0, 4.2))
    epochs = table["epochs"].to_numpy(dtype=float)
    columns = [f"rung{j}_test_score" for j in table["rung"]]
    last = len(columns) - 1
    chosen = best_index(frame)
    for index, row in frame.iterrows():
        reached = int(row["rung"])
        ys = row[columns[: reached + 1]].to_numpy(dtype=float)
        xs = epochs[: reached + 1]
        if index == chosen:
            continue
        if reached == last:
            ax.plot(xs, ys, "-o", color="#2e86c1", lw=1.4, ms=3.5, alpha=0.9, zorder=3)
        elif reached > 0:
            ax.plot(xs, ys, "-", color="0.6", lw=0.6, alpha=0.5)
            ax.plot(xs[-1:], ys[-1:], "o", color="0.55", ms=2.5, alpha=0.7)
        else:
            ax.plot(xs, ys, "o", color="0.6", ms=2.0, alpha=0.45)
    if 0 <= chosen < len(frame):
        row = frame.loc[chosen]
        reached = int(row["rung"])
        ax.plot(
            epochs[: reached + 1],
            row[columns[: reached + 1]].to_numpy(dtype=float),
            "-o",
            color="#c0392b",
            lw=2.6,
            ms=5,
            zorder=5,
            label="chosen",
        )
        ax.legend(loc="lower right", fontsize="small")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(epochs)
    ax.set_xticklabels(
        [
            f"{e:d} epochs\n{n} → {k}"
            for e, n, k in zip(table["epochs"], table["trained"], table["kept"])
        ],
        fontsize="small",
    )
    ax.set_xlabel("rung: epochs, configurations trained → kept")
    ax.set_ylabel("fold-mean validation score")
    ax.set_title("Successive halving: each rung's configurations and survivors")
    return ax
