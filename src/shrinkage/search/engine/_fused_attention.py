"""Fused attention: K candidates' ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``.

The projections are batched matrix products over the candidates (query, key and value in
one for self-attention); the attention itself needs nothing per candidate: it runs over
the folded ``K * B`` batch, where every sequence belongs to one candidate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from shrinkage.search.engine._fused_layers import (
    Unsupported,
    _Fused,
    converter,
    fuse_tree,
    linear,
)

if TYPE_CHECKING:
    from shrinkage.search.engine._fused import FusedStack


class FusedMultiheadAttention(_Fused):
    """``nn.MultiheadAttention`` (query, key and value of one width, no ``add_bias_kv``,
    no ``add_zero_attn``). Dropout on the attention weights draws from the global RNG
    (independent masks per candidate, not the masks of a single model)."""

    def __init__(self, src: nn.MultiheadAttention, stack: FusedStack) -> None:
        super().__init__(src, stack)
        if not src._qkv_same_embed_dim or src.bias_k is not None or src.add_zero_attn:
            raise Unsupported(
                "MultiheadAttention with kdim/vdim, add_bias_kv or add_zero_attn has no fused form."
            )
        self._copy_config(src, ("embed_dim", "num_heads", "dropout", "batch_first"))
        self._w, self._b = self._param(src.in_proj_weight), self._param(src.in_proj_bias)
        self._ow, self._ob = self._param(src.out_proj.weight), self._param(src.out_proj.bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        s = self.stack
        k, e, heads = s.k, self.embed_dim, self.num_heads
        if query.dim() != 3:
            raise Unsupported(f"Unbatched attention input {tuple(query.shape)}.")
        same = query is key and key is value
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, length = query.shape[:2]
        src_len = key.shape[1]
        assert self._w is not None and self._ow is not None
        if same:
            q, kk, v = linear(s, query, self._w, self._b, folded=0).split(e, dim=-1)
        else:
            w = self._leaf(self._w)
            b = self._leaf(self._b)
            assert w is not None
            ws = w.split(e, dim=1)
            bs = b.split(e, dim=1) if b is not None else (None, None, None)
            projected = []
            for t, wt, bt in zip((query, key, value), ws, bs):
                tv = t.reshape(k, -1, e)
                out = (
                    tv @ wt.transpose(1, 2)
                    if bt is None
                    else torch.baddbmm(bt.unsqueeze(1), tv, wt.transpose(1, 2))
                )
                projected.append(out.view(n, -1, e))
            q, kk, v = projected
        q = q.reshape(n, length, heads, -1).transpose(1, 2)
        kk = kk.reshape(n, src_len, heads, -1).transpose(1, 2)
        v = v.reshape(n, src_len, heads, -1).transpose(1, 2)
        key_padding_mask = F._canonical_mask(
            mask=key_padding_mask,
            mask_name="key_padding_mask",
            other_type=F._none_or_dtype(attn_mask),
            other_name="attn_mask",
            target_type=q.dtype,
        )
        attn_mask = F._canonical_mask(
            mask=attn_mask,
            mask_name="attn_mask",
            other_type=None,
            other_name="",
            target_type=q.dtype,
            check_other=False,
        )
        mask = None
        if attn_mask is not None:
            if attn_mask.dim() == 2:
                mask = attn_mask.view(1, 1, length, src_len)
            else:
                mask = attn_mask.view(n, heads, length, src_len)
        if key_padding_mask is not None:
            kpm = key_padding_mask.view(n, 1, 1, src_len)
            mask = kpm if mask is None else mask + kpm
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = q @ kk.transpose(-2, -1) / math.sqrt(q.shape[-1])
            if mask is not None:
                scores = scores + mask
            elif is_causal:
                causal = torch.ones(length, src_len, dtype=torch.bool, device=q.device).triu(1)
                scores = scores.masked_fill(causal, float("-inf"))
            weights = scores.softmax(-1)
            o = (F.dropout(weights, p, True) if p > 0 else weights) @ v
        else:
            o = F.scaled_dot_product_attention(
                q, kk, v, attn_mask=mask, dropout_p=p, is_causal=is_causal and mask is None
            )
        o = o.transpose(1, 2).reshape(n, length, e)
        o = linear(s, o, self._ow, self._ob, folded=0)
        if not self.batch_first:
            o = o.transpose(0, 1)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        return o, weights


@converter(nn.MultiheadAttention)
def _convert_attention(m: nn.MultiheadAttention, stack: FusedStack) -> nn.Module:
    return FusedMultiheadAttention(m, stack)


class FusedTransformerEncoderLayer(nn.Module):
    """``nn.TransformerEncoderLayer`` on its slow path: torch's fast path
    (``torch._transformer_encoder_layer_fwd``, taken in evaluation without a graph) reads
    the template's own parameters, so this is torch's forward without it, calling torch's
    ``_sa_block`` / ``_ff_block`` on the fused children. It tells the fused Linear and
    LayerNorm where the folded batch is (dim 1 of a sequence-first tensor)."""

    def __init__(self, src: nn.TransformerEncoderLayer, stack: FusedStack) -> None:
        super().__init__()
        self.norm_first = src.norm_first
        self.activation = src.activation
        self.batch_first = src.self_attn.batch_first
        object.__setattr__(self, "stack", stack)
        for name, child in src.named_children():
            self._modules[name] = fuse_tree(child, stack, f"{name}.")

    _sa_block = nn.TransformerEncoderLayer._sa_block
    _ff_block = nn.TransformerEncoderLayer._ff_block

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        src_key_padding_mask = F._canonical_mask(
            mask=src_key_padding_mask,
            mask_name="src_key_padding_mask",
            other_type=F._none_or_dtype(src_mask),
            other_name="src_mask",
            target_type=src.dtype,
        )
        src_mask = F._canonical_mask(
            mask=src_mask,
            mask_name="src_mask",
            other_type=None,
            other_name="",
            target_type=src.dtype,
            check_other=False,
        )
        stack = self.stack
        saved, stack.dim_hint = stack.dim_hint, 0 if self.batch_first else 1
        try:
            x = src
            if self.norm_first:
                x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
                x = x + self._ff_block(self.norm2(x))
            else:
                x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
                x = self.norm2(x + self._ff_block(x))
            return x
        finally:
            stack.dim_hint = saved


@converter(nn.TransformerEncoderLayer)
def _convert_encoder_layer(m: nn.TransformerEncoderLayer, stack: FusedStack) -> nn.Module:
    return FusedTransformerEncoderLayer(m, stack)
