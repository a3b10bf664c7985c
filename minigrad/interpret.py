"""Attributions: backprop used to explain a prediction.

Every method takes a model (any callable from a Tensor to a Tensor of scores, shape (N, C)
or (N,)), an input ``x`` of shape (N, ...) and the ``target`` class(es), and returns a NumPy
array of x's shape saying how much each input element mattered.

- ``saliency``: |d score / d x| (Simonyan et al. 2014, "Deep inside convolutional networks").
- ``input_x_gradient``: x * d score / d x.
- ``integrated_gradients``: (x - x') * the average gradient on the straight path from the
  baseline x' to x (Sundararajan et al. 2017, "Axiomatic attribution for deep networks");
  ``completeness`` checks that the attributions sum to f(x) - f(x').
- ``smoothgrad``: the gradient averaged over noisy copies of x (Smilkov et al. 2017).
- ``grad_cam``: for a conv net, the named layer's activations weighted by the spatial mean
  of their gradients, through forward and tensor hooks (Selvaraju et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


def _scores(model: Callable, x: Tensor, target: Any) -> Tensor:
    """The sum over the batch of each example's score for its target class."""
    out = model(x)
    if not isinstance(out, Tensor):
        raise TypeError(f"interpret: the model returned {type(out).__name__}, not a Tensor")
    if out.ndim == 1:
        return out.sum()
    if out.ndim != 2:
        raise ValueError(f"interpret: expected scores of shape (N, C) or (N,), got {out.shape}")
    n, c = out.shape
    if target is None:
        raise ValueError(f"interpret: the model gives {c} scores per example; pass target=")
    t = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,))
    if t.min() < 0 or t.max() >= c:
        raise ValueError(f"interpret: target {target} is out of range for {c} classes")
    mask = np.zeros(out.shape, dtype=out.dtype)
    mask[np.arange(n), t] = 1
    return (out * Tensor._from_array(mask)).sum()


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def _baseline(x: Any, baseline: Any) -> np.ndarray:
    """The baseline as an array of x's shape and dtype (zeros when not given)."""
    xa = _array(x)
    if baseline is None:
        return np.zeros_like(xa)
    base = np.asarray(_array(baseline), dtype=xa.dtype)
    if base.shape != xa.shape:
        raise ValueError(f"interpret: baseline shape {base.shape} differs from x's {xa.shape}")
    return base


def _input_gradient(model: Callable, x: Any, target: Any) -> np.ndarray:
    xt = Tensor(_array(x), requires_grad=True)
    _scores(model, xt, target).backward()
    return xt.grad.data.copy()


def saliency(model: Callable, x: Any, target: Any = None, abs: bool = True) -> np.ndarray:
    """|d score_target / d x| (or the signed gradient with ``abs=False``), x's shape."""
    g = _input_gradient(model, x, target)
    return np.abs(g) if abs else g


def input_x_gradient(model: Callable, x: Any, target: Any = None) -> np.ndarray:
    """x * d score_target / d x."""
    xa = _array(x)
    return xa * _input_gradient(model, xa, target)


def integrated_gradients(
    model: Callable, x: Any, target: Any = None, baseline: Any = None, steps: int = 50
) -> np.ndarray:
    """(x - baseline) * mean of d score/dx at baseline + (k/steps)(x - baseline), with
    k = 1/2, 3/2, ... (the midpoint rule; zeros as the default baseline)."""
    if steps < 1:
        raise ValueError(f"integrated_gradients: steps must be >= 1, got {steps}")
    xa, base = _array(x), _baseline(x, baseline)
    total = np.zeros_like(xa, dtype=np.float64)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        total += _input_gradient(model, base + alpha * (xa - base), target)
    return ((xa - base) * total / steps).astype(xa.dtype)


def completeness(
    model: Callable, x: Any, attributions: np.ndarray, target: Any = None, baseline: Any = None
) -> tuple[float, float]:
    """(sum of attributions, f(x) - f(baseline)) per batch summed; IG makes them equal up to
    the error of the path integral's midpoint rule."""
    xa, base = _array(x), _baseline(x, baseline)
    with no_grad():
        fx = _scores(model, Tensor(xa), target).item()
        fb = _scores(model, Tensor(base), target).item()
    return float(np.sum(attributions, dtype=np.float64)), fx - fb


def smoothgrad(
    model: Callable,
    x: Any,
    target: Any = None,
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """The input gradient averaged over ``samples`` copies of x with Gaussian noise of
    standard deviation ``noise * (max(x) - min(x))``."""
    xa = _array(x)
    rng = np.random.default_rng(seed)
    sigma = noise * float(xa.max() - xa.min())
    total = np.zeros_like(xa, dtype=np.float64)
    for _ in range(samples):
        noisy = (xa + rng.normal(0.0, sigma, xa.shape)).astype(xa.dtype)
        total += _input_gradient(model, noisy, target)
    return (total / samples).astype(xa.dtype)


def grad_cam(model: Any, x: Any, layer: str, target: Any = None) -> np.ndarray:
    """Grad-CAM heat map of shape (N, H, W) at the conv layer named ``layer`` (a name from
    ``model.named_modules()``): relu(sum over channels of activation * spatial mean of its
    gradient), scaled to [0, 1] per example. Upsample it to the image to overlay."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise KeyError(
            f"grad_cam: model has no layer {layer!r}; layers: {', '.join(n for n in modules if n)}"
        )
    seen: dict = {}

    def keep_activation(module, args, output):
        if not isinstance(output, Tensor) or output.ndim != 4:
            raise ValueError(
                f"grad_cam: layer {layer!r} gives {getattr(output, 'shape', output)}; "
                "it needs a conv layer with output (N, C, H, W)"
            )
        seen["activation"] = output.data.copy()
        output.register_hook(lambda g: seen.__setitem__("gradient", g.data.copy()))

    handle = modules[layer].register_forward_hook(keep_activation)
    try:
        xt = Tensor(_array(x), requires_grad=True)
        _scores(model, xt, target).backward()
    finally:
        handle.remove()
    a, g = seen["activation"], seen["gradient"]
    weights = g.mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((weights * a).sum(axis=1), 0)
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return cam / np.where(peak > 0, peak, 1)
