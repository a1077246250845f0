"""The networks the estimators and the search train, and the contract they share.

The batched engine must reproduce a single model exactly (same initialization, same
minibatch order), so both sides build from the functions here:

* :class:`MLP` — ``layers.0 … layers.{L-1}`` ``nn.Linear`` modules with an activation
  between them; the last layer is the output layer.
* :func:`init_mlp_` — the initialization (torch's ``nn.Linear`` default, Keras's
  ``glorot_uniform`` or ``he_uniform``) drawn from an explicit ``torch.Generator``.
* :func:`placement_plan` — which layers a placement (``all``/``hidden``/``output`` or
  explicit layer indices) regularizes.
* :func:`epoch_batches` — the minibatch order of one epoch from a generator.
* :func:`generators` — the init and shuffle generators derived from one integer seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from shrinkage import _names
from shrinkage._names import INITS, PLACEMENTS
from shrinkage.errors import ShrinkageError, did_you_mean
from shrinkage.penalties import Penalty
from shrinkage.plan import Plan

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "MLP",
    "PLACEMENTS",
    "dropout_seed",
    "epoch_batches",
    "generators",
    "init_mlp_",
    "placement_layers",
    "placement_plan",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
assert tuple(ACTIVATIONS) == _names.ACTIVATIONS


class MLP(nn.Module):
    """A multilayer perceptron ``Linear → act → … → Linear``.

    Args:
        n_in: input features.
        hidden_layer_sizes: widths of the hidden layers (``()`` gives a linear model).
        n_out: outputs (classes for a classifier, 1 for regression).
        activation: one of :data:`ACTIVATIONS`.
    """

    def __init__(
        self,
        n_in: int,
        hidden_layer_sizes: Sequence[int],
        n_out: int,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ShrinkageError(
                f"The 'activation' parameter must be one of {', '.join(ACTIVATIONS)}. "
                f"Got {activation!r} instead.{did_you_mean(activation, ACTIVATIONS)}"
            )
        sizes = [int(n_in), *(int(h) for h in hidden_layer_sizes), int(n_out)]
        if any(s < 1 for s in sizes):
            raise ShrinkageError(
                f"The 'hidden_layer_sizes' parameter must hold positive integers. "
                f"Got {tuple(hidden_layer_sizes)!r} instead."
            )
        self.sizes = sizes
        self.activation_name = activation
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: Tensor) -> Tensor:
        """Logits (or regression outputs): the last layer has no activation."""
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def hidden(self, x: Tensor, layer: int) -> Tensor:
        """Activations of hidden layer ``layer`` (0-based), after the activation function.

        This is the sub-model ``input → hidden layer i``.
        """
        n_hidden = len(self.layers) - 1
        if not 0 <= layer < n_hidden:
            raise ShrinkageError(
                f"The 'layer' parameter must be in [0, {n_hidden}) for a network with "
                f"{n_hidden} hidden layers. Got {layer!r} instead."
            )
        for module in self.layers[: layer + 1]:
            x = self.activation(module(x))
        return x


def generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """The (initialization, shuffling) generators of a model trained with ``seed``.

    Two streams, so that changing the number of epochs never changes the initialization.
    """
    seed = int(seed)
    init = torch.Generator().manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed + 0x5EED)
    return init, shuffle


def dropout_seed(seed: int) -> int:
    """The seed of the dropout stream of a model trained with ``seed``: ``seed + 0xD809``.

    A third stream, apart from the initialization and the shuffling (so that dropout masks
    never repeat the numbers the weights were drawn from). A stacked candidate draws its
    masks from a generator with this seed; :func:`shrinkage.training.fit_model` gets the same
    masks for a single model with ``dropout_seed=dropout_seed(seed)``.

    Example:
        >>> dropout_seed(0)
        55305
    """
    return int(seed) + 0xD809


@torch.no_grad()
def init_mlp_(model: MLP, generator: torch.Generator, init: str = "torch") -> MLP:
    """Re-initialize ``model`` in place from ``generator``, layer by layer.

    * ``"torch"``: exactly as ``nn.Linear`` does: weight
      ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (kaiming-uniform with ``a = sqrt(5)``), then
      bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    * ``"glorot_uniform"``: Keras's ``Dense`` default: weight
      ``U(-sqrt(6 / (fan_in + fan_out)), +...)``, bias 0.
    * ``"he_uniform"``: weight ``U(-sqrt(6 / fan_in), +...)``, bias 0.

    Args:
        model: the network.
        generator: the random stream (its state advances).
        init: one of :data:`INITS`.

    Returns:
        ``model``.

    Raises:
        ShrinkageError: an unknown ``init``.
    """
    if init not in INITS:
        raise ShrinkageError(
            f"The 'init' parameter must be one of {', '.join(map(repr, INITS))}. "
            f"Got {init!r} instead.{did_you_mean(init, INITS)}"
        )
    for layer in model.layers:
        if init == "torch":
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
            continue
        fan_in, fan_out = layer.in_features, layer.out_features
        fans = fan_in + fan_out if init == "glorot_uniform" else fan_in
        bound = math.sqrt(6 / fans)
        nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
        nn.init.zeros_(layer.bias)
    return model


def placement_layers(n_layers: int, placement: str | Sequence[int]) -> list[int]:
    """The indices of the layers a placement regularizes.

    ``"all"``: every layer; ``"hidden"``: every layer but the output layer (for a linear
    model, which has no hidden layer, none); ``"output"``: the last layer; a sequence of
    ints: those layers.
    """
    if isinstance(placement, str):
        if placement == "all":
            return list(range(n_layers))
        if placement == "hidden":
            return list(range(n_layers - 1))
        if placement == "output":
            return [n_layers - 1]
        raise ShrinkageError(
            f"The 'placement' parameter must be one of {', '.join(PLACEMENTS)} or a list of "
            f"layer indices. Got {placement!r} instead.{did_you_mean(placement, PLACEMENTS)}"
        )
    layers = [int(i) for i in placement]
    bad = [i for i in layers if not 0 <= i < n_layers]
    if bad:
        raise ShrinkageError(
            f"The 'placement' layer indices must be in [0, {n_layers}). Got {bad!r} instead."
        )
    return sorted(set(layers))


def placement_plan(
    n_layers: int,
    penalty: Penalty | None,
    placement: str | Sequence[int] = "all",
    overrides: dict[int, Penalty | None] | None = None,
) -> Plan:
    """The plan that puts ``penalty`` on the weights of the placed layers of an :class:`MLP`.

    Args:
        n_layers: number of Linear layers (hidden layers + 1).
        penalty: the penalty for every placed layer (``None``: no regularization).
        placement: ``"all"``, ``"hidden"``, ``"output"`` or layer indices.
        overrides: per-layer penalties that replace the default (``None`` removes it).

    Returns:
        A plan with one rule per regularized layer (``layers.{i}.weight``).
    """
    chosen = {i: penalty for i in placement_layers(n_layers, placement)}
    for i, p in (overrides or {}).items():
        if not 0 <= int(i) < n_layers:
            raise ShrinkageError(
                f"The per-layer override index must be in [0, {n_layers}). Got {i!r} instead."
            )
        chosen[int(i)] = p
    return Plan([(f"layers.{i}.weight", p) for i, p in sorted(chosen.items()) if p is not None])


def epoch_batches(n_rows: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """The row indices of each minibatch of one epoch: a fresh permutation, split in order.

    The last batch may be smaller. ``batch_size >= n_rows`` gives one full batch.
    """
    order = torch.randperm(n_rows, generator=generator)
    return list(order.split(max(1, int(batch_size))))
