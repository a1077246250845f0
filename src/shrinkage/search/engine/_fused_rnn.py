"""Fused recurrent layers: K candidates' ``nn.LSTM`` / ``nn.GRU`` in one shared time loop.

``torch.func`` cannot batch ``nn.LSTM`` (no batching rule for ``aten::lstm``), so without
this a recurrent network could only be searched one candidate at a time. Here each layer
(and direction) of K candidates is one ``torch.autograd.Function``:

* layout "candidate, feature, time, batch": the gate buffer of step ``t`` is one
  contiguous ``(K, 4H, B)`` block, so the elementwise ops of a step run on contiguous
  memory, and the products of a step are batched matrix products over the K candidates;
* LSTM, one product per step: ``[W_hh | W_ih | b] (K, 4H, H+In+1) @ [h; x_t; 1]`` (the bias
  is a column of the kernel: no broadcast add, and its gradient falls out of the weight
  gradient's product). Gates are kept in the order (o, i, f, g) so one sigmoid covers
  o, i, f, and ``tanh(z) = 2 sigmoid(2z) - 1`` (one sigmoid covers g too: the g rows of the
  kernel are doubled, exactly, and the cell state is kept doubled). ``torch.tanh`` is several
  times slower than ``torch.sigmoid`` on a CPU;
* backward by hand: the time-independent factors of every step at once, then per step
  six elementwise ops and one product for ``dh``; the weight gradients of all steps are
  one product ``dP (K, 4H, T*B) @ [h; x; 1]^T``, accumulated into the flat gradient.

With the optional compiled kernel (:mod:`shrinkage.search.engine._lstm_ext`) the whole
time loop is C++: register-tiled products with the cell computed on their rows, in the
layout "candidate, time, batch, feature" and torch's own gate order (i, f, g, o), so the
kernel matrix is one transposed copy of the parameters and the gradients add straight back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.autograd import Function

from shrinkage.search.engine import _lstm_ext
from shrinkage.search.engine._fused_layers import Unsupported, _Fused, converter, dropout

if TYPE_CHECKING:
    from shrinkage.search.engine._fused import FusedStack

# torch's gate order (i, f, g, o) -> the internal order (o, i, f, g)
_LSTM_ORDER = [3, 0, 1, 2]


def _lstm_kernel(w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """``[W_hh | W_ih | b_ih + b_hh]`` ``(K, 4H, H+In+1)`` in the internal gate order."""
    k, rows, n_in = w_ih.shape
    h = rows // 4
    bias = (b_ih + b_hh).unsqueeze(2) if b_ih is not None else w_ih.new_zeros(k, rows, 1)
    w = torch.cat([w_hh, w_ih, bias], dim=2).view(k, 4, h, h + n_in + 1)[:, _LSTM_ORDER]
    return w.reshape(k, rows, h + n_in + 1)


_NEG1 = torch.tensor(-1.0)
_NEG2 = torch.tensor(-2.0)

#: ``(key, shape) -> buffer``: where a layer keeps its big per-step tensors
Scratch = Callable[[str, tuple[int, ...]], Tensor]


def _lstm_forward(
    x: Tensor, h0: Tensor, c0: Tensor, w: Tensor, ws: Scratch
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Eager time loop. ``x (K, B, T, In)``, ``h0``/``c0`` ``(K, B, H)``, ``w`` the kernel.

    Returns the output ``(K, B, T, H)`` and, for the backward pass, ``HX (T+1, K, H+In+1,
    B)`` (column ``t``: ``[h_{t-1}; x_t; 1]``), the activated gates ``G (T, K, 4H, B)`` as
    (o, i, f, 2g), the doubled cell states ``C2 (T+1, K, H, B)`` and ``TC = tanh(c_t)``.
    """
    k, bsz, steps, n_in = x.shape
    h = h0.shape[2]
    w2 = w.clone()
    w2[:, 3 * h :].mul_(2.0)  # sigmoid(2 z_g): tanh(z_g) = 2 sigmoid(2 z_g) - 1
    hx = ws("hx", (steps + 1, k, h + n_in + 1, bsz))
    hx[:steps, :, h : h + n_in] = x.permute(2, 0, 3, 1)
    hx[steps, :, h : h + n_in] = 0.0
    hx[:, :, h + n_in] = 1.0
    hx[0, :, :h] = h0.transpose(1, 2)
    gates = ws("g", (steps, k, 4 * h, bsz))
    c2 = ws("c", (steps + 1, k, h, bsz))
    torch.mul(c0.transpose(1, 2), 2.0, out=c2[0])
    tc = ws("tc", (steps, k, h, bsz))
    neg1, neg2 = _NEG1.to(x.device), _NEG2.to(x.device)
    for t in range(steps):
        g = gates[t]
        torch.bmm(w2, hx[t], out=g)
        g.sigmoid_()
        g2 = g[:, 3 * h :]
        torch.add(neg2, g2, alpha=4.0, out=g2)  # 2 tanh(z_g)
        c = c2[t + 1]
        torch.mul(g[:, 2 * h : 3 * h], c2[t], out=c)  # f * 2c
        c.addcmul_(g[:, h : 2 * h], g2)  # + i * 2g
        th = tc[t]
        torch.sigmoid(c, out=th)
        torch.add(neg1, th, alpha=2.0, out=th)  # tanh(c) = 2 sigmoid(2c) - 1
        torch.mul(g[:, :h], th, out=hx[t + 1, :, :h])  # h = o * tanh(c)
    out = hx[1:, :, :h].permute(1, 3, 0, 2).contiguous()
    return out, hx, gates, c2, tc


