"""Losses: cross-entropy on the fused kernel, and the others (nll, regression, binary,
KL divergence) from plain ops, so they are differentiable to any order."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend, dtypes
from minigrad.autograd import Function, derived, untraceable
from minigrad.ops.common import as_tensor, contiguous, operands, require_float
from minigrad.ops.elementwise import abs, cast, clamp, exp, log, softplus
from minigrad.ops.indexing import gather, where
from minigrad.ops.movement import permute, reshape, squeeze, unsqueeze
from minigrad.ops.reduce import log_softmax, mean, softmax, sum
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropyRows(Function):
    # logits (N, C), integer targets (N,) -> per-row loss (N,); only lse (N,) is saved
    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, label_smoothing):
        loss, lse = backend.softmax.cross_entropy_forward(
            contiguous(logits), target, weight, ignore_index, label_smoothing
        )
        ctx.save_for_backward(logits, lse)  # logits itself, connected under create_graph
        ctx.params = (target, weight, ignore_index, label_smoothing)
        return loss

    @staticmethod
    def backward(ctx, grad):
        logits, lse = ctx.saved_tensors
        target, weight, ignore_index, smoothing = ctx.params
        if ctx._create_graph:
            return _cross_entropy_backward_ops(logits, grad, *ctx.params)
        dlogits = backend.softmax.cross_entropy_backward(
            contiguous(logits), target, weight, lse, contiguous(grad), ignore_index, smoothing
        )
        # a new array (the kernel's and the twin's): autograd's defensive copy of it was
        # 1.5-3 ms of the (4096, 1000) benchmark's 6 ms
        ctx.owned(dlogits)
        return dlogits


def _cross_entropy_backward_ops(logits, grad, target, weight, ignore_index, smoothing):
    """The kernel's gradient written with minigrad ops, for create_graph. Row i's loss is
    -sum_c a_ic log softmax(logits_i)_c with a_ic = (1 - eps) w_t [c = t] + eps w_c / C
    (zero for an ignored row), so its gradient is A_i softmax(logits_i) - a_i, A_i = sum_c
    a_ic: differentiable again through the softmax."""
    n, c = logits.shape
    w = np.ones(c, logits.dtype) if weight is None else weight
    valid = target != ignore_index
    a = np.zeros((n, c), logits.dtype)
    rows = np.flatnonzero(valid)
    a[rows, target[rows]] = (1 - smoothing) * w[target[rows]]
    a[rows] += smoothing / c * w
    coefficients = Tensor._from_array(a)
    total = Tensor._from_array(a.sum(1, keepdims=True))
    return reshape(grad, (n, 1)) * (total * softmax(logits, 1) - coefficients)


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
    if isinstance(denominator, Tensor):  # inf when all are ignored
        return total / denominator
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
    rows, _, shape = _classes_last("cross_entropy", input, target)
    # The flat targets and the mean's denominator are computed as ops (``derived``), so a
    # compiled step recomputes them from each call's targets.
    t = derived(lambda a: np.ascontiguousarray(a.reshape(-1), dtype=np.int64), target)
    losses = CrossEntropyRows.apply(
        rows,
        target=t.data,
        weight=w,
        ignore_index=int(ignore_index),
        label_smoothing=float(label_smoothing),
    )

    def summed_weights(t: np.ndarray) -> np.ndarray:  # of the targets not ignored; inf if none
        valid = t != ignore_index
        total = np.sum(w[t[valid]]) if w is not None else np.sum(valid)
        return np.asarray(total if total > 0 else np.inf, dtype=rows.dtype)

    denominator = derived(summed_weights, t) if reduction == "mean" else None
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
    return _reduce("cross_entropy", losses, float(losses.numel()), reduction, losses.shape)


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
    untraceable("nll_loss (its target weights are computed outside the graph)")
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
    if w.shape != (c,):
        raise ValueError(f"nll_loss: weight of shape {w.shape} does not match {c} classes")
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


# -- losses on two tensors of one shape ----------------------------------------------------


def _pair(name: str, input: Any, target: Any) -> tuple[Tensor, Tensor]:
    """Input and target as float tensors of one shape. PyTorch broadcasts them with a
    warning; minigrad refuses, because an (N, 1) output against an (N,) target would
    silently give an (N, N) loss."""
    input, target = operands(input, target)
    require_float(input, name)
    if input.shape != target.shape:
        raise ValueError(
            f"{name}: target of shape {target.shape} does not match input {input.shape}; "
            "losses do not broadcast (reshape one of them)"
        )
    return input, target


def _reduce_elements(name: str, losses: Tensor, reduction: str) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return losses
    return sum(losses) if reduction == "sum" else mean(losses)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error (input - target)^2, averaged (or summed) over all elements."""
    input, target = _pair("mse_loss", input, target)
    d = input - target
    return _reduce_elements("mse_loss", d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Absolute error |input - target| (gradient 0 where they are equal, as PyTorch)."""
    input, target = _pair("l1_loss", input, target)
    return _reduce_elements("l1_loss", abs(input - target), reduction)


def smooth_l1_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target);
    beta = 0 is the L1 loss."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    input, target = _pair("smooth_l1_loss", input, target)
    d = input - target
    if beta == 0:
        return _reduce_elements("smooth_l1_loss", abs(d), reduction)
    ad = abs(d)
    losses = where(ad.detach() < beta, 0.5 * d * d / beta, ad - 0.5 * beta)
    return _reduce_elements("smooth_l1_loss", losses, reduction)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0
) -> Tensor:
    """0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta) elsewhere: smooth_l1 times delta."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    input, target = _pair("huber_loss", input, target)
    d = input - target
    ad = abs(d)
    losses = where(ad.detach() <= delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
    return _reduce_elements("huber_loss", losses, reduction)


def _weight(name: str, weight: Any, like: Tensor, what: str = "weight") -> Tensor | None:
    """An optional weight tensor that must broadcast to ``like`` without growing it."""
    if weight is None:
        return None
    w = cast(as_tensor(weight), like.dtype)
    try:
        grown = np.broadcast_shapes(w.shape, like.shape)
    except ValueError:
        grown = None
    if grown != like.shape:
        raise ValueError(f"{name}: {what} of shape {w.shape} does not broadcast to {like.shape}")
    return w


# e^-100: log() of a clamped probability is then >= -100, the floor PyTorch puts on BCE's logs,
# and neither the value nor the gradient is ever inf or nan at p = 0 or p = 1.
_LOG_FLOOR = -100.0
_TINY = float(np.exp(_LOG_FLOOR))


def _floored_log(p: Tensor) -> Tensor:
    return clamp(log(clamp(p, min=_TINY)), min=_LOG_FLOOR)


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p = ``input`` in [0, 1], the logs
    floored at -100 as in PyTorch (so p = 0 or 1 gives a finite loss, and no NaN gradient).
    Prefer ``binary_cross_entropy_with_logits``: it is exact where sigmoid saturates."""
    input, target = _pair("binary_cross_entropy", input, target)
    if input.data.size and (input.data.min() < 0 or input.data.max() > 1):
        raise ValueError(
            "binary_cross_entropy: input must hold probabilities in [0, 1], got values in "
            f"[{float(input.data.min()):g}, {float(input.data.max()):g}] (pass logits to "
            "binary_cross_entropy_with_logits instead)"
        )
    losses = -(target * _floored_log(input) + (1 - target) * _floored_log(1 - input))
    w = _weight("binary_cross_entropy", weight, losses)
    return _reduce_elements("binary_cross_entropy", losses if w is None else losses * w, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy of sigmoid(input) against ``target``, computed from the logits
    without overflow: (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x).

    ``pos_weight`` multiplies the positive term; it broadcasts over the last dim (one weight
    per class), as in PyTorch. ``weight`` rescales each element's loss.
    """
    name = "binary_cross_entropy_with_logits"
    input, target = _pair(name, input, target)
    # softplus(-x) = log(1 + e^-x) = -log sigmoid(x), exact for any x (no threshold)
    minus_log_p = softplus(-input, threshold=float("inf"))
    pw = _weight(name, pos_weight, input, "pos_weight")
    scale = 1.0 if pw is None else 1 + (pw - 1) * target
    losses = (1 - target) * input + scale * minus_log_p
    w = _weight(name, weight, losses)
    return _reduce_elements(name, losses if w is None else losses * w, reduction)


def kl_div(
    input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False
) -> Tensor:
    """KL divergence sum t (log t - input) of the target distribution t from the one whose
    log-probabilities are ``input``; 0 where t = 0. ``reduction='batchmean'`` divides the
    sum by the batch size, which is the mathematical KL divergence (PyTorch's 'mean'
    divides by every element)."""
    input, target = _pair("kl_div", input, target)
    if log_target:
        losses = exp(target) * (target - input)
    else:
        positive = derived(lambda t: t > 0, target)
        safe_t = where(positive, target, 1.0)
        losses = where(positive, target * (log(safe_t) - input), 0.0)
    if reduction == "batchmean":
        return sum(losses) / (input.shape[0] if input.ndim else 1)
    return _reduce_elements("kl_div", losses, reduction)


def _np_pair_loss(fn):
    def reference(x, t, reduction="mean", **kw):
        losses = fn(x, t, **kw)
        return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]

    return reference


