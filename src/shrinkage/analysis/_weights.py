"""What regularization did to the weights: per-layer norms, sparsity and dead units.

:func:`weight_table` is what ``shrinkage inspect`` prints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from shrinkage.errors import ShrinkageError

__all__ = ["SMALL", "weight_table"]

#: Weights with ``|w|`` below this count as "small" (near zero but not exactly zero).
SMALL = 1e-3


def _model_and_plan(obj: Any) -> tuple[nn.Module, Any]:
    if isinstance(obj, nn.Module):
        return obj, None
    model = getattr(obj, "model_", None)
    if isinstance(model, nn.Module):
        return model, getattr(obj, "plan_", None)
    raise ShrinkageError(
        "weight_table expects a torch nn.Module or a fitted shrinkage estimator; "
        f"got {type(obj).__name__}."
    )


@torch.no_grad()
def weight_table(model_or_estimator: Any, small: float = SMALL) -> list[dict[str, Any]]:
    """One row per weight matrix (every parameter with two or more dimensions).

    For a weight ``W`` whose rows are output units (``nn.Linear``: ``(out, in)``; a conv
    kernel is flattened to ``(out_channels, -1)``):

    * ``l1_norm`` = ``sum |w|``; ``l2_norm`` = ``sqrt(sum w**2)``; ``max_abs`` = ``max |w|``;
    * ``zero_fraction``: share of entries exactly 0 (what L1 / group lasso in proximal mode
      produce); ``small_fraction``: share with ``|w| < small`` (zeros included);
    * ``dead_units``: rows that are entirely zero, i.e. units that receive no input.

    Args:
        model_or_estimator: an ``nn.Module`` or a fitted estimator (then each row also has
            the ``penalty`` its plan put on that weight, or ``None``).
        small: the threshold of ``small_fraction``.

    Returns:
        A list of dicts with the keys ``name``, ``shape``, ``n_params``, ``penalty``,
        ``l1_norm``, ``l2_norm``, ``max_abs``, ``zero_fraction``, ``small_fraction``,
        ``units``, ``dead_units``; plain Python values (JSON-ready).

    Raises:
        ShrinkageError: anything other than a module or a fitted estimator.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> _ = layer.weight.data.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]]))
        >>> row = weight_table(layer)[0]
        >>> row["l1_norm"], row["zero_fraction"], row["dead_units"]
        (3.5, 0.5, 1)
    """
    model, plan = _model_and_plan(model_or_estimator)
    penalties: dict[str, Any] = {}
    if plan is not None:
        penalties = {a.name: a.penalty for a in plan.resolve(model)}
    rows = []
    for name, param in model.named_parameters():
        if param.ndim < 2:
            continue
        w = param.detach().to("cpu", torch.float64)
        magnitude = w.abs()
        per_unit = magnitude.reshape(w.shape[0], -1)
        penalty = penalties.get(name)
        rows.append(
            {
                "name": name,
                "shape": list(w.shape),
                "n_params": int(w.numel()),
                "penalty": None if penalty is None else str(penalty),
                "l1_norm": float(magnitude.sum()),
                "l2_norm": float(torch.linalg.vector_norm(w)),
                "max_abs": float(magnitude.max()) if w.numel() else 0.0,
                "zero_fraction": float((w == 0).double().mean()) if w.numel() else 0.0,
                "small_fraction": float((magnitude < small).double().mean()) if w.numel() else 0.0,
                "units": int(w.shape[0]),
                "dead_units": int((per_unit.amax(dim=1) == 0).sum()) if w.numel() else 0,
            }
        )
    return rows