def _lstm_backward(
    dout: Tensor | None,
    dc_last: Tensor | None,
    w: Tensor,
    hx: Tensor,
    gates: Tensor,
    c2: Tensor,
    tc: Tensor,
    ws: Scratch,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Eager backward through time: ``(dW (K, 4H, H+In+1), dP (T, K, 4H, B), dh0, dc0)``
    (states ``(K, H, B)``) for the output gradient ``dout (K, B, T, H)`` and that of ``c_T``."""
    steps, k, h, bsz = tc.shape
    o, i, f, g2 = (gates[:, :, j * h : (j + 1) * h] for j in range(4))
    # the time-independent factors, all steps at once
    p_o = torch.ops.aten.sigmoid_backward(tc, o)  # d pre_o = dh * p_o
    q = torch.ops.aten.tanh_backward(o, tc)  # dc += dh * q
    g = g2 * 0.5
    r_i = torch.ops.aten.sigmoid_backward(g, i)  # d pre_i = dc * r_i
    r_f = torch.ops.aten.sigmoid_backward(c2[:-1], f).mul_(0.5)  # c2 is 2c
    r_g = torch.ops.aten.tanh_backward(i, g)
    dp = ws("dp", tuple(gates.shape))
    d_out = None if dout is None else dout.permute(2, 0, 3, 1).contiguous()  # (T, K, H, B)
    dc = hx.new_zeros(k, h, bsz) if dc_last is None else dc_last.transpose(1, 2).contiguous()
    dh = hx.new_zeros(k, h, bsz) if d_out is None else d_out[steps - 1]
    w_hh_t = w[:, :, :h].transpose(1, 2).contiguous()
    dwt = hx.new_zeros(k, w.shape[2], 4 * h)  # transposed: the faster product here
    for t in range(steps - 1, -1, -1):
        dpt = dp[t]
        dc = torch.addcmul(dc, dh, q[t])
        torch.mul(dh, p_o[t], out=dpt[:, :h])
        torch.mul(dc, r_i[t], out=dpt[:, h : 2 * h])
        torch.mul(dc, r_f[t], out=dpt[:, 2 * h : 3 * h])
        torch.mul(dc, r_g[t], out=dpt[:, 3 * h :])
        dc = dc * f[t]
        dwt.baddbmm_(hx[t], dpt.transpose(1, 2))
        if d_out is None or t == 0:
            dh = torch.bmm(w_hh_t, dpt)
        else:
            dh = torch.baddbmm(d_out[t - 1], w_hh_t, dpt)
    return dwt.transpose(1, 2), dp, dh.transpose(1, 2), dc.transpose(1, 2)


def _lstm_compiled_forward(
    compiled: Any,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    leaves: list[Tensor | None],
    ws: Scratch,
    keep: bool,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """The compiled time loop (``_lstm_ext``), layout "candidate, time, batch, feature",
    torch's gate order (i, f, g, o). Returns ``out (K, B, T, H)``, ``HXT (K, T+1, B,
    H+In+1)``, the activated gates ``G (K, T, B, 4H)`` (when ``keep``: a backward follows)
    and the cell states ``C (K, T+1, B, H)``."""
    k, bsz, steps, n_in = x.shape
    h = h0.shape[2]
    hxt = ws("hx", (k, steps + 1, bsz, h + n_in + 1))
    gates = ws("g", (k, steps, bsz, 4 * h)) if keep else None
    c = ws("c", (k, steps + 1, bsz, h))
    out = x.new_empty(k, bsz, steps, h)  # the module's output: never a scratch view
    compiled.forward(x, h0, c0, leaves, hxt, gates, c, out)
    return out, hxt, gates, c


class _LSTMLayerFn(Function):
    """One LSTM layer (one direction) of K candidates.

    Inputs: ``x (K, B, T, In)``, ``h0``/``c0`` ``(K, B, H)``, the four ``(K, ...)`` leaves,
    their gradient views, and the scratch buffers. Outputs: ``out (K, B, T, H)``, ``c_T (K, B, H)``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        grads: tuple[Tensor | None, ...],
        ws: Scratch,
    ) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        compiled = _lstm_ext.kernel(x)
        if compiled is not None:
            leaves = [w_ih, w_hh, b_ih, b_hh]
            out, hx, gates, c = _lstm_compiled_forward(compiled, x, h0, c0, leaves, ws, True)
            c_last = c[:, -1].clone()
            ctx.save_for_backward(w_ih, w_hh, hx, gates, c)
        else:
            w = _lstm_kernel(w_ih, w_hh, b_ih, b_hh)
            out, hx, gates, c, tc = _lstm_forward(x, h0, c0, w, ws)
            c_last = (c[-1] * 0.5).transpose(1, 2)
            ctx.save_for_backward(w, hx, gates, c, tc)
        ctx.grads, ctx.has_bias, ctx.compiled, ctx.ws = grads, b_ih is not None, compiled, ws
        return out, c_last

    @staticmethod
    def backward(ctx: Any, dout: Tensor | None, dc_last: Tensor | None) -> tuple:
        if ctx.compiled is not None:
            dx, dh0, dc0 = _compiled_backward(ctx, dout, dc_last)
        else:
            dx, dh0, dc0 = _eager_backward(ctx, dout, dc_last)
        dh = dh0 if ctx.needs_input_grad[1] else None
        dc = dc0 if ctx.needs_input_grad[2] else None
        return dx, dh, dc, None, None, None, None, None, None


