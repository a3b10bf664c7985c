"""Scaled dot-product attention on the flash-style kernel (minigrad/backend.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, unbroadcast
from minigrad.ops.common import as_tensor, contiguous, operands, require_float
from minigrad.ops.elementwise import cast
from minigrad.ops.movement import squeeze, unsqueeze
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor


class ScaledDotProductAttention(Function):
    # q (B, NH, T, D), k (B, NH, S, D), v (B, NH, S, Dv) -> out (B, NH, T, Dv); lse (B, NH, T)
    # saved. A float mask that requires grad comes as a fourth input (broadcastable to
    # (B, NH, T, S)) and gets the gradient of the scores.
    @staticmethod
    def forward(ctx, q, k, v, *learned_mask, mask, is_causal, scale):
        if learned_mask:
            mask = learned_mask[0]
        d, dv = q.shape[-1], v.shape[-1]
        scale = 1.0 / np.sqrt(d) if scale is None else scale
        ctx.params = (mask, is_causal, scale)
        ctx.sizes = (d, dv)
        out, lse = backend.attention.attention_forward(*_kernel_inputs(q, k, v), *ctx.params)
        # q, k and v themselves (not the kernel's copies): under create_graph they come back
        # connected to the graph
        ctx.save_for_backward(q, k, v, out, lse, *learned_mask)
        return out[..., :dv] if d != dv else out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, out, lse, *learned_mask = ctx.saved_tensors
        if ctx._create_graph:
            return _attention_backward_ops(ctx, q, k, v, learned_mask, grad)
        d, dv = ctx.sizes
        q, k, v = _kernel_inputs(q, k, v)
        grad = contiguous(grad) if d == dv else _pad_last(grad, q.shape[-1])
        dq, dk, dvv = backend.attention.attention_backward(q, k, v, out, lse, grad, *ctx.params)
        if d != dv:
            dq, dk, dvv = dq[..., :d], dk[..., :d], dvv[..., :dv]
        if len(ctx.needs_input_grad) == 3:
            return dq, dk, dvv
        dmask = _mask_gradient(ctx.xp, q, k, v, out, lse, grad, ctx.params, ctx.input_shapes[3])
        return dq, dk, dvv, dmask


def _kernel_inputs(q, k, v) -> tuple:
    """q, k, v as the kernel wants them: contiguous, and of one head size (zeros appended to
    the shorter change no score and no output)."""
    q, k, v = contiguous(q), contiguous(k), contiguous(v)
    width = max(q.shape[-1], v.shape[-1])
    return tuple(_pad_last(a, width) for a in (q, k, v))


def _attention_backward_ops(ctx, q, k, v, learned_mask, grad) -> tuple:
    """The gradients written with minigrad ops, for create_graph (differentiable again): the
    probabilities P = softmax(Q K^T scale + mask) are formed as (T, S) matrices, and
    dV = P^T dO, dS = P * (dP - rowsum(dP * P)) with dP = dO V^T, dQ = dS K scale,
    dK = dS^T Q scale, and d mask = dS summed over the dims the mask was broadcast along."""
    from minigrad.ops.reduce import softmax

    mask, is_causal, scale = ctx.params
    scores = (q @ k.mT) * scale
    if learned_mask:
        scores = scores + learned_mask[0]
    elif mask is not None:
        scores = scores + Tensor._from_array(
            np.where(mask, 0.0, -np.inf).astype(q.dtype) if mask.dtype == np.bool_ else mask
        )
    if is_causal:
        t, s = scores.shape[-2:]
        scores = scores + Tensor._from_array(
            np.where(np.tri(t, s, dtype=bool), 0.0, -np.inf).astype(q.dtype)
        )
    p = softmax(scores, -1)
    dp = grad @ v.mT
    ds = p * (dp - (dp * p).sum(-1, keepdim=True))
    grads = (ds @ k * scale, ds.mT @ q * scale, p.mT @ grad)
    if len(ctx.needs_input_grad) == 3:
        return grads
    return grads + (unbroadcast(ctx.xp, ds, ctx.input_shapes[3]),)


def _pad_last(a: np.ndarray, width: int) -> np.ndarray:
    """``a`` with zeros appended to its last dim up to ``width``."""
    if a.shape[-1] == width:
        return a
    out = np.zeros(a.shape[:-1] + (width,), a.dtype)
    out[..., : a.shape[-1]] = a
    return out


def _mask_gradient(xp, q, k, v, out, lse, dout, params, mask_shape) -> np.ndarray:
    """d loss / d mask: the gradient of the scores, dS = P * (dO V^T - rowsum(dO * O)),
    summed over the dims the mask was broadcast along. Forms the (T, S) matrices, as the
    mask itself does."""
    mask, _, scale = params
    p = np.exp(q @ np.swapaxes(k, -1, -2) * scale + mask - lse[..., None])
    ds = p * (dout @ np.swapaxes(v, -1, -2) - np.sum(dout * out, -1, keepdims=True))
    return unbroadcast(xp, ds, mask_shape).astype(mask.dtype)


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
    mask, learned = None, ()
    if attn_mask is not None:
        mask_t = as_tensor(attn_mask)
        if mask_t.dtype != np.bool_ and mask_t.dtype != q.dtype:
            mask_t = cast(mask_t, q.dtype)
        if three and mask_t.ndim == 3:
            mask_t = unsqueeze(mask_t, 1)
        if mask_t.requires_grad:  # a learned bias: it gets a gradient (as in PyTorch)
            learned = (mask_t,)
        mask = mask_t.data
    out = ScaledDotProductAttention.apply(
        q, k, v, *learned, mask=mask, is_causal=bool(is_causal), scale=scale
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
    )
)
