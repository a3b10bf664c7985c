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


# Forward mode (minigrad/forward_ad.py) sets this while a jvp runs: every op then passes
# its inputs' tangents on to its output. None otherwise, so it costs one test per op.
forward_hook: Callable | None = None
# minigrad/batching.py sets this inside vmap: ops with batched inputs run batched.
batch_hook: Callable | None = None


class OpTable(dict):
    """A table keyed by Function class (forward mode's JVP rules, vmap's batching rules),
    built by ``build()`` on first use: the ops' modules import this one, so it cannot list
    them when it is imported."""

    def __init__(self, build: Callable[[], dict]) -> None:
        super().__init__()
        self._build = build

    def get(self, key: Any, default: Any = None) -> Any:
        if not self:
            self.update(self._build())
        return super().get(key, default)


# --------------------------------------------------------------------------------------
# 2. Function: one differentiable op, and one node of the graph
# --------------------------------------------------------------------------------------


# A value saved for backward is kept as a plain tuple ``(array, counter, version, source)``
# (a tuple costs a quarter of an object, and most ops save one or two values):
#
# - ``array``: the value itself;
# - ``counter``/``version``: the version counter that watches it and its value when it was
#   saved, for PyTorch's check that nobody modified it in place (counter None: nothing can);
# - ``source``: which value it is: the index of an input, SAVED_OUTPUT or SAVED_INTERMEDIATE.
#   Under ``create_graph`` this says where the rebuilt Tensor hangs in the graph: from the
#   input's edge, from the op's own node, or nowhere (a constant).
SAVED_OUTPUT, SAVED_INTERMEDIATE = -1, -2


def saved_what(source: int) -> str:
    """A saved value's ``source`` in words, for error messages."""
    if source == SAVED_OUTPUT:
        return "the output"
    if source == SAVED_INTERMEDIATE:
        return "an intermediate"
    return f"input {source}"


