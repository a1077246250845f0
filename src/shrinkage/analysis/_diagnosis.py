"""What regularization did: the over-fitting diagnosis, hidden activations, placement.

The over-fitting diagnosis: what a fit or a search *means*.


* :func:`diagnose` — train vs validation error and their gap, classified as
  ``high variance`` (regularize more), ``high bias`` (regularize less) or ``balanced``,
  with the thresholds below and the direction in which to move lambda.
  :func:`diagnose_scores`, :func:`diagnose_search`, :func:`diagnose_history` and
  :func:`diagnose_estimator` feed it from scores, a search, a training history or a
  fitted estimator.

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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shrinkage.analysis._results import (
    as_results_frame,
    best_index,
    grid_rows,
    require_columns,
    same_group,
)
from shrinkage.errors import ShrinkageError

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
    require_columns(frame, ["mean_train_score", "mean_test_score"])
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
    same = frame[same_group(frame, chosen) & grid_rows(frame)]
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
                "the train error more likely comes from noise in the data (the task's own "
                "error, which diagnose(..., baseline_error=e) accounts for) or a network too "
                "small than from too much lambda"
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