def _compiled_backward(
    ctx: Any, dout: Tensor | None, dc_last: Tensor | None
) -> tuple[Tensor | None, Tensor, Tensor]:
    """``(dx, dh0, dc0)``; the kernel adds the weight gradients into the flat gradient."""
    w_ih, w_hh, hx, gates, c = ctx.saved_tensors
    k, steps, bsz, rows = gates.shape
    n_in = w_ih.shape[2]
    # dP (K, T, B, 4H) when the input gradient needs it; else one candidate's, reused
    dp = ctx.ws("dp", (k if ctx.needs_input_grad[0] else 1, steps, bsz, rows))
    dh0, dc0 = ctx.compiled.backward(dout, dc_last, w_hh, (hx, gates, c), dp, ctx.grads)
    dx = None
    if ctx.needs_input_grad[0]:
        dx = torch.bmm(dp.view(k, -1, rows), w_ih).view(k, steps, bsz, n_in).transpose(1, 2)
    return dx, dh0, dc0


def _eager_backward(
    ctx: Any, dout: Tensor | None, dc_last: Tensor | None
) -> tuple[Tensor | None, Tensor, Tensor]:
    """``(dx, dh0, dc0)``; adds the weight gradients (from the internal gate order) into
    the flat gradient."""
    w, hx, gates, c, tc = ctx.saved_tensors
    k, rows, width = w.shape
    h = rows // 4
    n_in = width - h - 1
    dw, dp, dh0, dc0 = _lstm_backward(dout, dc_last, w, hx, gates, c, tc, ctx.ws)
    gw_ih, gw_hh, gb_ih, gb_hh = ctx.grads
    order = torch.tensor(_LSTM_ORDER, device=dw.device)
    dw = dw.reshape(k, 4, h, width)
    gw_hh.view(k, 4, h, h).index_add_(1, order, dw[..., :h])
    gw_ih.view(k, 4, h, n_in).index_add_(1, order, dw[..., h : h + n_in])
    if ctx.has_bias:
        db = dw[..., h + n_in]
        gb_ih.view(k, 4, h).index_add_(1, order, db)
        gb_hh.view(k, 4, h).index_add_(1, order, db)
    dx = None
    if ctx.needs_input_grad[0]:  # dp (T, K, 4H, B)
        w_x = w[:, :, h : h + n_in]  # (K, 4H, In)
        dx = torch.matmul(w_x.transpose(1, 2), dp).permute(1, 3, 0, 2)
    return dx, dh0, dc0


