"""Hidden activations: the outputs of any model's submodules, and dead units.

For any ``nn.Module`` (a CNN, an LSTM, a transformer): :class:`ActivationRecorder` puts
removable forward hooks on named submodules and keeps their outputs;
:func:`activations` runs a batch through the model and returns them (a dict of tensors),
:func:`activation_table` summarizes them (a DataFrame: shape, mean, share active, dead
units). For the library's MLP and estimators: :func:`hidden_activations` (the sub-model
``input -> hidden layer``) and :func:`activation_summary`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from shrinkage.errors import ShrinkageError, did_you_mean

__all__ = [
    "ActivationRecorder",
    "activation_summary",
    "activation_table",
    "activations",
    "hidden_activations",
    "layer_weights",
]

# --------------------------------------------------------------------------- any module


def _first_tensor(output: Any) -> Any:
    """The first tensor of a module's output (an LSTM's ``(output, (h, c))``: ``output``)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, list | tuple):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


class ActivationRecorder:
    """Forward hooks that keep the outputs of named submodules; removed on :meth:`remove`.

    Use as a context manager around your own forward passes (training included); each
    module's last output is in :attr:`outputs`, detached (and on the CPU with
    ``to_cpu``). A module whose output is a tuple (``nn.LSTM``: ``(output, (h, c))``;
    ``nn.MultiheadAttention``: ``(output, weights)``) records its first tensor.

    Args:
        model: any ``nn.Module``.
        modules: names from ``model.named_modules()`` (``"features.0"``, ``"lstm"``), or
            None for every submodule (the model itself excluded); those a forward pass does
            not call are simply absent from :attr:`outputs`.
        to_cpu: move each output to the CPU as it is recorded.

    Raises:
        ShrinkageError: a name that is not a submodule (with the close names).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> with ActivationRecorder(model, ["1"]) as recorder:
        ...     _ = model(torch.ones(5, 3))
        >>> tuple(recorder.outputs["1"].shape), len(model[1]._forward_hooks)
        ((5, 4), 0)
    """

    def __init__(
        self, model: Any, modules: Iterable[str] | None = None, *, to_cpu: bool = True
    ) -> None:
        from torch import nn

        if not isinstance(model, nn.Module):
            raise ShrinkageError(
                f"The 'model' parameter must be a torch nn.Module. Got {type(model).__name__} "
                "instead."
            )
        named = dict(model.named_modules())
        if modules is None:
            chosen = [name for name in named if name]
        else:
            chosen = [modules] if isinstance(modules, str) else list(modules)
            for name in chosen:
                if name not in named or not name:
                    names = [n for n in named if n]
                    raise ShrinkageError(
                        f"The 'modules' entry {name!r} is not a submodule of "
                        f"{type(model).__name__}; submodules are: {', '.join(names)}."
                        f"{did_you_mean(name, names)}"
                    )
        self.model = model
        self.names = chosen
        self.to_cpu = to_cpu
        self.outputs: dict[str, Any] = {}
        self.modules: dict[str, Any] = {name: named[name] for name in chosen}
        self._handles = [named[name].register_forward_hook(self._hook(name)) for name in chosen]

    def _hook(self, name: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            tensor = _first_tensor(output)
            if tensor is not None:
                tensor = tensor.detach()
                self.outputs[name] = tensor.cpu() if self.to_cpu else tensor

        return hook

    def remove(self) -> None:
        """Remove every hook (the outputs recorded so far stay in :attr:`outputs`)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> ActivationRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _as_module_input(model: Any, inputs: Any) -> tuple[Any, Any]:
    """``(module, inputs)``: an estimator's network and its preprocessed rows, or as given."""
    import torch

    network = getattr(model, "model_", None)
    if network is not None and hasattr(model, "_features"):
        return network, model._features(inputs)
    if isinstance(inputs, np.ndarray):
        inputs = torch.as_tensor(inputs)
    return model, inputs


def activations(
    model: Any,
    inputs: Any,
    modules: Iterable[str] | None = None,
    *,
    eval_mode: bool = True,
) -> dict[str, Any]:
    """The outputs of named submodules of any model for a batch: ``{name: tensor}``.

    Runs ``model(inputs)`` once without gradients (in eval mode by default: dropout off,
    batch norm on its running statistics; the model's mode is restored after) through an
    :class:`ActivationRecorder`, whose hooks are removed before returning.

    Args:
        model: any ``nn.Module``, or a fitted estimator (its network, on its preprocessed
            rows).
        inputs: the batch: a tensor (or a tuple of tensors, passed as separate
            arguments), a NumPy array, or for an estimator its raw rows.
        modules: names from ``model.named_modules()``; None: every submodule that runs.
        eval_mode: run in eval mode.

    Returns:
        ``{module name: its output}`` (detached, on the CPU), in the order of ``modules``
        (or of ``named_modules()``); a tuple output gives its first tensor.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
        >>> out = activations(cnn, torch.randn(8, 1, 4, 4), ["1", "3"])
        >>> {name: tuple(t.shape) for name, t in out.items()}
        {'1': (8, 4, 2, 2), '3': (8, 2)}
    """
    import torch

    module, batch = _as_module_input(model, inputs)
    recorder = ActivationRecorder(module, modules)
    training = [m.training for m in module.modules()]
    try:
        if eval_mode:
            module.eval()
        with torch.no_grad():
            module(*batch) if isinstance(batch, tuple) else module(batch)
    finally:
        recorder.remove()
        for m, mode in zip(module.modules(), training):
            m.training = mode
    return {name: recorder.outputs[name] for name in recorder.names if name in recorder.outputs}


def _unit_axis(module: Any, output: Any) -> int:
    """Where a module's units are: the channels (axis 1) of an image-like output (4-D, 5-D,
    or the 3-D output of a ``*1d`` module); otherwise the last axis (features of a Linear,
    hidden units of an LSTM or a transformer)."""
    if output.ndim >= 4 or (output.ndim == 3 and type(module).__name__.endswith("1d")):
        return 1
    return output.ndim - 1


def activation_table(
    model: Any,
    inputs: Any,
    modules: Iterable[str] | None = None,
    *,
    eval_mode: bool = True,
) -> Any:
    """A summary of :func:`activations`: one row per submodule that ran.

    Units are the channels of an image-like output (4-D and 5-D, and the 3-D output of a
    ``*1d`` module) and the last axis otherwise; a unit is *dead* on this batch when it is
    exactly 0 everywhere (for a ReLU: its input was never positive, so no gradient reaches
    the weights before it).

    Args:
        model: any ``nn.Module`` or a fitted estimator.
        inputs: the batch (see :func:`activations`).
        modules: names from ``model.named_modules()``; None: every submodule that runs.
        eval_mode: run in eval mode.

    Returns:
        A pandas DataFrame with the columns ``module``, ``type``, ``shape``, ``mean``,
        ``std``, ``min``, ``max``, ``fraction_zero``, ``fraction_active`` (> 0), ``units``,
        ``dead_units``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, -1]]))
        ...     _ = model[0].bias.zero_()
        >>> activation_table(model, torch.ones(4, 2), ["1"])[["module", "units", "dead_units"]]
          module  units  dead_units
        0      1      3           1
    """
    import pandas as pd

    module = model.model_ if hasattr(model, "_features") else model
    outputs = activations(model, inputs, modules, eval_mode=eval_mode)
    named = dict(module.named_modules())
    rows = []
    for name, out in outputs.items():
        values = out.detach().double()
        axis = _unit_axis(named[name], values) if values.ndim else 0
        units = int(values.shape[axis]) if values.ndim else 1
        if values.ndim:
            per_unit = values.movedim(axis, 0).reshape(units, -1)
            dead = int((per_unit == 0).all(dim=1).sum()) if per_unit.numel() else 0
        else:
            dead = int(values.item() == 0)
        n = values.numel()
        rows.append(
            {
                "module": name,
                "type": type(named[name]).__name__,
                "shape": tuple(values.shape),
                "mean": float(values.mean()) if n else math.nan,
                "std": float(values.std()) if n > 1 else math.nan,
                "min": float(values.min()) if n else math.nan,
                "max": float(values.max()) if n else math.nan,
                "fraction_zero": float((values == 0).double().mean()) if n else math.nan,
                "fraction_active": float((values > 0).double().mean()) if n else math.nan,
                "units": units,
                "dead_units": dead,
            }
        )
    return pd.DataFrame(rows)


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