def saved_values(node: Function) -> list[tuple[str, Any]]:
    """``(what, array)`` for each value ``node`` saved for its backward, such as
    ``("input 0", x)`` or ``("the output", y)`` (what ``minigrad.viz`` shows)."""
    return [(saved_what(s[3]), s[0]) for s in node._saved or () if s is not None]


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
        arrays = []
        for i, s in enumerate(saved):
            if s is None:
                arrays.append(None)
                continue
            array, counter, version, source = s
            if counter is not None and counter.value != version:
                raise RuntimeError(
                    f"{type(self).__name__}: one of the values needed for gradient computation "
                    f"has been modified by an in-place operation: saved value {i} "
                    f"({saved_what(source)}, shape {array.shape}) is at version {counter.value}; "
                    f"expected version {version}. Use an out-of-place op (x = x + 1, not "
                    "x += 1) or .clone() before modifying it."
                )
            arrays.append(array)
        if not self._create_graph:
            return tuple(arrays)
        return tuple(None if s is None else _rebuild(self, s) for s in saved)

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
        """Run ``forward`` on the inputs' arrays; record a node when a gradient is needed.

        ``_apply_general`` is the whole story. Nearly every call has one or two inputs and
        no vmap, jvp or record_sites around it: those calls take ``_apply_one`` or
        ``_apply_two``, the same steps written out for a fixed number of inputs. (A loop or
        a comprehension costs about 0.2 us in CPython, as much as multiplying two small
        arrays, and the general path makes six per op.)
        """
        if batch_hook is None and forward_hook is None and not _record_sites and tracer is None:
            if len(inputs) == 2:
                return cls._apply_two(inputs[0], inputs[1], params)
            if len(inputs) == 1:
                return cls._apply_one(inputs[0], params)
        return cls._apply_general(inputs, params)

    @classmethod
    def _apply_general(cls, inputs: tuple, params: dict) -> Tensor:
        """``apply`` for any number of inputs, with vmap, jvp and record_sites."""
        if batch_hook is not None:  # inside minigrad.func.vmap: batched inputs run batched
            untraceable("vmap")
            out = batch_hook(cls, inputs, params)
            if out is not NotImplemented:
                return out
        ctx = cls()
        arrays = [t.data for t in inputs]
        # Known before forward runs (as in PyTorch), so forward can skip saving what no
        # gradient will need. The node is recorded when some input needs a gradient.
        if _grad_enabled:
            ctx.needs_input_grad = tuple([t._requires_grad for t in inputs])
        else:
            ctx.needs_input_grad = (False,) * len(inputs)
        record = True in ctx.needs_input_grad
        out = cls.forward(ctx, *arrays, **params)
        result = Tensor._from_array(out)
        if result.data.base is not None:
            _share_version_if_view(result, inputs, arrays, cls, params)
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
        if forward_hook is not None:  # forward mode is on (minigrad.func.jvp): the tangent
            untraceable("jvp")
            forward_hook(cls, inputs, params, result)  # of the output, from the inputs'
        if tracer is not None:  # minigrad.compile is tracing: it writes the call down
            tracer.op(cls, inputs, params, ctx, result, out)
        return result

    @classmethod
    def _apply_one(cls, x: Tensor, params: dict) -> Tensor:
        """``_apply_general`` for one input and no vmap, jvp or record_sites."""
        ctx = cls()
        a = x.data
        record = _grad_enabled and x._requires_grad
        ctx.needs_input_grad = (record,)
        # (**params costs 0.1 us even when empty, a fifth of a small op's arithmetic)
        out = cls.forward(ctx, a, **params) if params else cls.forward(ctx, a)
        result = Tensor._from_array(out)
        if result.data.base is not None:  # a view of x: it shares x's version counter
            _share_version_if_view(result, (x,), (a,), cls, params)
        if record and result.data.dtype.kind == "f":
            ctx.edges = (x._edge(),)
            ctx.input_shapes = (a.shape,)
            ctx.input_dtypes = (a.dtype,)
            result._requires_grad = True
            result._node = ctx
            if ctx._to_save:
                ctx._freeze_saved((x,), (a,), out, result)
        elif ctx._to_save:
            ctx._to_save = ()
        return result

    @classmethod
    def _apply_two(cls, x: Tensor, y: Tensor, params: dict) -> Tensor:
        """``_apply_general`` for two inputs and no vmap, jvp or record_sites."""
        ctx = cls()
        a, b = x.data, y.data
        if _grad_enabled:
            ctx.needs_input_grad = needs = (x._requires_grad, y._requires_grad)
        else:
            ctx.needs_input_grad = needs = (False, False)
        record = needs[0] or needs[1]
        out = cls.forward(ctx, a, b, **params) if params else cls.forward(ctx, a, b)
        result = Tensor._from_array(out)
        if result.data.base is not None:  # a view of x or y: it shares that one's counter
            _share_version_if_view(result, (x, y), (a, b), cls, params)
        if record and result.data.dtype.kind == "f":
            ctx.edges = (x._edge(), y._edge())
            ctx.input_shapes = (a.shape, b.shape)
            ctx.input_dtypes = (a.dtype, b.dtype)
            result._requires_grad = True
            result._node = ctx
            if ctx._to_save:
                ctx._freeze_saved((x, y), (a, b), out, result)
        elif ctx._to_save:
            ctx._to_save = ()
        return result

    def _freeze_saved(self, inputs, arrays, out, result) -> None:
        """Turn the arrays given to save_for_backward into the records described at
        ``SAVED_OUTPUT``, watched by the version counter of the tensor they belong to."""
        saved = []
        for a in self._to_save:
            if a is None:
                saved.append(None)
                continue
            i = 0  # (counted by hand: enumerate costs a tenth of this whole function)
            for x in arrays:
                if a is x:
                    t = inputs[i]
                    counter = t._counter or t._version_counter()
                    saved.append((a, counter, counter.value, i))
                    break
                i += 1
            else:
                if a is out:
                    counter = result._version_counter()
                    saved.append((result.data, counter, counter.value, SAVED_OUTPUT))
                else:
                    # an intermediate that is a view of an input (a reshape of it, say) is
                    # watched by that input's counter: writing the input would change it too
                    counter = None
                    if isinstance(a, np.ndarray):
                        for t, x in zip(inputs, arrays):
                            if np.may_share_memory(a, x):
                                counter = t._version_counter()
                                break
                    version = 0 if counter is None else counter.value
                    saved.append((a, counter, version, SAVED_INTERMEDIATE))
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


