"""What regularization did: the over-fitting diagnosis, hidden activations, placement.

Per-layer weight statistics (norms, zeros, dead units) live in
:func:`shrinkage.diagnostics.weight_table`; this module reads what a fit or a search
*means*:

* :func:`diagnose` — train vs validation error and their gap, classified as
  ``high variance`` (regularize more), ``high bias`` (regularize less) or ``balanced``,
  with the thresholds below and the direction in which to move lambda.
  :func:`diagnose_scores`, :func:`diagnose_search`, :func:`diagnose_history` and
  :func:`diagnose_estimator` feed it from scores, a search, a training history or a
  fitted estimator.
* :func:`activation_summary` — the activations of any hidden layer for given rows: mean
  activation and the fraction of dead units (dead ReLUs).
* :func:`placement_table` / :func:`placement_study` — per-layer L2 norms against the
  strength for the placements ``all``, ``hidden`` and ``output`` (from search results, or
  by fitting small estimators directly).
* :func:`as_results_frame`, :func:`best_index`, :func:`one_standard_error_index` — the
  reading of a search's ``cv_results_`` that the plots and the report share.

The thresholds (absolute error differences; errors are fractions, so 0.05 is 5 points):

=================  =======  ==========================================================
threshold          default  meaning
=================  =======  ==========================================================
``bias``           0.05     train error above ``baseline_error`` (the error a perfect
                            model would still make: Bayes or human error, 0 by default)
                            by more than this is *high bias*
``variance``       0.05     validation error above train error by more than this is
                            *high variance*
=================  =======  ==========================================================

Bias is checked first, as in the course's recipe: while the network cannot fit its own
training rows, more regularization cannot help, so lambda goes down first.

Scores are "higher is better" values in ``[.., 1]`` (accuracy for a classifier, R² for a
regressor, the estimators' ``score``); an error is ``1 - score`` (misclassification rate,
or the fraction of variance left unexplained).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from shrinkage.errors import ShrinkageError

__all__ = [
    "BALANCED",
    "BIAS_THRESHOLD",
    "HIGH_BIAS",
    "HIGH_VARIANCE",
    "VARIANCE_THRESHOLD",
    "Diagnosis",
    "activation_summary",
    "as_results_frame",
    "as_text",
    "best_index",
    "diagnose",
    "diagnose_estimator",
    "diagnose_history",
    "diagnose_scores",
    "diagnose_search",
    "grid_rows",
    "group_columns",
    "hidden_activations",
    "layer_indices",
    "layer_weights",
    "one_standard_error_index",
    "placement_study",
    "placement_table",
]

HIGH_VARIANCE = "high variance"
HIGH_BIAS = "high bias"
BALANCED = "balanced"

#: validation error minus train error above this (absolute, in error units) is high variance.
VARIANCE_THRESHOLD = 0.05
#: train error minus the baseline error above this is high bias.
BIAS_THRESHOLD = 0.05

_DIRECTIONS = {HIGH_VARIANCE: "increase", HIGH_BIAS: "decrease", BALANCED: "keep"}
_ADVICE = {
    HIGH_VARIANCE: "regularize more: increase lambda (or add data)",
    HIGH_BIAS: "regularize less: decrease lambda (or use a bigger network)",
    BALANCED: "keep lambda; refine the grid near it if you want the last bit",
}


def _finite(value: object, name: str, low: float | None = 0.0) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or (low is not None and number < low):
        where = "a finite float" if low is None else f"a finite float in the range [{low:g}, inf)"
        raise ShrinkageError(f"The '{name}' parameter must be {where}. Got {value!r} instead.")
    return number


# --------------------------------------------------------------------------- the diagnosis


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one fit: train and validation error, gap, and where lambda should go.

    Attributes:
        train_error: error on the training rows (``1 - score``).
        val_error: error on held-out rows (validation set or cross-validation).
        baseline_error: the error a perfect model would still make (0 unless told).
        verdict: ``"high variance"``, ``"high bias"`` or ``"balanced"``.
        direction: where to move lambda: ``"increase"``, ``"decrease"`` or ``"keep"``.
        advice: one sentence for a person.
        variance_threshold: the gap above which the verdict is high variance.
        bias_threshold: the avoidable bias above which the verdict is high bias.
    """

    train_error: float
    val_error: float
    baseline_error: float
    verdict: str
    direction: str
    advice: str
    variance_threshold: float = VARIANCE_THRESHOLD
    bias_threshold: float = BIAS_THRESHOLD

    @property
    def gap(self) -> float:
        """``val_error - train_error``: the variance the regularizer is there to remove."""
        return self.val_error - self.train_error

    @property
    def avoidable_bias(self) -> float:
        """``train_error - baseline_error``."""
        return self.train_error - self.baseline_error

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, the derived ``gap`` and ``avoidable_bias`` included."""
        return {**asdict(self), "gap": self.gap, "avoidable_bias": self.avoidable_bias}

    def __str__(self) -> str:
        return (
            f"train error {self.train_error:.1%}, validation error {self.val_error:.1%} "
            f"(gap {100 * self.gap:.1f} points): {self.verdict}; {self.advice}."
        )


def diagnose(
    train_error: float,
    val_error: float,
    *,
    baseline_error: float = 0.0,
    variance_threshold: float = VARIANCE_THRESHOLD,
    bias_threshold: float = BIAS_THRESHOLD,
) -> Diagnosis:
    """Classify a fit from its train and validation error.

    With ``bias = train_error - baseline_error`` and ``gap = val_error - train_error``:
    ``bias > bias_threshold`` ⇒ high bias (decrease lambda); otherwise
    ``gap > variance_threshold`` ⇒ high variance (increase lambda); otherwise balanced.

    Args:
        train_error: error on the training rows, ``>= 0`` (a fraction: 0.01 is 1%).
        val_error: error on held-out rows, ``>= 0``.
        baseline_error: Bayes / human-level error of the task, ``>= 0``.
        variance_threshold: largest gap still called balanced.
        bias_threshold: largest avoidable bias still called balanced.

    Returns:
        The :class:`Diagnosis`.

    Raises:
        ShrinkageError: a value that is not a finite non-negative number.

    Example:
        >>> d = diagnose(0.01, 0.11)
        >>> d.verdict, d.direction
        ('high variance', 'increase')
    """
    train = _finite(train_error, "train_error")
    val = _finite(val_error, "val_error")
    base = _finite(baseline_error, "baseline_error")
    var_t = _finite(variance_threshold, "variance_threshold")
    bias_t = _finite(bias_threshold, "bias_threshold")
    if train - base > bias_t:
        verdict = HIGH_BIAS
    elif val - train > var_t:
        verdict = HIGH_VARIANCE
    else:
        verdict = BALANCED
    return Diagnosis(
        train_error=train,
        val_error=val,
        baseline_error=base,
        verdict=verdict,
        direction=_DIRECTIONS[verdict],
        advice=_ADVICE[verdict],
        variance_threshold=var_t,
        bias_threshold=bias_t,
    )


def diagnose_scores(train_score: float, val_score: float, **thresholds: float) -> Diagnosis:
    """:func:`diagnose` on ``1 - score`` (accuracy → error rate, R² → unexplained variance).

    Args:
        train_score: score on the training rows (higher is better, at most 1).
        val_score: score on held-out rows.
        **thresholds: ``baseline_error``, ``variance_threshold``, ``bias_threshold``.

    Returns:
        The :class:`Diagnosis`.
    """
    train = _finite(train_score, "train_score", low=None)
    val = _finite(val_score, "val_score", low=None)
    if train > 1 or val > 1:
        raise ShrinkageError(
            "The scores must be at most 1 (accuracy or R²). "
            f"Got train_score={train_score!r}, val_score={val_score!r} instead."
        )
    return diagnose(1.0 - train, 1.0 - val, **thresholds)


def diagnose_history(history: Sequence[Mapping[str, Any]], **thresholds: float) -> Diagnosis:
    """Diagnose the last epoch of an estimator's ``history_`` that has both scores.

    Args:
        history: rows with ``train_score`` and ``val_score`` (an estimator's ``history_``).
        **thresholds: passed to :func:`diagnose`.

    Returns:
        The :class:`Diagnosis` of the last epoch with a validation score.

    Raises:
        ShrinkageError: no row has both scores (the fit had no validation rows).
    """
    for row in reversed(list(history)):
        train, val = row.get("train_score"), row.get("val_score")
        if _is_number(train) and _is_number(val):
            return diagnose_scores(float(train), float(val), **thresholds)
    raise ShrinkageError(
        "The 'history' has no epoch with both 'train_score' and 'val_score'; "
        "fit with validation rows (validation_fraction > 0) to diagnose it."
    )


def diagnose_estimator(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    **thresholds: float,
) -> Diagnosis:
    """Diagnose a fitted estimator from its ``score`` on training and validation rows.

    Args:
        estimator: anything with ``score(X, y)`` (higher is better, at most 1).
        X_train: training rows.
        y_train: training targets.
        X_val: validation rows.
        y_val: validation targets.
        **thresholds: passed to :func:`diagnose`.

    Returns:
        The :class:`Diagnosis`.
    """
    return diagnose_scores(
        estimator.score(X_train, y_train), estimator.score(X_val, y_val), **thresholds
    )


def diagnose_search(results: Any, index: int | None = None, **thresholds: float) -> Diagnosis:
    """Diagnose a search's chosen configuration from its mean train and CV scores.

    Args:
        results: a search (``cv_results_``), its ``cv_results_`` dict or a results frame.
        index: the row to diagnose (default: the search's ``best_index_``, else
            :func:`best_index`).
        **thresholds: passed to :func:`diagnose`.

    Returns:
        The :class:`Diagnosis` of that row. The advice also reads the grid: when the
        verdict points beyond the end of the strength grid it says to extend the grid; when
        the grid already tried that direction (no smaller strength, for high bias, or no
        larger one, for high variance, validated better) it says lambda is not the remedy.
    """
    frame = as_results_frame(results)
    _require(frame, ["mean_train_score", "mean_test_score"])
    if index is None:
        index = getattr(results, "best_index_", None)
    chosen = best_index(frame) if index is None else int(index)
    if not 0 <= chosen < len(frame):
        raise ShrinkageError(
            f"The 'index' parameter must be a row of the results, in [0, {len(frame)}). "
            f"Got {index!r} instead."
        )
    row = frame.iloc[chosen]
    found = diagnose_scores(row["mean_train_score"], row["mean_test_score"], **thresholds)
    same = frame[_same_group(frame, chosen) & grid_rows(frame)]
    strengths = same["param_strength"].astype(float) if "param_strength" in frame else None
    if strengths is not None and len(strengths.unique()) > 1:
        strength = float(row["param_strength"])
        edge = (found.direction == "increase" and strength >= strengths.max()) or (
            found.direction == "decrease" and strength <= strengths.min()
        )
        score = float(row["mean_test_score"])
        scores = same["mean_test_score"].astype(float)
        weaker = scores[strengths < strength]
        stronger = scores[strengths > strength]
        advice = None
        if edge:
            advice = f"{found.advice}; the strength {strength:g} is at the end of the grid, "
            advice += "so extend the grid that way"
        elif found.direction == "decrease" and len(weaker) and (weaker <= score).all():
            # The grid already tried less regularization and validated worse: lambda is not
            # what holds the fit back.
            advice = (
                f"{found.advice}; but no smaller strength of the grid validates better, so "
                "the train error is more likely noise in the data (set baseline_error) or a "
                "network too small than too much lambda"
            )
        elif found.direction == "increase" and len(stronger) and (stronger <= score).all():
            advice = (
                f"{found.advice}; but no larger strength of the grid validates better, so "
                "more data (or a smaller network) is the next step rather than more lambda"
            )
        if advice is not None:
            found = Diagnosis(**{**asdict(found), "advice": advice})
    return found


def _is_number(value: object) -> bool:
    try:
        return value is not None and math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


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
    _require(frame, ["mean_test_score"])
    return frame.reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
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


def _same_group(frame: pd.DataFrame, index: int) -> pd.Series:
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


def _final_stage(frame: pd.DataFrame) -> pd.Series:
    grid = grid_rows(frame)
    return ~grid if (~grid).any() else grid


def _scores_and_strengths(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    mean = rows["mean_test_score"].to_numpy(dtype=float)
    if np.isnan(mean).all():
        raise ShrinkageError("Every configuration of the search has a missing mean_test_score.")
    strength = (
        rows["param_strength"].to_numpy(dtype=float)
        if "param_strength" in rows
        else np.zeros(len(rows))
    )
    return np.where(np.isnan(mean), -np.inf, mean), strength


def best_index(results: Any) -> int:
    """The row with the best mean CV score in the search's final stage, as SearchCV picks it.

    Among the refinement rows when the search refined, else among all rows: the highest
    ``mean_test_score``; ties go to the larger strength (the simpler model), then to the
    earlier row. A search's *chosen* row (``best_index_``) may differ when it applies the
    one-standard-error rule (:func:`one_standard_error_index`).
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
    _require(frame, ["param_strength", "param_placement"])
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


# --------------------------------------------------------------------------- activations


def _network(model: Any) -> Any:
    """The ``shrinkage.models.MLP`` behind an estimator, or the module itself."""
    return getattr(model, "model_", model)


def _n_hidden(model: Any) -> int:
    layers = getattr(_network(model), "layers", None)
    if layers is None:
        raise ShrinkageError(
            "The 'model' parameter must be a fitted estimator or a shrinkage.models.MLP. "
            f"Got {type(model).__name__} instead."
        )
    return len(layers) - 1


def hidden_activations(model: Any, X: Any, layer: int) -> np.ndarray:
    """The activations of hidden layer ``layer`` (0-based) for the rows ``X``.

    An estimator preprocesses ``X`` as in ``predict`` (``transform_hidden``); a bare
    ``shrinkage.models.MLP`` takes ``X`` as already-standardized numbers.

    Returns:
        An array ``(rows, units)``: the sub-model ``input → hidden layer`` applied to ``X``.
    """
    if hasattr(model, "transform_hidden"):
        return np.asarray(model.transform_hidden(X, layer=layer), dtype=float)
    import torch

    net = _network(model)
    if not hasattr(net, "hidden"):
        raise ShrinkageError(
            "The 'model' parameter must be a fitted estimator or a shrinkage.models.MLP. "
            f"Got {type(model).__name__} instead."
        )
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        out = net.hidden(torch.as_tensor(np.asarray(X), dtype=dtype), layer)
    return out.cpu().numpy().astype(float)


def activation_summary(
    model: Any, X: Any, layers: int | Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Mean activation and dead units of hidden layers for the rows ``X``.

    A unit is *dead* on these rows when its output is exactly 0 for every row: for a ReLU,
    a pre-activation ``<= 0`` everywhere, so no gradient reaches its weights.

    Args:
        model: a fitted estimator or a ``shrinkage.models.MLP``.
        X: the rows (raw for an estimator, standardized for a bare network).
        layers: a hidden-layer index or indices (default: every hidden layer).

    Returns:
        One dict per layer: ``layer``, ``units``, ``rows``, ``mean_activation`` (over rows
        and units), ``fraction_active`` (activations > 0), ``dead_units`` and
        ``fraction_dead``.
    """
    n_hidden = _n_hidden(model)
    if layers is None:
        chosen = list(range(n_hidden))
    elif isinstance(layers, int | np.integer):
        chosen = [int(layers)]
    else:
        chosen = [int(i) for i in layers]
    rows = []
    for layer in chosen:
        if not 0 <= layer < n_hidden:
            raise ShrinkageError(
                f"The 'layers' parameter must hold indices in [0, {n_hidden}) for a network "
                f"with {n_hidden} hidden layers. Got {layer!r} instead."
            )
        acts = hidden_activations(model, X, layer)
        dead = int(np.sum(np.all(acts == 0, axis=0))) if len(acts) else 0
        units = acts.shape[1]
        rows.append(
            {
                "layer": layer,
                "units": units,
                "rows": acts.shape[0],
                "mean_activation": float(acts.mean()) if acts.size else math.nan,
                "fraction_active": float((acts > 0).mean()) if acts.size else math.nan,
                "dead_units": dead,
                "fraction_dead": dead / units if units else 0.0,
            }
        )
    return rows


# --------------------------------------------------------------------------- placement study


def layer_weights(source: Any) -> list[tuple[str, np.ndarray]]:
    """The weight matrices of a model as ``(name, array)`` pairs, input layer first.

    Args:
        source: an estimator (its ``layer_weights_``, else its ``model_``), a
            ``shrinkage.models.MLP`` (``layers.{i}.weight``), any ``nn.Module`` (its
            parameters with two or more dimensions), a mapping name → array, or a
            sequence of arrays or of ``{"weight": array, "bias": array}`` dicts.

    Returns:
        ``[(name, weights as a float64 array), ...]``; biases are left out.
    """
    weights = getattr(source, "layer_weights_", None)
    if weights is not None:
        source = weights
    elif hasattr(source, "model_"):
        source = source.model_
    if isinstance(source, Mapping):
        return [(str(k), _numpy(v)) for k, v in source.items()]
    layers = getattr(source, "layers", None)
    if layers is not None and all(hasattr(m, "weight") for m in layers):
        return [(f"layers.{i}.weight", _numpy(m.weight)) for i, m in enumerate(layers)]
    if hasattr(source, "named_parameters"):
        return [(n, _numpy(p)) for n, p in source.named_parameters() if p.ndim >= 2]
    if isinstance(source, Sequence) and not isinstance(source, str):
        return [
            (f"layers.{i}.weight", _numpy(w["weight"] if isinstance(w, Mapping) else w))
            for i, w in enumerate(source)
        ]
    raise ShrinkageError(
        "The weights must come from an estimator, an nn.Module, a dict or a list of arrays. "
        f"Got {type(source).__name__} instead."
    )


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def placement_study(
    X: Any,
    y: Any,
    strengths: Sequence[float],
    *,
    placements: Sequence[str] = ("all", "hidden", "output"),
    estimator: Any = None,
    include_unregularized: bool = True,
) -> pd.DataFrame:
    """Fit one model per (strength, placement) and record each layer's L2 norm.

    The seed's claim made visible: with ``placement="output"`` only the output layer pays,
    so the network moves its scale into the hidden layer (a ReLU network computes the same
    function with ``W_hidden * c`` and ``W_out / c``).

    Args:
        X: training rows.
        y: targets.
        strengths: the grid of penalty strengths (Keras meaning).
        placements: the placements to compare.
        estimator: the template (default ``MLPClassifier(hidden_layer_sizes=(16,))``);
            each fit is a ``sklearn.base.clone`` with ``strength`` and ``placement`` set.
        include_unregularized: also fit ``strength=0`` once (placement ``"none"``).

    Returns:
        A long DataFrame with columns ``strength``, ``placement``, ``layer``,
        ``weight_l2`` (``sqrt(sum(w**2))`` of the layer's weight matrix).
    """
    from sklearn.base import clone

    if estimator is None:
        from shrinkage.estimators import MLPClassifier

        estimator = MLPClassifier(hidden_layer_sizes=(16,))
    grid = [_finite(s, "strengths") for s in strengths]
    if not grid:
        raise ShrinkageError("The 'strengths' parameter must hold at least one strength. Got [].")
    fits: list[tuple[float, str]] = [(0.0, "none")] if include_unregularized else []
    fits += [(s, p) for p in placements for s in grid]
    records = []
    for strength, placement in fits:
        params = {"strength": strength}
        if placement != "none":
            params["placement"] = placement
        model = clone(estimator).set_params(**params).fit(X, y)
        for layer, (_, weights) in enumerate(layer_weights(model)):
            records.append(
                {
                    "strength": strength,
                    "placement": placement,
                    "layer": layer,
                    "weight_l2": float(np.linalg.norm(weights)),
                }
            )
    return pd.DataFrame.from_records(
        records, columns=["strength", "placement", "layer", "weight_l2"]
    )
