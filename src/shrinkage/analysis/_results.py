"""Reading a search's ``cv_results_``: the frame, the chosen row, the placement table.

:func:`as_results_frame`, :func:`best_index`, :func:`one_standard_error_index` and
:func:`placement_table` are the reading of a search's results that the diagnosis, the
plots and the report share; they accept the ``cv_results_`` dict, a DataFrame, or a
``results.csv`` read back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shrinkage.errors import ShrinkageError, did_you_mean

# --------------------------------------------------------------------------- search results

_LAYER_COLUMN = re.compile(r"^(weight_l2|sparsity)_layer(\d+)$")
#: the parameters that make a "kind of regularization" (one line in a validation curve).
_GROUP_PARAMS = ("param_kind", "param_placement", "param_l1_ratio")


def as_results_frame(results: Any) -> pd.DataFrame:
    """A search's results as a DataFrame, one row per configuration.

    Args:
        results: a DataFrame (``results.csv`` read back), a ``cv_results_`` dict, or an
            object with ``results_frame()`` or ``cv_results_`` (a fitted search).

    Returns:
        A DataFrame with a fresh ``RangeIndex`` (row ``i`` is configuration ``i``).

    Raises:
        ShrinkageError: anything else, or a table without ``mean_test_score``.
    """
    if isinstance(results, pd.DataFrame):
        frame = results
    elif isinstance(results, Mapping):
        frame = pd.DataFrame({k: list(np.asarray(v, dtype=object)) for k, v in results.items()})
        frame = frame.infer_objects()
    elif hasattr(results, "cv_results_"):
        return as_results_frame(results.cv_results_)
    else:
        raise ShrinkageError(
            "The 'results' parameter must be a search, its cv_results_ dict or a DataFrame. "
            f"Got {type(results).__name__} instead."
        )
    require_columns(frame, ["mean_test_score"])
    return frame.reset_index(drop=True)


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ShrinkageError(
            f"The search results lack the column(s) {', '.join(map(repr, missing))}; "
            f"columns are: {', '.join(map(str, frame.columns))}."
        )


def as_text(values: pd.Series) -> pd.Series:
    """Parameter values as plain strings, a missing value as ``"nan"``.

    ``astype(str)`` keeps missing values missing under pandas' string dtype, and a missing
    value equals nothing, not even itself; an elastic-net-free ``l1_ratio`` column is all NaN.
    """
    return values.map(lambda v: "nan" if _missing(v) else str(v)).astype(object)


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def layer_indices(frame: pd.DataFrame, stat: str = "weight_l2") -> list[int]:
    """The layer indices ``i`` of the ``{stat}_layer{i}`` columns, in order."""
    found = {
        int(m[2]) for c in frame.columns if (m := _LAYER_COLUMN.match(str(c))) and m[1] == stat
    }
    return sorted(found)


def group_columns(frame: pd.DataFrame) -> list[str]:
    """The ``param_kind`` / ``param_placement`` / ``param_l1_ratio`` columns that vary."""
    return [c for c in _GROUP_PARAMS if c in frame and as_text(frame[c]).nunique() > 1]


def same_group(frame: pd.DataFrame, index: int) -> pd.Series:
    """Rows with the same kind, placement and l1_ratio as row ``index``."""
    mask = pd.Series(True, index=frame.index)
    for column in _GROUP_PARAMS:
        if column in frame:
            values = as_text(frame[column])
            mask &= values == values.iloc[index]
    return mask


def grid_rows(frame: pd.DataFrame) -> pd.Series:
    """Mask of the rows of the grid stage (a search's ``stage`` column; every row if none).

    Refinement rows (``stage == "refine"``) were warm-started and trained longer, so they
    are not points of the same curve as the grid rows.
    """
    if "stage" not in frame:
        return pd.Series(True, index=frame.index)
    return as_text(frame["stage"]) != "refine"


def grid_edge(results: Any, index: int) -> str | None:
    """Whether row ``index`` sits at an edge of the strengths its configuration tried.

    Among the rows with the same kind, placement and l1_ratio (grid and refinement rows),
    positive strengths only: ``"upper"`` when the row has the largest, ``"lower"`` when it
    has the smallest, None inside the range (or with a single strength, or for strength 0).
    At an edge the cross-validated optimum may lie beyond what was tried.

    Example:
        >>> frame = pd.DataFrame({"param_strength": [0.01, 0.1, 1.0],
        ...                       "mean_test_score": [0.8, 0.85, 0.9]})
        >>> grid_edge(frame, 2), grid_edge(frame, 1), grid_edge(frame, 0)
        ('upper', None, 'lower')
    """
    frame = as_results_frame(results)
    if "param_strength" not in frame:
        return None
    strengths = frame.loc[same_group(frame, index), "param_strength"].astype(float)
    positive = strengths[strengths > 0]
    strength = float(frame["param_strength"].iloc[index])
    if strength <= 0 or positive.nunique() < 2:
        return None
    if strength >= positive.max():
        return "upper"
    if strength <= positive.min():
        return "lower"
    return None


def _final_stage(frame: pd.DataFrame) -> pd.Series:
    """The rows the choice is made among: refinement rows when there are some, and with
    successive halving only the configurations that reached the last rung."""
    grid = grid_rows(frame)
    rows = ~grid if (~grid).any() else grid
    if "rung" in frame and frame["rung"].notna().any():
        rows &= frame["rung"] == frame["rung"].max()
    return rows


def _scores_and_strengths(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    mean = rows["mean_test_score"].to_numpy(dtype=float)
    if np.isnan(mean).all():
        raise ShrinkageError("Every configuration of the search has a missing mean_test_score.")
    layers = [c for c in rows.columns if str(c).startswith("param_strength_layer")]
    if layers:  # per-layer configurations: their total strength
        strength = rows[layers].to_numpy(dtype=float).sum(axis=1)
    elif "param_strength" in rows:
        strength = rows["param_strength"].to_numpy(dtype=float)
    else:
        strength = np.zeros(len(rows))
    return np.where(np.isnan(mean), -np.inf, mean), strength


def best_index(results: Any) -> int:
    """The row with the best mean CV score in the search's final stage, as SearchCV picks it.

    Among the refinement rows when the search refined, the last rung's rows when it used
    successive halving, else among all rows: the highest ``mean_test_score``; ties go to
    the larger strength (per-layer: the larger sum of the layers' strengths; the simpler
    model), then to the earlier row. A search's *chosen* row (``best_index_``) may differ
    when it applies the one-standard-error rule (:func:`one_standard_error_index`).
    """
    frame = as_results_frame(results)
    rows = frame[_final_stage(frame)]
    mean, strength = _scores_and_strengths(rows)
    top = np.flatnonzero(mean == mean.max())
    return int(rows.index[max(top, key=lambda i: (strength[i], -i))])


def _n_splits(frame: pd.DataFrame) -> int:
    return sum(1 for c in frame.columns if re.fullmatch(r"split\d+_test_score", str(c)))


def one_standard_error_index(results: Any) -> int:
    """The one-standard-error choice: the strongest regularization that is about as good.

    Among the rows of the final stage (as :func:`best_index`), the largest
    ``param_strength`` whose ``mean_test_score >= best - se``, where
    ``se = std_test_score[best] / sqrt(n_splits)`` is the standard error of the best mean
    CV score; ties go to the better score, then to the earlier row. This is the rule of
    ``SearchCV(one_standard_error=True)``.

    Returns:
        A row index (the best row itself when nothing stronger is within one SE).
    """
    frame = as_results_frame(results)
    best = best_index(frame)
    if "param_strength" not in frame or "std_test_score" not in frame:
        return best
    rows = frame[_final_stage(frame)]
    mean, strength = _scores_and_strengths(rows)
    splits = _n_splits(frame)
    std = float(frame["std_test_score"].loc[best])
    se = std / math.sqrt(splits) if splits >= 1 else std
    eligible = np.flatnonzero(mean >= float(frame["mean_test_score"].loc[best]) - se)
    if not math.isfinite(se) or not len(eligible):
        return best
    return int(rows.index[max(eligible, key=lambda i: (strength[i], mean[i], -i))])


def placement_table(results: Any, *, kind: str | None = None) -> pd.DataFrame:
    """Per-layer L2 norms against strength for each placement, from search results.

    Grid rows only (not refinement rows); rows with the same strength and placement
    (e.g. several ``l1_ratio`` values) are averaged.

    Args:
        results: anything :func:`as_results_frame` takes, with ``param_strength``,
            ``param_placement`` and ``weight_l2_layer{i}`` columns.
        kind: keep only this ``param_kind`` (default: the best configuration's kind).

    Returns:
        A long DataFrame with columns ``strength``, ``placement``, ``layer``, ``weight_l2``
        sorted by placement, layer and strength.
    """
    frame = as_results_frame(results)
    require_columns(frame, ["param_strength", "param_placement"])
    if kind is None and "param_kind" in frame:
        kind = str(frame["param_kind"].loc[best_index(frame)])
    frame = frame[grid_rows(frame)]
    layers = layer_indices(frame)
    if not layers:
        raise ShrinkageError(
            "The search results have no weight_l2_layer{i} columns; "
            f"columns are: {', '.join(map(str, frame.columns))}."
        )
    if "param_kind" in frame:
        kinds = as_text(frame["param_kind"])
        if kind not in set(kinds):
            raise ShrinkageError(
                f"The 'kind' parameter must be one of the searched kinds "
                f"({', '.join(sorted(set(kinds)))}). Got {kind!r} instead."
                f"{did_you_mean(kind, kinds)}"
            )
        frame = frame[kinds == kind]
    long = frame.assign(
        strength=frame["param_strength"].astype(float),
        placement=as_text(frame["param_placement"]),
    ).melt(
        id_vars=["strength", "placement"],
        value_vars=[f"weight_l2_layer{i}" for i in layers],
        var_name="layer",
        value_name="weight_l2",
    )
    long["layer"] = long["layer"].str.extract(r"(\d+)$", expand=False).astype(int)
    table = long.groupby(["placement", "layer", "strength"], as_index=False)["weight_l2"].mean()
    return table[["strength", "placement", "layer", "weight_l2"]].reset_index(drop=True)
