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
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels import _validate
from kernels._config import kernel


@kernel(parallel=True)
def _sgd(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    for i in prange(p.shape[0]):
        d = g[i] + weight_decay * p[i]
        if momentum != 0.0:
            b = d if first else momentum * buf[i] + (1.0 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


@kernel(parallel=True)
def _adam(p, g, m, v, vmax, lr, b1, b2, eps, weight_decay, decoupled, amsgrad, step):
    bc1 = 1.0 - b1**step
    sqrt_bc2 = np.sqrt(1.0 - b2**step)
    step_size = lr / bc1
    for i in prange(p.shape[0]):
        x = p[i]
        d = g[i]
        if decoupled:
            x = x * (1.0 - lr * weight_decay)
        else:
            d = d + weight_decay * x
        mi = b1 * m[i] + (1.0 - b1) * d
        vi = b2 * v[i] + (1.0 - b2) * d * d
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        p[i] = x - step_size * mi / (np.sqrt(vi) / sqrt_bc2 + eps)


@kernel(parallel=True)
def _rmsprop(p, g, sq, ga, buf, lr, alpha, eps, weight_decay, momentum, centered):
    for i in prange(p.shape[0]):
        d = g[i] + weight_decay * p[i]
        s = alpha * sq[i] + (1.0 - alpha) * d * d
        sq[i] = s
        if centered:
            a = alpha * ga[i] + (1.0 - alpha) * d
            ga[i] = a
            avg = np.sqrt(s - a * a) + eps
        else:
            avg = np.sqrt(s) + eps
        if momentum > 0.0:
            b = momentum * buf[i] + d / avg
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * d / avg


@kernel(parallel=True)
def _adagrad(p, g, total, clr, eps, weight_decay):
    for i in prange(p.shape[0]):
        d = g[i] + weight_decay * p[i]
        s = total[i] + d * d
        total[i] = s
        p[i] = p[i] - clr * d / (np.sqrt(s) + eps)


def check(name: str, p: np.ndarray, g: np.ndarray, **state: np.ndarray | None) -> None:
    """The parameter, its gradient and every state buffer: one dtype, one shape, contiguous."""
    _validate.floats(name, p=p, g=g, **state)
    for label, a in {"g": g, **state}.items():
        if a is not None and a.shape != p.shape:
            raise ValueError(f"{name}: {label} of shape {a.shape} does not match p {p.shape}")


def _flat(*arrays):
    return tuple(None if a is None else a.reshape(-1) for a in arrays)


def sgd_step(
    p, g, buf, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, first=False
):
    """One SGD update of p in place (buf, the momentum buffer, too)."""
    check("sgd_step", p, g, buf=buf)
    p1, g1, b1 = _flat(p, g, p if buf is None else buf)
    _sgd(
        p1,
        g1,
        b1,
        float(lr),
        float(momentum),
        float(dampening),
        bool(nesterov),
        float(weight_decay),
        bool(first),
    )


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step):
    """One Adam (decoupled=False) or AdamW (decoupled=True) update in place; step counts from 1."""
    check("adam_step", p, g, m=m, v=v, vmax=vmax)
    p1, g1, m1, v1, x1 = _flat(p, g, m, v, v if vmax is None else vmax)
    _adam(
        p1,
        g1,
        m1,
        v1,
        x1,
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        bool(decoupled),
        bool(amsgrad),
        float(step),
    )


def rmsprop_step(p, g, sq, ga, buf, lr, alpha, eps, weight_decay, momentum, centered):
    """One RMSprop update in place (ga only when centered, buf only with momentum)."""
    check("rmsprop_step", p, g, sq=sq, ga=ga, buf=buf)
    p1, g1, s1, a1, b1 = _flat(p, g, sq, sq if ga is None else ga, sq if buf is None else buf)
    _rmsprop(
        p1,
        g1,
        s1,
        a1,
        b1,
        float(lr),
        float(alpha),
        float(eps),
        float(weight_decay),
        float(momentum),
        bool(centered),
    )


def adagrad_step(p, g, total, lr, lr_decay, eps, weight_decay, step):
    """One Adagrad update in place; step counts from 1."""
    check("adagrad_step", p, g, total=total)
    clr = float(lr) / (1.0 + (step - 1) * float(lr_decay))
    p1, g1, t1 = _flat(p, g, total)
    _adagrad(p1, g1, t1, clr, float(eps), float(weight_decay))
