"""Forward-mode automatic differentiation: tangents that travel with the forward pass.

Reverse mode (minigrad/autograd.py) runs the program, then walks the graph backwards from
one output and gives the gradient of that output with respect to every input: one vector-
Jacobian product per backward pass. Forward mode goes the other way. Every input carries a
*tangent*, a direction of change of the same shape, and each op, as it runs, turns the
tangents of its inputs into the tangent of its output: the Jacobian-vector product J t.
When the program ends, the output's tangent is the directional derivative, in one pass and
with no graph kept. It is the cheap mode when there are few inputs and many outputs
(``jacfwd``), and, run over a backward pass, it gives Hessian-vector products.

How it is wired: while ``dual_level()`` is open, ``autograd.forward_hook`` is set, so
``Function.apply`` calls ``propagate`` after every op. ``propagate`` looks up the inputs'
tangents and applies the op's JVP rule from ``RULES``:

- **linear ops** (reshape, sum, indexing, add, average pooling, ...): the tangent goes
  through the op itself, ``op(t)``;
- **bilinear ops** (mul, matmul, linear, convolution): the product rule,
  ``op(ta, b) + op(a, tb)``;
- **elementwise ops of one input** (exp, tanh, gelu, ...): their Jacobian is diagonal, so
  the JVP is the backward formula applied to the tangent;
- **a Function's own** ``jvp(primals, tangents, **params)``, when it defines one (the way
  a user's op gives its rule);
- **every other op** (softmax, layer_norm, attention, LSTM, ...): by transposing the
  backward, ``J t = d/du <J^T u, t>``: the op is differentiated twice, in reverse, at u = 0.
  Every op supports ``create_graph``, so every op has this rule; it costs about three
  passes of the op instead of one.

The rules run with forward mode off (tangents of tangents are not tracked: one level of
forward mode at a time). Tangents are found by the identity of the tensor's array, so a
saved input that the backward pass rebuilds as a new Tensor keeps its tangent: a jvp over
a backward pass (forward-over-reverse, ``hessian``) sees the tangents of the saved values.
A consequence: ``x.detach()`` shares x's array, and so its tangent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import autograd
from minigrad.tensor import Tensor

# id(array) -> (array, tangent). The array is held so that its id is not reused while the
# level is open.
_tangents: dict[int, tuple[np.ndarray, Tensor]] = {}


def tangent_of(t: Tensor) -> Tensor | None:
    """The tangent ``t`` carries in the open dual level, or None."""
    entry = _tangents.get(id(t.data))
    return entry[1] if entry is not None and entry[0] is t.data else None


def set_tangent(t: Tensor, tangent: Tensor) -> None:
    if tangent.shape != t.shape:
        raise ValueError(f"jvp: tangent of shape {tangent.shape} for a tensor of shape {t.shape}")
    if tangent.dtype != t.dtype:
        tangent = Tensor._from_array(tangent.data.astype(t.dtype))
    _tangents[id(t.data)] = (t.data, tangent)


class dual_level:
    """``with dual_level():`` tangents set with ``set_tangent`` flow through every op run in
    the block (``torch.autograd.forward_ad.dual_level``). One level at a time."""

    def __enter__(self) -> dual_level:
        if autograd.forward_hook is not None:
            raise NotImplementedError(
                "jvp: nested forward mode (a jvp inside a jvp, jacfwd of jacfwd) is not "
                "supported; use jacrev for the inner or the outer derivative"
            )
        autograd.forward_hook = propagate
        return self

    def __exit__(self, *exc: object) -> None:
        autograd.forward_hook = None
        _tangents.clear()


def propagate(cls: type, inputs: tuple, params: dict, result: Tensor) -> None:
    """Called by Function.apply after each op while a dual level is open."""
    tangents = [tangent_of(t) for t in inputs]
    if result.data.dtype.kind != "f" or all(t is None for t in tangents):
        return
    autograd.forward_hook = None  # the rule's own ops carry no tangents
    try:
        rule = RULES.get(cls) or (_own_rule if hasattr(cls, "jvp") else _transposed_backward)
        tangent = rule(cls, inputs, tangents, params)
    finally:
        autograd.forward_hook = propagate
    if tangent is not None:
        set_tangent(result, tangent)


# -- the rules -------------------------------------------------------------------------------


def _or_zeros(x: Tensor, t: Tensor | None) -> Tensor:
    """A float input's tangent (zeros when it has none); other inputs (a boolean condition,
    integer indices) pass as they are."""
    if x.data.dtype.kind != "f":
        return x
    return t if t is not None else Tensor._from_array(np.zeros_like(x.data))


def _linear(cls, inputs, tangents, params):
    """For ops linear in all their float inputs together: J t = op(t)."""
    return cls.apply(*[_or_zeros(x, t) for x, t in zip(inputs, tangents)], **params)


def _pad(cls, inputs, tangents, params):
    """Padding with a constant is affine: the tangent is padded with zeros."""
    return cls.apply(tangents[0], **{**params, "value": 0.0})


def _bilinear(cls, inputs, tangents, params):
    """For ops linear in each of two inputs: d(a . b) = da . b + a . db (a third input, a
    bias, enters linearly)."""
    a, b, *bias = inputs
    ta, tb, *tbias = tangents
    terms = []
    if ta is not None:
        terms.append(cls.apply(ta, b, **params))
    if tb is not None:
        terms.append(cls.apply(a, tb, **params))
    if bias and tbias[0] is not None:
        if not terms:
            terms.append(cls.apply(a, b, **params) * 0.0)
        # a linear layer's bias runs along the last dim, a convolution's along dim 1
        trailing = 0 if cls.__name__ == "Linear" else terms[0].ndim - 2
        terms.append(tbias[0].reshape((-1,) + (1,) * trailing))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _elementwise(cls, inputs, tangents, params):
    """For elementwise ops of one input: the Jacobian is diagonal, so J t = J^T t, the
    backward formula applied to the tangent."""
    with autograd.enable_grad():
        x = Tensor._from_array(inputs[0].data).requires_grad_()
        y = cls.apply(x, **params)
        (jt,) = autograd.grad(y, [x], tangents[0])
    return jt


def _transposed_backward(cls, inputs, tangents, params):
    """For any op: J t = d/du <J^T u, t>, taken at u = 0. The op's backward, run with
    create_graph, is linear in u; its gradient with respect to u is J t."""
    with autograd.enable_grad():
        primals = [Tensor._from_array(x.data) for x in inputs]
        wrt = [p.requires_grad_() for p, t in zip(primals, tangents) if t is not None]
        given = [t for t in tangents if t is not None]
        y = cls.apply(*primals, **params)
        u = Tensor(np.zeros_like(y.data), requires_grad=True)
        vjps = autograd.grad(y, wrt, u, create_graph=True, allow_unused=True)
        inner = [(g * t).sum() for g, t in zip(vjps, given) if g is not None and g.requires_grad]
        if not inner:
            return Tensor._from_array(np.zeros_like(y.data))
        total = inner[0]
        for term in inner[1:]:
            total = total + term
        (jt,) = autograd.grad(total, [u], allow_unused=True)
    return jt if jt is not None else Tensor._from_array(np.zeros_like(y.data))


def _own_rule(cls, inputs, tangents, params):
    """A Function's own rule, ``jvp(primals, tangents, **params)``: the primal inputs and
    their tangents as Tensors (None where an input has none), returning the output's
    tangent, written with minigrad's ops."""
    return cls.jvp(list(inputs), list(tangents), **params)