def _two(shape, t_domain=(-2.0, 2.0), x_domain=(-2.0, 2.0), **kw):
    def make(rng):
        return Sample((values(rng, shape, x_domain), values(rng, shape, t_domain)), kw)

    return make


def _smooth_l1(x, t, beta=1.0):
    d = np.abs(x - t)
    return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def _huber(x, t, delta=1.0):
    d = np.abs(x - t)
    return np.where(d <= delta, 0.5 * d * d, delta * (d - 0.5 * delta))


def _bce(p, t, weight=None):
    out = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return out if weight is None else out * weight


def _bce_logits(x, t, weight=None, pos_weight=None):
    p = 1 / (1 + np.exp(-x))
    pw = 1.0 if pos_weight is None else pos_weight
    out = -(pw * t * np.log(p) + (1 - t) * np.log(1 - p))
    return out if weight is None else out * weight


register(
    OpSpec(
        "mse_loss",
        mse_loss,
        _np_pair_loss(lambda x, t: (x - t) ** 2),
        fixed(_two((3, 4)), _two((5,), reduction="sum"), _two((2, 3), reduction="none")),
    )
)
register(
    OpSpec(
        "l1_loss",
        l1_loss,
        _np_pair_loss(lambda x, t: np.abs(x - t)),
        fixed(_two((3, 4)), _two((2, 3), reduction="none")),
    )
)
register(
    OpSpec(
        "smooth_l1_loss",
        smooth_l1_loss,
        _np_pair_loss(_smooth_l1),
        fixed(_two((4, 5)), _two((3, 3), beta=0.5, reduction="sum")),
    )
)
register(
    OpSpec(
        "huber_loss",
        huber_loss,
        _np_pair_loss(_huber),
        fixed(_two((4, 5)), _two((3, 3), delta=2.0, reduction="none")),
    )
)
register(
    OpSpec(
        "binary_cross_entropy",
        binary_cross_entropy,
        _np_pair_loss(_bce),
        fixed(
            _two((4, 3), x_domain=(0.05, 0.95), t_domain=(0.0, 1.0)),
            lambda rng: Sample(
                (values(rng, (2, 3), (0.1, 0.9)), values(rng, (2, 3), (0.0, 1.0))),
                {"weight": np.array([0.5, 1.0, 2.0]), "reduction": "sum"},
            ),
        ),
    )
)
register(
    OpSpec(
        "binary_cross_entropy_with_logits",
        binary_cross_entropy_with_logits,
        _np_pair_loss(_bce_logits),
        fixed(
            _two((4, 3), x_domain=(-4.0, 4.0), t_domain=(0.0, 1.0)),
            lambda rng: Sample(
                (values(rng, (5, 3), (-4, 4)), values(rng, (5, 3), (0.0, 1.0))),
                {"pos_weight": np.array([0.5, 2.0, 3.0]), "weight": np.array([1.0, 0.5, 2.0])},
            ),
        ),
    )
)


def _np_kl(x, t, reduction="mean", log_target=False):
    losses = np.exp(t) * (t - x) if log_target else t * (np.log(t) - x)
    if reduction == "batchmean":
        return losses.sum() / x.shape[0]
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


register(
    OpSpec(
        "kl_div",
        kl_div,
        _np_kl,
        fixed(
            _two((3, 4), t_domain=(0.1, 1.0), reduction="batchmean"),
            _two((3, 4), t_domain=(-2.0, 0.0), log_target=True, reduction="sum"),
            _two((2, 3), t_domain=(0.1, 1.0), reduction="none"),
        ),
    )
)
