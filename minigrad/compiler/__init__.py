"""``minigrad.compile``: trace a training step once, then replay it as generated code.

    step = minigrad.compile(step)        # or @minigrad.compile above ``def step``

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

The first call with given input shapes, dtypes and grad mode runs ``step`` eagerly while
the tracer (trace.py) writes down every op, the backward walk and the optimizer's calls. The
trace becomes a program (program.py): straight-line Python over arrays, with chains of
elementwise ops fused into generated Numba kernels (fusion.py). Later calls that match run
the program: no Tensor objects, no graph, no engine.

What is checked before a program runs (its *guards*): the tensor arguments' shapes, dtypes,
layout and requires_grad, the other arguments' values, grad mode; and, when any module or
tensor changed its mode, parameters or requires_grad since the trace (``state_version``),
the training mode and parameters of every module the trace ran. A guard that fails traces
again; up to ``max_programs`` programs are kept per function (the least recently used is
dropped).

A function that reads tensor values into Python (``.item()``, ``bool(t)``, ``.numpy()``)
or uses what a program cannot replay (hooks, ``create_graph``, in-place ops, batch norm's
statistics in training mode) runs eagerly, and says why once, in one line
(``CompileWarning``). Returned tensors carry no graph: call ``backward()`` inside.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import autograd, backend
from minigrad.compiler.program import Program
from minigrad.compiler.trace import BackwardStep, Ref, Tracer
from minigrad.tensor import Tensor


class CompileWarning(UserWarning):
    """A compiled function runs eagerly for some inputs; the message says why."""


class _Eager:
    """The cache entry for inputs whose trace escaped: run the function eagerly."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class CompiledFunction:
    """A function with a cache of compiled programs (``minigrad.compile``)."""

    def __init__(self, fn: Callable, max_programs: int = 8, fuse: bool = True) -> None:
        if not callable(fn):
            raise TypeError(f"minigrad.compile: expected a function, got {type(fn).__name__}")
        if max_programs < 1:
            raise ValueError(f"minigrad.compile: max_programs must be >= 1, got {max_programs}")
        self.fn = fn
        self.max_programs = int(max_programs)
        self.fuse = fuse
        self.name = getattr(fn, "__qualname__", None) or type(fn).__name__
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        # guard key -> [_Entry or _Eager], the latest first: one entry per module state seen
        self.programs: OrderedDict = OrderedDict()
        self.traces = 0  # how many times the function was traced (a test reads it)
        self.said: set[str] = set()  # fallback reasons already reported

    # -- calling ------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if autograd.tracer is not None:  # inside another compiled function's trace
            return self.fn(*args, **kwargs)
        if not kwargs and all(type(a) is Tensor for a in args):  # the common call
            tensors, layout = list(args), len(args)
        else:
            tensors = []
            layout = _flatten((args, kwargs), tensors)
        try:
            key = (autograd._grad_enabled, layout, tuple(_signature(t) for t in tensors))
            if len({id(t) for t in tensors}) != len(tensors):  # one tensor in two places
                first = {}
                key += (tuple(first.setdefault(id(t), k) for k, t in enumerate(tensors)),)
            hash(key)
        except TypeError as e:
            self._say(f"an argument cannot be used as a guard ({e})")
            return self.fn(*args, **kwargs)
        entries = self.programs.get(key)
        if entries is None:
            return self._trace(key, tensors, args, kwargs)
        for entry in entries:  # one per module state seen with this key
            if entry.version == autograd.state_version or entry.still_valid():
                break
        else:
            return self._trace(key, tensors, args, kwargs)
        if type(entry) is _Eager:
            return self.fn(*args, **kwargs)
        self.programs.move_to_end(key)
        arrays = entry.program.run(tensors, *[t.data for t in tensors])
        return _unflatten(entry.out_layout, _outputs(entry, arrays, tensors))

    def _trace(self, key: tuple, tensors: list, args: tuple, kwargs: dict) -> Any:
        self.traces += 1
        with Tracer(tensors) as tracer:
            result = self.fn(*args, **kwargs)
        out_tensors: list[Tensor] = []
        out_layout = _flatten(result, out_tensors)
        reasons = list(tracer.reasons)
        backward_ran = any(isinstance(s, BackwardStep) for s in tracer.steps)
        if not backward_ran and any(t._requires_grad for t in out_tensors):
            reasons.append(
                "it returns a tensor that requires grad and runs no backward(); compile the "
                "whole step (forward, backward, optimizer) or call it under no_grad()"
            )
        if reasons:
            self._remember(key, _Eager(reasons[0], tracer))
            self._say(reasons[0], 4)
            return result
        outputs = [_output_ref(tracer, t) for t in out_tensors]
        values = [r for r in outputs if type(r) is not tuple]  # not a leaf's .grad
        program = Program(tracer, values, self.name, self.fuse)
        self._remember(key, _Entry(program, out_layout, outputs, tracer))
        return _unflatten(out_layout, [_detached(t) for t in out_tensors])

    def _remember(self, key: tuple, entry: Any) -> None:
        self.programs.setdefault(key, []).insert(0, entry)
        self.programs.move_to_end(key)
        while self.program_count > self.max_programs:  # drop the least recently used
            oldest = next(iter(self.programs))
            self.programs[oldest].pop()
            if not self.programs[oldest]:
                del self.programs[oldest]

    @property
    def program_count(self) -> int:
        """How many programs (and eager fallbacks) are kept."""
        return sum(len(entries) for entries in self.programs.values())

    def _say(self, reason: str, stacklevel: int = 3) -> None:
        """Warn once per reason, at the line that called the compiled function."""
        if reason not in self.said:
            self.said.add(reason)
            warnings.warn(
                f"minigrad.compile({self.name}) runs eagerly: {reason}", CompileWarning, stacklevel
            )

    # -- for a learner --------------------------------------------------------------------
    def explain(self, source: bool = False) -> str:
        """Each compiled program, as text: one line per op with its inputs' names and shapes,
        the backward walk, the recorded calls, and the fused kernels with the ops each one
        fuses; with ``source=True`` also the generated Python and the kernels' source. (At
        the prompt it shows as text; ``print`` it in a script.)"""
        parts = []
        for key, entry in [(k, e) for k, es in self.programs.items() for e in es]:
            grad_mode, _, signature = key[:3]
            inputs = ", ".join(f"{tuple(s[0])} {s[1]}" for s in signature)
            head = f"inputs ({inputs}), grad {'on' if grad_mode else 'off'}"
            if type(entry) is _Eager:
                parts.append(f"{head}: runs eagerly: {entry.reason}")
            else:
                parts.append(f"{head}:\n" + entry.program.explain(source))
        return _Text("\n\n".join(parts) if parts else f"{self.name}: not traced yet")

    def __repr__(self) -> str:
        return f"<compiled {self.name}: {self.program_count} program(s)>"