class Derived(Function):
    """A value computed from tensors' values that carries no gradient: a comparison, an
    argmax, a mask of valid targets. Computing it as an op (``derived(fn, *tensors)``)
    rather than on ``.data`` directly lets minigrad.compile recompute it on every replay,
    where a value computed on the side would be frozen at the traced call's value."""

    @staticmethod
    def forward(ctx, *arrays, fn):
        return fn(*arrays)

    @staticmethod
    def backward(ctx, grad):
        return (None,) * len(ctx.edges)


def derived(fn: Callable, *tensors: Tensor) -> Tensor:
    """``fn(*arrays)`` of the tensors' arrays, as a Tensor with no gradient (see Derived)."""
    return Derived.apply(*tensors, fn=fn)


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
    state_changed()  # compiled programs recheck their guards (a hook makes them run eagerly)
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

# minigrad.compile's tracer while it traces a function (minigrad/compiler/trace.py), else
# None. Ops, backward passes and the calls marked ``replayed`` below report to it.
tracer: Any = None
# Bumped whenever something a compiled program depends on may have changed: a module's
# parameters or submodules, its training mode, a tensor's requires_grad. A program checks
# its guards in full only when this moved.
state_version = 0


def state_changed() -> None:
    global state_version
    state_version += 1


def untraceable(what: str) -> None:
    """Tell a running trace that ``what`` uses tensor values outside the graph (``.item()``,
    statistics computed with NumPy): the compiled function then runs eagerly."""
    if tracer is not None:
        tracer.escape(what)


def replayed(fn: Callable) -> Callable:
    """Mark a function that changes state outside the graph (an optimizer's step,
    ``zero_grad``, gradient clipping, a scheduler's step): a compiled function records the
    call and makes it again on every replay, instead of recording the ops inside it."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if tracer is not None:
            return tracer.call(fn, args, kwargs)
        return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


def _rebuild(node: Function, saved: tuple) -> Tensor:
    """A value ``node`` saved, as a Tensor connected to the graph (for create_graph): an
    input hangs from that input's edge, the output from ``node`` itself."""
    array, _, _, source = saved
    t = Tensor._from_array(array)
    if source == SAVED_OUTPUT:
        edge = node
    elif source == SAVED_INTERMEDIATE:
        edge = None
    else:
        edge = node.edges[source]
    if edge is not None:
        t.requires_grad = True
        t._node = edge
    return t


# --------------------------------------------------------------------------------------
# Views and in-place ops (PyTorch's rules)
# --------------------------------------------------------------------------------------
#
# A view (``y[1:]``, ``y.transpose(0, 1)``, a reshape) shares its base's memory. So
#
# - it shares the base's version counter: a write through either is seen by both;
# - it records its base and the steps (op, parameters) that redo it from the base;
# - an in-place op on a view changes the base too, so the base's graph is rebased onto a
#   ``CopySlices`` node, "the old base with the view's region replaced by the new values",
#   and the view's own grad_fn is redone from the new base;
# - after the base (or another view of it) is written in place, a view's grad_fn is redone
#   from the base the next time it is used, so it differentiates through the write.


class _ViewInfo:
    """How a view was made: its base (never itself a view), the (op, params) steps that
    redo it from the base, and the base's version when the view's grad_fn was last made."""

    __slots__ = ("base", "steps", "version")

    def __init__(self, base: Tensor, steps: tuple, version: int) -> None:
        self.base = base
        self.steps = steps
        self.version = version


