"""Matrix multiplication: 1-D, 2-D and batched with broadcast batch dims (NumPy's rules)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.autograd import Function, unbroadcast
from minigrad.ops.common import operands
from minigrad.ops.movement import squeeze, unsqueeze
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor


class MatMul(Function):
    # a (..., M, K) @ b (..., K, N) -> (..., M, N); both have at least 2 dims here.
    # With b 2-D (a Linear layer on a batch of sequences), a's leading dims are folded into M:
    # one large GEMM instead of a loop of small ones, and b's gradient is one GEMM too rather
    # than a batch of them summed (12 ms against 14.5 ms for (16, 128, 128) @ (128, 2048)).
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        if a.ndim > 2 and b.ndim == 2:  # rows counted, not -1: a dim may be 0
            rows = math.prod(a.shape[:-1])
            return np.matmul(a.reshape(rows, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[1:])
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = ctx.xp
        ga = gb = None
        if a.ndim > 2 and b.ndim == 2:
            k, n = b.shape
            rows = math.prod(a.shape[:-1])
            g2 = xp.reshape(grad, (rows, n))
            if ctx.needs_input_grad[0]:
                ga = xp.reshape(xp.matmul(g2, xp.mT(b)), a.shape)
            if ctx.needs_input_grad[1]:
                gb = xp.matmul(xp.mT(xp.reshape(a, (rows, k))), g2)
            return ga, gb
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(xp, xp.matmul(grad, xp.mT(b)), a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(xp, xp.matmul(xp.mT(a), grad), b.shape)
        return ga, gb


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product. A 1-D first argument is a row vector and a 1-D second argument a
    column vector (the added dim is removed again); leading dims broadcast as batch dims."""
    a, b = operands(a, b)
    sa, sb = a.shape, b.shape  # (read once: shape is a property, and this runs per call)
    if not sa or not sb:
        raise ValueError(f"matmul: both arguments need at least 1 dim, got shapes {sa} and {sb}")
    k_a = sa[-1]
    k_b = sb[-2] if len(sb) >= 2 else sb[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not align ({k_a} != {k_b})")
    if len(sa) > 2 or len(sb) > 2:  # only then are there batch dims to check
        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dims of shapes {sa} and {sb} can't be broadcast together"
            ) from None
    a2 = unsqueeze(a, 0) if len(sa) == 1 else a
    b2 = unsqueeze(b, -1) if len(sb) == 1 else b
    out = MatMul.apply(a2, b2)
    if len(sb) == 1:
        out = squeeze(out, -1)
    if len(sa) == 1:
        out = squeeze(out, -1 if len(sb) == 1 else -2)
    return out


def _pair(sa, sb):
    return lambda rng: Sample((values(rng, sa), values(rng, sb)))


register(
    OpSpec(
        "matmul",
        matmul,
        np.matmul,
        fixed(
            _pair((3, 4), (4, 2)),
            _pair((4,), (4, 2)),
            _pair((3, 4), (4,)),
            _pair((4,), (4,)),
            _pair((2, 3, 4), (4, 5)),
            _pair((2, 1, 3, 4), (3, 4, 2)),
        ),
    )
)


_FEW_ROWS = 64


class Linear(Function):
    # x (..., I), weight (O, I), optional bias (O,) -> (..., O): PyTorch's layer layout.
    # One node instead of transpose + matmul + add, and the weight's gradient comes out of
    # BLAS already in weight's (O, I) layout (g.T @ x), so the optimizer updates it in place
    # without a transposing copy.
    @staticmethod
    def forward(ctx, x, weight, *bias):
        ctx.save_for_backward(x, weight)
        x2 = x.reshape(-1, x.shape[-1])
        if x2.shape[0] <= _FEW_ROWS and weight.shape[0] >= 32:
            # For a few rows, BLAS's x @ w.T runs slower than the same product computed as
            # (w @ x.T).T: 0.5-0.9x the time for 16-64 rows and 120-512 outputs, measured with
            # OpenBLAS (from 256 rows on it is slower, so larger batches keep x @ w.T).
            out = np.matmul(weight, x2.T).T
        else:
            out = np.matmul(x2, weight.T)
        if bias:
            out += bias[0]
        return out.reshape(x.shape[:-1] + weight.shape[:1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        xp = ctx.xp
        o, i = weight.shape
        g2 = xp.reshape(grad, (-1, o))
        gx = xp.reshape(xp.matmul(g2, weight), x.shape) if ctx.needs_input_grad[0] else None
        gw = xp.matmul(xp.mT(g2), xp.reshape(x, (-1, i))) if ctx.needs_input_grad[1] else None
        ctx.owned(gx, gw)  # new arrays, referenced nowhere else
        if len(ctx.needs_input_grad) == 2:
            return gx, gw
        gb = xp.sum(g2, 0, False) if ctx.needs_input_grad[2] else None
        ctx.owned(gb)
        return gx, gw, gb


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """x @ weight.T + bias with weight (out_features, in_features), as PyTorch's F.linear."""
    x, weight = operands(x, weight)
    if weight.ndim != 2:
        raise ValueError(
            f"linear: expected weight of shape (out_features, in_features), got {weight.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight {weight.shape} "
            f"(expected the last input dim to be {weight.shape[1]})"
        )
    if bias is None:
        return Linear.apply(x, weight)
    bias = operands(bias, weight)[0]
    if bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias of shape {bias.shape} does not match weight {weight.shape} "
            f"(expected ({weight.shape[0]},))"
        )
    return Linear.apply(x, weight, bias)


register(
    OpSpec(
        "linear",
        linear,
        lambda x, w, b=None: x @ w.T + (0 if b is None else b),
        fixed(
            lambda rng: Sample((values(rng, (4, 3)), values(rng, (2, 3)), values(rng, (2,)))),
            lambda rng: Sample((values(rng, (2, 3, 3)), values(rng, (2, 3)))),
            lambda rng: Sample((values(rng, (3,)), values(rng, (4, 3)), values(rng, (4,)))),
        ),
    )
)
