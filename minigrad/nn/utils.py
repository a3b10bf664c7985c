"""Helpers around modules: calling a module with other parameter values, and the explicit
L2 penalty."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
