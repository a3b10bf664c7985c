"""Batching for ``minigrad.func.vmap``: a function written for one sample runs on a batch.

Inside ``vmap`` each batched argument becomes a ``BatchedTensor``: its array holds the
whole batch along dim 0, but its ``shape``, ``ndim`` and ``len`` are those of one sample, so
the function reads the shapes it was written for. While the batch is open,
``autograd.batch_hook`` is set, and ``Function.apply`` hands every op with a batched input
to ``run``, which either

- applies the op's **batching rule** from ``RULES``: the same op, run once on the whole
  batch with its parameters moved past the batch dim (a sum over dim 1 of a sample is a sum
  over dim 2 of the batch; a reshape to (6,) becomes one to (B, 6)); or
- where the op has no rule, **loops**: the op runs once per sample and the results are
  stacked; the first time an op loops, one line on stderr says so.

The results are BatchedTensors again, recorded on the ordinary graph, so gradients flow
through a vmap, and ``grad`` inside it differentiates every sample at once (``vmap(grad(f))``
gives per-sample gradients in one backward pass).

A function may also read a batched tensor's array itself (``.data``, ``.numpy()``,
``.item()``, printing it), which no rule can see. Then the batched run stops and vmap runs
the whole function once per sample instead, saying so once: the results are the same, only
slower. So a batched run is never silently wrong; at worst it is a loop.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from minigrad import autograd
from minigrad.tensor import Tensor

_DATA = Tensor.__dict__["data"]  # the slot that holds a tensor's array
_physical = 0  # > 0 while a rule (or vmap, or grad) works on whole arrays
batch_size: int | None = None  # of the open batch


class Unbatchable(Exception):
    """Raised when the function reads a batched tensor's array: vmap then loops."""


class BatchedTensor(Tensor):
    """A batch of tensors along dim 0 of its array, showing the shape of one sample."""

    __slots__ = ()

    @property
    def data(self) -> np.ndarray:
        if not _physical:
            raise Unbatchable("the function reads a batched tensor's array")
        return _DATA.__get__(self)

    @data.setter
    def data(self, value: np.ndarray) -> None:
        _DATA.__set__(self, value)

    @property
    def shape(self) -> tuple[int, ...]:
        whole = _DATA.__get__(self).shape
        return whole if _physical else whole[1:]

    @property
    def dtype(self) -> np.dtype:
        return _DATA.__get__(self).dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def detach(self) -> Tensor:
        with physical():
            return batched(super().detach())

    def _compare(self, other: Any, ufunc: Any) -> Tensor:
        with physical():
            a, b = _aligned((self, _as_tensor(other)), batch_size)
            return batched(Tensor._from_array(ufunc(a.data, b.data)))

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    __hash__ = Tensor.__hash__

    def __repr__(self) -> str:
        return f"BatchedTensor(batch of {batch_size}, sample shape {self.shape})"


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._from_array(np.asarray(x))


def batched(t: Tensor) -> BatchedTensor:
    """Mark ``t`` (its array batched along dim 0) as a BatchedTensor, in place."""
    t.__class__ = BatchedTensor
    return t


def unbatched(t: Tensor) -> Tensor:
    """The same tensor showing its whole array again, in place."""
    t.__class__ = Tensor
    return t


def is_batched(t: Any) -> bool:
    return type(t) is BatchedTensor


class physical:
    """``with physical():`` batched tensors show whole arrays and ops run as usual (no
    batching rules): how vmap sets up and reads its results, and how ``grad`` runs its
    backward pass inside a batch."""

    def __enter__(self) -> None:
        global _physical
        self._hook, autograd.batch_hook = autograd.batch_hook, None
        _physical += 1

    def __exit__(self, *exc: object) -> None:
        global _physical
        autograd.batch_hook = self._hook
        _physical -= 1


