"""Reverse-mode automatic differentiation: the engine behind ``Tensor.backward``.

Read this file after ``tensor.py``. It holds four things:

1. **Grad mode**: ``no_grad`` / ``enable_grad`` decide whether new ops are recorded.
2. **Function**: the base class of every differentiable op. An op is a class with
   ``forward(ctx, *arrays)`` working on NumPy arrays and ``backward(ctx, grad)`` returning
   one gradient per input. ``Function.apply`` runs the forward and, when a gradient will be
   needed, records the call as a node of the graph.
3. **The engine**: ``backward`` / ``grad`` sort the graph topologically (with an explicit
   stack, so a chain of 100,000 ops is fine) and walk it from the output back to the
   leaves, calling each node's ``backward`` and summing gradients where paths meet.
4. **unbroadcast**: the one helper that undoes broadcasting in a gradient.

Higher-order gradients come from one idea. A backward formula is written only with
operators (``grad * y``) and functions of ``ctx.xp``. On the normal path ``ctx.xp`` is NumPy
and the saved values are arrays, so backward is plain, fast array code. Under
``create_graph=True`` the engine hands the same formula minigrad's own op namespace and
saved values as Tensors: the very same lines now record a differentiable graph of the
gradient itself, which can be differentiated again.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from minigrad.tensor import Tensor

# --------------------------------------------------------------------------------------
# 1. Grad mode
# --------------------------------------------------------------------------------------

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether operations are currently being recorded for backward."""
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode, restoring it on exit."""

    mode = True

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn: Callable) -> Callable:
        mode_type = type(self)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode_type():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class no_grad(_GradMode):
    """Within this block no graph is recorded (inference, optimizer updates)."""

    mode = False


class enable_grad(_GradMode):
    """Re-enables recording inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(_GradMode):
    """``with set_grad_enabled(flag):`` records only when ``flag`` is true."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)


# --------------------------------------------------------------------------------------
# 2. Function: one differentiable op, and one node of the graph
# --------------------------------------------------------------------------------------


class _SavedValue:
    """An array saved for backward, with what is needed to rebuild it as a Tensor.

    ``edge`` is the node that produced the value (``None`` for a constant), so that under
    ``create_graph`` the rebuilt Tensor is connected to the graph at the right place.
    ``counter``/``version`` implement PyTorch's check that nobody modified it in place.
    """

    __slots__ = ("array", "edge", "counter", "version", "what")

    def __init__(self, array, edge, counter, what):
        self.array = array
        self.edge = edge
        self.counter = counter
        self.version = counter.value if counter is not None else 0
        self.what = what


class Function:
    """Base class of every differentiable op; an instance is a node of the graph (``ctx``).

    Subclasses define two static methods::

        class Mul(Function):
            @staticmethod
            def forward(ctx, a, b):          # NumPy arrays in, one array out
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, grad):         # one gradient per input, None where not needed
                a, b = ctx.saved_tensors
                return grad * b, grad * a

    and are called as ``Mul.apply(x, y, **params)`` with Tensors. Non-tensor parameters
    (a dim, a shape) are passed by keyword and arrive as keyword arguments of ``forward``;
    anything backward needs besides saved arrays is stored on ``ctx`` as plain attributes.
    Inside ``backward`` use operators and ``ctx.xp`` functions only, so the formula works on
    arrays and, for higher-order gradients, on Tensors.

    A backward that allocates a gradient itself and keeps no other reference to it may say so
    with ``ctx.owned(g)``: the engine then stores it as a leaf's ``.grad`` without the copy
    it otherwise makes (a gradient may be shared, as ``Add`` returns the same array twice).

    Under ``create_graph`` a saved input or the saved output comes back as a Tensor connected
    to the graph, but any other saved array (a mask, a keep-dims copy of the output) comes
    back as a constant. So save the very array ``forward`` returns, not a reshaped copy of it,
    when the derivative depends on the output.
    """

    # Filled in by ``apply`` when the call is recorded:
    #   edges            the node (or leaf accumulator) of each input, None if it needs no grad
    #   needs_input_grad one bool per input
    #   input_shapes     so the engine can check the shape of every returned gradient
    edges: tuple = ()
    needs_input_grad: tuple = ()
    input_shapes: tuple = ()
    input_dtypes: tuple = ()
    # Class-level defaults rather than an __init__: a node is made for every op call, so
    # making one should cost no more than creating an empty object.
    _to_save: tuple = ()
    _saved: tuple | None = None
    _released = False
    _create_graph = False
    _owned: tuple = ()  # ids of the gradients backward declared its own (see ``owned``)
    xp: Any = None  # numpy_ops or tensor_ops, set by the engine while backward runs
    retained_output: Any = None  # weak reference to an output that called retain_grad()
    grad_hooks: Any = None  # dict of hooks registered on the output tensor (register_hook)
    site: Any = None  # (file, line) of the user's code that made this node, when recorded
    scope: tuple = ()  # the modules whose forward made this node, outermost first, when recorded

    # -- called from forward ---------------------------------------------------------
    def save_for_backward(self, *arrays: np.ndarray | None) -> None:
        """Keep these arrays (inputs, the output or intermediates) for backward."""
        self._to_save = arrays

    # -- called from backward --------------------------------------------------------
    @property
    def saved_tensors(self) -> tuple:
        """The saved values: arrays on the first-order path, Tensors under create_graph."""
        if self._released:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time "
                "(or to read saved values after they were freed). Saved values are freed after "
                "backward(); pass retain_graph=True to the first backward() to keep them."
            )
        saved = self._saved or ()
        for i, s in enumerate(saved):
            if s is not None and s.counter is not None and s.counter.value != s.version:
                raise RuntimeError(
                    f"{type(self).__name__}: one of the values needed for gradient computation "
                    f"has been modified by an in-place operation: saved value {i} ({s.what}, "
                    f"shape {s.array.shape}) is at version {s.counter.value}; expected version "
                    f"{s.version}. Use an out-of-place op (x = x + 1, not x += 1) or .clone() "
                    "before modifying it."
                )
        if not self._create_graph:
            return tuple(None if s is None else s.array for s in saved)
        return tuple(None if s is None else _rebuild(s) for s in saved)

    def owned(self, *arrays: Any) -> None:
        """Mark gradients that this backward allocated itself and keeps no other reference
        to (None entries are skipped). The engine may then store such an array as a leaf's ``.grad``
        as it is, instead of the defensive copy it makes of any other gradient (which may be
        shared: an add returns the same array for both inputs). That copy was 2.5 % of a
        small MLP's training step: the 784 x 256 weight's gradient, every step."""
        self._owned = self._owned + tuple(id(a) for a in arrays if a is not None)

    def first_order_only(self, op: str) -> None:
        """For kernel-backed backwards with no differentiable formula yet: refuse
        create_graph clearly instead of returning a gradient that is silently constant."""
        if self._create_graph:
            raise NotImplementedError(
                f"{op}: second-order gradients (create_graph=True) are not supported for this "
                "op yet; its backward runs a kernel that is not itself differentiable"
            )

    @staticmethod
    def forward(ctx: Function, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        raise NotImplementedError

    # -- running and recording -------------------------------------------------------
    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays; record a node when a gradient is needed."""
        ctx = cls()
        arrays = [t.data for t in inputs]
        record = False
        if _grad_enabled:
            for t in inputs:
                if t._requires_grad:
                    record = True
                    break
        # Known before forward runs (as in PyTorch), so forward can skip saving what no
        # gradient will need.
        ctx.needs_input_grad = (
            tuple([t._requires_grad for t in inputs]) if record else (False,) * len(inputs)
        )
        out = cls.forward(ctx, *arrays, **params)
        result = Tensor._from_array(out)
        if result.data.base is not None:
            _share_version_if_view(result, inputs, arrays)
        if record and result.data.dtype.kind == "f":  # only floats carry gradients
            if _record_sites:
                ctx.site = _user_site()
                ctx.scope = tuple(module_stack)
            ctx.edges = tuple([t._edge() for t in inputs])
            ctx.input_shapes = tuple([a.shape for a in arrays])
            ctx.input_dtypes = tuple([a.dtype for a in arrays])
            result._requires_grad = True
            result._node = ctx
            if ctx._to_save:
                ctx._freeze_saved(inputs, arrays, out, result)
        elif ctx._to_save:
            ctx._to_save = ()
        return result

    def _freeze_saved(self, inputs, arrays, out, result) -> None:
        """Turn the arrays given to save_for_backward into _SavedValue records."""
        saved = []
        for a in self._to_save:
            if a is None:
                saved.append(None)
                continue
            for i, x in enumerate(arrays):
                if a is x:
                    t = inputs[i]
                    saved.append(_SavedValue(a, self.edges[i], t._version_counter(), f"input {i}"))
                    break
            else:
                if a is out:
                    saved.append(
                        _SavedValue(result.data, self, result._version_counter(), "the output")
                    )
                else:
                    saved.append(_SavedValue(a, None, None, "an intermediate"))
        self._saved = tuple(saved)
        self._to_save = ()

    def _release(self) -> None:
        """Free the saved arrays after backward (unless retain_graph)."""
        if self._saved:
            self._saved = None
            self._released = True

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


