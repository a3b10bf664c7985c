"""gradcheck and gradgradcheck: is the backward pass right?

The derivative of f at x along e_j is approximately (f(x + eps e_j) - f(x - eps e_j)) / (2 eps),
with an error of order eps^2 (central differences). In float64 with eps = 1e-6 that leaves
about 1e-10 of truncation and rounding error, so any real mistake in a backward formula shows.

Two modes:
- ``mode="full"`` builds the whole Jacobian both ways: one backward pass per output element,
  two forward passes per input element. Exact and thorough, for small inputs.
- ``mode="directional"`` compares random directional derivatives v^T J u computed both ways,
  for ``n_directions`` independent pairs (u, v): one backward and two forward passes per
  pair, for large inputs (convolution, attention). An error confined to a few elements is
  weighted by their random coefficients; several pairs make it unlikely that all of them
  are small enough to hide it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import autograd
from minigrad.autograd import enable_grad, no_grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when analytic and numeric derivatives disagree."""


def _as_tuple(x: Any) -> tuple:
    return x if isinstance(x, tuple) else (x,)


def _float_outputs(out: Any) -> list[Tensor]:
    return [o for o in _as_tuple(out) if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _check_inputs(inputs: Sequence[Any], who: str, float32: bool = False) -> list[int]:
    diff = []
    allowed = (np.float64, np.float32) if float32 else (np.float64,)
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad:
            if t.dtype not in allowed:
                raise ValueError(
                    f"{who}: input {i} is {t.dtype}; finite differences need float64 inputs "
                    f"{'(or float32 ones, checked against float64) ' if float32 else ''}"
                    "(use .double())"
                )
            diff.append(i)
    if not diff:
        raise ValueError(f"{who}: no input requires grad, so there is nothing to check")
    if len({inputs[i].dtype for i in diff}) > 1:
        raise ValueError(f"{who}: the inputs that require grad must share one dtype")
    return diff


# float32 gradients are checked against float64 finite differences: their own rounding
# (about 1e-7 relative per op, more where an op sums many terms) sets these tolerances.
FLOAT32_TOLERANCES = {"atol": 1e-4, "rtol": 1e-3}


def _evaluate(
    fn: Callable, inputs: Sequence[Any], diff: list[int], arrays: list[np.ndarray]
) -> np.ndarray:
    """f at the given values of the differentiable inputs, all float outputs flattened."""
    args = list(inputs)
    for i, a in zip(diff, arrays):
        args[i] = Tensor._from_array(a)
    with no_grad():
        outs = _float_outputs(fn(*args))
    if not outs:
        return np.zeros(0)
    return np.concatenate([o.data.astype(np.float64).ravel() for o in outs])


def _vjp(
    fn: Callable, inputs: Sequence[Any], diff: list[int], v_flat: np.ndarray
) -> list[np.ndarray]:
    """v^T J for each differentiable input (zeros where the output does not depend on it)."""
    outs = _float_outputs(fn(*inputs))
    targets = [inputs[i] for i in diff]
    result = [np.zeros(t.shape) for t in targets]
    pairs, start = [], 0
    for o in outs:
        n = o.data.size
        if o.requires_grad:
            pairs.append((o, v_flat[start : start + n].reshape(o.shape).astype(o.dtype)))
        start += n
    if not pairs:
        return result
    grads = autograd.grad(
        [o for o, _ in pairs], targets, [Tensor._from_array(v) for _, v in pairs], allow_unused=True
    )
    return [r if g is None else g.data.astype(np.float64) for r, g in zip(result, grads)]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float | None = None,
    rtol: float | None = None,
    mode: str = "full",
    seed: int = 0,
    raise_exception: bool = True,
    n_directions: int = 4,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central finite differences.

    ``inputs`` are the positional arguments of ``fn``; those that are tensors with
    ``requires_grad=True`` are checked, the rest are held fixed. ``fn`` returns a tensor or a
    tuple (non-float outputs are ignored). An element passes when
    ``|analytic - numeric| <= atol + rtol * |numeric|`` (by default atol 1e-5, rtol 1e-3).

    Float64 inputs are the exact check. Float32 inputs check the float32 backward (the
    kernels' float32 paths) against finite differences taken in float64 at the same values,
    with ``FLOAT32_TOLERANCES`` by default. On failure raises ``GradcheckError`` naming the
    worst element (input, index, output, analytic and numeric values), or returns False if
    ``raise_exception=False``.
    """
    inputs = list(_as_tuple(inputs) if not isinstance(inputs, list) else inputs)
    diff = _check_inputs(inputs, "gradcheck", float32=True)
    single = inputs[diff[0]].dtype == np.float32
    atol = (FLOAT32_TOLERANCES["atol"] if single else 1e-5) if atol is None else atol
    rtol = (FLOAT32_TOLERANCES["rtol"] if single else 1e-3) if rtol is None else rtol
    base = [inputs[i].data.astype(np.float64) for i in diff]
    f0 = _evaluate(fn, inputs, diff, base)
    rng = np.random.default_rng(seed)

    if mode == "directional":
        msg = None
        for k in range(n_directions):
            u = [rng.standard_normal(a.shape) for a in base]
            v = rng.standard_normal(f0.shape)
            plus = _evaluate(fn, inputs, diff, [a + eps * d for a, d in zip(base, u)])
            minus = _evaluate(fn, inputs, diff, [a - eps * d for a, d in zip(base, u)])
            numeric = float(v @ (plus - minus) / (2 * eps))
            analytic = float(sum(np.sum(g * d) for g, d in zip(_vjp(fn, inputs, diff, v), u)))
            if abs(analytic - numeric) > atol + rtol * abs(numeric):
                msg = (
                    f"gradcheck (directional, direction {k}) failed: v^T J u analytic "
                    f"{analytic:.10g}, numeric {numeric:.10g} (|diff| "
                    f"{abs(analytic - numeric):.3g} > atol + rtol*|numeric| = "
                    f"{atol + rtol * abs(numeric):.3g})"
                )
                break
        if msg is None:
            return True
    elif mode == "full":
        n_out = f0.size
        numeric = [np.zeros((n_out, a.size)) for a in base]
        for k, a in enumerate(base):
            for j in range(a.size):
                shifted = [b.copy() for b in base]
                flat = shifted[k].reshape(-1)
                flat[j] = a.flat[j] + eps
                plus = _evaluate(fn, inputs, diff, shifted)
                flat[j] = a.flat[j] - eps
                minus = _evaluate(fn, inputs, diff, shifted)
                numeric[k][:, j] = (plus - minus) / (2 * eps)
        analytic = [np.zeros((n_out, a.size)) for a in base]
        for r in range(n_out):
            onehot = np.zeros(n_out)
            onehot[r] = 1.0
            for k, g in enumerate(_vjp(fn, inputs, diff, onehot)):
                analytic[k][r] = g.reshape(-1)
        worst = None
        for k, (an, nu) in enumerate(zip(analytic, numeric)):
            if an.size == 0:
                continue
            excess = np.abs(an - nu) - (atol + rtol * np.abs(nu))
            r, j = np.unravel_index(np.argmax(excess), excess.shape)
            if excess[r, j] > 0 and (worst is None or excess[r, j] > worst[0]):
                worst = (excess[r, j], k, r, j, an[r, j], nu[r, j])
        if worst is None:
            return True
        _, k, r, j, an_v, nu_v = worst
        index = np.unravel_index(j, base[k].shape)
        msg = (
            f"gradcheck failed: input {diff[k]} (shape {base[k].shape}) at index "
            f"{tuple(int(i) for i in index)}, output element {r}: analytic {an_v:.10g}, numeric "
            f"{nu_v:.10g} (|diff| {abs(an_v - nu_v):.3g} > atol + rtol*|numeric| = "
            f"{atol + rtol * abs(nu_v):.3g})"
        )
    else:
        raise ValueError(f"gradcheck: mode must be 'full' or 'directional', got {mode!r}")
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    seed: int = 0,
    raise_exception: bool = True,
    n_directions: int = 4,
) -> bool:
    """Check second derivatives: gradcheck of ``x, v -> grad(fn(x), x, v, create_graph=True)``.

    ``grad_outputs`` (the v) default to random float64 tensors, which are checked as inputs
    too, so both d/dx and d/dv of the first gradient are verified.
    """
    inputs = list(_as_tuple(inputs) if not isinstance(inputs, list) else inputs)
    diff = _check_inputs(inputs, "gradgradcheck")
    outs = _float_outputs(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = [
            Tensor(rng.standard_normal(o.shape), requires_grad=True, dtype=np.float64) for o in outs
        ]
    grad_outputs = list(grad_outputs)
    n = len(inputs)

    def first_derivative(*args: Any) -> tuple:
        xs, vs = list(args[:n]), list(args[n:])
        for i in diff:  # on the finite-difference path the inputs arrive as plain tensors
            if not xs[i].requires_grad:
                xs[i].requires_grad_()
        with enable_grad():
            return _first_grads(xs, vs)

    def _first_grads(xs: list, vs: list) -> tuple:
        ys = _float_outputs(fn(*xs))
        pairs = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
        if not pairs:
            return ()
        grads = autograd.grad(
            [y for y, _ in pairs],
            [xs[i] for i in diff],
            [v for _, v in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        first_derivative,
        inputs + grad_outputs,
        eps,
        atol,
        rtol,
        mode,
        seed,
        raise_exception,
        n_directions,
    )


def gradcheck_module(
    module: Any,
    inputs: Sequence[Any],
    mode: str = "full",
    **kwargs: Any,
) -> bool:
    """gradcheck of a whole ``minigrad.nn.Module``: the gradients of its output with respect
    to every float64 input that requires grad *and* to every parameter (a float64 module:
    call ``.double()`` first). Runs the module as it is (set ``eval()`` or dropout 0 for a
    deterministic function). Other keywords go to ``gradcheck``."""
    from minigrad.nn.utils import functional_call

    inputs = list(_as_tuple(inputs) if not isinstance(inputs, list) else inputs)
    names, params = zip(*module.named_parameters()) if list(module.parameters()) else ((), ())
    n = len(inputs)

    def call(*args: Any) -> Any:
        return functional_call(module, dict(zip(names, args[n:])), tuple(args[:n]))

    return gradcheck(call, inputs + list(params), mode=mode, **kwargs)
