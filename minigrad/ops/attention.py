"""Scaled dot-product attention on the flash-style kernel (minigrad/backend.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.common import as_tensor, contiguous, operands, require_float
from minigrad.ops.movement import squeeze, unsqueeze
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor


class ScaledDotProductAttention(Function):
    # q (B, NH, T, D), k and v (B, NH, S, D) -> out (B, NH, T, D); lse (B, NH, T) saved
    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale):
        q, k, v = contiguous(q), contiguous(k), contiguous(v)
        out, lse = backend.attention.attention_forward(q, k, v, mask, is_causal, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.params = (mask, is_causal, scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        ctx.first_order_only("scaled_dot_product_attention")
        q, k, v, out, lse = ctx.saved_tensors
        return backend.attention.attention_backward(
            q, k, v, out, lse, contiguous(grad), *ctx.params
        )


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value, as PyTorch's function.

    query (B, NH, T, D) or (B, T, D); key and value (B, NH, S, D) or (B, S, D).
    attn_mask: boolean (True = may attend) or additive float, broadcastable to (B, NH, T, S).
    is_causal: query i sees keys j <= i. scale defaults to 1 / sqrt(D). Memory stays
    O(T * D) per head on the causal and unmasked paths (no T x S matrix is formed).
    """
    if dropout_p:
        raise NotImplementedError(
            "scaled_dot_product_attention: dropout_p > 0 is not supported yet; apply dropout to "
            "the attention output instead"
        )
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    q, k = operands(query, key)
    v = operands(value, q)[0]
    require_float(q, "scaled_dot_product_attention")
    if not (q.ndim == k.ndim == v.ndim and q.ndim in (3, 4)):
        raise ValueError(
            "scaled_dot_product_attention: expected query, key and value of shape (B, NH, T, D) or "
            f"(B, T, D), got {q.shape}, {k.shape}, {v.shape}"
        )
    three = q.ndim == 3
    if three:
        q, k, v = unsqueeze(q, 1), unsqueeze(k, 1), unsqueeze(v, 1)
    mask = None
    if attn_mask is not None:
        mask = as_tensor(attn_mask).data
        if mask.dtype != np.bool_:
            mask = mask.astype(q.dtype)
        if three and mask.ndim == 3:
            mask = mask[:, None]
    out = ScaledDotProductAttention.apply(
        q, k, v, mask=mask, is_causal=bool(is_causal), scale=scale
    )
    return squeeze(out, 1) if three else out


def _np_attention(q, k, v, attn_mask=None, is_causal=False):
    mask = attn_mask
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    if is_causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)) @ v


def _qkv(qs, ks, **kw):
    def make(rng):
        return Sample((values(rng, qs), values(rng, ks), values(rng, ks)), kw)

    return make


register(
    OpSpec(
        "scaled_dot_product_attention",
        scaled_dot_product_attention,
        _np_attention,
        fixed(
            _qkv((2, 2, 5, 3), (2, 2, 4, 3)),
            _qkv((1, 2, 6, 4), (1, 2, 6, 4), is_causal=True),
            _qkv((2, 5, 3), (2, 7, 3)),
            lambda rng: Sample(
                (values(rng, (1, 1, 4, 3)),) * 1
                + (values(rng, (1, 1, 5, 3)), values(rng, (1, 1, 5, 3))),
                {"attn_mask": np.array([[True, False, True, True, False]] * 4)},
            ),
        ),
        second_order=False,
    )
)