def _share_version_if_view(result: Tensor, inputs: Sequence[Tensor], arrays, cls, params) -> None:
    """A view shares its base's version counter, so in-place writes through it are seen,
    and remembers its base and how to redo itself from it."""
    for t, a in zip(inputs, arrays):
        if np.may_share_memory(result.data, a):
            result._counter = t._version_counter()
            if len(inputs) == 1:
                parent = t._view
                step = ((cls, params),)
                if parent is None:
                    result._view = _ViewInfo(t, step, result._counter.value)
                else:
                    result._view = _ViewInfo(parent.base, parent.steps + step, parent.version)
            return


def redo_view(steps: tuple, base: Any) -> Any:
    """Apply a view's steps to ``base``: a Tensor (recording the graph) or an array."""
    for cls, params in steps:
        if isinstance(base, Tensor):
            base = cls.apply(base, **params)
        else:
            base = cls.forward(cls(), base, **params)
    return base


class CopySlices(Function):
    """``base`` with the region a view sees replaced by ``value``, written in place: the
    base's new node after an in-place op on one of its views. The gradient of the old base
    is the incoming one with that region zeroed (those values were overwritten); the
    gradient of ``value`` is the incoming one seen through the view."""

    @staticmethod
    def forward(ctx, base, value, steps):
        ctx.steps = steps
        region = redo_view(steps, base)
        region[...] = value
        return base

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        g_base = g_value = None
        if ctx.needs_input_grad[0]:
            keep = np.ones(ctx.input_shapes[0], dtype=bool)
            redo_view(ctx.steps, keep)[...] = False
            g_base = xp.where(keep, grad, 0)
        if ctx.needs_input_grad[1]:
            g_value = redo_view(ctx.steps, grad)
            if not ctx._create_graph:
                g_value = np.array(g_value)  # a copy: the view's gradient owns its memory
        return g_base, g_value


def assign_in_place(target: Tensor, result: Tensor, name: str) -> None:
    """Write ``result`` (computed out of place from ``target``) into ``target``'s memory and
    move ``target`` (and, if it is a view, its base) to the new graph. See the rules above."""
    untraceable(f"an in-place op ({name})")
    view = target._view
    base = target if view is None else view.base
    recorded = result._requires_grad  # the op was recorded: target now has new history
    if _grad_enabled and base._node is None and base._requires_grad:
        what = "a view of a leaf tensor" if view is not None else "a leaf tensor"
        raise RuntimeError(
            f"{name}: {what} that requires grad (shape {tuple(base.shape)}) is being modified "
            "in place; do it inside minigrad.no_grad() or on a clone"
        )
    if _grad_enabled and view is not None and base._requires_grad and not recorded:
        raise RuntimeError(
            f"{name}: this view (shape {tuple(target.shape)}) of a tensor that requires grad "
            "was made under no_grad() and is being modified in place with grad enabled; the "
            "base's gradient would be wrong. Make the view outside no_grad() or clone() it"
        )
    if recorded:
        _own_saved_copies(result._node, target.data)
    if view is None or not recorded:
        np.copyto(target.data, result.data, casting="same_kind")
        target._version_counter().value += 1
        if recorded:
            _move_retained_grad(target, result._node)
            target._node = result._node
            target._requires_grad = True
        return
    new_base = CopySlices.apply(base, result, steps=view.steps)  # writes the memory
    counter = target._version_counter()
    counter.value += 1
    _move_retained_grad(base, new_base._node)
    base._node = new_base._node
    base._requires_grad = True
    refresh_view(target)


def refresh_view(view_tensor: Tensor) -> None:
    """Redo a view's grad_fn from its base (after the base's memory was written)."""
    view = view_tensor._view
    view.version = view_tensor._version_counter().value
    if view.base._requires_grad:
        with enable_grad():
            node = redo_view(view.steps, view.base)._node
        _move_retained_grad(view_tensor, node)
        view_tensor._node = node
        view_tensor._requires_grad = True