class batch_level:
    """``with batch_level(size):`` ops with BatchedTensor inputs run batched."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self) -> batch_level:
        global batch_size
        if batch_size is not None:
            raise Unbatchable("a vmap inside a vmap")
        if autograd.forward_hook is not None:
            raise Unbatchable("a vmap inside a jvp")
        autograd.batch_hook, batch_size = run, self.size
        return self

    def __exit__(self, *exc: object) -> None:
        global batch_size
        autograd.batch_hook, batch_size = None, None


def run(cls: type, inputs: tuple, params: dict) -> Any:
    """Called by Function.apply while a batch is open; NotImplemented when no input is
    batched (the op then runs as usual)."""
    if not any(type(t) is BatchedTensor for t in inputs):
        return NotImplemented
    with physical():
        rule = RULES.get(cls)
        out = rule(cls, inputs, params, batch_size) if rule else None
        if out is None:
            out = _loop(cls, inputs, params, batch_size)
    return batched(out)


# -- the rules (they run on whole arrays: shapes are the batch's here) ---------------------


def _reshape(t: Tensor, shape: tuple) -> Tensor:
    from minigrad.ops.movement import Reshape

    return Reshape.apply(t, shape=tuple(shape))


def _aligned(inputs: tuple, size: int) -> list:
    """The inputs of a broadcasting op with the batch dim in line: each batched input gets
    ones after its batch dim up to the widest sample rank (NumPy aligns from the right)."""
    rank = max(t.data.ndim - is_batched(t) for t in inputs)
    out = []
    for t in inputs:
        if is_batched(t) and t.data.ndim - 1 < rank:
            t = _reshape(t, (size,) + (1,) * (rank - t.data.ndim + 1) + t.data.shape[1:])
        out.append(t)
    return out


def _all_batched(inputs: tuple, size: int) -> list:
    """Every float input with the batch dim: the unbatched ones repeated along it."""
    from minigrad.ops.movement import Expand

    return [
        t if is_batched(t) or t.data.dtype.kind != "f"
        else Expand.apply(_reshape(t, (1,) + t.data.shape), shape=(size,) + t.data.shape)
        for t in inputs
    ]


def _pointwise(cls, inputs, params, size):
    """Elementwise ops of one input: the batch is just more elements."""
    return cls.apply(*inputs, **params)


def _broadcasting(cls, inputs, params, size):
    return cls.apply(*_aligned(inputs, size), **params)


def _reduction(cls, inputs, params, size):
    moved = dict(params)
    if "dims" in params:
        moved["dims"] = tuple(d + 1 for d in params["dims"])
    if "dim" in params:
        moved["dim"] = params["dim"] + 1
    return cls.apply(*inputs, **moved)


def _reshape_rule(cls, inputs, params, size):
    return cls.apply(inputs[0], shape=(size,) + tuple(params["shape"]))


def _permute(cls, inputs, params, size):
    return cls.apply(inputs[0], dims=(0,) + tuple(d + 1 for d in params["dims"]))


def _expand(cls, inputs, params, size):
    x, target = inputs[0], tuple(params["shape"])
    missing = len(target) - (x.data.ndim - 1)
    if missing:
        x = _reshape(x, (size,) + (1,) * missing + x.data.shape[1:])
    return cls.apply(x, shape=(size,) + target)


def _pad(cls, inputs, params, size):
    return cls.apply(inputs[0], widths=((0, 0),) + tuple(params["widths"]), value=params["value"])


def _getitem(cls, inputs, params, size):
    index = params["index"]
    index = index if isinstance(index, tuple) else (index,)
    if any(not isinstance(i, (int, np.integer, slice, type(None))) for i in index):
        return None  # integer arrays or masks: the loop keeps their order rules exact
    return cls.apply(inputs[0], index=(slice(None),) + index)


def _cat(cls, inputs, params, size):
    return cls.apply(*_all_batched(inputs, size), dim=params["dim"] + 1)


def _linear(cls, inputs, params, size):
    """x @ w^T + b; with a batched weight (per-sample weights, or a per-sample gradient of
    the weight), a batched matmul."""
    x, w, *bias = inputs
    if not is_batched(w) and not (bias and is_batched(bias[0])):
        return cls.apply(*inputs, **params)
    from minigrad.ops.elementwise import Add
    from minigrad.ops.matmul import MatMul
    from minigrad.ops.movement import Permute

    x, w = _all_batched((x, w), size)
    rows = int(np.prod(x.data.shape[1:-1]))
    out = MatMul.apply(
        _reshape(x, (size, rows, x.data.shape[-1])), Permute.apply(w, dims=(0, 2, 1))
    )
    if bias:
        (b,) = _all_batched((bias[0],), size)
        out = Add.apply(out, _reshape(b, (size, 1, b.data.shape[-1])))
    return _reshape(out, x.data.shape[:-1] + (w.data.shape[1],))


def _attention(cls, inputs, params, size):
    """Scaled dot-product attention: the batch merged into the op's own batch dim (a learned
    mask, or a mask that differs along that dim, loops)."""
    mask = params["mask"]
    if len(inputs) == 4 or (mask is not None and mask.ndim == 4 and mask.shape[0] != 1):
        return None
    q, k, v = _all_batched(inputs, size)
    merged = [_reshape(t, (-1,) + t.data.shape[2:]) for t in (q, k, v)]
    out = cls.apply(*merged, **params)
    return _reshape(out, q.data.shape[:2] + out.data.shape[1:])


def _loop(cls, inputs, params, size):
    from minigrad.ops.indexing import GetItem
    from minigrad.ops.movement import Cat

    if cls not in _noted:
        _noted.add(cls)
        print(
            f"minigrad.func.vmap: {cls.__name__} has no batching rule; it runs once per sample",
            file=sys.stderr,
        )
    outs = []
    for i in range(size):
        sample = [GetItem.apply(t, index=(i,)) if is_batched(t) else t for t in inputs]
        out = cls.apply(*sample, **params)
        outs.append(_reshape(out, (1,) + out.data.shape))
    return Cat.apply(*outs, dim=0)


_noted: set = set()


def _rules() -> dict[type, Any]:
    from importlib import import_module

    attention, elementwise, indexing, matmul, movement, reduce = (
        import_module(f"minigrad.ops.{name}")
        for name in ("attention", "elementwise", "indexing", "matmul", "movement", "reduce")
    )
    pointwise = [
        elementwise.Neg, elementwise.Exp, elementwise.Log, elementwise.Sqrt, elementwise.Sin,
        elementwise.Cos, elementwise.Abs, elementwise.Clamp, elementwise.Relu,
        elementwise.Sigmoid, elementwise.LogSigmoid, elementwise.Tanh, elementwise.LeakyRelu,
        elementwise.Elu, elementwise.Erf, elementwise.Gelu, elementwise.Silu,
        elementwise.Softplus, elementwise.Cast, elementwise.Clone,
    ]
    broadcasting = [
        elementwise.Add, elementwise.Sub, elementwise.Mul, elementwise.Div, elementwise.Pow,
        elementwise.Maximum, indexing.Where, matmul.MatMul,
    ]
    from minigrad.nn.hooks import BackwardHookIdentity

    pointwise.append(BackwardHookIdentity)
    rules: dict[type, Any] = {cls: _pointwise for cls in pointwise}
    rules.update({cls: _broadcasting for cls in broadcasting})
    rules.update({
        cls: _reduction
        for cls in (reduce.Sum, reduce.Amax, reduce.LogSumExp, reduce.Softmax, reduce.LogSoftmax)
    })
    rules.update({
        movement.Reshape: _reshape_rule, movement.Permute: _permute, movement.Expand: _expand,
        movement.Pad: _pad, movement.Cat: _cat, indexing.GetItem: _getitem,
        matmul.Linear: _linear, attention.ScaledDotProductAttention: _attention,
    })
    return rules


RULES: dict[type, Any] = autograd.OpTable(_rules)