def _refuse_in_place(cls, inputs, tangents, params):
    raise NotImplementedError(
        f"jvp: the in-place write {cls.__name__} is not supported in forward mode; write the "
        "function without in-place ops (x = x + 1, not x += 1)"
    )


def _rules() -> dict[type, Any]:
    from importlib import import_module

    from minigrad.nn.hooks import BackwardHookIdentity

    # the modules (minigrad.ops re-exports functions of the same names)
    conv, elementwise, indexing, matmul, movement, pool, reduce = (
        import_module(f"minigrad.ops.{name}")
        for name in ("conv", "elementwise", "indexing", "matmul", "movement", "pool", "reduce")
    )

    linear = [
        elementwise.Add, elementwise.Sub, elementwise.Neg, elementwise.Cast, elementwise.Clone,
        reduce.Sum, movement.Reshape, movement.Permute, movement.Expand,
        movement.Cat, indexing.GetItem, indexing.Where, indexing.AccumulateAt,
        indexing.IndexPut, pool.AvgPool2d, pool.AvgPool2dGrad, pool.AdaptiveAvgPool2d,
        pool.AdaptiveAvgPool2dGrad, BackwardHookIdentity,
    ]
    bilinear = [
        elementwise.Mul, matmul.MatMul, matmul.Linear, conv.Conv2d, conv.Conv2dInputGrad,
        conv.Conv2dWeightGrad,
    ]
    one_input = [
        elementwise.Exp, elementwise.Log, elementwise.Sqrt, elementwise.Sin, elementwise.Cos,
        elementwise.Abs, elementwise.Clamp, elementwise.Relu, elementwise.Sigmoid,
        elementwise.LogSigmoid, elementwise.Tanh, elementwise.LeakyRelu, elementwise.Elu,
        elementwise.Erf, elementwise.Gelu, elementwise.Silu, elementwise.Softplus,
    ]
    rules: dict[type, Any] = {cls: _linear for cls in linear}
    rules.update({cls: _bilinear for cls in bilinear})
    rules.update({cls: _elementwise for cls in one_input})
    rules[movement.Pad] = _pad
    rules[autograd.CopySlices] = _refuse_in_place
    return rules


RULES: dict[type, Any] = autograd.OpTable(_rules)