class _Text(str):
    """A str that shows as itself at the prompt (no quotes, real line breaks)."""

    def __repr__(self) -> str:
        return str(self)


class _Guarded:
    """What a cache entry was traced with, beyond its key: every module the trace ran or read
    a parameter of (its training mode, parameters, buffers, submodules, hooks and plain
    settings such as Dropout.p), the tensors it read from outside (requires_grad, hooks)
    and the optimizers it stepped (their parameters). Compared again only when
    ``autograd.state_version`` moved since the last check."""

    def __init__(self, tracer: Tracer) -> None:
        self.live = tracer.live
        self.modules = list(tracer.modules.values())
        self.optimizers = list(tracer.optimizers.values())
        self.snapshot = self._state()
        self.version = autograd.state_version

    def _state(self) -> tuple:
        modules = tuple(
            (
                m.training,
                tuple(id(p) for p in m._parameters.values()),
                tuple(id(b) for b in m._buffers.values()),
                tuple(id(c) for c in m._modules.values()),
                bool(m.__dict__.get("_module_hooks")),
                tuple(
                    (k, v)
                    for k, v in m.__dict__.items()
                    if not k.startswith("_") and type(v) in _SETTINGS
                ),
            )
            for m in self.modules
        )
        tensors = tuple(
            (
                t._requires_grad,
                t._acc is not None and bool(t._acc.grad_hooks or t._acc.post_accumulate_hooks),
            )
            for t in self.live
        )
        optimizers = tuple(
            tuple(id(p) for g in o.param_groups for p in g["params"]) for o in self.optimizers
        )
        return modules, tensors, optimizers

    def still_valid(self) -> bool:
        if self._state() != self.snapshot:
            return False
        self.version = autograd.state_version
        return True


_SETTINGS = (bool, int, float, str, type(None))


