"""Keras losses and metrics by name.

Keras's losses take probabilities (the output of a final sigmoid or softmax) unless
``from_logits=True``; probabilities are clipped to [1e-7, 1 - 1e-7] before the log, as Keras
does. Each loss is averaged over the last axis, then over the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import derived
from minigrad.nn import functional as F
from minigrad.ops.elementwise import clamp, log
from minigrad.ops.reduce import log_softmax, mean
from minigrad.ops.reduce import sum as _sum
from minigrad.tensor import Tensor

EPSILON = 1e-7


def _like(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """y_true reshaped to y_pred's shape when they hold as many numbers ((N,) vs (N, 1))."""
    if y_true.shape != y_pred.shape and y_true.data.size == y_pred.data.size:
        return y_true.reshape(y_pred.shape)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"keras loss: targets of shape {y_true.shape} for predictions {y_pred.shape}"
        )
    return y_true


class Loss:
    sparse = False  # targets are class ids, not values of y_pred's shape
    name = "loss"

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = from_logits

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return mean(self.per_sample(y_true, y_pred))


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def per_sample(self, y_true, y_pred):
        y = _like(y_true, y_pred)
        if self.from_logits:
            losses = F.binary_cross_entropy_with_logits(y_pred, y, reduction="none")
        else:
            p = clamp(y_pred, EPSILON, 1 - EPSILON)
            losses = -(y * log(p) + (1 - y) * log(1 - p))
        return mean(losses, -1) if losses.ndim > 1 else losses


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def per_sample(self, y_true, y_pred):
        y = _like(y_true, y_pred)
        if self.from_logits:
            return -_sum(y * log_softmax(y_pred, -1), -1)
        p = y_pred / _sum(y_pred, -1, keepdim=True)
        return -_sum(y * log(clamp(p, EPSILON, 1 - EPSILON)), -1)


def _class_ids(y: np.ndarray) -> np.ndarray:
    return y.reshape(-1).astype(np.int64)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    sparse = True

    def per_sample(self, y_true, y_pred):
        # an op, not NumPy on y_true.data: a compiled fit step then reads each batch's labels
        # (a copy made on the side would be frozen at the traced batch's)
        labels = derived(_class_ids, y_true).data
        if labels.shape[0] != y_pred.shape[0] or y_pred.ndim != 2:
            raise ValueError(
                f"sparse_categorical_crossentropy: {labels.shape[0]} labels for predictions "
                f"{y_pred.shape} (expected (N, classes))"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= y_pred.shape[1]):
            raise ValueError(
                f"sparse_categorical_crossentropy: label {int(labels.max())} is out of range "
                f"for {y_pred.shape[1]} classes"
            )
        logp = (
            log_softmax(y_pred, -1)
            if self.from_logits
            else log(clamp(y_pred / _sum(y_pred, -1, keepdim=True), EPSILON, 1 - EPSILON))
        )
        return -logp[np.arange(labels.shape[0]), labels]


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        d = y_pred - _like(y_true, y_pred)
        return mean(d * d, -1) if d.ndim > 1 else d * d


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def per_sample(self, y_true, y_pred):
        d = (y_pred - _like(y_true, y_pred)).abs()
        return mean(d, -1) if d.ndim > 1 else d


class _Function(Loss):
    """A user's callable (y_true, y_pred) -> scalar tensor."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.name = fn, getattr(fn, "__name__", "loss")

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


def get(loss: Any) -> Loss:
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        if loss not in _BY_NAME:
            raise ValueError(
                f"compile: unknown loss {loss!r} (known: {', '.join(sorted(_BY_NAME))})"
            )
        return _BY_NAME[loss]()
    if callable(loss):
        return _Function(loss)
    raise TypeError(f"compile: loss must be a name or a callable, got {loss!r}")


# -- metrics: functions of NumPy arrays (y_true, y_pred) -> batch mean -------------------------


def binary_accuracy(y_true, y_pred, threshold=0.5):
    return float(np.mean((y_pred.reshape(-1) > threshold) == (y_true.reshape(-1) > 0.5)))


def categorical_accuracy(y_true, y_pred):
    return float(np.mean(y_true.argmax(-1) == y_pred.argmax(-1)))


def sparse_categorical_accuracy(y_true, y_pred):
    return float(np.mean(y_true.reshape(-1) == y_pred.argmax(-1)))


def _mse(y_true, y_pred):
    return float(np.mean((y_pred.reshape(-1) - y_true.reshape(-1)) ** 2))


def _mae(y_true, y_pred):
    return float(np.mean(np.abs(y_pred.reshape(-1) - y_true.reshape(-1))))


_METRICS = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mse": _mse,
    "mean_squared_error": _mse,
    "mae": _mae,
    "mean_absolute_error": _mae,
}


def metric_name(metric: Any, loss: Any) -> str:
    return metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")


def get_metric(metric: Any, loss: Any) -> Any:
    """A metric by name; 'accuracy' picks the variant that fits the loss, as Keras does."""
    if callable(metric):
        return metric
    if metric in ("accuracy", "acc"):
        kind = get(loss)
        if isinstance(kind, BinaryCrossentropy):
            return binary_accuracy
        if isinstance(kind, SparseCategoricalCrossentropy):
            return sparse_categorical_accuracy
        return categorical_accuracy
    if metric not in _METRICS:
        raise ValueError(
            f"compile: unknown metric {metric!r} (known: accuracy, {', '.join(sorted(_METRICS))})"
        )
    return _METRICS[metric]