def _own_saved_copies(node: Function, array: np.ndarray) -> None:
    """The in-place write is about to overwrite ``array``: values the new node saved from it
    (the old contents of the tensor being written) become private copies first, so the op
    that made the new value still has the old one for its backward (``y.mul_(t)`` needs the
    old y for t's gradient)."""
    if not node._saved:
        return
    saved = []
    for s in node._saved:
        if s is not None and isinstance(s[0], np.ndarray) and np.may_share_memory(s[0], array):
            s = (s[0].copy(), None, 0, s[3])  # a private copy: nothing can write it now
        saved.append(s)
    node._saved = tuple(saved)


def _move_retained_grad(target: Tensor, node: Function | None) -> None:
    """retain_grad() follows the tensor to its new version, as in PyTorch."""
    if target._retains_grad and target._node is not None and node is not target._node:
        target._node.retained_output = None
        if node is not None:
            node.retained_output = weakref.ref(target)


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
    """The backward pass shared by ``Tensor.backward`` and ``grad``: sort, walk, accumulate.

    1. Sort the nodes reachable from the outputs so that each comes after every node that
       feeds it (``_topological_order``).
    2. Walk them in reverse: take the gradient waiting at a node's output and call the
       node's ``backward`` on it (``_local_gradients``), which gives one gradient per input.
    3. Accumulate each of those into the gradient waiting at that input's node
       (``_PendingGradients.add``), summing where two paths meet.

    With ``inputs=None`` the gradients reaching leaves are accumulated into their ``.grad``
    (and non-leaves that called ``retain_grad()`` keep theirs). With ``inputs`` given, their
    gradients are returned instead and no ``.grad`` is touched.
    """
    roots = [_output_node(k, out) for k, out in enumerate(outputs)]
    targets = _target_nodes(inputs)
    order = _topological_order(roots)
    if inputs is not None:
        order = _prune_to_targets(order, targets)

    pending = _PendingGradients()
    for root, g in zip(roots, grad_outputs):
        pending.add(root, g, fresh=False)
    captured: dict[Function, Any] = {}
    xp = _tensor_namespace() if create_graph else _numpy_namespace()
    with set_grad_enabled(create_graph):  # under create_graph, record the backward's ops
        for node in reversed(order):
            g, owned = pending.take(node)
            if g is None:
                continue  # no path from the outputs reaches this node with a gradient
            if node.grad_hooks:  # Tensor.register_hook: may replace the gradient
                untraceable("a hook registered on a tensor (register_hook)")
                g = _run_grad_hooks(node, g, create_graph)
                owned = False  # a hook may keep the gradient it saw
            if node in targets:
                captured[node] = g
            if isinstance(node, AccumulateGrad):
                if inputs is None:
                    if tracer is not None:
                        tracer.backward_leaf(node, owned)
                    _accumulate_into_leaf(node, g, create_graph, owned)
                    if node.post_accumulate_hooks:
                        untraceable("a post-accumulate-grad hook")
                        _run_post_accumulate_hooks(node)
                if _observer is not None:  # minigrad.explain records the step
                    _observer(node, g, ())
                continue
            if inputs is None and node.retained_output is not None:
                untraceable("retain_grad()")
                _store_retained_grad(node, g, create_graph)
            in_grads, fresh = _local_gradients(node, g, xp, create_graph)
            if tracer is not None:
                tracer.backward_node(node, in_grads)
            for edge, ig in zip(node.edges, in_grads):
                if edge is not None and ig is not None:
                    pending.add(edge, ig, fresh=id(ig) in fresh)
                    fresh.discard(id(ig))  # an array returned for two inputs is shared
            if _observer is not None:
                _observer(node, g, in_grads)
            if not retain_graph:
                node._release()
    if inputs is None:
        return None
    return _gradients_of_inputs(inputs, [captured.get(t._edge()) for t in inputs], allow_unused)


