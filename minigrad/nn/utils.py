"""Helpers around modules: calling a module with other parameter values, the explicit L2
penalty, and gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from minigrad.autograd import replayed
from minigrad.nn.module import Module
from minigrad.ops.reduce import sum as _sum
from minigrad.tensor import Tensor


def functional_call(
    module: Module,
    parameters_and_buffers: Mapping[str, Tensor],
    args: Any = (),
    kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Run ``module(*args, **kwargs)`` with some parameters or buffers replaced by the given
    tensors (keyed by their state-dict names), as ``torch.func.functional_call``; the module
    is unchanged afterwards. Gradients then flow to the given tensors: this is how
    ``minigrad.testing.gradcheck_module`` checks a layer's parameter gradients."""
    args = args if isinstance(args, tuple) else (args,)
    swapped = []
    try:
        for name, value in parameters_and_buffers.items():
            owner_name, _, attr = name.rpartition(".")
            owner = module.get_submodule(owner_name) if owner_name else module
            for store in (owner._parameters, owner._buffers):
                if attr in store:
                    swapped.append((store, attr, store[attr]))
                    store[attr] = value
                    break
            else:
                raise KeyError(
                    f"functional_call: {type(module).__name__} has no parameter or buffer {name!r}"
                )
        return module(*args, **(kwargs or {}))
    finally:
        for store, attr, original in reversed(swapped):
            store[attr] = original


def l2_penalty(parameters: Iterable[Tensor], weight_decay: float) -> Tensor:
    """(weight_decay / 2) * sum of the squares of ``parameters``: add it to the loss.

    Its gradient is ``weight_decay * p``, exactly what ``SGD(weight_decay=...)`` adds to each
    gradient (coupled L2). With plain SGD the two are the same update. With Adam they are not:
    the penalty's gradient is rescaled by Adam's per-parameter step size like any gradient, so
    large-gradient weights are barely decayed; AdamW's decoupled weight decay instead shrinks
    every weight by ``lr * weight_decay * p`` outside the adaptive step. Pass only the
    parameters to penalise (usually weights, not biases or norm parameters)."""
    total = None
    for p in parameters:
        square = _sum(p * p)
        total = square if total is None else total + square
    if total is None:
        raise ValueError("l2_penalty: no parameters given")
    return total * (0.5 * weight_decay)


def _grads(parameters: Iterable[Tensor] | Tensor) -> list:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


@replayed
def clip_grad_norm_(
    parameters: Iterable[Tensor] | Tensor,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``;
    returns the norm before clipping (a scalar tensor), as PyTorch."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    if norm_type == float("inf"):
        total = max(float(np.max(np.abs(g.data))) if g.data.size else 0.0 for g in grads)
    else:
        total = float(
            sum(float(np.sum(np.abs(g.data.astype(np.float64)) ** norm_type)) for g in grads)
            ** (1.0 / norm_type)
        )
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}"
        )
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g.data *= g.data.dtype.type(scale)
    return Tensor(total)


@replayed
def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    for g in _grads(parameters):
        np.clip(g.data, -clip_value, clip_value, out=g.data)
