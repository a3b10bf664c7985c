"""Keras optimizers by name or as objects, with Keras's defaults; each builds the matching
minigrad optimizer once the model's weights exist."""

from __future__ import annotations

from typing import Any

from minigrad import optim


class KerasOptimizer:
    def __init__(self, learning_rate: float, **settings: Any) -> None:
        self.learning_rate, self.settings = learning_rate, settings

    def build(self, params: Any) -> optim.Optimizer:
        raise NotImplementedError


class SGD(KerasOptimizer):
    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov)

    def build(self, params):
        return optim.SGD(params, lr=self.learning_rate, **self.settings)


class Adam(KerasOptimizer):
    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ):
        super().__init__(learning_rate, betas=(beta_1, beta_2), eps=epsilon, amsgrad=amsgrad)

    def build(self, params):
        return optim.Adam(params, lr=self.learning_rate, **self.settings)


class AdamW(KerasOptimizer):
    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ):
        super().__init__(
            learning_rate, weight_decay=weight_decay, betas=(beta_1, beta_2), eps=epsilon
        )

    def build(self, params):
        return optim.AdamW(params, lr=self.learning_rate, **self.settings)


class RMSprop(KerasOptimizer):
    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
    ):
        super().__init__(
            learning_rate, alpha=rho, momentum=momentum, eps=epsilon, centered=centered
        )

    def build(self, params):
        return optim.RMSprop(params, lr=self.learning_rate, **self.settings)


class Adagrad(KerasOptimizer):
    def __init__(
        self,
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
    ):
        super().__init__(
            learning_rate, initial_accumulator_value=initial_accumulator_value, eps=epsilon
        )

    def build(self, params):
        return optim.Adagrad(params, lr=self.learning_rate, **self.settings)


class Adadelta(KerasOptimizer):
    def __init__(self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float = 1e-7):
        super().__init__(learning_rate, rho=rho, eps=epsilon)

    def build(self, params):
        return optim.Adadelta(params, lr=self.learning_rate, **self.settings)


_BY_NAME = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
}


def get(optimizer: Any) -> KerasOptimizer:
    if isinstance(optimizer, KerasOptimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(
        f"compile: unknown optimizer {optimizer!r} (known: {', '.join(sorted(_BY_NAME))}, or a "
        "minigrad.keras.optimizers object, or a minigrad.optim optimizer)"
    )