def _lstm_layer(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    leaves: list[Tensor | None],
    grads: tuple[Tensor | None, ...],
    ws: Scratch,
) -> tuple[Tensor, Tensor]:
    """``(out (K, B, T, H), c_T (K, B, H))`` of one layer, with or without a graph."""
    if torch.is_grad_enabled():
        return _LSTMLayerFn.apply(x, h0, c0, *leaves, grads, ws)
    compiled = _lstm_ext.kernel(x)
    if compiled is not None:
        out, _, _, c = _lstm_compiled_forward(compiled, x, h0, c0, leaves, ws, False)
        return out, c[:, -1]  # a scratch view: FusedRNN stacks the layers' c_T (a copy)
    w = _lstm_kernel(*leaves)  # type: ignore[arg-type]
    out, _, _, c, _ = _lstm_forward(x, h0, c0, w, ws)
    return out, (c[-1] * 0.5).transpose(1, 2)


# --------------------------------------------------------------------------- GRU


def _gru_forward(
    x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Eager GRU time loop (torch's gate order r, z, n). ``x (K, B, T, In)``, ``h0 (K, B, H)``.

    Returns ``X (K, In, T*B)``, ``HS (K, H, T+1, B)`` (``HS[:, :, 0] = h0``), the
    activated gates ``A (T, K, 3H, B)`` and the recurrent products ``GH (T, K, 3H, B)``
    (``W_hh h + b_hh``).
    """
    k, bsz, steps, n_in = x.shape
    h = w_hh.shape[2]
    xs = x.permute(0, 3, 2, 1).reshape(k, n_in, steps * bsz)
    if b_ih is None:
        xg = torch.bmm(w_ih, xs)
    else:
        xg = torch.baddbmm(b_ih.unsqueeze(2), w_ih, xs)
    xg = xg.view(k, 3 * h, steps, bsz)
    hs = x.new_empty(k, h, steps + 1, bsz)
    hs[:, :, 0] = h0.transpose(1, 2)
    gh_all = x.new_empty(steps, k, 3 * h, bsz)
    act = x.new_empty(steps, k, 3 * h, bsz)
    bias = None if b_hh is None else b_hh.unsqueeze(2).expand(k, 3 * h, bsz)
    for t in range(steps):
        gh = gh_all[t]
        if bias is None:
            torch.bmm(w_hh, hs[:, :, t], out=gh)
        else:
            torch.baddbmm(bias, w_hh, hs[:, :, t], out=gh)
        a = act[t]
        torch.add(xg[:, : 2 * h, t], gh[:, : 2 * h], out=a[:, : 2 * h]).sigmoid_()
        n = a[:, 2 * h :]
        torch.addcmul(xg[:, 2 * h :, t], a[:, :h], gh[:, 2 * h :], out=n).tanh_()
        ht = hs[:, :, t + 1]
        torch.sub(hs[:, :, t], n, out=ht)
        ht.mul_(a[:, h : 2 * h]).add_(n)  # h' = n + z (h - n) = (1 - z) n + z h
    return xs, hs, act, gh_all


class _GRULayerFn(Function):
    """One GRU layer (one direction) of K candidates: ``x (K, B, T, In)``, ``h0 (K, B, H)``
    -> ``out (K, B, T, H)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h0: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        grads: tuple[Tensor | None, ...],
    ) -> Tensor:
        ctx.set_materialize_grads(False)
        xs, hs, act, gh = _gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(xs, hs, w_ih, w_hh, act, gh)
        ctx.grads, ctx.has_bias = grads, b_ih is not None
        return hs[:, :, 1:].permute(0, 3, 2, 1).contiguous()

    @staticmethod
    def backward(ctx: Any, dout: Tensor | None) -> tuple:
        xs, hs, w_ih, w_hh, act, gh = ctx.saved_tensors
        steps, k, h3, bsz = act.shape
        h, n_in = h3 // 3, xs.shape[1]
        r, z, n = (act[:, :, j * h : (j + 1) * h] for j in range(3))
        hn = gh[:, :, 2 * h :]
        h_prev = hs[:, :, :steps].permute(2, 0, 1, 3)  # (T, K, H, B)
        # d n_pre = dh a1, d z_pre = dh (h - n) z (1 - z), d r_pre = dh a1 hn r (1 - r)
        a1 = torch.ops.aten.tanh_backward(1 - z, n)
        fx = xs.new_empty(steps, k, 3 * h, bsz)
        torch.mul(a1, torch.ops.aten.sigmoid_backward(hn, r), out=fx[:, :, :h])
        torch.ops.aten.sigmoid_backward.grad_input(h_prev - n, z, grad_input=fx[:, :, h : 2 * h])
        fx[:, :, 2 * h :] = a1
        fh = fx.clone()
        fh[:, :, 2 * h :].mul_(r)  # d hn = d n_pre * r
        d_xg = xs.new_empty(k, 3 * h, steps, bsz)
        d_gh = xs.new_empty(k, 3 * h, steps, bsz)
        dh = xs.new_zeros(k, h, bsz) if dout is None else dout[:, :, steps - 1].transpose(1, 2)
        w_hh_t = w_hh.transpose(1, 2).contiguous()
        for t in range(steps - 1, -1, -1):
            dh3 = dh.unsqueeze(1)
            torch.mul(dh3, fx[t].view(k, 3, h, bsz), out=d_xg[:, :, t].view(k, 3, h, bsz))
            torch.mul(dh3, fh[t].view(k, 3, h, bsz), out=d_gh[:, :, t].view(k, 3, h, bsz))
            if dout is None or t == 0:
                nxt = dh * z[t]
            else:
                nxt = torch.addcmul(dout[:, :, t - 1].transpose(1, 2), dh, z[t])
            dh = nxt.baddbmm_(w_hh_t, d_gh[:, :, t])
        gw_ih, gw_hh, gb_ih, gb_hh = ctx.grads
        d_xg2, d_gh2 = d_xg.view(k, 3 * h, -1), d_gh.view(k, 3 * h, -1)
        gw_ih.baddbmm_(d_xg2, xs.transpose(1, 2))
        gw_hh.baddbmm_(d_gh2, hs[:, :, :steps].flatten(2).transpose(1, 2))
        if ctx.has_bias:
            gb_ih.add_(d_xg2.sum(2))
            gb_hh.add_(d_gh2.sum(2))
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.bmm(w_ih.transpose(1, 2), d_xg2).view(k, n_in, steps, bsz)
            dx = dx.permute(0, 3, 2, 1)
        dh0 = dh.transpose(1, 2) if ctx.needs_input_grad[1] else None
        return dx, dh0, None, None, None, None, None


def _gru_layer(
    x: Tensor, h0: Tensor, leaves: list[Tensor | None], grads: tuple[Tensor | None, ...]
) -> Tensor:
    if torch.is_grad_enabled():
        return _GRULayerFn.apply(x, h0, *leaves, grads)
    _, hs, _, _ = _gru_forward(x, h0, *leaves)  # type: ignore[arg-type]
    return hs[:, :, 1:].permute(0, 3, 2, 1).contiguous()


# --------------------------------------------------------------------------- the module


class FusedRNN(_Fused):
    """``nn.LSTM`` / ``nn.GRU`` of K candidates: any number of layers, bidirectional,
    ``batch_first`` either way, initial states, inter-layer dropout (per-candidate
    streams), and the ``h_n`` (``c_n``) outputs."""

    def __init__(self, src: nn.LSTM | nn.GRU, stack: FusedStack) -> None:
        super().__init__(src, stack)
        if getattr(src, "proj_size", 0):
            raise Unsupported("LSTM(proj_size > 0) has no fused form.")
        self.lstm = isinstance(src, nn.LSTM)
        self._copy_config(
            src,
            ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout"),
        )
        self.directions = 2 if src.bidirectional else 1
        self._params: list[list[int | None]] = []
        for layer in range(src.num_layers):
            for d in range(self.directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                self._params.append(
                    [
                        self._param(getattr(src, f"{name}{suffix}", None))
                        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                    ]
                )

    def forward(
        self, x: Tensor, hx: Tensor | tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        if isinstance(x, nn.utils.rnn.PackedSequence):
            raise Unsupported("A PackedSequence input has no fused form.")
        s = self.stack
        k, h, nd = s.k, self.hidden_size, self.directions
        if x.dim() != 3:
            raise Unsupported(f"Unbatched {type(self).__name__} input {tuple(x.shape)}.")
        if self.batch_first:
            n, steps = x.shape[:2]
            xk = x.reshape(k, n // k, steps, x.shape[-1])
        else:
            steps, n = x.shape[:2]
            xk = x.reshape(steps, k, n // k, x.shape[-1]).permute(1, 2, 0, 3)
        bsz = n // k
        states = self.num_layers * nd
        if hx is None:
            h0 = xk.new_zeros(states, k, bsz, h)
            c0 = h0
        elif self.lstm:
            assert isinstance(hx, tuple)
            h0, c0 = (t.reshape(states, k, bsz, h) for t in hx)
        else:
            assert isinstance(hx, Tensor)
            h0 = c0 = hx.reshape(states, k, bsz, h)
        h_n, c_n = [], []
        layer_in = xk
        for layer in range(self.num_layers):
            outs = []
            for d in range(nd):
                index = layer * nd + d
                leaves = [self._leaf(i) for i in self._params[index]]
                grads = tuple(self._grad(i) for i in self._params[index])
                inputs = layer_in.flip(2) if d else layer_in
                if self.lstm:
                    ws = s.scratch((id(self), index))
                    out, c_last = _lstm_layer(inputs, h0[index], c0[index], leaves, grads, ws)
                    c_n.append(c_last)
                else:
                    out = _gru_layer(inputs, h0[index], leaves, grads)
                h_n.append(out[:, :, -1])
                outs.append(out.flip(2) if d else out)
            layer_in = outs[0] if nd == 1 else torch.cat(outs, dim=3)
            if self.dropout and layer < self.num_layers - 1 and self.training:
                flat = layer_in.reshape(n, steps, -1)
                layer_in = dropout(s, flat, self.dropout, True).view(layer_in.shape)
        if self.batch_first:
            out = layer_in.reshape(n, steps, nd * h)
        else:
            out = layer_in.permute(2, 0, 1, 3).reshape(steps, n, nd * h)
        hn = torch.stack(h_n).view(states, n, h)
        if self.lstm:
            return out, (hn, torch.stack(c_n).view(states, n, h))
        return out, hn


@converter(nn.LSTM, nn.GRU)
def _convert_rnn(m: nn.LSTM | nn.GRU, stack: FusedStack) -> nn.Module:
    return FusedRNN(m, stack)