class _Eager(_Guarded):
    """The cache entry for a call whose trace escaped: run the function eagerly."""

    def __init__(self, reason: str, tracer: Tracer) -> None:
        super().__init__(tracer)
        self.reason = reason


class _Entry(_Guarded):
    """A program, with what its guards compare."""

    def __init__(self, program: Program, out_layout: Any, outputs: list, tracer: Tracer) -> None:
        super().__init__(tracer)
        self.program = program
        self.out_layout = out_layout
        self.outputs = outputs
        self.inputs = tracer.inputs


def _signature(t: Tensor) -> tuple:
    a = t.data
    return (a.shape, a.dtype.str, a.flags.c_contiguous, t._requires_grad)


def _flatten(value: Any, tensors: list) -> Any:
    """The structure of ``value`` with each Tensor replaced by its position in ``tensors``
    (appended to it): the hashable part of a guard key, and how to rebuild outputs."""
    if isinstance(value, Tensor):
        tensors.append(value)
        return _Slot(len(tensors) - 1)
    if type(value) in (tuple, list):
        return (type(value).__name__, tuple(_flatten(v, tensors) for v in value))
    if type(value) is dict:
        return ("dict", tuple((k, _flatten(v, tensors)) for k, v in value.items()))
    if isinstance(value, np.ndarray):  # an array argument is an input like a tensor
        tensors.append(Tensor._from_array(value))
        return _ArraySlot(len(tensors) - 1)
    if hasattr(value, "keys") and hasattr(value, "__getitem__") and hasattr(value, "items"):
        return (type(value), tuple((k, _flatten(v, tensors)) for k, v in value.items()))
    return ("value", value)


class _Slot(int):
    """A tensor's position in a flattened structure."""


class _ArraySlot(_Slot):
    """A NumPy array's position (passed and returned as an array)."""


def _unflatten(layout: Any, tensors: list) -> Any:
    if isinstance(layout, _ArraySlot):
        return tensors[layout].data
    if isinstance(layout, _Slot):
        return tensors[layout]
    kind, items = layout[0], layout[1] if len(layout) > 1 else None
    if kind == "tuple":
        return tuple(_unflatten(v, tensors) for v in items)
    if kind == "list":
        return [_unflatten(v, tensors) for v in items]
    if kind == "dict":
        return {k: _unflatten(v, tensors) for k, v in items}
    if kind == "value":
        return items
    return kind({k: _unflatten(v, tensors) for k, v in items})


def _output_ref(tracer: Tracer, t: Tensor) -> Any:
    """How a returned tensor is found again on a replay: a value of the program (a Ref), or
    ("grad", leaf) for the .grad of a parameter or an input, as it is after the replay."""
    for k, leaf in enumerate(tracer.inputs):
        if leaf._grad is t:
            return ("grad", "input", k)
    for leaf in tracer.live:
        if leaf._grad is t:
            return ("grad", "live", leaf)
    return tracer._ref_of_tensor(t)


def _outputs(entry: _Entry, arrays: tuple, tensors: list) -> list:
    out = []
    values = iter(arrays)
    for ref in entry.outputs:
        if type(ref) is tuple:  # the .grad of a leaf
            leaf = tensors[ref[2]] if ref[1] == "input" else ref[2]
            out.append(leaf._grad)
            continue
        a = next(values)
        if isinstance(ref, Ref) and ref.kind == "live":
            out.append(entry.live[ref.index])  # a parameter returned as it is
        else:
            out.append(Tensor._from_array(a))
    return out


def _detached(t: Tensor) -> Tensor:
    return t if not t._requires_grad or t._node is None else t.detach()


def compile(fn: Callable | None = None, *, max_programs: int = 8, fuse: bool | None = None) -> Any:
    """Compile ``fn`` (see the module docstring); ``@minigrad.compile`` and
    ``@minigrad.compile(fuse=False)`` work as decorators. ``fuse=False`` keeps every op as
    its own call (the replay without generated kernels); by default elementwise chains are
    fused, unless ``MINIGRAD_KERNELS=numpy`` chose the NumPy twins."""
    if fuse is None:
        fuse = backend.KERNELS == "numba"
    if fn is None:
        return lambda f: CompiledFunction(f, max_programs=max_programs, fuse=fuse)
    return CompiledFunction(fn, max_programs=max_programs, fuse=fuse)
