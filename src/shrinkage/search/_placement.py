"""A placement study: one fit per (strength, placement), each layer's norm recorded.

Unlike :class:`~shrinkage.search.SearchCV` it trains each model on all the rows given,
without folds: it shows where the weight goes, not which configuration generalizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shrinkage.errors import ShrinkageError, check_strength


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
    grid = [check_strength(s, "strengths") for s in strengths]
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
        for layer, entry in enumerate(model.layer_weights_):
            weights = np.asarray(entry["weight"], dtype=float)
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
