"""Optimizer updates, each one fused pass over a parameter (PyTorch's formulas).

Every array is one parameter or one of its state buffers, flattened: p (N,) updated in place,
g (N,) its gradient, and the optimizer's per-parameter state (N,) updated in place. NumPy
needs four to eight passes (temporaries) for an Adam step; these kernels read and write each
element once. Hyperparameters arrive as Python floats (float64 arithmetic, rounded once when
stored back into float32 arrays).

SGD      d = g + wd p;  buf = d (first step) or momentum buf + (1 - dampening) d
         d = d + momentum buf (nesterov) or buf;  p -= lr d
Adam     d = g + wd p (Adam) or p *= 1 - lr wd first (AdamW, decoupled);
         m = b1 m + (1 - b1) d;  v = b2 v + (1 - b2) d^2;  (amsgrad: vmax = max(vmax, v))
         p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
RMSprop  d = g + wd p;  sq = alpha sq + (1 - alpha) d^2;  (centered: ga = alpha ga + (1 - alpha) d,
         avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps);
         momentum: buf = momentum buf + d / avg, p -= lr buf;  else p -= lr d / avg
Adagrad  d = g + wd p;  sum += d^2;  p -= lr / (1 + (t - 1) lr_decay) * d / (sqrt(sum) + eps)
Adadelta d = g + wd p;  sq = rho sq + (1 - rho) d^2;  delta = sqrt(acc + eps) / sqrt(sq + eps) * d;
         acc = rho acc + (1 - rho) delta^2;  p -= lr delta
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels import checks
from kernels._config import kernel
from kernels._math import cast_like

# Hyperparameters arrive as Python floats (1 - beta and the like computed in float64 by the
# wrappers, as PyTorch does: in float32, 1 - 0.999 loses 4 digits), and each kernel first casts
# them to the parameters' dtype (cast_like), so that float32 parameters are updated in float32
# arithmetic, as PyTorch does, and the loops vectorize: with float64 scalars every element was
# converted to float64 and back, and an SGD step over 200K float32 weights took 76 us against
# 38 us for NumPy's p -= lr * g. Casting inside rather than building NumPy scalars in the
# wrapper saves about 1 us per parameter per step, which is most of the optimizer's time on
# small models. Each option gets its own loop, so no branch is left inside a loop.


@kernel(parallel=True)
def _sgd(p, g, buf, lr, momentum, keep, nesterov, weight_decay, first):
    # keep = 1 - dampening
    lr, momentum = cast_like(lr, p), cast_like(momentum, p)
    keep, weight_decay = cast_like(keep, p), cast_like(weight_decay, p)
    n = p.shape[0]
    if momentum == 0:
        for i in prange(n):
            p[i] -= lr * (g[i] + weight_decay * p[i])
    elif first:
        for i in prange(n):
            d = g[i] + weight_decay * p[i]
            buf[i] = d
            p[i] -= lr * (d + momentum * d if nesterov else d)
    elif nesterov:
        for i in prange(n):
            d = g[i] + weight_decay * p[i]
            b = momentum * buf[i] + keep * d
            buf[i] = b
            p[i] -= lr * (d + momentum * b)
    else:
        for i in prange(n):
            d = g[i] + weight_decay * p[i]
            b = momentum * buf[i] + keep * d
            buf[i] = b
            p[i] -= lr * b


@kernel(parallel=True)
def _adam(p, g, m, v, vmax, b1, c1, b2, c2, eps, shrink, coupled, amsgrad, step_size, inv_sqrt_bc2):
    # c1 = 1 - b1, c2 = 1 - b2; shrink = 1 - lr * weight_decay (AdamW) or 1;
    # coupled = weight_decay (Adam) or 0
    b1, c1, b2, c2 = cast_like(b1, p), cast_like(c1, p), cast_like(b2, p), cast_like(c2, p)
    eps, shrink, coupled = cast_like(eps, p), cast_like(shrink, p), cast_like(coupled, p)
    step_size, inv_sqrt_bc2 = cast_like(step_size, p), cast_like(inv_sqrt_bc2, p)
    n = p.shape[0]
    for i in prange(n):
        x = p[i] * shrink
        d = g[i] + coupled * p[i]
        mi = b1 * m[i] + c1 * d
        vi = b2 * v[i] + c2 * d * d
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        p[i] = x - step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


@kernel(parallel=True)
def _rmsprop(p, g, sq, ga, buf, lr, alpha, c, eps, weight_decay, momentum, centered):
    # c = 1 - alpha
    lr, alpha, c, eps = cast_like(lr, p), cast_like(alpha, p), cast_like(c, p), cast_like(eps, p)
    weight_decay, momentum = cast_like(weight_decay, p), cast_like(momentum, p)
    for i in prange(p.shape[0]):
        d = g[i] + weight_decay * p[i]
        s = alpha * sq[i] + c * d * d
        sq[i] = s
        if centered:
            a = alpha * ga[i] + c * d
            ga[i] = a
            avg = np.sqrt(s - a * a) + eps
        else:
            avg = np.sqrt(s) + eps
        if momentum > 0:
            b = momentum * buf[i] + d / avg
            buf[i] = b
            p[i] -= lr * b
        else:
            p[i] -= lr * d / avg


@kernel(parallel=True)
def _adagrad(p, g, total, clr, eps, weight_decay):
    clr, eps, weight_decay = cast_like(clr, p), cast_like(eps, p), cast_like(weight_decay, p)
    for i in prange(p.shape[0]):
        d = g[i] + weight_decay * p[i]
        s = total[i] + d * d
        total[i] = s
        p[i] -= clr * d / (np.sqrt(s) + eps)


@kernel(parallel=True)
def _adadelta(p, g, sq, acc, lr, rho, c, eps, weight_decay):
    # c = 1 - rho
    lr, rho, c = cast_like(lr, p), cast_like(rho, p), cast_like(c, p)
    eps, weight_decay = cast_like(eps, p), cast_like(weight_decay, p)
    for i in prange(p.shape[0]):
        d = g[i] + weight_decay * p[i]
        s = rho * sq[i] + c * d * d
        sq[i] = s
        delta = np.sqrt(acc[i] + eps) / np.sqrt(s + eps) * d
        acc[i] = rho * acc[i] + c * delta * delta
        p[i] -= lr * delta


def _flat(*arrays):
    # ravel: a view for these contiguous arrays, and half the cost of reshape(-1)
    return [None if a is None else a.ravel() for a in arrays]


def sgd_step(
    p, g, buf, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, first=False
):
    """One SGD update of p in place (buf, the momentum buffer, too)."""
    checks.optimizer_state("sgd_step", p, g, buf=buf)
    p1, g1, b1 = _flat(p, g, p if buf is None else buf)
    _sgd(
        p1,
        g1,
        b1,
        float(lr),
        float(momentum),
        float(1.0 - dampening),
        bool(nesterov),
        float(weight_decay),
        bool(first),
    )


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step):
    """One Adam (decoupled=False) or AdamW (decoupled=True) update in place; step counts from 1."""
    checks.optimizer_state("adam_step", p, g, m=m, v=v, vmax=vmax)
    step_size = lr / (1.0 - beta1**step)  # the bias corrections, in float64, once
    inv_sqrt_bc2 = 1.0 / np.sqrt(1.0 - beta2**step)
    p1, g1, m1, v1, x1 = _flat(p, g, m, v, v if vmax is None else vmax)
    shrink = 1.0 - lr * weight_decay if decoupled else 1.0
    coupled = 0.0 if decoupled else weight_decay
    _adam(
        p1,
        g1,
        m1,
        v1,
        x1,
        float(beta1),
        float(1.0 - beta1),
        float(beta2),
        float(1.0 - beta2),
        float(eps),
        float(shrink),
        float(coupled),
        bool(amsgrad),
        float(step_size),
        float(inv_sqrt_bc2),
    )


def rmsprop_step(p, g, sq, ga, buf, lr, alpha, eps, weight_decay, momentum, centered):
    """One RMSprop update in place (ga only when centered, buf only with momentum)."""
    checks.optimizer_state("rmsprop_step", p, g, sq=sq, ga=ga, buf=buf)
    p1, g1, s1, a1, b1 = _flat(p, g, sq, sq if ga is None else ga, sq if buf is None else buf)
    _rmsprop(
        p1,
        g1,
        s1,
        a1,
        b1,
        float(lr),
        float(alpha),
        float(1.0 - alpha),
        float(eps),
        float(weight_decay),
        float(momentum),
        bool(centered),
    )


def adagrad_step(p, g, total, lr, lr_decay, eps, weight_decay, step):
    """One Adagrad update in place; step counts from 1."""
    checks.optimizer_state("adagrad_step", p, g, total=total)
    clr = lr / (1.0 + (step - 1) * lr_decay)
    p1, g1, t1 = _flat(p, g, total)
    _adagrad(p1, g1, t1, float(clr), float(eps), float(weight_decay))


def adadelta_step(p, g, sq, acc, lr, rho, eps, weight_decay):
    """One Adadelta update in place (sq: running mean of squared gradients, acc: of squared
    updates)."""
    checks.optimizer_state("adadelta_step", p, g, sq=sq, acc=acc)
    p1, g1, s1, a1 = _flat(p, g, sq, acc)
    _adadelta(
        p1, g1, s1, a1, float(lr), float(rho), float(1.0 - rho), float(eps), float(weight_decay)
    )
