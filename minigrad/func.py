"""Function transforms with torch.func's names: ``grad``, ``grad_and_value``, ``vjp``,
``jvp``, ``jacrev``, ``jacfwd``, ``hessian``, ``vmap`` and ``functional_call``.

Each takes a function of tensors and returns a new function (or, for ``vjp`` and ``jvp``,
evaluates at a point). They compose: ``grad(grad(f))`` is the second derivative,
``jacfwd(jacrev(f))`` the Hessian, ``jvp(grad(f), (x,), (v,))`` a Hessian-vector product.

Reverse-mode transforms (grad, vjp, jacrev) run minigrad's backward pass (autograd.py);
forward-mode ones (jvp, jacfwd) carry tangents through the ops (forward_ad.py). Inside
another transform a gradient is taken with ``create_graph=True``, so the outer transform can
differentiate it again; at the outermost level the results are plain (detached) tensors.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import autograd, batching, forward_ad
from minigrad.nn.utils import functional_call
from minigrad.tensor import Tensor

__all__ = [
    "functional_call",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "vjp",
    "vmap",
]

_depth = 0  # how many transforms are running around the current call


class _Transform:
    def __enter__(self) -> None:
        global _depth
        _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        _depth -= 1


def _nested() -> bool:
    """Whether a result must stay differentiable: inside another transform, or while
    tangents are being carried (a jvp over a backward pass)."""
    return _depth > 1 or autograd.forward_hook is not None


def _argnums(argnums: int | Sequence[int], n: int, who: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"{who}: argnums {argnums!r} is out of range for {n} arguments")
    return tuple(a % n for a in nums)


def _differentiable(x: Any, who: str) -> Tensor:
    """``x`` as a tensor gradients can be taken with respect to: itself when it already
    requires grad (an outer transform's input), else a new leaf sharing its data."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{who}: the differentiated arguments must be Tensors, got {type(x)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{who}: can only differentiate floating-point tensors, got {x.dtype}")
    if batching.batch_size is not None:  # inside vmap: one leaf row per sample
        with batching.physical():
            rows = x.data if batching.is_batched(x) else np.repeat(
                x.data[None], batching.batch_size, 0
            )
            return batching.batched(Tensor._from_array(rows).requires_grad_())
    if x.requires_grad and _nested():
        return x
    return Tensor._from_array(x.data).requires_grad_()


def _grads(value: Tensor, inputs: list, create_graph: bool) -> tuple:
    """autograd.grad of ``value``. Inside vmap, once for the whole batch: each sample's value
    depends on its own rows only, so one backward pass gives every sample's gradient."""
    if not batching.is_batched(value):
        return autograd.grad(value, inputs, create_graph=create_graph, allow_unused=True)
    with batching.physical():
        ones = Tensor._from_array(np.ones_like(value.data))
        grads = autograd.grad(value, inputs, ones, create_graph=create_graph, allow_unused=True)
    return tuple(None if g is None else batching.batched(g) for g in grads)


def _finish(t: Tensor | None, like: Tensor) -> Tensor:
    if t is None:
        with batching.physical():
            t = Tensor._from_array(np.zeros_like(like.data))
        return batching.batched(t) if batching.is_batched(like) else t
    return t if _nested() else t.detach()


def _scalar(out: Any, who: str) -> Tensor:
    if not isinstance(out, Tensor) or out.numel() != 1:
        shape = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise RuntimeError(f"{who}: the function must return a scalar tensor, got {shape}")
    return out


# -- reverse mode ----------------------------------------------------------------------------


def grad_and_value(
    func: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable:
    """A function returning ``(gradient, value)`` of the scalar ``func`` with respect to
    argument(s) ``argnums`` (``((gradient, value), aux)`` layout as torch.func when
    ``has_aux``: func returns ``(value, aux)`` and the result is ``(gradient, (value, aux))``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> tuple:
        with _Transform():
            nums = _argnums(argnums, len(args), "grad")
            args = list(args)
            for a in nums:
                args[a] = _differentiable(args[a], "grad")
            with autograd.enable_grad():
                out = func(*args, **kwargs)
                value, aux = out if has_aux else (out, None)
                value = _scalar(value, "grad")
                grads = (
                    _grads(value, [args[a] for a in nums], _nested())
                    if value.requires_grad
                    else (None,) * len(nums)
                )
            grads = tuple(_finish(g, args[a]) for g, a in zip(grads, nums))
            result = grads[0] if isinstance(argnums, int) else grads
            value = value if _nested() else value.detach()
            return (result, (value, aux)) if has_aux else (result, value)

    return wrapper


def grad(func: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The gradient of the scalar ``func`` with respect to argument(s) ``argnums``
    (``torch.func.grad``); with ``has_aux``, ``(gradient, aux)``."""
    both = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g, value = both(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals: Tensor, has_aux: bool = False) -> tuple:
    """``(output, vjp_fn)``: ``vjp_fn(cotangent)`` returns one gradient per primal, the
    vector-Jacobian product ``cotangent^T J`` (``torch.func.vjp``)."""
    with _Transform():
        inputs = [_differentiable(p, "vjp") for p in primals]
        with autograd.enable_grad():
            out = func(*inputs)
        out, aux = out if has_aux else (out, None)
    if not isinstance(out, Tensor):
        raise TypeError(f"vjp: the function must return a Tensor, got {type(out).__name__}")
    nested = _nested()

    def vjp_fn(cotangent: Tensor) -> tuple:
        if tuple(cotangent.shape) != tuple(out.shape):
            raise ValueError(
                f"vjp: cotangent of shape {cotangent.shape} for an output of shape {out.shape}"
            )
        if not out.requires_grad:
            return tuple(_finish(None, x) for x in inputs)
        grads = autograd.grad(
            out, inputs, cotangent, retain_graph=True, create_graph=nested, allow_unused=True
        )
        return tuple(_finish(g, x) for g, x in zip(grads, inputs))

    shown = out if nested else out.detach()
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def jacrev(func: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian by reverse mode, one vjp per output element (``torch.func.jacrev``):
    of shape output.shape + input.shape, a tuple when ``argnums`` is a tuple."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), "jacrev")

        def of_selected(*chosen: Tensor) -> Tensor:
            full = list(args)
            for a, c in zip(nums, chosen):
                full[a] = c
            return func(*full, **kwargs)

        out, pullback = vjp(of_selected, *[args[a] for a in nums])
        rows: list[list[Tensor]] = [[] for _ in nums]
        for k in range(out.data.size):
            basis = np.zeros(out.data.size, out.data.dtype)
            basis[k] = 1
            grads = pullback(Tensor._from_array(basis.reshape(out.shape)))
            for r, g in zip(rows, grads):
                r.append(g)
        jacobians = tuple(_stack(r, out.shape, args[a].shape) for r, a in zip(rows, nums))
        return jacobians[0] if isinstance(argnums, int) else jacobians

    return wrapper


def _stack(rows: list[Tensor], out_shape: tuple, in_shape: tuple) -> Tensor:
    from minigrad.ops.movement import reshape, stack

    if not rows:
        return Tensor._from_array(np.zeros(tuple(out_shape) + tuple(in_shape)))
    return reshape(stack(rows, 0), tuple(out_shape) + tuple(in_shape))


# -- forward mode ----------------------------------------------------------------------------


def jvp(func: Callable, primals: Sequence[Tensor], tangents: Sequence[Tensor]) -> tuple:
    """``(output, J tangent)`` of ``func`` at ``primals`` in the direction ``tangents``, in
    one forward pass (``torch.func.jvp``): every op passes its inputs' tangents on."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for k, (p, t) in enumerate(zip(primals, tangents)):
        if not isinstance(p, Tensor) or not isinstance(t, Tensor):
            raise TypeError(f"jvp: primal and tangent {k} must be Tensors")
        if tuple(p.shape) != tuple(t.shape):
            raise ValueError(f"jvp: primal {k} has shape {p.shape}, its tangent {t.shape}")
    with _Transform(), forward_ad.dual_level():
        inputs = [Tensor._from_array(p.data) if not p.requires_grad else p for p in primals]
        for x, t in zip(inputs, tangents):
            forward_ad.set_tangent(x, t.detach())
        out = func(*inputs)
        if not isinstance(out, Tensor):
            raise TypeError(f"jvp: the function must return a Tensor, got {type(out).__name__}")
        tangent = forward_ad.tangent_of(out)
    tangent = tangent if tangent is not None else Tensor._from_array(np.zeros_like(out.data))
    return (out if _depth else out.detach()), tangent.detach()


def jacfwd(func: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian by forward mode, one jvp per input element (``torch.func.jacfwd``): of
    shape output.shape + input.shape."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), "jacfwd")
        jacobians = []
        for a in nums:
            x = args[a]
            columns, out_shape = [], None
            for k in range(x.data.size):
                basis = np.zeros(x.data.size, x.data.dtype)
                basis[k] = 1
                tangents = [
                    Tensor._from_array(basis.reshape(x.shape)) if i == a
                    else Tensor._from_array(np.zeros_like(p.data))
                    for i, p in enumerate(args) if isinstance(p, Tensor)
                ]
                tensor_args = [p for p in args if isinstance(p, Tensor)]

                def call(*tensors: Tensor) -> Tensor:
                    it = iter(tensors)
                    full = [next(it) if isinstance(p, Tensor) else p for p in args]
                    return func(*full, **kwargs)

                out, column = jvp(call, tensor_args, tangents)
                out_shape = out.shape
                columns.append(column.data.reshape(-1))
            size = int(np.prod(out_shape)) if out_shape is not None else 0
            matrix = np.stack(columns, -1) if columns else np.zeros((size, 0))
            jacobians.append(
                Tensor._from_array(matrix.reshape(tuple(out_shape or ()) + tuple(x.shape)))
            )
        return jacobians[0] if isinstance(argnums, int) else tuple(jacobians)

    return wrapper


def hessian(func: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Hessian of the scalar ``func``: ``jacfwd(jacrev(func))``, forward mode over the
    backward pass, as torch.func defines it."""
    return jacfwd(jacrev(func, argnums), argnums)


# -- vmap ------------------------------------------------------------------------------------

_noted: set = set()


def vmap(
    func: Callable, in_dims: int | None | Sequence[int | None] = 0, out_dims: int = 0
) -> Callable:
    """``func``, written for one sample, mapped over a batch dim of its inputs
    (``torch.func.vmap``): ``in_dims`` gives each argument's batch dim (None: the same for
    every sample), ``out_dims`` the outputs'. Ops with a batching rule run once on the whole
    batch, the others once per sample (minigrad/batching.py). A function that reads a
    batched tensor's array, or a vmap inside a vmap, runs once per sample instead; either
    way a line on stderr says so, once. Gradients flow through it, and ``vmap(grad(f))``
    gives per-sample gradients."""

    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        dims = (in_dims,) * len(args) if not isinstance(in_dims, (tuple, list)) else in_dims
        if len(dims) != len(args):
            raise ValueError(f"vmap: in_dims {in_dims!r} for {len(args)} arguments")
        sizes = {
            a.shape[d] for a, d in zip(args, dims) if d is not None and isinstance(a, Tensor)
        }
        if len(sizes) != 1:
            raise ValueError(
                f"vmap: the batched arguments must share one batch size, got {sorted(sizes)}"
                if sizes else "vmap: at least one argument must be batched (in_dims not None)"
            )
        (n,) = sizes
        try:
            return _batched_call(func, args, dims, n, out_dims)
        except batching.Unbatchable as why:
            key = getattr(func, "__qualname__", repr(func))
            if key not in _noted:
                _noted.add(key)
                print(f"minigrad.func.vmap: {key} runs once per sample ({why})", file=sys.stderr)
            return _looped_call(func, args, dims, n, out_dims)

    return wrapper


def _batched_call(func, args, dims, n, out_dims):
    inputs = [
        a if d is None or not isinstance(a, Tensor) else batching.batched(movedim(a, d, 0))
        for a, d in zip(args, dims)
    ]
    with batching.batch_level(n):
        out = func(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    results = []
    with batching.physical():
        for o in outs:
            if not isinstance(o, Tensor):
                raise TypeError(f"vmap: the function must return Tensors, got {type(o).__name__}")
            if batching.is_batched(o):
                o = batching.unbatched(o)
            else:  # the same for every sample
                o = o.unsqueeze(0).expand(n, *o.shape)
            results.append(movedim(o, 0, out_dims) if out_dims else o)
    return tuple(results) if isinstance(out, tuple) else results[0]


def _looped_call(func, args, dims, n, out_dims):
    from minigrad.ops.movement import stack

    outs = []
    for i in range(n):
        outs.append(func(*[
            a if d is None or not isinstance(a, Tensor) else a[(slice(None),) * d + (i,)]
            for a, d in zip(args, dims)
        ]))
    if isinstance(outs[0], tuple):
        return tuple(stack([o[k] for o in outs], out_dims) for k in range(len(outs[0])))
    return stack(outs, out_dims)


def movedim(t: Tensor, source: int, destination: int) -> Tensor:
    """``t`` with dim ``source`` moved to ``destination``: always a new tensor (a view)."""
    from minigrad.ops.movement import Permute

    order = list(range(t.ndim))
    order.insert(destination % t.ndim, order.pop(source % t.ndim))
    return Permute.apply(t, dims=tuple(order))