def _output_node(k: int, out: Tensor) -> Function:
    """The node whose backward starts the pass from output ``k``."""
    edge = out._edge()
    if edge is None:
        raise RuntimeError(
            f"output {k} does not require grad and has no grad_fn: call requires_grad_() "
            "on a leaf it depends on, or compute it outside no_grad()"
        )
    return edge


def _target_nodes(inputs: Sequence[Tensor] | None) -> dict[Function, int]:
    """For ``grad(outputs, inputs)``: the node of each input, in the inputs' order."""
    targets: dict[Function, int] = {}
    for k, t in enumerate(inputs or ()):
        edge = t._edge()
        if edge is None:
            raise RuntimeError(f"grad: input {k} does not require grad")
        targets.setdefault(edge, k)
    return targets


def _local_gradients(node: Function, g: Any, xp: Any, create_graph: bool) -> tuple:
    """Call ``node.backward`` on the gradient of its output: one checked gradient per input,
    and the ids of the arrays it declared its own (``ctx.owned``)."""
    node.xp = xp
    node._create_graph = create_graph
    in_grads = type(node).backward(node, g)
    node.xp = None
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if len(in_grads) != len(node.edges):
        raise RuntimeError(
            f"{node.name()}.backward returned {len(in_grads)} gradients for "
            f"{len(node.edges)} inputs"
        )
    fresh = set(node._owned)
    node._owned = ()
    checked = []
    for i, (edge, ig) in enumerate(zip(node.edges, in_grads)):
        if edge is None or ig is None:
            checked.append(None)
            continue
        c = _check_gradient(node, i, ig, create_graph)
        if c is not ig:  # converted to the input's dtype: a new array
            fresh.add(id(c))
        checked.append(c)
    return checked, fresh


class _PendingGradients:
    """The gradient waiting at each node's output, summed over the paths that reach it.

    It also remembers which of them only the engine holds (a sum it made, or an array a
    backward declared its own), so that a leaf's ``.grad`` can take such an array as it is
    instead of copying it: the one optimization of the walk.
    """

    def __init__(self) -> None:
        self.grads: dict[Function, Any] = {}
        self.owned: set[Function] = set()

    def add(self, node: Function, g: Any, fresh: bool) -> None:
        if node in self.grads:
            self.grads[node] = self.grads[node] + g
            self.owned.add(node)  # the sum is a new array
        else:
            self.grads[node] = g
            if fresh:
                self.owned.add(node)

    def take(self, node: Function) -> tuple[Any, bool]:
        owned = node in self.owned
        self.owned.discard(node)
        return self.grads.pop(node, None), owned


def _gradients_of_inputs(inputs: Sequence[Tensor], grads: list, allow_unused: bool) -> list:
    """``grad``'s result: each input's gradient as a Tensor, or None if it was not used."""
    result = []
    for k, (t, g) in enumerate(zip(inputs, grads)):
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
        leaf._grad = g if leaf._grad is None else leaf._grad + g
    elif leaf.grad is None:
        if owned and type(g) is np.ndarray and g.dtype == leaf.dtype and g.flags.c_contiguous:
            leaf._grad = Tensor._from_array(g)  # nobody else holds it: no copy needed
        else:
            # a C-contiguous copy: the optimizers' kernels then update it in place, and the
            # leaf's gradient shares no memory with anything else
            leaf._grad = Tensor._from_array(np.array(g, dtype=leaf.dtype, order="C", copy=True))
    else:
        leaf.grad.data += g  # gradients accumulate on leaves until zeroed


def _store_retained_grad(node: Function, g: Any, create_graph: bool) -> None:
    out = node.retained_output()
    if out is None:
        return
    if not isinstance(g, Tensor):
        g = Tensor._from_array(np.array(g, copy=True))
    out._grad = g if out._grad is None else out._grad + g


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
    if tracer is not None:
        tracer.backward_begin(outputs, grads, retain_graph, create_graph)
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
    untraceable("autograd.grad")
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
