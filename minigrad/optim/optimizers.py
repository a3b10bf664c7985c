"""SGD, Adam, AdamW, RMSprop and Adagrad with PyTorch's defaults and formulas (the formulas are
written out in kernels/optim.py, beside the fused kernels that apply them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.optim.optimizer import Optimizer


def _zeros(p: np.ndarray) -> np.ndarray:
    return np.zeros_like(p)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (heavy ball or Nesterov), dampening
    and weight decay (coupled L2: ``weight_decay * p`` is added to the gradient)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        first = False
        if group["momentum"] != 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = _zeros(p)
            first = True
        backend.optim.sgd_step(
            p,
            grad,
            state.get("momentum_buffer"),
            group["lr"],
            group["momentum"],
            group["dampening"],
            group["nesterov"],
            group["weight_decay"],
            first,
        )


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction, optional AMSGrad, and coupled weight decay
    (added to the gradient). For decoupled weight decay use AdamW."""

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        name = type(self).__name__
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{name}: eps must be >= 0, got {eps}")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = _zeros(p)
            state["exp_avg_sq"] = _zeros(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        backend.optim.adam_step(
            p,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            state.get("max_exp_avg_sq"),
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            self._decoupled,
            group["amsgrad"],
            state["step"],
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): each step first shrinks the
    weights by ``lr * weight_decay * p``, outside the adaptive update. Default
    weight_decay 0.01, as PyTorch."""

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide the gradient by a running RMS of recent gradients; optional
    momentum and the centered variant (subtract the running mean's square)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha}")
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = _zeros(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = _zeros(p)
            if group["centered"]:
                state["grad_avg"] = _zeros(p)
        state["step"] += 1
        backend.optim.rmsprop_step(
            p,
            grad,
            state["square_avg"],
            state.get("grad_avg"),
            state.get("momentum_buffer"),
            group["lr"],
            group["alpha"],
            group["eps"],
            group["weight_decay"],
            group["momentum"],
            group["centered"],
        )


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): per-element step sizes from the sum of squared gradients."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        if "step" not in state:
            state["step"] = 0
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        backend.optim.adagrad_step(
            p,
            grad,
            state["sum"],
            group["lr"],
            group["lr_decay"],
            group["eps"],
            group["weight_decay"],
            state["step"],
        )


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012): the step is the gradient scaled by the ratio of two running
    RMS values, of past updates and of past gradients, so it carries the parameter's units
    and needs no hand-tuned rate (``lr`` scales it, 1.0 by default, as PyTorch). Kim (2014)
    trained his sentence CNN with it (rho 0.95)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: rho must be in [0, 1], got {rho}")
        if eps < 0:
            raise ValueError(f"Adadelta: eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, p, grad, state, group):
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = _zeros(p)
            state["acc_delta"] = _zeros(p)
        state["step"] += 1
        backend.optim.adadelta_step(
            p,
            grad,
            state["square_avg"],
            state["acc_delta"],
            group["lr"],
            group["rho"],
            group["eps"],
            group["weight_decay"],
        )
