"""What regularization did to the weights: per-layer norms, sparsity and dead units.

:func:`weight_table` reads any ``nn.Module`` (a CNN, an LSTM, a transformer), a fitted
estimator, or a :class:`~shrinkage.Regularizer` (then each weight's penalty and its value
are shown too); it is what ``shrinkage inspect`` prints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from shrinkage.errors import ShrinkageError
from shrinkage.plan import Plan
from shrinkage.regularizer import Regularizer

__all__ = ["SMALL", "weight_table"]

#: Weights with ``|w|`` below this count as "small" (near zero but not exactly zero).
SMALL = 1e-3


def _penalty_value(penalty: Any, param: torch.Tensor, ref: Any = None) -> float | None:
    try:  # in float64, as the norms
        return float(penalty.value(param.detach().double(), ref))
    except ShrinkageError:  # L2SP without its reference (an estimator after fit)
        return None


def _sources(source: Any, regularizer: Any) -> tuple[nn.Module, dict[int, tuple[Any, Any]]]:
    """The module, and ``id(param) -> (penalty, penalty value)`` when penalties are known."""
    if isinstance(source, Regularizer):
        if regularizer is not None:
            raise ShrinkageError(
                "weight_table got a Regularizer twice: pass it as the first argument only."
            )
        regularizer = source
        source = source.model
    if not isinstance(source, nn.Module):
        model = getattr(source, "model_", None)
        if not isinstance(model, nn.Module):
            raise ShrinkageError(
                "weight_table expects a torch nn.Module, a Regularizer or a fitted shrinkage "
                f"estimator; got {type(source).__name__}."
            )
        if regularizer is None:
            regularizer = getattr(source, "plan_", None)
        source = model
    known: dict[int, tuple[Any, Any]] = {}
    if isinstance(regularizer, Regularizer):
        if regularizer.model is not source:
            raise ShrinkageError(
                "The 'regularizer' parameter of weight_table must be attached to the model "
                "given; it regularizes another module."
            )
        scale = regularizer.current_scale()
        for bucket in regularizer.buckets:
            refs = bucket.refs or [None] * len(bucket.params)
            for param, ref in zip(bucket.params, refs):
                value = _penalty_value(bucket.penalty, param, ref)
                known[id(param)] = (bucket.penalty, None if value is None else scale * value)
        for a in regularizer.assignments:
            known.setdefault(id(a.param), (None, None))
    elif regularizer is not None:
        plan = Plan.coerce(regularizer)
        for a in plan.resolve(source):
            value = None if a.penalty is None else _penalty_value(a.penalty, a.param)
            known[id(a.param)] = (a.penalty, value)
    return source, known


@torch.no_grad()
def weight_table(
    model: Any,
    regularizer: Any = None,
    *,
    small: float = SMALL,
    as_frame: bool = False,
) -> Any:
    """One row per weight matrix (every parameter with two or more dimensions) of any model.

    For a weight ``W`` whose rows are output units (``nn.Linear``: ``(out, in)``; a conv
    kernel ``(out_channels, in_channels, ...)`` is flattened to ``(out_channels, -1)``; an
    LSTM's ``weight_ih_l0`` has a row per gate unit; an attention ``in_proj_weight`` a row
    per query / key / value feature):

    * ``l1_norm`` = ``sum |w|``; ``l2_norm`` = ``sqrt(sum w**2)``; ``max_abs`` = ``max |w|``;
    * ``zero_fraction``: share of entries exactly 0 (what L1 / group lasso in proximal mode
      produce); ``small_fraction``: share with ``|w| < small`` (zeros included);
    * ``dead_units``: rows that are entirely zero, i.e. units that receive no input;
    * when penalties are known (a Regularizer, a plan, a fitted estimator): ``penalty``
      (what the plan puts on the weight, ``None`` for none) and ``penalty_value``, its term
      ``scale · Ω(W)`` in the loss (``None`` when it cannot be measured: L2-SP without its
      reference weights).

    Args:
        model: any ``nn.Module``, a fitted estimator, or a
            :class:`~shrinkage.Regularizer` (its model, with each weight's penalty).
        regularizer: for an ``nn.Module``: the Regularizer attached to it, or a
            :class:`~shrinkage.Plan` (or what ``Plan(...)`` takes) to read the penalties
            from; None: no penalty columns.
        small: the threshold of ``small_fraction``.
        as_frame: return a pandas DataFrame instead of a list of dicts.

    Returns:
        A list of dicts with the keys ``name``, ``shape``, ``n_params``, (``penalty``,
        ``penalty_value``), ``l1_norm``, ``l2_norm``, ``max_abs``, ``zero_fraction``,
        ``small_fraction``, ``units``, ``dead_units`` (plain Python values, JSON-ready), or
        the same as a DataFrame.

    Raises:
        ShrinkageError: anything other than a module, a Regularizer or a fitted estimator,
            or a Regularizer of another module.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> _ = layer.weight.data.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]]))
        >>> row = weight_table(layer)[0]
        >>> row["l1_norm"], row["zero_fraction"], row["dead_units"]
        (3.5, 0.5, 1)
        >>> from shrinkage import L2
        >>> weight_table(layer, {"*": L2(0.1)})[0]["penalty_value"]  # 0.1 · (1 + 4 + 0.25)
        0.525
    """
    model, known = _sources(model, regularizer)
    rows = []
    for name, param in model.named_parameters():
        if param.ndim < 2:
            continue
        w = param.detach().to("cpu", torch.float64)
        magnitude = w.abs()
        per_unit = magnitude.reshape(w.shape[0], -1)
        row: dict[str, Any] = {
            "name": name,
            "shape": list(w.shape),
            "n_params": int(w.numel()),
        }
        if known:
            penalty, value = known.get(id(param), (None, None))
            row["penalty"] = None if penalty is None else str(penalty)
            row["penalty_value"] = value
        row.update(
            {
                "l1_norm": float(magnitude.sum()),
                "l2_norm": float(torch.linalg.vector_norm(w)),
                "max_abs": float(magnitude.max()) if w.numel() else 0.0,
                "zero_fraction": float((w == 0).double().mean()) if w.numel() else 0.0,
                "small_fraction": float((magnitude < small).double().mean()) if w.numel() else 0.0,
                "units": int(w.shape[0]),
                "dead_units": int((per_unit.amax(dim=1) == 0).sum()) if w.numel() else 0,
            }
        )
        rows.append(row)
    if as_frame:
        import pandas as pd

        return pd.DataFrame(rows)
    return rows
