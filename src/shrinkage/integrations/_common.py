"""What the integrations share: the optional-import guard and the logged statistics."""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
from torch import nn

from shrinkage import Regularizer
from shrinkage.errors import ShrinkageError

__all__ = ["MissingDependency", "require", "weight_stats"]


class MissingDependency(ShrinkageError, ImportError):
    """An integration's optional package is not installed (one line, with the command)."""


def require(package: str, extra: str) -> ModuleType:
    """Import ``package`` for the integration ``extra``, or say how to install it.

    Args:
        package: the module to import (``"lightning.pytorch"``).
        extra: the integration's name, which is also its pip extra (``"lightning"``).

    Returns:
        The imported module.

    Raises:
        MissingDependency: ``package`` cannot be imported.
    """
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        reason = (str(exc).splitlines() or ["not installed"])[0]
        raise MissingDependency(
            f"shrinkage.integrations.{extra} needs the '{package}' package ({reason}); "
            f"install it with: pip install shrinkage[{extra}]"
        ) from None


@torch.no_grad()
def weight_stats(source: Regularizer | nn.Module, prefix: str = "shrinkage") -> dict[str, float]:
    """The penalty value and per-layer norms and sparsity, flat, ready for a logger.

    For each weight ``W`` (every parameter with two or more dimensions, plus any other
    parameter the plan penalizes)::

        {prefix}/l2_norm/{name}       = sqrt(sum w**2)
        {prefix}/zero_fraction/{name} = #{w == 0} / #w      (exact zeros: L1, group lasso)

    and, for a :class:`~shrinkage.Regularizer`, ``{prefix}/penalty`` =
    ``scale * sum Omega(w)``, the weight penalty of :meth:`Regularizer.value` (activity
    penalties depend on the batch and are not included).

    Args:
        source: a regularizer (its model's weights and its penalty) or a plain module.
        prefix: the first part of every key; ``""`` for none.

    Returns:
        ``{key: float}``, in the order of ``named_parameters()`` after the penalty.

    Raises:
        ShrinkageError: ``source`` is neither a regularizer nor a module.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> _ = layer.weight.data.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        >>> weight_stats(layer)
        {'shrinkage/l2_norm/weight': 5.0, 'shrinkage/zero_fraction/weight': 0.5}
    """
    stats: dict[str, float] = {}
    head = f"{prefix}/" if prefix else ""
    if isinstance(source, Regularizer):
        model = source.model
        penalized = {id(a.param) for a in source.assignments if a.penalty is not None}
        stats[f"{head}penalty"] = float(source.value())
    elif isinstance(source, nn.Module):
        model, penalized = source, set()
    else:
        raise ShrinkageError(
            "weight_stats expects a shrinkage Regularizer or a torch nn.Module. "
            f"Got {type(source).__name__} instead."
        )
    names, values = [], []
    for name, param in model.named_parameters():
        if not param.is_floating_point() or (param.ndim < 2 and id(param) not in penalized):
            continue
        w = param.detach()
        names.append(name)
        values.append(torch.linalg.vector_norm(w).float())
        values.append((w == 0).sum().float() / max(w.numel(), 1))
    if values:
        # One transfer for all layers: a device sync per number would stall a GPU run.
        numbers = torch.stack([v.to(values[0].device) for v in values]).cpu().tolist()
        for i, name in enumerate(names):
            stats[f"{head}l2_norm/{name}"] = numbers[2 * i]
            stats[f"{head}zero_fraction/{name}"] = numbers[2 * i + 1]
    return stats
