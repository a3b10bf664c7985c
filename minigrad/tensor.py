"""The Tensor: a NumPy array that remembers how it was made.

Start reading here. A ``Tensor`` holds

- ``data``: the NumPy array with the values;
- ``requires_grad``: whether gradients should flow to it;
- ``grad``: after ``backward()``, a Tensor with d(output)/d(this), for leaves;
- ``grad_fn``: the op (a node of the graph) that produced it, ``None`` for a leaf.

Every operator below is one line that calls an op from ``minigrad/ops``. Each op computes
its result with NumPy and, when a gradient will be needed, records itself as the result's
``grad_fn``, pointing back at the nodes of its inputs. ``backward()`` then walks those links
from the output back to the leaves (see ``minigrad/autograd.py``). ``docs/backprop.md`` follows
one small graph through the code line by line.

Dtypes follow PyTorch: Python floats become float32 (the default dtype), Python ints int64;
NumPy arrays keep their dtype. A Python number in an expression takes the tensor's dtype
(``x * 2.0`` stays float32); two tensors of different float dtypes give the wider one.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from minigrad import dtypes

# --------------------------------------------------------------------------------------
# The version counter: how backward notices that a saved value was modified in place
# --------------------------------------------------------------------------------------


class _VersionCounter:
    """Bumped by every in-place write; shared between a tensor and its views."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``Tensor(data, requires_grad=False, dtype=None)`` copies ``data`` (a number, a nested
    list, a NumPy array or another Tensor). Use ``minigrad.from_numpy`` to share memory.
    """

    __slots__ = (
        "data",
        "_grad",
        "_requires_grad",
        "_node",
        "_acc",
        "_counter",
        "_retains_grad",
        "_view",
        "__weakref__",
    )
    # NumPy must not treat a Tensor as an array inside its own operators: `array * tensor`
    # then falls through to Tensor.__rmul__ and stays differentiable.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data = dtypes.to_array(data, dtype, copy=True)
        if autograd.tracer is not None:  # minigrad.compile: a copy of a traced value?
            autograd.tracer.copied(self.data, data)
        self._grad: Tensor | None = None
        self._requires_grad = False
        self._node = None  # the Function that produced this tensor; None for a leaf
        self._acc = None  # a leaf's AccumulateGrad node, made on first use
        self._counter = None  # the _VersionCounter, made on first use
        self._retains_grad = False
        self._view = None  # for a view: its base and how to redo it (autograd._ViewInfo)
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _from_array(cls, array: Any) -> Tensor:
        """Wrap an array without copying or checks: the fast path used by every op."""
        t = object.__new__(cls)
        t.data = array if type(array) is np.ndarray else np.asarray(array)
        t._grad = None
        t._requires_grad = False
        t._node = None
        t._acc = None
        t._counter = None
        t._retains_grad = False
        t._view = None
        return t

    # -- autograd attributes -----------------------------------------------------------
    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by backward() (None until then, or after zero_grad)."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if autograd.tracer is not None:  # minigrad.compile: a write the program must redo
            autograd.tracer.grad_set(self, value)
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and not dtypes.is_floating(self.data.dtype):
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        if not flag and self._node is not None:
            raise RuntimeError(
                "requires_grad can only be turned off on a leaf tensor; use .detach() instead"
            )
        if self._requires_grad != bool(flag):
            autograd.state_changed()  # compiled programs recheck their guards
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self):
        """The node that produced this tensor (``None`` for leaves)."""
        self._refresh_if_stale_view()
        return self._node

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def _version(self) -> int:
        """How many times this tensor (or a view of its memory) was modified in place."""
        return 0 if self._counter is None else self._counter.value

    def _version_counter(self) -> _VersionCounter:
        """The counter shared with views, made when first needed (most tensors never need it)."""
        if self._counter is None:
            self._counter = _VersionCounter()
        return self._counter

    def _edge(self):
        """Where a gradient for this tensor goes: its grad_fn, or for a leaf its accumulator."""
        if self._view is not None:
            self._refresh_if_stale_view()
        if self._node is not None:
            return self._node
        if not self._requires_grad:
            return None
        if self._acc is None:
            from minigrad.autograd import AccumulateGrad

            self._acc = AccumulateGrad(self)
        return self._acc

    def _refresh_if_stale_view(self) -> None:
        """A view whose base was written in place since its grad_fn was made gets a new
        grad_fn, redone from the base, so it differentiates through the write."""
        view = self._view
        if view is not None and view.version != self._counter.value:
            autograd.refresh_view(self)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        if self._node is not None:
            import weakref

            self._node.retained_output = weakref.ref(self)
            self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when the gradient of this tensor has been computed (all paths
        summed); if it returns a Tensor, that replaces the gradient. Returns a handle with
        ``remove()``. The hook lives on the tensor's node (its grad_fn, or for a leaf its
        accumulator), which is where the engine meets the gradient."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        return autograd.add_hook(self._edge(), "grad_hooks", hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(leaf)`` after backward has added into this leaf's ``.grad``."""
        if self._node is not None or not self._requires_grad:
            raise RuntimeError(
                "register_post_accumulate_grad_hook: only leaf tensors that require grad "
                "accumulate a .grad"
            )
        return autograd.add_hook(self._edge(), "post_accumulate_hooks", hook)

    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Compute d(self)/d(leaf) for every leaf and add it to ``leaf.grad``.

        ``gradient`` is needed when self is not a scalar (it is the vector of the
        vector-Jacobian product). The graph is freed afterwards unless ``retain_graph``.
        """
        autograd.backward(self, gradient, retain_graph, create_graph)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph."""
        t = Tensor._from_array(self.data)
        t._counter = self._version_counter()
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place, making it a leaf."""
        self._node = None
        self._requires_grad = False
        return self

    # -- array attributes --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape, or its length along ``dim``."""
        if dim is None:
            return self.data.shape
        return self.data.shape[ops.normalize_dim(dim, self.ndim, "size")]

    def numel(self) -> int:
        return int(self.data.size)

    @property
    def T(self) -> Tensor:
        """All dims reversed (the matrix transpose for 2-D)."""
        return ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        """The last two dims swapped (a batch of matrix transposes)."""
        return ops.transpose(self, -2, -1)

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shared, not copied)."""
        if self._requires_grad:
            raise RuntimeError(
                "numpy: can't call numpy() on a tensor that requires grad; use "
                "tensor.detach().numpy()"
            )
        autograd.untraceable(".numpy()")
        return self.data

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to Python scalars, "
                f"got shape {self.shape}"
            )
        autograd.untraceable(".item()")
        return self.data.item()

    def tolist(self) -> Any:
        autograd.untraceable(".tolist()")
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        autograd.untraceable("conversion to a NumPy array (np.asarray)")
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"Boolean value of a tensor with {self.data.size} values is ambiguous"
            )
        autograd.untraceable("Python control flow on a tensor's value (bool(tensor))")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.size != 1 or not dtypes.is_integer(self.dtype):
            raise TypeError("only integer tensors of a single element can be used as an index")
        autograd.untraceable("a tensor used as a Python index")
        return int(self.data)

    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # -- arithmetic: one line each, the ops live in minigrad/ops ------------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    # -- comparisons and logic: no gradient, boolean results ----------------------------
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.eq(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.ne(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return ops.lt(self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.le(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.gt(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.ge(self, other)

    def __and__(self, other: Any) -> Tensor:
        return ops.logical_and(self, other)

    def __or__(self, other: Any) -> Tensor:
        return ops.logical_or(self, other)

    def __xor__(self, other: Any) -> Tensor:
        return ops.logical_xor(self, other)

    def __invert__(self) -> Tensor:
        return ops.logical_not(self)

    # -- elementwise functions -----------------------------------------------------------
    def add(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def sub(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def mul(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def div(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def pow(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def neg(self) -> Tensor:
        return ops.neg(self)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def sin(self) -> Tensor:
        return ops.sin(self)

    def cos(self) -> Tensor:
        return ops.cos(self)

    def sign(self) -> Tensor:
        return ops.sign(self)

    def maximum(self, other: Any) -> Tensor:
        return ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return ops.minimum(self, other)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return ops.clamp(self, min, max)

    clip = clamp

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def softmax(self, dim: int) -> Tensor:
        return ops.softmax(self, dim)

    def log_softmax(self, dim: int) -> Tensor:
        return ops.log_softmax(self, dim)

    def matmul(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    # -- reductions ------------------------------------------------------------------
    def sum(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.sum(self, dim, keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.mean(self, dim, keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        return ops.max(self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        return ops.min(self, dim, keepdim)

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.amax(self, dim, keepdim)

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.amin(self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmin(self, dim, keepdim)

    def var(self, dim: Any = None, keepdim: bool = False, correction: int = 1) -> Tensor:
        return ops.var(self, dim, keepdim=keepdim, correction=correction)

    def std(self, dim: Any = None, keepdim: bool = False, correction: int = 1) -> Tensor:
        return ops.std(self, dim, keepdim=keepdim, correction=correction)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        return ops.logsumexp(self, dim, keepdim)

    # -- shape and movement ----------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, _shape_args(shape))

    def view(self, *shape: Any) -> Tensor:
        return ops.reshape(self, _shape_args(shape))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims: Any) -> Tensor:
        return ops.permute(self, _shape_args(dims))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return ops.flatten(self, start_dim, end_dim)

    def squeeze(self, dim: Any = None) -> Tensor:
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return ops.unsqueeze(self, dim)

    def expand(self, *sizes: Any) -> Tensor:
        return ops.expand(self, _shape_args(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        return ops.expand(self, other.shape)

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple:
        return ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        return ops.chunk(self, chunks, dim)

    def gather(self, dim: int, index: Any) -> Tensor:
        return ops.gather(self, dim, index)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # -- dtype -----------------------------------------------------------------------
    def to(self, dtype: Any) -> Tensor:
        return ops.cast(self, dtype)

    type = to

    def float(self) -> Tensor:
        return ops.cast(self, dtypes.float32)

    def double(self) -> Tensor:
        return ops.cast(self, dtypes.float64)

    def long(self) -> Tensor:
        return ops.cast(self, dtypes.int64)

    def int(self) -> Tensor:
        return ops.cast(self, dtypes.int32)

    def bool(self) -> Tensor:
        return ops.cast(self, dtypes.bool_)

    def clone(self) -> Tensor:
        return ops.clone(self)

    # -- in place: the result replaces the data, and the version counter moves on ---------
    def _assign_(self, result: Tensor, name: str) -> Tensor:
        """Make ``self`` hold ``result``: the common end of every in-place method.

        ``result`` was computed out of place from ``self``. Its values are written into the
        existing array (so views see them) and the version counter is bumped (so a backward
        that saved the old values refuses to run). ``self`` takes over ``result``'s node, so
        later ops differentiate through the write; if ``self`` is a view, its base's graph is
        rebased too (the rules are in ``autograd.assign_in_place``).
        """
        if result.shape != self.shape:
            raise RuntimeError(
                f"{name}: the result of shape {result.shape} can't be written in place into a "
                f"tensor of shape {self.shape}"
            )
        if not np.can_cast(result.dtype, self.dtype, casting="same_kind"):
            raise RuntimeError(
                f"{name}: result type {result.dtype} can't be cast to the tensor's dtype "
                f"{self.dtype}"
            )
        if not self.data.flags.writeable:
            raise RuntimeError(
                f"{name}: this tensor is a read-only view (made by expand); clone() it first"
            )
        autograd.assign_in_place(self, result, name)
        return self

    def add_(self, other: Any) -> Tensor:
        return self._assign_(ops.add(self, other), "add_")

    def sub_(self, other: Any) -> Tensor:
        return self._assign_(ops.sub(self, other), "sub_")

    def mul_(self, other: Any) -> Tensor:
        return self._assign_(ops.mul(self, other), "mul_")

    def div_(self, other: Any) -> Tensor:
        return self._assign_(ops.div(self, other), "div_")

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return self._assign_(ops.clamp(self, min, max), "clamp_")

    # copy_, fill_ and zero_ overwrite every value: the old history gets a zero gradient
    def copy_(self, src: Any) -> Tensor:
        return self._assign_(ops.index_put(self, Ellipsis, src), "copy_")

    def fill_(self, value: Any) -> Tensor:
        return self._assign_(ops.index_put(self, Ellipsis, value), "fill_")

    def zero_(self) -> Tensor:
        return self._assign_(ops.index_put(self, Ellipsis, 0), "zero_")

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    def __setitem__(self, index: Any, value: Any) -> None:
        steps = ops.split_int_and_array_index(ops.normalize_index(index, self.shape), self.ndim)
        if steps is not None:  # x[0, :, idx] = v is x[0][:, idx] = v, written through a view
            ops.getitem(self, steps[0])[steps[1]] = value
            return
        self._assign_(ops.index_put(self, index, value), "__setitem__")


def _shape_args(args: Sequence[Any]) -> tuple:
    """Accept both ``x.reshape(2, 3)`` and ``x.reshape((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


# --------------------------------------------------------------------------------------
# Creating tensors (PyTorch's names)
# --------------------------------------------------------------------------------------


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (``minigrad.tensor([1.0, 2.0])``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    dtypes.check_supported(array.dtype, "from_numpy")
    return Tensor._from_array(array)


def _creation(array: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._from_array(array)
    if requires_grad:
        t.requires_grad = True
    return t


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (float32 unless ``dtype``)."""
    shape = dtypes.check_size(_shape_args(size), "zeros")
    return _creation(np.zeros(shape, dtypes.resolve(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size``."""
    shape = dtypes.check_size(_shape_args(size), "ones")
    return _creation(np.ones(shape, dtypes.resolve(dtype)), requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value`` (dtype inferred from it)."""
    shape = dtypes.check_size(_shape_args((size,)), "full")
    if dtype is None:
        dtype = dtypes.to_array(fill_value, None, copy=False).dtype
    return _creation(np.full(shape, fill_value, dtypes.resolve(dtype)), requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def arange(
    start: Any, end: Any = None, step: Any = 1, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` by ``step``; int64 if all are ints."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = dtypes.int64 if integral else dtypes.get_default_dtype()
    return _creation(np.arange(start, end, step, dtype=dtypes.resolve(dtype)), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return Tensor._from_array(np.linspace(start, end, steps, dtype=dtypes.resolve(dtype)))


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The identity matrix of shape (n, m or n)."""
    return _creation(np.eye(n, m, dtype=dtypes.resolve(dtype)), requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform samples in [0, 1), drawn from the generator seeded by ``manual_seed``."""
    shape = dtypes.check_size(_shape_args(size), "rand")
    dt = dtypes.resolve_float(dtype, "rand")
    drawn = random.draw(lambda: random.rng(generator).random(shape, dtype=dt))
    return _creation(drawn, requires_grad)


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples, drawn from the generator seeded by ``manual_seed``."""
    shape = dtypes.check_size(_shape_args(size), "randn")
    dt = dtypes.resolve_float(dtype, "randn")
    drawn = random.draw(lambda: random.rng(generator).standard_normal(shape, dtype=dt))
    return _creation(drawn, requires_grad)


def randint(
    low: int, high: int | None = None, size: Any = (), dtype: Any = None, generator=None
) -> Tensor:
    """Integers uniformly drawn from [low, high) (``randint(high, size)`` starts at 0)."""
    if high is None:
        low, high = 0, low
    shape = dtypes.check_size(_shape_args((size,)), "randint")
    dt = dtypes.resolve(dtype or dtypes.int64)
    return Tensor._from_array(
        random.draw(lambda: random.rng(generator).integers(low, high, shape).astype(dt))
    )


def rand_like(t: Tensor, dtype: Any = None) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype)


def randn_like(t: Tensor, dtype: Any = None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype)


# The ops and the engine import this module, so they are imported after Tensor exists.
from minigrad import autograd, ops, random  # noqa: E402
