"""Losses on class indices: the fused cross-entropy kernel, and nll_loss from plain ops."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend, dtypes
from minigrad.autograd import Function
from minigrad.ops.common import as_tensor, contiguous, require_float
from minigrad.ops.indexing import gather, where
from minigrad.ops.movement import permute, reshape, squeeze, unsqueeze
from minigrad.ops.reduce import log_softmax, sum
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropyRows(Function):
    # logits (N, C), integer targets (N,) -> per-row loss (N,); only lse (N,) is saved
    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, label_smoothing):
        logits = contiguous(logits)
        loss, lse = backend.softmax.cross_entropy_forward(
            logits, target, weight, ignore_index, label_smoothing
        )
        ctx.save_for_backward(logits, lse)
        ctx.params = (target, weight, ignore_index, label_smoothing)
        return loss

    @staticmethod
    def backward(ctx, grad):
        ctx.first_order_only("cross_entropy")
        logits, lse = ctx.saved_tensors
        target, weight, ignore_index, smoothing = ctx.params
        return backend.softmax.cross_entropy_backward(
            logits, target, weight, lse, contiguous(grad), ignore_index, smoothing
        )


def _classes_last(name: str, input: Tensor, target: Tensor) -> tuple[Tensor, np.ndarray, tuple]:
    """(N, C, d1, ...) logits and (N, d1, ...) targets as (N*d1*..., C) and (N*d1*...,)."""
    if input.ndim == 1:  # unbatched (C,) with a scalar target
        return unsqueeze(input, 0), target.data.reshape(1), ()
    if input.ndim < 2:
        raise ValueError(
            f"{name}: expected input of shape (N, C) or (N, C, d1, ...), got {input.shape}"
        )
    extra = input.shape[2:]
    expected = (input.shape[0],) + extra
    if target.shape != expected:
        raise ValueError(
            f"{name}: target of shape {target.shape} does not match input {input.shape} "
            f"(expected {expected})"
        )
    rows = (
        input
        if not extra
        else reshape(permute(input, (0, *range(2, input.ndim), 1)), (-1, input.shape[1]))
    )
    return rows, target.data.reshape(-1), expected


def _reduce(name: str, losses: Tensor, denominator: Any, reduction: str, shape: tuple) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return reshape(losses, shape) if shape else squeeze(losses, 0)
    total = sum(losses)
    if reduction == "sum":
        return total
    # All targets ignored: PyTorch returns nan; minigrad returns 0 (and zero gradients).
    return total / denominator if denominator > 0 else total * 0.0


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against class indices
    (N,) / (N, d1, ...) or class probabilities of the input's shape, as PyTorch's function.

    With class indices it runs one fused kernel (log-softmax, pick, smoothing, weights):
    'mean' divides by the summed weights of the non-ignored targets.
    """
    require_float(input, "cross_entropy")
    target = as_tensor(target)
    w = None
    if weight is not None:
        w = as_tensor(weight).data.astype(input.dtype)
        classes = input.shape[1 if input.ndim > 1 else 0]
        if w.shape != (classes,):
            raise ValueError(
                f"cross_entropy: weight of shape {w.shape} does not match {classes} classes"
            )
    if dtypes.is_floating(target.dtype):
        return _cross_entropy_probabilities(input, target, w, reduction, label_smoothing)
    if not dtypes.is_integer(target.dtype):
        raise TypeError(
            "cross_entropy: target must hold class indices (int) or probabilities, "
            f"got {target.dtype}"
        )
    rows, t, shape = _classes_last("cross_entropy", input, target)
    t = np.ascontiguousarray(t, dtype=np.int64)
    losses = CrossEntropyRows.apply(
        rows,
        target=t,
        weight=w,
        ignore_index=int(ignore_index),
        label_smoothing=float(label_smoothing),
    )
    valid = t != ignore_index
    denominator = float(np.sum(w[t[valid]])) if w is not None else float(np.sum(valid))
    return _reduce("cross_entropy", losses, denominator, reduction, shape)


