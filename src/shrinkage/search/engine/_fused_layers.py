"""Fused layers: one module computes a layer of all K candidates at once (horizontal fusion).

The layout contract of :class:`~shrinkage.search.engine._fused.FusedStack`: the tensors that
flow through the user's forward are the K candidates' minibatches *folded into the batch
dimension*, candidate-major (row ``k * B + b``), so every per-sample operation the user
writes (activations, pooling, ``flatten``, ``out[:, -1]``, residual adds) is automatically
per candidate. A fused layer splits the folded dimension back into ``(K, B)`` and applies
candidate ``k``'s parameters to candidate ``k``'s rows.

Layers with a matrix product are ``torch.autograd.Function`` s with a hand-written backward
that *accumulates* the weight gradients straight into the stack's flat gradient buffer
(``baddbmm_`` with ``beta=1``, ``index_add_``) and returns no gradient for the parameter:
no AccumulateGrad pass, no transposed copy, and tied weights and the loss-mode penalty add
up correctly. Norms use autograd on the stack's leaves (their ``.grad`` *is* the flat
gradient view).

This file holds the base class, the converter registry, Linear, Embedding, the norms and
dropout; convolutions, recurrent layers and attention have their own files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.autograd import Function
from torch.nn import functional as F

from shrinkage.errors import ShrinkageError

if TYPE_CHECKING:
    from shrinkage.search.engine._fused import FusedStack


class Unsupported(ShrinkageError):
    """The module has a part the fused stack cannot compute faithfully (the engine falls
    back to ``torch.func``, then to the loop, and says why)."""


# --------------------------------------------------------------------------- base, registry


class _Fused(nn.Module):
    """Base of the fused layers: no parameters of their own, the stack owns them.

    A fused layer keeps the *indices* of its parameters in the stack (``stack.tensors[i]``),
    so the views it reads stay right when the stack is rebuilt (candidates leaving).
    """

    def __init__(self, src: nn.Module, stack: FusedStack) -> None:
        super().__init__()
        object.__setattr__(self, "stack", stack)  # not a submodule, not in a state_dict
        #: the module type it replaces, e.g. ``"Conv2d"``
        self.kind = type(src).__name__

    def _param(self, p: Tensor | None) -> int | None:
        return None if p is None else self.stack.param_index(p)

    def _leaf(self, i: int | None) -> Tensor | None:
        return None if i is None else self.stack._leaves[i]

    def _grad(self, i: int | None) -> Tensor | None:
        return None if i is None else self.stack.grads[i]

    def _copy_config(self, src: nn.Module, names: Sequence[str]) -> None:
        for name in names:
            if hasattr(src, name):
                object.__setattr__(self, name, getattr(src, name))


#: exact module type -> ``(module, stack) -> fused module``
CONVERTERS: dict[type, Callable[[Any, Any], nn.Module]] = {}


def converter(*types: type) -> Callable[[Callable], Callable]:
    """Register a function ``(module, stack) -> fused module`` for exact module types."""

    def register(fn: Callable) -> Callable:
        for t in types:
            CONVERTERS[t] = fn
        return fn

    return register


# Monotone activations that commute with a max-pool exactly: the same values, and the
# gradient reaches the same element (a window whose max is <= 0 gets 0 through ReLU either
# way). Strictly increasing ones other than these can tie after rounding (sigmoid saturates).
def _commutes_with_max(act: nn.Module) -> bool:
    return type(act) is nn.ReLU or (type(act) is nn.LeakyReLU and act.negative_slope >= 0)


class _PooledActivation(nn.Module):
    """An activation moved behind the max-pool it preceded, applied in place (the pooled
    tensor is fresh, and max-pool's backward only needs its indices)."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        if type(self.act) is nn.ReLU:
            return torch.relu_(x)
        return F.leaky_relu_(x, self.act.negative_slope)


def _pool_before_activation(seq: nn.Sequential) -> None:
    """In an ``nn.Sequential``, [ReLU, MaxPool] -> [MaxPool, ReLU]: the activation and its
    backward then run on the pooled tensor (4x fewer elements for a 2x2 pool)."""
    items = list(seq._modules.items())
    for i in range(len(items) - 1):
        (name_a, a), (name_b, b) = items[i], items[i + 1]
        if (
            a is not None
            and _commutes_with_max(a)
            and isinstance(b, nn.MaxPool1d | nn.MaxPool2d)
            and not b.return_indices
        ):
            seq._modules[name_a], seq._modules[name_b] = b, _PooledActivation(a)
            items[i], items[i + 1] = (name_a, b), (name_b, seq._modules[name_b])


def fuse_tree(module: nn.Module, stack: FusedStack, prefix: str = "") -> nn.Module:
    """Replace every module of the tree that has a fused form (:data:`CONVERTERS`, exact
    type) by it; keep modules without parameters or buffers (activations, pooling,
    containers, the user's own modules) and walk into them.

    Raises:
        Unsupported: a module that holds parameters or buffers itself and has no fused form
            (its forward would read them directly).
    """
    if type(module) is nn.Sequential:
        _pool_before_activation(module)
    convert = CONVERTERS.get(type(module))
    if convert is not None:
        return convert(module, stack)
    own = [n for n, _ in module.named_parameters(recurse=False)]
    own += [n for n, _ in module.named_buffers(recurse=False)]
    if own:
        raise Unsupported(
            f"module '{prefix.rstrip('.') or '<root>'}' ({type(module).__name__}) holds "
            f"{', '.join(own)} and has no fused form"
        )
    for name, child in list(module.named_children()):
        module._modules[name] = fuse_tree(child, stack, f"{prefix}{name}.")
    return module


def split_dim(x: Tensor, d: int, k: int) -> Tensor:
    """``x`` with its folded dimension ``d`` split into ``(K, rows per candidate)``."""
    return x.view(*x.shape[:d], k, x.shape[d] // k, *x.shape[d + 1 :])


# --------------------------------------------------------------------------- Linear


class _LinearFn(Function):
    """``y_k = x_k W_k^T + b_k``: ``x (K, M, in)``, ``W (K, out, in)``, ``b (K, out)``."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, w: Tensor, b: Tensor | None, gw: Tensor, gb: Tensor | None
    ) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.gw, ctx.gb = gw, gb
        return linear_nograd(x, w, b)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        x, w = ctx.saved_tensors
        g = g.contiguous()
        ctx.gw.baddbmm_(g.transpose(1, 2), x)
        if ctx.gb is not None:
            ctx.gb.add_(g.sum(1))
        dx = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
        return dx, None, None, None, None


def linear_nograd(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """``x (K, M, in) -> (K, M, out)`` without a graph."""
    if b is None:
        return torch.bmm(x, w.transpose(1, 2))
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def linear(
    stack: FusedStack, x: Tensor, w: int, b: int | None, *, folded: int | None = None
) -> Tensor:
    """Each candidate's linear map on the last dimension of ``x`` (folded batch anywhere).

    ``w`` and ``b`` are parameter indices in the stack; ``folded`` forces the dimension of
    the folded batch (else :meth:`FusedStack.batch_dim`).
    """
    k = stack.k
    d = stack.batch_dim(x, trailing=1) if folded is None else folded
    xm = x if d == 0 else x.movedim(d, 0)
    xv = xm.reshape(k, -1, x.shape[-1])
    weight, bias = stack._leaves[w], None if b is None else stack._leaves[b]
    if torch.is_grad_enabled():
        gb = None if b is None else stack.grads[b]
        y = _LinearFn.apply(xv, weight, bias, stack.grads[w], gb)
    else:
        y = linear_nograd(xv, weight, bias)
    y = y.view(*xm.shape[:-1], weight.shape[1])
    return y if d == 0 else y.movedim(0, d)


class FusedLinear(_Fused):
    """``nn.Linear`` of K candidates: one batched matrix product."""

    def __init__(self, src: nn.Linear, stack: FusedStack) -> None:
        super().__init__(src, stack)
        self._copy_config(src, ("in_features", "out_features"))
        self._w, self._b = self._param(src.weight), self._param(src.bias)

    def forward(self, x: Tensor) -> Tensor:
        assert self._w is not None
        return linear(self.stack, x, self._w, self._b)


@converter(nn.Linear, nn.modules.linear.NonDynamicallyQuantizableLinear)
def _convert_linear(m: nn.Linear, stack: FusedStack) -> nn.Module:
    return FusedLinear(m, stack)


# --------------------------------------------------------------------------- Embedding


class _EmbeddingFn(Function):
    """Rows of the ``(K * num, D)`` table; the backward adds into the flat gradient."""

    @staticmethod
    def forward(ctx: Any, flat: Tensor, w: Tensor, gw: Tensor, padding_idx: int | None) -> Tensor:
        k, num, d = w.shape
        ctx.save_for_backward(flat)
        ctx.gw, ctx.pad = gw, padding_idx
        return w.view(k * num, d).index_select(0, flat.reshape(-1)).view(*flat.shape, d)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[None, None, None, None]:
        (flat,) = ctx.saved_tensors
        k, num, d = ctx.gw.shape
        g = g.reshape(-1, d)
        if ctx.pad is not None:  # nn.Embedding never updates its padding row
            g = g * (flat.reshape(-1) % num != ctx.pad).unsqueeze(1).to(g.dtype)
        ctx.gw.view(k * num, d).index_add_(0, flat.reshape(-1), g)
        return None, None, None, None


class FusedEmbedding(_Fused):
    """``nn.Embedding`` of K candidates: one table of ``K * num`` rows, candidate ``k``'s
    indices offset by ``k * num``."""

    def __init__(self, src: nn.Embedding, stack: FusedStack) -> None:
        super().__init__(src, stack)
        if src.sparse or src.scale_grad_by_freq:
            raise Unsupported(
                "Embedding(sparse=True) and Embedding(scale_grad_by_freq=True) have no fused form."
            )
        self._copy_config(
            src, ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type")
        )
        self._w = self._param(src.weight)

    def forward(self, idx: Tensor) -> Tensor:
        s = self.stack
        w = self._leaf(self._w)
        assert w is not None
        k, num, d = w.shape
        dim = s.batch_dim(idx)
        offsets = torch.arange(k, device=idx.device) * num
        split = split_dim(idx, dim, k)
        shape = (1,) * dim + (k,) + (1,) * (split.dim() - dim - 1)
        flat = (split + offsets.view(shape)).view(idx.shape)
        if self.max_norm is not None:
            with torch.no_grad():
                torch.embedding_renorm_(
                    w.detach().view(k * num, d), flat.reshape(-1), self.max_norm, self.norm_type
                )
        if torch.is_grad_enabled():
            return _EmbeddingFn.apply(flat, w, self._grad(self._w), self.padding_idx)
        return w.view(k * num, d).index_select(0, flat.reshape(-1)).view(*idx.shape, d)


@converter(nn.Embedding)
def _convert_embedding(m: nn.Embedding, stack: FusedStack) -> nn.Module:
    return FusedEmbedding(m, stack)


# --------------------------------------------------------------------------- norms


def _affine(
    stack: FusedStack, y: Tensor, w: Tensor | None, b: Tensor | None, channels: bool
) -> Tensor:
    """``y * w_k + b_k`` per candidate. ``channels``: ``w`` is ``(K, C)`` along dim 1 of a
    batch-first ``y`` (BatchNorm, GroupNorm); else ``w`` has ``y``'s trailing shape
    (LayerNorm) and the folded batch is found by :meth:`FusedStack.batch_dim`."""
    if w is None and b is None:
        return y
    k = stack.k
    p = w if w is not None else b
    assert p is not None
    if channels:
        ys = y.reshape(k, y.shape[0] // k, y.shape[1], -1)
        shape: tuple[int, ...] = (k, 1, -1, 1)
    else:
        trailing = p.dim() - 1
        d = stack.batch_dim(y, trailing=trailing)
        ys = split_dim(y, d, k)
        middle = ys.dim() - d - 2 - trailing
        shape = (*(1,) * d, k, 1, *(1,) * middle, *p.shape[1:])
    wb = None if w is None else w.view(shape)
    bb = None if b is None else b.view(shape)
    if wb is not None and bb is not None:
        out = torch.addcmul(bb, ys, wb)
    elif wb is not None:
        out = ys * wb
    else:
        out = ys + bb
    return out.view(y.shape) if out.is_contiguous() else out.reshape(y.shape)


class FusedLayerNorm(_Fused):
    """``nn.LayerNorm``: the normalization is per row already; the affine is per candidate."""

    def __init__(self, src: nn.LayerNorm, stack: FusedStack) -> None:
        super().__init__(src, stack)
        self._copy_config(src, ("normalized_shape", "eps", "elementwise_affine"))
        self._w, self._b = self._param(src.weight), self._param(getattr(src, "bias", None))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x, self.normalized_shape, None, None, self.eps)
        return _affine(self.stack, y, self._leaf(self._w), self._leaf(self._b), False)


class FusedGroupNorm(_Fused):
    """``nn.GroupNorm``: per-row statistics; the affine is per candidate."""

    def __init__(self, src: nn.GroupNorm, stack: FusedStack) -> None:
        super().__init__(src, stack)
        self._copy_config(src, ("num_groups", "num_channels", "eps", "affine"))
        self._w, self._b = self._param(src.weight), self._param(src.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = F.group_norm(x, self.num_groups, None, None, self.eps)
        return _affine(self.stack, y, self._leaf(self._w), self._leaf(self._b), True)


class FusedBatchNorm(_Fused):
    """``nn.BatchNorm1d/2d/3d``: statistics per (candidate, channel) over the candidate's
    *real* rows (padding excluded when the forward gets row weights), running statistics
    per candidate in the stack's buffers, updated only for candidates with a batch."""

    def __init__(self, src: nn.modules.batchnorm._BatchNorm, stack: FusedStack) -> None:
        super().__init__(src, stack)
        self._copy_config(src, ("num_features", "eps", "momentum", "affine", "track_running_stats"))
        self._w, self._b = self._param(src.weight), self._param(src.bias)
        index = stack.buffer_index
        self._mean = None if src.running_mean is None else index(src.running_mean)
        self._var = None if src.running_var is None else index(src.running_var)
        tracked = getattr(src, "num_batches_tracked", None)
        self._count = None if tracked is None else index(tracked)

    def forward(self, x: Tensor) -> Tensor:
        s = self.stack
        k = s.k
        n, c = x.shape[:2]
        xv = x.reshape(k, n // k, c, -1)
        mean_buf = None if self._mean is None else s.buffers[self._mean]
        var_buf = None if self._var is None else s.buffers[self._var]
        if self.training or mean_buf is None:
            mask = s.row_mask() if self.training else None
            if mask is not None and mask.shape[1] != xv.shape[1]:
                raise Unsupported(
                    f"BatchNorm got {n} rows for {k} candidates of {mask.shape[1]}: the folded "
                    "batch was reshaped before it."
                )
            if mask is None:
                count = torch.full((k, 1), float(xv.shape[1] * xv.shape[3]), device=x.device)
                mean = xv.mean(dim=(1, 3), keepdim=True)
                var = (xv - mean).square().mean(dim=(1, 3), keepdim=True)
            else:
                m = mask.view(k, -1, 1, 1)
                per = m.sum(1, keepdim=True) * xv.shape[3]
                mean = (xv * m).sum(dim=(1, 3), keepdim=True) / per.clamp_min(1)
                var = ((xv - mean).square() * m).sum(dim=(1, 3), keepdim=True) / per.clamp_min(1)
                count = per.view(k, 1)
            if self.training and mean_buf is not None and var_buf is not None:
                self._update_running(mean.detach().view(k, c), var.detach().view(k, c), count)
        else:
            assert var_buf is not None
            mean = mean_buf.view(k, 1, c, 1)
            var = var_buf.view(k, 1, c, 1)
        y = ((xv - mean) * torch.rsqrt(var + self.eps)).view(x.shape)
        return _affine(s, y, self._leaf(self._w), self._leaf(self._b), True)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        s = self.stack
        k = s.k
        active = s.active()  # (K,) 1.0 for candidates with rows in this step, or None
        if self._count is not None:
            tracked = s.buffers[self._count]
            tracked.add_(1 if active is None else active.to(tracked.dtype))
        if self.momentum is None:  # cumulative moving average
            assert self._count is not None
            factor = 1.0 / s.buffers[self._count].to(mean.dtype).clamp_min(1).view(k, 1)
        else:
            factor = torch.full((k, 1), float(self.momentum), device=mean.device)
        if active is not None:
            factor = factor * active.view(k, 1)
        unbiased = var * (count / (count - 1).clamp_min(1))
        s.buffers[self._mean].lerp_(mean, factor)
        s.buffers[self._var].lerp_(unbiased, factor)


@converter(nn.LayerNorm)
def _convert_layer_norm(m: nn.LayerNorm, stack: FusedStack) -> nn.Module:
    return FusedLayerNorm(m, stack)


@converter(nn.GroupNorm)
def _convert_group_norm(m: nn.GroupNorm, stack: FusedStack) -> nn.Module:
    return FusedGroupNorm(m, stack)


@converter(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def _convert_batch_norm(m: nn.modules.batchnorm._BatchNorm, stack: FusedStack) -> nn.Module:
    return FusedBatchNorm(m, stack)


# --------------------------------------------------------------------------- dropout


def dropout(stack: FusedStack, x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with each candidate's own stream, as its single model draws it.

    ``F.dropout`` draws ``bernoulli(1 - p)`` over the whole tensor in its memory order from
    the global RNG. Candidate ``k`` draws from its own generator, over its *real* rows only
    (padding would shift the stream), in contiguous order, so its masks are the masks of
    the same model trained alone with the same dropout seed.
    """
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    k = stack.k
    d = stack.batch_dim(x)
    per = x.shape[d] // k
    rows = stack.rows()
    width = stack.width
    mask = x.new_zeros(split_dim(x, d, k).shape)
    for c, gen in enumerate(stack.dropout_generators):
        real = per if rows is None else rows[c] * (per // width)
        if real:
            shape = list(x.shape)
            shape[d] = real
            drawn = x.new_empty(shape).bernoulli_(1.0 - p, generator=gen)
            mask.select(d, c).narrow(d, 0, real).copy_(drawn)
    return x * mask.div_(1.0 - p).view(x.shape)


class FusedDropout(_Fused):
    """``nn.Dropout`` with per-candidate random streams (see :func:`dropout`)."""

    def __init__(self, src: nn.Dropout, stack: FusedStack) -> None:
        super().__init__(src, stack)
        self.p = float(src.p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(self.stack, x, self.p, self.training)


@converter(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
def _convert_dropout(m: nn.Module, stack: FusedStack) -> nn.Module:
    if type(m) is not nn.Dropout and m.p > 0:
        raise Unsupported(f"{type(m).__name__}(p={m.p}) has no fused form.")
    return FusedDropout(m, stack)
