"""Hidden activations: the sub-model ``input -> hidden layer``, and dead units."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shrinkage.errors import ShrinkageError

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