def _cross_entropy_probabilities(input, target, w, reduction, smoothing):
    if target.shape != input.shape:
        raise ValueError(
            f"cross_entropy: probability targets of shape {target.shape} must match the input "
            f"{input.shape}"
        )
    c = input.shape[1 if input.ndim > 1 else 0]
    p = target * (1 - smoothing) + smoothing / c if smoothing else target
    logp = log_softmax(input, 1 if input.ndim > 1 else 0)
    if w is not None:
        logp = logp * Tensor._from_array(w.reshape((c,) + (1,) * (input.ndim - 2)))
    losses = -sum(p * logp, 1 if input.ndim > 1 else 0)
    # 'mean' divides by the number of rows (PyTorch ignores weights here)
    return _reduce("cross_entropy", losses, float(losses.data.size), reduction, losses.shape)


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...) at
    class indices ``target``; 'mean' divides by the summed weights of non-ignored targets.
    Built from gather and where, so it is differentiable to any order."""
    require_float(input, "nll_loss")
    target = as_tensor(target)
    if not dtypes.is_integer(target.dtype):
        raise TypeError(f"nll_loss: target must hold class indices, got {target.dtype}")
    rows, t, shape = _classes_last("nll_loss", input, target)
    c = rows.shape[1]
    valid = t != ignore_index
    bad = t[valid & ((t < 0) | (t >= c))]
    if bad.size:
        raise IndexError(f"nll_loss: target {int(bad[0])} is out of range for {c} classes")
    safe = np.where(valid, t, 0)
    picked = squeeze(gather(rows, 1, Tensor._from_array(safe.reshape(-1, 1))), 1)
    w = np.ones(c, rows.dtype) if weight is None else as_tensor(weight).data.astype(rows.dtype)
    row_w = np.where(valid, w[safe], 0).astype(rows.dtype)
    losses = where(Tensor._from_array(valid), -picked * Tensor._from_array(row_w), 0.0)
    return _reduce("nll_loss", losses, float(row_w.sum()), reduction, shape)


def _np_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    m = x.max(1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(1, keepdims=True))
    n, c = x.shape
    w = np.ones(c) if weight is None else weight
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    eps = label_smoothing
    rows = -(1 - eps) * w[safe] * logp[np.arange(n), safe] - eps / c * (logp * w).sum(1)
    rows = np.where(valid, rows, 0)
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / w[safe][valid].sum()


def _ce_sample(n, c, **kw):
    def make(rng):
        options = dict(kw)
        t = rng.integers(0, c, n)
        if options.pop("ignore_first", False):
            t[0] = -100
        return Sample((values(rng, (n, c)), t), options)

    return make


register(
    OpSpec(
        "cross_entropy",
        cross_entropy,
        _np_cross_entropy,
        fixed(
            _ce_sample(5, 4),
            _ce_sample(6, 3, ignore_first=True, reduction="sum"),
            _ce_sample(4, 5, label_smoothing=0.2, reduction="none"),
            lambda rng: Sample(
                (values(rng, (6, 4)), np.array([0, 3, -100, 2, 1, 1])),
                {"weight": np.array([0.5, 1.0, 2.0, 1.5]), "label_smoothing": 0.1},
            ),
        ),
        second_order=False,
    )
)
register(
    OpSpec(
        "nll_loss",
        nll_loss,
        lambda x, t, **kw: _np_nll(x, t, **kw),
        fixed(
            lambda rng: Sample((values(rng, (5, 4)), np.array([0, 3, -100, 2, 1]))),
            lambda rng: Sample(
                (values(rng, (2, 3, 2)), np.array([[0, 2], [1, 1]])),
                {"weight": np.array([1.0, 2.0, 0.5])},
            ),
        ),
    )
)


def _np_nll(x, t, weight=None, ignore_index=-100, reduction="mean"):
    if x.ndim > 2:
        x = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
        t = t.reshape(-1)
    w = np.ones(x.shape[1]) if weight is None else weight
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    rows = np.where(valid, -x[np.arange(len(t)), safe] * w[safe], 0)
    return rows.sum() / w[safe][valid].sum() if reduction == "mean" else rows.sum()
