"""NumPy twin of kernels/optim.py: the same updates as whole-array expressions, in place."""

from __future__ import annotations

import numpy as np

from kernels import checks


def sgd_step(
    p, g, buf, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, first=False
):
    checks.optimizer_state("sgd_step", p, g, buf=buf)
    d = g + weight_decay * p if weight_decay else g.copy()
    if momentum != 0.0:
        if first:
            buf[...] = d
        else:
            buf *= momentum
            buf += (1.0 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    p -= (lr * d).astype(p.dtype)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step):
    checks.optimizer_state("adam_step", p, g, m=m, v=v, vmax=vmax)
    x = p.astype(np.float64)
    d = g.astype(np.float64)
    if decoupled:
        x *= 1.0 - lr * weight_decay
    else:
        d += weight_decay * x
    m[...] = beta1 * m + (1.0 - beta1) * d
    v[...] = beta2 * v + (1.0 - beta2) * d * d
    second = v
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        second = vmax
    denom = np.sqrt(second.astype(np.float64)) / np.sqrt(1.0 - beta2**step) + eps
    p[...] = x - lr / (1.0 - beta1**step) * m / denom


def rmsprop_step(p, g, sq, ga, buf, lr, alpha, eps, weight_decay, momentum, centered):
    checks.optimizer_state("rmsprop_step", p, g, sq=sq, ga=ga, buf=buf)
    d = g.astype(np.float64) + weight_decay * p
    sq[...] = alpha * sq + (1.0 - alpha) * d * d
    if centered:
        ga[...] = alpha * ga + (1.0 - alpha) * d
        avg = np.sqrt(sq - ga.astype(np.float64) ** 2) + eps
    else:
        avg = np.sqrt(sq.astype(np.float64)) + eps
    if momentum > 0.0:
        buf[...] = momentum * buf + d / avg
        p[...] = p - lr * buf.astype(np.float64)
    else:
        p[...] = p - lr * d / avg


def adagrad_step(p, g, total, lr, lr_decay, eps, weight_decay, step):
    checks.optimizer_state("adagrad_step", p, g, total=total)
    d = g.astype(np.float64) + weight_decay * p
    total[...] = total + d * d
    p[...] = p - lr / (1.0 + (step - 1) * lr_decay) * d / (np.sqrt(total.astype(np.float64)) + eps)


def adadelta_step(p, g, sq, acc, lr, rho, eps, weight_decay):
    checks.optimizer_state("adadelta_step", p, g, sq=sq, acc=acc)
    d = g.astype(np.float64) + weight_decay * p
    sq[...] = rho * sq + (1.0 - rho) * d * d
    delta = np.sqrt(acc + eps) / np.sqrt(sq.astype(np.float64) + eps) * d
    acc[...] = rho * acc + (1.0 - rho) * delta * delta
    p[...] = p - lr * delta