class AccumulateGrad(Function):
    """The node that stands for a leaf tensor: backward adds the gradient into ``leaf.grad``."""

    post_accumulate_hooks: Any = None  # dict of register_post_accumulate_grad_hook hooks

    def __init__(self, leaf: Tensor) -> None:
        self.leaf = weakref.ref(leaf)

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


# --------------------------------------------------------------------------------------
# Hooks and creation sites: what minigrad.viz, minigrad.explain and minigrad.interpret read
# --------------------------------------------------------------------------------------


class RemovableHandle:
    """Returned by every ``register_*hook``: ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self._hooks = weakref.ref(hooks) if hooks is not None else None
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        hooks = self._hooks() if self._hooks is not None else None
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class _HookDict(dict):
    """A dict of hooks in registration order (a subclass, so a handle can hold a weakref)."""


def add_hook(owner: Any, attribute: str, hook: Callable) -> RemovableHandle:
    """Append ``hook`` to the ``_HookDict`` stored as ``owner.<attribute>``."""
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    hooks = getattr(owner, attribute, None)
    if hooks is None:
        hooks = _HookDict()
        setattr(owner, attribute, hooks)
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def _run_grad_hooks(node: Function, g: Any, create_graph: bool) -> Any:
    """Call the tensor hooks of ``node``'s output on its summed gradient; a hook that
    returns a Tensor replaces the gradient (PyTorch's ``Tensor.register_hook``)."""
    for hook in list(node.grad_hooks.values()):
        seen = g if isinstance(g, Tensor) else Tensor._from_array(g)
        new = hook(seen)
        if new is None:
            continue
        new_data = new.data if isinstance(new, Tensor) else np.asarray(new)
        if tuple(new_data.shape) != tuple(seen.shape):
            raise RuntimeError(
                f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                f"{tuple(new_data.shape)} for a tensor of shape {tuple(seen.shape)}"
            )
        g = new if create_graph and isinstance(new, Tensor) else new_data
    return g


def _run_post_accumulate_hooks(node: AccumulateGrad) -> None:
    """Call ``register_post_accumulate_grad_hook`` hooks with the leaf, its .grad now final."""
    leaf = node.leaf()
    if leaf is not None:
        for hook in list(node.post_accumulate_hooks.values()):
            hook(leaf)


# Creation sites cost a walk up the stack for every recorded op, so they are recorded only
# inside ``with record_sites():`` (`minigrad explain SCRIPT.py` turns it on for the script).
_record_sites = False
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class record_sites(_GradMode):
    """Within this block every recorded op remembers the file and line of the user's code
    that created it (shown by ``minigrad.explain`` and ``minigrad.viz``)."""

    def __enter__(self) -> None:
        global _record_sites
        self._previous = _record_sites
        _record_sites = True

    def __exit__(self, *exc: object) -> None:
        global _record_sites
        _record_sites = self._previous


def _user_site() -> tuple[str, int] | None:
    """The innermost frame outside the minigrad package: where the user wrote the op."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)


# The modules being run, outermost first (Module.__call__ keeps it while sites are recorded).
module_stack: list = []


# The backward pass reports each node to this observer when one is set (minigrad.explain).
_observer: Callable | None = None


def _rebuild(s: _SavedValue) -> Tensor:
    """A saved array as a Tensor connected to the graph (for create_graph)."""
    t = Tensor._from_array(s.array)
    if s.edge is not None:
        t.requires_grad = True
        t._node = s.edge
    return t


def _share_version_if_view(result: Tensor, inputs: Sequence[Tensor], arrays) -> None:
    """A view shares its base's version counter, so in-place writes through it are seen."""
    for t, a in zip(inputs, arrays):
        if np.may_share_memory(result.data, a):
            result._counter = t._version_counter()
            return


# --------------------------------------------------------------------------------------
# 3. The engine
# --------------------------------------------------------------------------------------


def _topological_order(roots: Iterable[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, each after every node that feeds its output.

    Depth-first search with an explicit stack (no recursion), returning post-order: a node
    comes after all the nodes it depends on, so reversed it is the order of the backward pass.
    """
    order: list[Function] = []
    visited: set[Function] = set()  # nodes hash by identity
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child is not None and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _check_gradient(node: Function, i: int, g: Any, create_graph: bool) -> Any:
    """The engine's contract check: a gradient has the shape (and dtype) of its input."""
    if create_graph and not isinstance(g, Tensor):
        raise RuntimeError(
            f"{node.name()}.backward returned a {type(g).__name__} for input {i} under "
            "create_graph=True; write the formula with operators and ctx.xp functions (not np.*) "
            "so that it can be differentiated again"
        )
    shape = node.input_shapes[i]
    if tuple(g.shape) != shape:
        raise RuntimeError(
            f"{node.name()}.backward returned a gradient of shape {tuple(g.shape)} for input {i}, "
            f"which has shape {shape}"
        )
    if g.dtype != node.input_dtypes[i] and isinstance(g, np.ndarray):
        g = g.astype(node.input_dtypes[i])
    return g


def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
    allow_unused: bool = False,
) -> list | None:
    """The backward pass shared by ``Tensor.backward`` and ``grad``.

    With ``inputs=None`` gradients are accumulated into the ``.grad`` of leaves (and of
    non-leaves that called ``retain_grad()``). With ``inputs`` given, their gradients are
    returned instead and no ``.grad`` is touched.
    """
    global _grad_enabled
    roots, root_grads = [], []
    for k, (out, g) in enumerate(zip(outputs, grad_outputs)):
        edge = out._edge()
        if edge is None:
            raise RuntimeError(
                f"output {k} does not require grad and has no grad_fn: call requires_grad_() "
                "on a leaf it depends on, or compute it outside no_grad()"
            )
        roots.append(edge)
        root_grads.append(g)

    targets: dict[Function, int] = {}
    if inputs is not None:
        for k, t in enumerate(inputs):
            edge = t._edge()
            if edge is None:
                raise RuntimeError(f"grad: input {k} does not require grad")
            targets.setdefault(edge, k)
    captured: list = [None] * (len(inputs) if inputs is not None else 0)

    order = _topological_order(roots)
    if inputs is not None:
        order = _prune_to_targets(order, targets)

    grads: dict[Function, Any] = {}  # the gradient flowing into each node's output
    owned: set[Function] = set()  # nodes whose pending gradient only the engine holds
    for root, g in zip(roots, root_grads):
        grads[root] = grads[root] + g if root in grads else g

    previous_mode = _grad_enabled
    _grad_enabled = create_graph
    xp = _tensor_namespace() if create_graph else _numpy_namespace()
    try:
        for node in reversed(order):
            g = grads.pop(node, None)
            if g is None:
                continue
            if node.grad_hooks:
                g = _run_grad_hooks(node, g, create_graph)
                owned.discard(node)  # a hook may keep the gradient it saw
            if targets and node in targets:
                captured[targets[node]] = g
            if isinstance(node, AccumulateGrad):
                if inputs is None:
                    _accumulate_into_leaf(node, g, create_graph, node in owned)
                    if node.post_accumulate_hooks:
                        _run_post_accumulate_hooks(node)
                owned.discard(node)
                if _observer is not None:
                    _observer(node, g, ())
                continue
            if inputs is None and node.retained_output is not None:
                _store_retained_grad(node, g, create_graph)

            node.xp = xp
            node._create_graph = create_graph
            in_grads = type(node).backward(node, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(node.edges):
                raise RuntimeError(
                    f"{node.name()}.backward returned {len(in_grads)} gradients for "
                    f"{len(node.edges)} inputs"
                )
            fresh = set(node._owned)
            node._owned = ()
            for i, (edge, ig) in enumerate(zip(node.edges, in_grads)):
                if edge is None or ig is None:
                    continue
                checked = _check_gradient(node, i, ig, create_graph)
                if edge in grads:
                    grads[edge] = grads[edge] + checked
                    owned.add(edge)  # the sum is a new array
                else:
                    grads[edge] = checked
                    # a declared-fresh array is owned once (not if returned for two inputs)
                    if checked is not ig or id(ig) in fresh:
                        owned.add(edge)
                    fresh.discard(id(ig))
            node.xp = None
            if _observer is not None:
                _observer(node, g, in_grads)
            if not retain_graph:
                node._release()
    finally:
        _grad_enabled = previous_mode

    if inputs is None:
        return None
    result = []
    for k, (t, g) in enumerate(zip(inputs, captured)):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._from_array(g)
        result.append(g)
    return result


def _prune_to_targets(order: list[Function], targets: dict[Function, int]) -> list[Function]:
    """Keep only nodes from which a target can be reached (post-order makes this one pass)."""
    useful: set[Function] = set()
    kept = []
    for node in order:  # children come before parents in post-order
        if node in targets or any(e is not None and e in useful for e in node.edges):
            useful.add(node)
            kept.append(node)
    return kept


def _accumulate_into_leaf(node: AccumulateGrad, g: Any, create_graph: bool, owned: bool) -> None:
    leaf = node.leaf()
    if leaf is None:
        return
    if create_graph:
        g = g if isinstance(g, Tensor) else Tensor._from_array(g)
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    elif leaf.grad is None:
        if owned and type(g) is np.ndarray and g.dtype == leaf.dtype and g.flags.c_contiguous:
            leaf.grad = Tensor._from_array(g)  # nobody else holds it: no copy needed
        else:
            # a C-contiguous copy: the optimizers' kernels then update it in place, and the
            # leaf's gradient shares no memory with anything else
            leaf.grad = Tensor._from_array(np.array(g, dtype=leaf.dtype, order="C", copy=True))
    else:
        leaf.grad.data += g  # gradients accumulate on leaves until zeroed


def _store_retained_grad(node: Function, g: Any, create_graph: bool) -> None:
    out = node.retained_output()
    if out is None:
        return
    if not isinstance(g, Tensor):
        g = Tensor._from_array(np.array(g, copy=True))
    out.grad = g if out.grad is None else out.grad + g


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad`` (``torch.autograd.backward``)."""
    outputs = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, (Tensor, np.ndarray, float, int)):
        grad_tensors = [grad_tensors] * len(outputs) if grad_tensors is None else [grad_tensors]
    grads = [_initial_grad(o, g, create_graph, "backward") for o, g in zip(outputs, grad_tensors)]
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(outputs, grads, retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """Return d(outputs)/d(inputs) without touching ``.grad`` (``torch.autograd.grad``).

    With ``create_graph=True`` the returned gradients are themselves differentiable, so a
    Hessian-vector product is ``grad(grad(f, x, create_graph=True)[0] @ v, x)``.
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outs):
        raise ValueError(f"grad: {len(outs)} outputs but {len(grad_outputs)} grad_outputs")
    grads = [_initial_grad(o, g, create_graph, "grad") for o, g in zip(outs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    return tuple(run_backward(outs, grads, retain_graph, create_graph, ins, allow_unused))


def _initial_grad(out: Tensor, g: Any, create_graph: bool, who: str) -> Any:
    """The gradient that starts the backward pass: 1 for a scalar, else the caller's."""
    if g is None:
        if out.data.size != 1:
            raise RuntimeError(
                f"{who}: grad can be implicitly created only for scalar outputs; this output "
                f"has shape {out.shape}, so pass gradient= (a tensor of that shape)"
            )
        g = np.ones_like(out.data)
    else:
        g_arr = g.data if isinstance(g, Tensor) else np.asarray(g, dtype=out.dtype)
        if g_arr.shape != out.data.shape:
            raise RuntimeError(
                f"{who}: gradient has shape {g_arr.shape} but the output has shape {out.shape}"
            )
        if create_graph and isinstance(g, Tensor):
            return g
        g = g_arr.astype(out.dtype, copy=False)
    return Tensor._from_array(g) if create_graph else g


# The two namespaces that backward formulas receive as ctx.xp (see minigrad/ops/namespace.py).
def _numpy_namespace():
    from minigrad.ops.namespace import numpy_ops

    return numpy_ops


def _tensor_namespace():
    from minigrad.ops.namespace import tensor_ops

    return tensor_ops


# --------------------------------------------------------------------------------------
# 4. unbroadcast
# --------------------------------------------------------------------------------------


def unbroadcast(xp: Any, grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` over the axes that broadcasting expanded, giving it ``shape`` again.

    If ``x`` of shape (3, 1) was broadcast against (2, 3, 4), every element of x was used
    2 * 4 times, so its gradient is the sum of the output gradient over axis 0 (added by
    broadcasting) and axis 2 (stretched from 1).
    """
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = xp.sum(grad, axes, False)
    return xp.reshape(grad, shape)
