"""Fused convolutions: K candidates' ``Conv1d``/``Conv2d`` as one batched matrix product.

One ``F.conv2d`` with ``groups = K`` over channel-stacked inputs is the textbook horizontal
fusion, but on a CPU oneDNN's grouped kernels are slow for a few channels per group, and
the ``(K, B)`` -> ``(B, K)`` permutes around it cost as much again (measured 2.2-3.7x slower
than this on the first layer of ``examples/cnn_digits.py``). Here a convolution is
*im2col + one batched GEMM over the candidates*:

* columns: the windows of candidate ``k``'s rows, one strided copy;
* ``y_k = [cols_k, 1] @ [W_k, b_k]^T``, whose memory order is ``(K, B, Ho, Wo, Cout)``: the
  output is channels-last for free (a logical ``(N, Cout, Ho, Wo)`` tensor), and a later
  convolution reads its windows with runs along the channels;
* backward: ``dW_k`` by one batched GEMM accumulated into the flat gradient buffer, ``db``
  a sum, and ``dx`` (only when needed) a GEMM and a ``kh * kw``-term col2im.

Grouped user convolutions (``groups > 1``) run as one grouped ``F.conv2d`` with
``groups = K * groups`` (autograd).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.autograd import Function
from torch.nn import functional as F

from shrinkage.search.engine._fused_layers import _Fused, converter

if TYPE_CHECKING:
    from shrinkage.search.engine._fused import FusedStack

#: ``((kh, kw), (sh, sw), (ph, pw), (dh, dw))``
Geometry = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]


def _tuple(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (int(value),) * n


def _im2col(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    geom: Geometry,
    channels_last_out: bool,
    ws: Callable[[str, tuple[int, ...]], Tensor],
) -> tuple[Tensor, Tensor, Tensor, tuple]:
    """The forward product; returns ``(y, columns, kernel matrix, layout)``.

    The bias is a column of the kernel matrix and the columns carry a 1 for it: the
    product adds it (a broadcast add of the bias would be one more pass over the output),
    and its gradient falls out of the weight gradient's product.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geom
    k, cout, c = w.shape[:3]
    n, _, h, wd = x.shape
    bsz = n // k
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rows, depth = bsz * ho * wo, c * kh * kw
    extra = 0 if b is None else 1
    nhwc = c > 1 and x.permute(0, 2, 3, 1).is_contiguous()
    if nhwc:
        # rows (K, B*L, kh*kw*C [+1]): runs along the channels; the kernel is permuted (small)
        xc = x.permute(0, 2, 3, 1)
        if ph or pw:
            xp = ws("pad", (n, h + 2 * ph, wd + 2 * pw, c))
            _zero_border(xp, (ph, pw), 1)
            xp[:, ph : ph + h, pw : pw + wd].copy_(xc)
        else:
            xp = xc
        hp, wp = xp.shape[1:3]
        windows = xp.as_strided(
            (n, ho, wo, kh, kw, c),
            (hp * wp * c, sh * wp * c, sw * c, dh * wp * c, dw * c, 1),
        )
        a = ws("cols", (k, rows, depth + extra))
        a[..., :depth].view(n, ho, wo, kh, kw, c).copy_(windows)
        wm = w.permute(0, 1, 3, 4, 2).reshape(k, cout, depth)
        if b is not None:
            a[..., depth] = 1.0
    else:
        # columns (K, C*kh*kw [+1], B*L): one strided copy, runs along the image's rows
        xc = x.contiguous()
        if ph or pw:
            xp = ws("pad", (n, c, h + 2 * ph, wd + 2 * pw))
            _zero_border(xp, (ph, pw), 2)
            xp[:, :, ph : ph + h, pw : pw + wd].copy_(xc)
        else:
            xp = xc
        hp, wp = xp.shape[2:]
        windows = xp.as_strided(
            (k, c, kh, kw, bsz, ho, wo),
            (bsz * c * hp * wp, hp * wp, dh * wp, dw, c * hp * wp, sh * wp, sw),
        )
        cols = ws("cols", (k, depth + extra, rows))
        cols[:, :depth].view(k, c, kh, kw, bsz, ho, wo).copy_(windows)
        if b is not None:
            cols[:, depth] = 1.0
        a = cols.transpose(1, 2)
        wm = w.reshape(k, cout, depth)
    if b is not None:
        wm = torch.cat([wm, b.unsqueeze(2)], dim=2)
    y = torch.bmm(a, wm.transpose(1, 2)).view(n, ho, wo, cout).permute(0, 3, 1, 2)
    if not channels_last_out:
        y = y.contiguous()
    return y, a, wm, (nhwc, (n, c, h, wd), (ho, wo), (hp, wp))


def _zero_border(xp: Tensor, pad: tuple[int, int], dim: int) -> None:
    """Zero the padding frame of a reused buffer (dims ``dim``, ``dim + 1`` are H, W)."""
    ph, pw = pad
    hp, wp = xp.shape[dim], xp.shape[dim + 1]
    for d, p, size in ((dim, ph, hp), (dim + 1, pw, wp)):
        if p:
            xp.narrow(d, 0, p).zero_()
            xp.narrow(d, size - p, p).zero_()


