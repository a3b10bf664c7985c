"""The tracer: what minigrad.compile writes down while a function runs eagerly once.

While ``autograd.tracer`` is set, every ``Function.apply`` reports its op, inputs, keyword
parameters and context; ``Tensor.backward`` reports which node sends which gradient where;
the calls marked ``autograd.replayed`` (an optimizer's ``step`` and ``zero_grad``, gradient
clipping, a scheduler's step) are written down as calls; random draws say how to draw again.
Anything that reads a tensor's value into Python (``.item()``, ``bool(t)``, NumPy on
``.data`` in the library's own code) is an *escape*: the trace is then not used, and the
function runs eagerly.

Every value of the trace is named by a ``Ref``: an input of the call, a tensor that lives
outside the call (a parameter, a buffer, a constant), the output of an op, a random draw,
the result of a recorded call, or a view of one of these. The program (program.py) turns
the steps into straight-line code over these names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minigrad import autograd, random
from minigrad.autograd import AccumulateGrad, Function
from minigrad.tensor import Tensor


@dataclass(frozen=True)
class Ref:
    """One value of the program: ``kind`` is "input" (the call's k-th tensor argument),
    "live" (a tensor from outside the call, read when the program runs), "op" (the output
    of step k), "random", "call" (the result of a recorded call) or "copy"."""

    kind: str
    index: int


@dataclass(frozen=True)
class ViewRef:
    """A NumPy view of another value, made outside any op (``target.data.reshape(-1)``):
    rebuilt on each replay with the same offset, shape and strides."""

    base: Ref
    offset: int
    shape: tuple
    strides: tuple
    dtype: np.dtype


@dataclass
class OpStep:
    """One ``Function.apply``: the op, its input values and keyword parameters (arrays among
    them replaced by refs), its context (reused on replay) and whether it was recorded."""

    index: int
    cls: type
    ctx: Function
    inputs: tuple
    params: dict
    recorded: bool
    shape: tuple
    dtype: np.dtype
    wrap: bool  # forward returned a NumPy scalar, which the Tensor made an array of


@dataclass
class RandomStep:
    """A random draw: ``make()`` draws again from minigrad's generator."""

    index: int
    make: Callable[[], np.ndarray]
    shape: tuple
    dtype: np.dtype


@dataclass
class CopyStep:
    """``Tensor(value)`` inside the function: a copy of a traced value."""

    index: int
    source: Any  # a Ref or ViewRef
    dtype: np.dtype


@dataclass
class CallStep:
    """A call marked ``autograd.replayed``, made again on every replay."""

    index: int
    fn: Callable
    args: tuple
    kwargs: dict
    returns_tensor: bool = False  # its result is a value of the program, Ref("call", index)


@dataclass
class BackwardStep:
    """One ``backward()``: the root's value and starting gradient (None: ones), then the
    walk: ("node", op index, [(input position, target)]) for each node whose backward ran,
    and ("leaf", target, owned) for each gradient stored in a ``.grad``. A target is
    ("op", k) for the node of step k, or ("leaf", ref) for a leaf tensor."""

    root: int
    gradient: Any
    retain_graph: bool
    walk: list = field(default_factory=list)


class Tracer:
    """Writes down one eager run of a function (see the module docstring)."""

    def __init__(self, inputs: list[Tensor]) -> None:
        self.steps: list = []
        self.reasons: list[str] = []
        self.inputs = inputs
        self.live: list[Tensor] = []  # tensors from outside the call, by Ref("live", k)
        self.modules: dict[int, Any] = {}  # id -> module, for the mode guard
        self.optimizers: dict[int, Any] = {}  # id -> optimizer whose step was recorded
        self._tensor_refs: dict[int, Ref] = {}  # id(Tensor) -> Ref
        self._array_refs: dict[int, Any] = {}  # id(ndarray) -> Ref
        self._owners: dict[int, tuple] = {}  # id(memory owner) -> (Ref, array)
        self._keep: list = []  # everything whose id is a key above stays alive
        self._paused = 0
        self._backward: BackwardStep | None = None
        self._nodes: dict[int, int] = {}  # id(ctx) -> op step index
        for k, t in enumerate(inputs):
            if id(t) not in self._tensor_refs:  # one tensor passed twice: its first place
                self._name_tensor(t, Ref("input", k))

    # -- naming values -------------------------------------------------------------------
    def _name_tensor(self, t: Tensor, ref: Ref) -> None:
        self._keep.append(t)
        self._tensor_refs[id(t)] = ref
        self._name_array(t.data, ref)

    def _name_array(self, a: np.ndarray, ref: Ref) -> None:
        if id(a) in self._array_refs:
            return
        self._keep.append(a)
        self._array_refs[id(a)] = ref
        owner = _owner(a)
        if owner is not None and id(owner) not in self._owners and a.flags.c_contiguous:
            self._keep.append(owner)
            self._owners[id(owner)] = (ref, a)

    def _ref_of_tensor(self, t: Tensor) -> Any:
        ref = self._tensor_refs.get(id(t))
        if ref is not None:
            return ref
        ref = self._ref_of_array(t.data)
        if ref is not None:
            self._tensor_refs[id(t)] = ref
            self._keep.append(t)
            return ref
        # a parameter, a buffer or a constant: read from the tensor when the program runs
        ref = Ref("live", len(self.live))
        self.live.append(t)
        self._name_tensor(t, ref)
        return ref

    def _ref_of_array(self, a: np.ndarray) -> Any:
        """The ref of a traced array or of a view of one; None for an array that shares no
        memory with any traced value (a constant)."""
        ref = self._array_refs.get(id(a))
        if ref is not None:
            return ref
        owner = _owner(a)
        known = self._owners.get(id(owner)) if owner is not None else None
        if known is None:
            return None
        base_ref, base = known
        offset = a.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        if offset < 0 or offset + _extent(a) > base.nbytes:
            self.escape("an array that overlaps a traced value in a way it cannot redo")
            return None
        return ViewRef(base_ref, offset, a.shape, a.strides, a.dtype)

    def _param(self, value: Any) -> Any:
        """A keyword parameter with traced arrays in it replaced by their refs."""
        if isinstance(value, np.ndarray):
            ref = self._ref_of_array(value)
            return value if ref is None else ref
        if isinstance(value, Tensor):
            return _TensorParam(self._ref_of_tensor(value))
        if type(value) in (tuple, list):
            return type(value)(self._param(v) for v in value)
        return value

    # -- what the engine reports ------------------------------------------------------------
    def escape(self, what: str) -> None:
        if self._paused:
            return
        if what not in self.reasons:
            self.reasons.append(what)

    def op(
        self, cls: type, inputs: tuple, params: dict, ctx: Function, result: Tensor, out: Any
    ) -> None:
        if self._paused:
            return
        refs = tuple(self._ref_of_tensor(t) for t in inputs)
        step = OpStep(
            len(self.steps),
            cls,
            ctx,
            refs,
            {k: self._param(v) for k, v in params.items()},
            result._node is ctx,
            result.data.shape,
            result.data.dtype,
            type(out) is not np.ndarray,
        )
        self.steps.append(step)
        self._nodes[id(ctx)] = step.index
        self._keep.append(ctx)
        self._name_tensor(result, Ref("op", step.index))

    def drew(self, array: np.ndarray, make: Callable[[], np.ndarray]) -> None:
        if self._paused:
            return
        step = RandomStep(len(self.steps), make, array.shape, array.dtype)
        self.steps.append(step)
        self._name_array(array, Ref("random", step.index))

    def copied(self, array: np.ndarray, source: Any) -> None:
        """``Tensor(source)`` made ``array``: a copy of a traced value, or a constant."""
        if self._paused or not isinstance(source, np.ndarray):
            return
        ref = self._ref_of_array(source)
        if ref is None:
            return
        step = CopyStep(len(self.steps), ref, array.dtype)
        self.steps.append(step)
        self._name_array(array, Ref("copy", step.index))

    def call(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        """A call marked ``replayed``: made now (nothing inside it is traced) and written
        down. Iterators among its arguments (``model.parameters()``) become lists first, so
        that the replayed call sees them too."""
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        kwargs = {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
        if kwargs.get("closure") is not None or (len(args) > 1 and callable(args[1])):
            self.escape(f"{fn.__qualname__} with a closure")
        self._paused += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            self._paused -= 1
        if not self._paused:
            if args and hasattr(args[0], "param_groups"):  # an optimizer: guard its groups
                self.optimizers.setdefault(id(args[0]), args[0])
            step = CallStep(len(self.steps), fn, args, kwargs, isinstance(result, Tensor))
            self.steps.append(step)
            if step.returns_tensor:
                self._name_tensor(result, Ref("call", step.index))
        return result

    def module(self, module: Any, called: bool = True) -> None:
        """A module ran (``called``) or one of its parameters, buffers or submodules was
        read: its state is part of the program's guard."""
        if self._paused:
            return
        self.modules.setdefault(id(module), module)
        if called and "_module_hooks" in module.__dict__:
            self.escape(f"hooks registered on a {type(module).__name__}")

    def grad_set(self, t: Tensor, value: Any) -> None:
        """``t.grad = value`` inside the function (outside the engine): ``None`` on a
        tensor from outside the call is made again on each replay."""
        if self._paused:
            return
        ref = self._tensor_refs.get(id(t))
        if value is None and (ref is None or ref.kind == "live"):
            if ref is None:
                self._ref_of_tensor(t)
            self.steps.append(CallStep(len(self.steps), _clear_grad, (t,), {}))
        else:
            self.escape("assigning a tensor's .grad")

    def backward_begin(self, outputs: list, grads: list, retain_graph: bool, create: bool) -> None:
        if self._paused:
            return
        if create:
            self.escape("backward(create_graph=True)")
            return
        if len(outputs) != 1:
            self.escape("backward of several tensors at once")
            return
        node = outputs[0]._node
        if node is None or id(node) not in self._nodes:
            self.escape("backward through a graph made outside the compiled function")
            return
        root = self._nodes[id(node)]
        g = grads[0]
        gradient = None
        if not (isinstance(g, np.ndarray) and g.size == 1 and g.item() == 1.0 and g.ndim == 0):
            gradient = self._ref_of_array(np.asarray(g))
            if gradient is None:
                gradient = np.array(g, copy=True)  # a constant gradient
        self._backward = BackwardStep(root, gradient, retain_graph)
        self.steps.append(self._backward)

    def backward_node(self, node: Function, in_grads: list) -> None:
        if self._paused or self._backward is None:
            return
        index = self._nodes.get(id(node))
        if index is None:
            self.escape("backward through a graph made outside the compiled function")
            return
        sends = []
        for i, (edge, g) in enumerate(zip(node.edges, in_grads)):
            if edge is None or g is None:
                continue
            sends.append((i, self._target(edge)))
        self._backward.walk.append(("node", index, sends))

    def backward_leaf(self, node: AccumulateGrad, owned: bool) -> None:
        if self._paused or self._backward is None:
            return
        self._backward.walk.append(("leaf", self._target(node), owned))

    def _target(self, edge: Function) -> tuple:
        if isinstance(edge, AccumulateGrad):
            leaf = edge.leaf()
            return ("leaf", self._ref_of_tensor(leaf))
        index = self._nodes.get(id(edge))
        if index is None:
            self.escape("backward through a graph made outside the compiled function")
            return ("op", -1)
        return ("op", index)

    # -- on and off -----------------------------------------------------------------------
    def __enter__(self) -> Tracer:
        if autograd.tracer is not None:
            raise RuntimeError("minigrad.compile: a compiled function is already being traced")
        if autograd._observer is not None or autograd._record_sites:
            self.escape("minigrad.explain or record_sites is running")
        autograd.tracer = self
        random.on_draw = self.drew
        return self

    def __exit__(self, *exc: object) -> None:
        autograd.tracer = None
        random.on_draw = None


@dataclass(frozen=True)
class _TensorParam:
    """A Tensor passed as a keyword parameter (rare): the program passes a Tensor again."""

    ref: Any


def _clear_grad(t: Tensor) -> None:
    """``t.grad = None``, as a recorded call."""
    t._grad = None


def _owner(a: np.ndarray) -> Any:
    """The array that owns ``a``'s memory (``a`` itself if it owns it)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a if isinstance(a, np.ndarray) else None


def _extent(a: np.ndarray) -> int:
    """Bytes from a view's first element to one past its last (positive strides only)."""
    if a.size == 0:
        return 0
    if any(s < 0 for s in a.strides):
        return 1 << 62  # negative strides: never rebuilt
    return sum((n - 1) * s for n, s in zip(a.shape, a.strides)) + a.itemsize
