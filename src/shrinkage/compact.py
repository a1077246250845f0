"""Turn structured sparsity into a smaller network: remove the units that are exactly zero.

Group lasso in proximal mode (``GroupLasso(s, groups="rows")``, ``mode="proximal"``)
sets whole rows of a weight to exact zeros: a neuron of a Linear layer, a filter of a
convolution. Such a unit no longer depends on its input: it outputs the constant
``act(bias)``. :func:`compact` deletes it together with the matching inputs of the next
layer (columns of a Linear weight, input channels of a convolution, the block of
flattened features of a channel after ``nn.Flatten``) and folds the constant it sent
into the next layer's bias, so the smaller model computes the same function: predictions
equal the original's up to float rounding (the tests hold them to ``atol=1e-6``). A unit
whose outgoing weights are all zero (group lasso on ``groups="columns"`` of the next
layer) is removed as well: whatever it computes, nothing reads it.

Supported structures (anything else is refused with a :class:`ShrinkageError` naming the
module): an ``nn.Sequential`` (nested ones are looked through) or a
:class:`shrinkage.models.MLP`, whose consecutive ``Linear`` / ``Conv1d`` / ``Conv2d`` /
``Conv3d`` layers are separated only by

* elementwise modules (ReLU, GELU, Tanh, Sigmoid, ... ; dropout; ``Identity``),
* ``BatchNorm1d/2d/3d`` (sliced with the channels),
* pooling that keeps channels apart (max, average, adaptive),
* one ``nn.Flatten()`` between the last convolution and the first Linear layer.

Modules before the first layer and after the last one are kept as they are; the input
features of the first layer and the outputs of the last one are never removed. Equality
holds in evaluation mode (dropout off, batch norm on its running statistics).

A removed unit's constant cannot be folded exactly where the next convolution pads with
zeros (its border outputs see part of the constant) or where average pooling counts
padding; such a unit is kept unless its constant is exactly zero (ReLU of a negative
bias) or nothing reads it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from shrinkage.errors import ShrinkageError
from shrinkage.models import MLP

__all__ = ["compact", "dead_units"]

_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_DROPOUT: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.Identity,
)
_ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.LogSigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Tanhshrink,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Threshold,
)
_NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_MAX_POOLS: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)
_AVG_POOLS: tuple[type[nn.Module], ...] = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ALLOWED = "elementwise activations, dropout, BatchNorm, max/average pooling, nn.Flatten()"


def dead_units(model: nn.Module) -> dict[str, Tensor]:
    """The all-zero rows of every Linear and convolution weight of ``model``.

    A row is one unit's incoming weights (an output neuron, a conv filter); a zero row
    makes the unit output the constant ``act(bias)``. Works on any module.

    Args:
        model: any ``nn.Module``.

    Returns:
        ``{module name: bool tensor of shape (units,)}``, ``True`` where the row is zero.

    Example:
        >>> layer = nn.Linear(2, 3)
        >>> with torch.no_grad():
        ...     layer.weight[1] = 0
        >>> dead_units(nn.Sequential(layer))["0"].tolist()
        [False, True, False]
    """
    return {
        name: _zero_rows(module.weight)
        for name, module in model.named_modules()
        if isinstance(module, _LAYERS) and _initialized(module)
    }


def compact(model: nn.Module) -> nn.Module:
    """A smaller copy of ``model`` without its dead units, computing the same function.

    For consecutive layers ``A -> (elementwise, norm, pool, flatten) -> B``, unit ``c`` of
    ``A`` is removed when its weight row is zero and its constant output ``k_c`` (the
    modules in between applied to ``bias_c``) can be folded, ``bias_B += k_c * S_B[:, c]``
    with ``S_B[:, c]`` the sum of ``B``'s weights that read ``c``; or when those weights are
    all zero. Its row of ``A``, its entries of the norm layer and its inputs of ``B`` go.
    Layers are processed first to last, so a unit that only read removed units is found.
    A layer whose units would all go keeps one (with zero outgoing weights).

    Args:
        model: an ``nn.Sequential`` chain or a :class:`~shrinkage.models.MLP` (see the
            module docstring for what may sit between layers). It is not modified.

    Returns:
        A new module of the same kind (an ``MLP`` stays an ``MLP``) with fewer units, in
        the same training mode; in evaluation mode its outputs equal ``model``'s.

    Raises:
        ShrinkageError: an unsupported model or module, naming it.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> with torch.no_grad():
        ...     net[0].weight[1] = 0
        >>> compact(net)[0]
        Linear(in_features=4, out_features=2, bias=True)
    """
    if isinstance(model, MLP):
        if type(model).forward is not MLP.forward:
            raise ShrinkageError(
                f"compact() supports nn.Sequential and shrinkage.models.MLP; "
                f"{type(model).__name__} overrides forward(). Got {type(model).__name__}."
            )
        return _compact_mlp(model)
    if isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward:
        return _compact_sequential(model)
    raise ShrinkageError(
        "The 'model' parameter of compact() must be an nn.Sequential chain or a "
        f"shrinkage.models.MLP. Got {type(model).__name__} instead."
    )


# --- containers ---------------------------------------------------------------------------


def _leaves(seq: nn.Sequential, prefix: str = "") -> list[tuple[str, nn.Module]]:
    out = []
    for name, child in seq.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential) and type(child).forward is nn.Sequential.forward:
            out.extend(_leaves(child, path + "."))
        else:
            out.append((path, child))
    return out


def _compact_sequential(model: nn.Sequential) -> nn.Sequential:
    new = copy.deepcopy(model)
    names, modules = zip(*_leaves(new)) if len(new) else ((), ())
    modules = _compact_chain(list(names), list(modules))
    for name, module in zip(names, modules):
        parent, _, leaf = name.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, leaf, module)
    return new.train(model.training)


def _compact_mlp(model: MLP) -> MLP:
    names: list[str] = []
    modules: list[nn.Module] = []
    for i, layer in enumerate(model.layers):
        if i:
            names.append("activation")
            modules.append(model.activation)
        names.append(f"layers.{i}")
        modules.append(copy.deepcopy(layer))
    layers = [m for m in _compact_chain(names, modules) if isinstance(m, nn.Linear)]
    hidden = [layer.out_features for layer in layers[:-1]]
    new = MLP(model.sizes[0], hidden, model.sizes[-1], model.activation_name)
    new.to(device=model.layers[0].weight.device, dtype=model.layers[0].weight.dtype)
    with torch.no_grad():
        for target, source in zip(new.layers, layers):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    return new.train(model.training)


# --- one chain ----------------------------------------------------------------------------


@dataclass
class _Link:
    """How the units of one layer reach the next layer."""

    columns: Tensor  # (C, s): the input indices of the next layer that read unit c
    order: str  # "channel" (flattened conv maps) or "feature" (flattened Linear outputs)
    exact_constants: bool  # a constant unit stays a constant map up to the next layer
    prunable: bool  # False for grouped convolutions


def _initialized(module: nn.Module) -> bool:
    return not isinstance(module.weight, nn.parameter.UninitializedParameter)


def _zero_rows(weight: Tensor) -> Tensor:
    return (weight.detach() == 0).reshape(weight.shape[0], -1).all(dim=1)


def _units(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _zero_padding(conv: nn.Module) -> bool:
    """Whether the convolution pads with zeros (a constant input map is not constant there)."""
    if conv.padding_mode != "zeros":
        return False
    if isinstance(conv.padding, str):
        return conv.padding == "same" and any(
            (k - 1) * d for k, d in zip(conv.kernel_size, conv.dilation)
        )
    return any(conv.padding)


def _link(names: list[str], modules: list[nn.Module], a: int, b: int) -> _Link:
    first, second = modules[a], modules[b]
    units = _units(first)
    flatten = False
    exact = True
    for index in range(a + 1, b):
        module, name = modules[index], names[index]
        if isinstance(module, nn.Flatten):
            if flatten or (module.start_dim, module.end_dim) != (1, -1):
                raise ShrinkageError(
                    f"compact() supports one nn.Flatten() (start_dim=1, end_dim=-1) between "
                    f"layers; got {module!r} at '{name}'."
                )
            flatten = True
        elif isinstance(module, _ELEMENTWISE + _DROPOUT):
            continue
        elif flatten:
            raise ShrinkageError(
                f"compact() allows only elementwise modules after nn.Flatten(); "
                f"got {type(module).__name__} at '{name}'."
            )
        elif isinstance(module, _NORMS):
            if module.num_features != units:
                raise ShrinkageError(
                    f"compact(): {type(module).__name__} at '{name}' has num_features="
                    f"{module.num_features}, but '{names[a]}' has {units} units."
                )
        elif isinstance(module, _MAX_POOLS + _AVG_POOLS) and not isinstance(first, nn.Linear):
            if isinstance(module, _AVG_POOLS) and (
                module.divisor_override is not None
                or module.count_include_pad
                and any(torch.as_tensor(module.padding).reshape(-1).tolist())
            ):
                exact = False
        else:
            raise ShrinkageError(
                f"compact() cannot remove units through {type(module).__name__} at '{name}' "
                f"(between '{names[a]}' and '{names[b]}'); allowed between layers: {_ALLOWED}."
            )
    if isinstance(second, nn.Linear):
        if not isinstance(first, nn.Linear) and not flatten:
            raise ShrinkageError(
                f"compact() needs an nn.Flatten() between {type(first).__name__} '{names[a]}' "
                f"and Linear '{names[b]}'."
            )
        width = second.in_features
        if width % units:
            raise ShrinkageError(
                f"compact(): Linear '{names[b]}' has in_features={width}, not a multiple of "
                f"the {units} units of '{names[a]}'."
            )
        span = width // units
        if isinstance(first, nn.Linear):
            # A Linear layer's features are the last dimension: flattening (N, T, C) gives
            # index t * C + c, so unit c is read at every C-th input.
            columns = torch.arange(width).reshape(span, units).T
            return _Link(columns, "feature", exact, True)
        columns = torch.arange(width).reshape(units, span)
        return _Link(columns, "channel", exact, first.groups == 1)
    if type(first) is not type(second) or flatten:
        raise ShrinkageError(
            f"compact() cannot connect {type(first).__name__} '{names[a]}' to "
            f"{type(second).__name__} '{names[b]}'; supported: Linear -> Linear, "
            "ConvNd -> ConvNd, ConvNd -> Flatten -> Linear."
        )
    if second.in_channels != units:
        raise ShrinkageError(
            f"compact(): '{names[b]}' has in_channels={second.in_channels}, but '{names[a]}' "
            f"has {units} filters."
        )
    exact = exact and not _zero_padding(second)
    columns = torch.arange(units).reshape(units, 1)
    return _Link(columns, "channel", exact, first.groups == 1 and second.groups == 1)


def _constants(modules: list[nn.Module], a: int, b: int) -> Tensor:
    """Each unit's output at the next layer's input when its weight row is zero."""
    first = modules[a]
    units = _units(first)
    spatial = 0 if isinstance(first, nn.Linear) else len(first.kernel_size)
    if first.bias is None:
        x = torch.zeros(units, dtype=first.weight.dtype, device=first.weight.device)
    else:
        x = first.bias.detach().clone()
    x = x.reshape((1, units) + (1,) * spatial)
    with torch.no_grad():
        for module in modules[a + 1 : b]:
            if isinstance(module, _DROPOUT + _MAX_POOLS + _AVG_POOLS):
                continue  # identity on a constant map in evaluation mode
            if isinstance(module, _NORMS) and module.running_mean is None:
                # Batch statistics of a constant channel: mean = the constant, variance 0.
                beta = module.bias.detach() if module.affine else torch.zeros_like(x)
                x = beta.reshape(x.shape).clone()
                continue
            x = copy.deepcopy(module).eval()(x)
    return x.reshape(units)


def _compact_chain(names: list[str], modules: list[nn.Module]) -> list[nn.Module]:
    layers = [i for i, m in enumerate(modules) if isinstance(m, _LAYERS)]
    for index in layers:
        if not _initialized(modules[index]):
            raise ShrinkageError(
                f"compact() needs initialized layers; '{names[index]}' is a lazy module that "
                "has not seen an input yet."
            )
    modules = list(modules)
    for a, b in zip(layers, layers[1:]):
        link = _link(names, modules, a, b)
        if link.prunable:
            _prune(modules, a, b, link)
    return modules


@torch.no_grad()
def _prune(modules: list[nn.Module], a: int, b: int, link: _Link) -> None:
    first, second = modules[a], modules[b]
    weight = second.weight.detach()
    units = _units(first)
    reads = weight[:, link.columns.reshape(-1)].reshape(weight.shape[0], units, -1)
    unread = (reads == 0).all(dim=2).all(dim=0)
    constant = _zero_rows(first.weight)
    values = _constants(modules, a, b)
    foldable = constant & ((values == 0) | link.exact_constants)
    remove = unread | foldable
    if not bool(remove.any()):
        return
    keep = (~remove).nonzero().reshape(-1)
    silent = keep.numel() == 0
    if silent:
        # A layer of zero width is not an ordinary torch layer: keep one unit, unread.
        keep = keep.new_zeros(1)
    # Sum of the next layer's weights that read each unit, times the unit's constant.
    sums = reads.double().sum(dim=2)
    folded = foldable.nonzero().reshape(-1)
    shift = sums[:, folded] @ values[folded].double()
    if isinstance(second, nn.Linear):
        kept = link.columns[keep]
        new_weight = weight[:, kept.reshape(-1) if link.order == "channel" else kept.T.reshape(-1)]
    else:
        new_weight = weight[:, keep]
    if silent:
        new_weight = torch.zeros_like(new_weight)
    bias = second.bias
    if bias is not None or bool((shift != 0).any()):
        base = bias.detach().double() if bias is not None else torch.zeros_like(shift)
        new_bias = (base + shift).to(weight.dtype)
    else:
        new_bias = None
    modules[b] = _rebuild(second, new_weight, new_bias)
    first_bias = None if first.bias is None else first.bias.detach()[keep]
    modules[a] = _rebuild(first, first.weight.detach()[keep], first_bias)
    for index in range(a + 1, b):
        if isinstance(modules[index], _NORMS):
            modules[index] = _slice_norm(modules[index], keep)


def _rebuild(like: nn.Module, weight: Tensor, bias: Tensor | None) -> nn.Module:
    """A fresh layer of ``like``'s kind and settings with the given weight and bias."""
    factory = {"device": weight.device, "dtype": weight.dtype}
    if isinstance(like, nn.Linear):
        layer: nn.Module = nn.Linear(weight.shape[1], weight.shape[0], bias is not None, **factory)
    else:
        layer = type(like)(
            weight.shape[1] * like.groups,
            weight.shape[0],
            like.kernel_size,
            stride=like.stride,
            padding=like.padding,
            dilation=like.dilation,
            groups=like.groups,
            bias=bias is not None,
            padding_mode=like.padding_mode,
            **factory,
        )
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer.train(like.training)


def _slice_norm(norm: nn.Module, keep: Tensor) -> nn.Module:
    new = copy.deepcopy(norm)
    new.num_features = int(keep.numel())
    with torch.no_grad():
        for name in ("weight", "bias"):
            param = getattr(norm, name)
            if param is not None:
                setattr(new, name, nn.Parameter(param.detach()[keep].clone()))
        for name in ("running_mean", "running_var"):
            buffer = getattr(norm, name)
            if buffer is not None:
                setattr(new, name, buffer[keep].clone())
    return new