class _ConvFn(Function):
    """2-D convolution of K candidates: ``x (K*B, C, H, W)``, ``w (K, Cout, C, kh, kw)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w: Tensor,
        b: Tensor | None,
        gw: Tensor,
        gb: Tensor | None,
        geom: Geometry,
        channels_last_out: bool,
        ws: Callable[[str, tuple[int, ...]], Tensor],
    ) -> Tensor:
        y, a, wm, layout = _im2col(x, w, b, geom, channels_last_out, ws)
        ctx.save_for_backward(a, wm)
        ctx.layout, ctx.geom, ctx.gw, ctx.gb = layout, geom, gw, gb
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        a, wm = ctx.saved_tensors
        nhwc, (n, c, h, wd), (ho, wo), (hp, wp) = ctx.layout
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = ctx.geom
        k, cout = wm.shape[:2]
        depth = c * kh * kw
        gv = g.permute(0, 2, 3, 1).contiguous().view(k, -1, cout)  # (K, B*L, Cout)
        # dW^T = cols^T g (K, depth [+1], Cout), added transposed: MKL is several times
        # faster on this orientation than on g^T cols for these shapes (a small output).
        dwt = torch.bmm(a.transpose(1, 2), gv)
        if nhwc:
            ctx.gw.add_(dwt[:, :depth].view(k, kh, kw, c, cout).permute(0, 4, 3, 1, 2))
        else:
            ctx.gw.view(k, cout, depth).add_(dwt[:, :depth].transpose(1, 2))
        if ctx.gb is not None:
            ctx.gb.add_(dwt[:, depth])
        dx = None
        if ctx.needs_input_grad[0]:
            dcols = torch.bmm(gv, wm[:, :, :depth])  # (K, B*L, kk*C), the order of `a`
            if nhwc:
                d6 = dcols.view(n, ho, wo, kh, kw, c)
                dxp = gv.new_zeros(n, hp, wp, c)
                for i in range(kh):
                    for j in range(kw):
                        rows_h = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                        cols_w = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                        dxp[:, rows_h, cols_w] += d6[:, :, :, i, j]
                dx = dxp[:, ph : ph + h, pw : pw + wd].permute(0, 3, 1, 2)
            else:
                d6 = dcols.view(k, -1, ho, wo, c, kh, kw)
                dxp = gv.new_zeros(k, d6.shape[1], c, hp, wp)
                for i in range(kh):
                    for j in range(kw):
                        rows_h = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                        cols_w = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                        dxp[:, :, :, rows_h, cols_w] += d6[..., i, j].permute(0, 1, 4, 2, 3)
                dx = dxp.view(n, c, hp, wp)[:, :, ph : ph + h, pw : pw + wd]
        return dx, None, None, None, None, None, None, None


class FusedConv(_Fused):
    """``nn.Conv1d`` / ``nn.Conv2d`` of K candidates (a 1-d convolution is a 2-d one of
    height 1): im2col + batched GEMM, or one grouped convolution for ``groups > 1``."""

    def __init__(self, src: nn.Conv1d | nn.Conv2d, stack: FusedStack) -> None:
        super().__init__(src, stack)
        dims = 1 if isinstance(src, nn.Conv1d) else 2
        self.dims = dims
        self.groups = src.groups
        self.padding_mode = src.padding_mode
        self._w, self._b = self._param(src.weight), self._param(src.bias)
        ks, st, dl = (_tuple(v, dims) for v in (src.kernel_size, src.stride, src.dilation))
        if isinstance(src.padding, str):  # 'valid', or 'same' (stride 1; extra on the right)
            total = [0] * dims if src.padding == "valid" else [d * (k - 1) for d, k in zip(dl, ks)]
            sides = [(t // 2, t - t // 2) for t in total]
        else:
            sides = [(p, p) for p in _tuple(src.padding, dims)]
        if src.padding_mode == "zeros" and all(a == b for a, b in sides):
            pad, self._prepad = tuple(a for a, _ in sides), None
        else:  # F.pad first: reflect / replicate / circular, or an asymmetric 'same'
            pad = (0,) * dims
            self._prepad = [p for pair in reversed(sides) for p in pair]
        if dims == 1:
            ks, st, pad, dl = (1, *ks), (1, *st), (0, *pad), (1, *dl)
        self.geom: Geometry = (ks, st, pad, dl)  # type: ignore[assignment]

    def forward(self, x: Tensor) -> Tensor:
        s = self.stack
        w, b = self._leaf(self._w), self._leaf(self._b)
        assert w is not None
        if self._prepad is not None:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, self._prepad, mode=mode)
        if self.dims == 1:
            x, w = x.unsqueeze(2), w.unsqueeze(3)
        if self.groups > 1:
            y = _grouped(s.k, x, w, b, self.geom, self.groups)
        elif torch.is_grad_enabled():
            gw = self._grad(self._w)
            assert gw is not None
            gw = gw.unsqueeze(3) if self.dims == 1 else gw
            ws = s.scratch(id(self))
            y = _ConvFn.apply(x, w, b, gw, self._grad(self._b), self.geom, s.channels_last, ws)
        else:
            y = _im2col(x, w, b, self.geom, s.channels_last, s.scratch(id(self)))[0]
        return y.squeeze(2) if self.dims == 1 else y


def _grouped(k: int, x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry, groups: int) -> Tensor:
    """One ``F.conv2d`` with ``groups = K * groups`` on the ``(B, K*C, H, W)`` layout."""
    ks, st, pad, dl = geom
    n, c, h, wd = x.shape
    bsz = n // k
    xb = x.reshape(k, bsz, c, h, wd).transpose(0, 1).reshape(bsz, k * c, h, wd)
    wg = w.reshape(k * w.shape[1], *w.shape[2:])
    y = F.conv2d(xb, wg, None if b is None else b.reshape(-1), st, pad, dl, k * groups)
    cout = w.shape[1]
    return y.view(bsz, k, cout, *y.shape[2:]).transpose(0, 1).reshape(n, cout, *y.shape[2:])


@converter(nn.Conv1d, nn.Conv2d)
def _convert_conv(m: nn.Conv1d | nn.Conv2d, stack: FusedStack) -> nn.Module:
    return FusedConv(m, stack)
