"""A traced call as a program: straight-line Python over arrays, generated once.

Each step of the trace becomes a line or two of code:

- an op: its ``forward`` called on arrays with its context object (made at trace time and
  reused), and for an op that is differentiated, its saved arrays kept on the context;
- a fused group of elementwise ops (fusion.py): one call of a generated Numba kernel;
- a random draw: drawn again; a recorded call (``optimizer.step()``): called again;
- a backward pass: each node's ``backward`` in the traced order, the gradients summed into
  plain local variables where paths meet and stored in the leaves' ``.grad`` as the engine
  stores them.

No Tensor is made, no graph node recorded, no topological sort run: the engine's work was
done once, at trace time. What is left per op is one Python call into its forward or
backward, which call the same kernels as in eager mode. ``Program.source`` is the code;
``Program.explain()`` describes it line by line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import _accumulate_into_leaf
from minigrad.compiler.trace import (
    BackwardStep,
    CallStep,
    CopyStep,
    OpStep,
    RandomStep,
    Ref,
    Tracer,
    ViewRef,
    _TensorParam,
)
from minigrad.ops.namespace import numpy_ops
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor

_OPTIMIZER_STEP = Optimizer.step.__wrapped__  # what the tracer sees for opt.step()


def _keep(to_save: tuple) -> tuple | None:
    """What ``Function._freeze_saved`` keeps, minus the version counters (no tensor of the
    program can be modified in place by the user while it runs)."""
    if not to_save:
        return None
    return tuple([None if a is None else (a, None, 0, 0) for a in to_save])


def _tuple(r: Any) -> tuple:
    return r if type(r) is tuple else (r,)


def _view(base: np.ndarray, offset: int, shape: tuple, strides: tuple, dtype: Any) -> np.ndarray:
    return np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)


def _ones(v: np.ndarray) -> np.ndarray:
    return np.ones_like(v)


class Program:
    """One traced call of a function, as generated code (see the module docstring)."""

    def __init__(self, tracer: Tracer, outputs: list, name: str, fuse: bool = True) -> None:
        self.name = name
        self.steps = tracer.steps
        self.live = tracer.live
        self.inputs = [(t.shape, t.dtype) for t in tracer.inputs]
        self.names = _parameter_names(tracer)
        self.outputs = outputs  # refs of the tensors the function returned
        self.ns: dict[str, Any] = {
            "_keep": _keep,
            "_tuple": _tuple,
            "_view": _view,
            "_ones": _ones,
            "_acc": _accumulate_into_leaf,
            "_nd": np.ndarray,
            "_asarray": np.asarray,
            "_Tensor": Tensor,
        }
        self.lines: list[str] = []
        self.notes: list[tuple[int, str]] = []  # (line number, description) for explain
        self.groups: list = []  # fused groups (fusion.Group)
        self._n_const = 0
        self.fused: dict[int, Any] = {}
        if fuse:
            from minigrad.compiler import fusion

            self.groups = fusion.plan(self.steps, self.outputs, self.shape_of)
        self._generate()
        code = compile(self.source, f"<minigrad.compile {name}>", "exec")
        exec(code, self.ns)
        self.run = self.ns["program"]

    # -- names ------------------------------------------------------------------------
    def const(self, value: Any, hint: str = "K") -> str:
        name = f"{hint}{self._n_const}"
        self._n_const += 1
        self.ns[name] = value
        return name

    def expr(self, ref: Any) -> str:
        """Code for the array a ref names."""
        if isinstance(ref, ViewRef):
            return f"_view({self.expr(ref.base)}, {ref.offset}, {ref.shape}, {ref.strides}, " + (
                f"{self.const(ref.dtype, 'D')})"
            )
        if ref.kind == "input":
            return f"x{ref.index}"
        if ref.kind == "live":
            return f"L{ref.index}.data"
        return f"v{ref.index}"

    def name_of(self, ref: Any) -> str:
        """A ref as a learner reads it: x0, v3, or a parameter's dotted name."""
        if isinstance(ref, ViewRef):
            return f"view of {self.name_of(ref.base)}"
        if ref.kind == "input":
            return f"x{ref.index}"
        if ref.kind == "live":
            return self.names.get(id(self.live[ref.index]), f"L{ref.index}")
        return f"v{ref.index}"

    def describe(self, refs: Any) -> str:
        """``name shape`` of each ref, comma-separated."""
        return ", ".join(f"{self.name_of(r)} {self.shape_of(r)}" for r in refs)

    def shape_of(self, ref: Any) -> tuple:
        if isinstance(ref, ViewRef):
            return ref.shape
        if ref.kind == "input":
            return tuple(self.inputs[ref.index][0])
        if ref.kind == "live":
            return tuple(self.live[ref.index].shape)
        step = self.steps[ref.index]
        return tuple(step.shape) if hasattr(step, "shape") else ()

    def param(self, value: Any) -> str:
        if isinstance(value, (Ref, ViewRef)):
            return self.expr(value)
        if isinstance(value, _TensorParam):
            return f"_Tensor._from_array({self.expr(value.ref)})"
        if type(value) in (tuple, list) and any(
            isinstance(v, (Ref, ViewRef, _TensorParam)) for v in value
        ):
            inner = ", ".join(self.param(v) for v in value)
            return f"({inner},)" if type(value) is tuple else f"[{inner}]"
        if value is None or type(value) in (bool, int, str):
            return repr(value)
        return self.const(value, "P")

    # -- code ---------------------------------------------------------------------------
    def emit(self, line: str, note: str | None = None) -> None:
        if note is not None:
            self.notes.append((len(self.lines), note))
        self.lines.append("    " + line)

    def _generate(self) -> None:
        for k, t in enumerate(self.live):
            self.ns[f"L{k}"] = t
        args = "".join([f", x{k}" for k in range(len(self.inputs))])
        grouped = {}  # op index -> its group, for the ops a fused kernel computes
        for group in self.groups:
            for i in group.members:
                grouped[i] = group
        for step in self.steps:
            if isinstance(step, OpStep):
                group = grouped.get(step.index)
                if group is None:
                    self._op(step)
                elif step.index == group.output:
                    group.emit_forward(self)
            elif isinstance(step, RandomStep):
                name = self.const(step.make, "R")
                self.emit(f"v{step.index} = {name}()", f"draw {step.shape} {step.dtype}")
            elif isinstance(step, CopyStep):
                dtype = self.const(step.dtype, "D")
                self.emit(
                    f"v{step.index} = _asarray({self.expr(step.source)}, {dtype}).copy()",
                    "copy of a traced value (Tensor(...))",
                )
            elif isinstance(step, CallStep):
                self._call(step)
            elif isinstance(step, BackwardStep):
                self._backward(step, grouped)
        outs = ", ".join(self.expr(r) if r is not None else "None" for r in self.outputs)
        self.emit(f"return ({outs},)" if self.outputs else "return ()")
        self.source = f"def program(X{args}):\n" + "\n".join(self.lines) + "\n"

    def _op(self, step: OpStep) -> None:
        k = step.index
        step.ctx.xp = numpy_ops  # the first-order namespace, set once
        step.ctx._released = False  # the trace's backward freed it; the program refills it
        self.ns[f"c{k}"] = step.ctx
        forward = self.const(step.cls.forward, f"{step.cls.__name__}_forward_")
        args = [f"c{k}"] + [self.expr(r) for r in step.inputs]
        args += [f"{key}={self.param(v)}" for key, v in step.params.items()]
        if step.recorded:
            self.emit(f"c{k}._to_save = ()")
        call = f"{forward}({', '.join(args)})"
        if step.wrap:
            call = f"_asarray({call})"
        self.emit(f"v{k} = {call}", f"v{k} = {step.cls.__name__}({self.describe(step.inputs)})")
        if step.recorded:
            self.emit(f"c{k}._saved = _keep(c{k}._to_save)")

    def _call(self, step: CallStep) -> None:
        if step.fn is _OPTIMIZER_STEP and len(step.args) == 1 and not step.kwargs:
            self._optimizer_step(step.args[0])
            return
        fn = self.const(step.fn, "CALL")
        args = self.const(step.args, "A")
        kwargs = self.const(step.kwargs, "KW")
        name = getattr(step.fn, "__name__", "call")
        if step.args and hasattr(step.args[0], name):  # a method: name its class
            name = f"{type(step.args[0]).__name__}.{name}"
        if step.returns_tensor:  # a value the program reads
            self.emit(f"v{step.index} = {fn}(*{args}, **{kwargs}).data", f"call {name}")
        else:
            self.emit(f"{fn}(*{args}, **{kwargs})", f"call {name}")

    def _optimizer_step(self, opt: Any) -> None:
        """``opt.step()`` as its updates, one kernel call per parameter: what
        ``Optimizer.step`` does, without its loop and its checks (the program made the
        gradients: contiguous, of the parameters' dtypes). The groups are read as they are
        when the program runs, so a scheduler's learning rate is seen."""
        update = self.const(opt._update, "UPDATE")
        state = self.const(lambda p, opt=opt: opt.state.setdefault(p, {}), "STATE")
        self.emit(
            f"# {type(opt).__name__}.step", f"{type(opt).__name__}.step: one update per parameter"
        )
        for group in opt.param_groups:
            g = self.const(group, "GROUP")
            for p in group["params"]:
                t = self.const(p, "PARAM")
                self.emit(f"if {t}.grad is not None:")
                self.emit(f"    {update}({t}.data, {t}.grad.data, {state}({t}), {g})")
                self.emit(f"    {t}._version_counter().value += 1")

    def _backward(self, step: BackwardStep, grouped: dict) -> None:
        pending: set[str] = set()
        root = f"p{step.root}"
        if step.gradient is None:
            self.emit(f"{root} = _ones(v{step.root})", f"backward from v{step.root}: {root} = 1")
        elif isinstance(step.gradient, np.ndarray):
            self.emit(f"{root} = {self.const(step.gradient, 'G')}", f"backward from v{step.root}")
        else:
            self.emit(f"{root} = {self.expr(step.gradient)}", f"backward from v{step.root}")
        pending.add(root)
        for entry in step.walk:
            if entry[0] == "leaf":
                _, target, owned = entry
                var = _pending_name(target)
                ref = target[1]
                tensor = f"X[{ref.index}]" if ref.kind == "input" else f"L{ref.index}"
                self.emit(
                    f"_acc({tensor}._edge(), {var}, False, {owned})",
                    f"  {self.name_of(target[1])}.grad += {var}",
                )
                continue
            _, k, sends = entry
            group = grouped.get(k)
            if group is not None:
                if k == group.output:
                    group.emit_backward(self, step, pending)
                continue
            op = self.steps[k]
            backward = self.const(op.cls.backward, f"{op.cls.__name__}_backward_")
            sent = ", ".join(_pending_name(t) for _, t in sends)
            self.emit(
                f"r = _tuple({backward}(c{k}, p{k}))",
                f"  {sent} <- {op.cls.__name__}.backward(p{k})",
            )
            self.emit(f"c{k}._owned = ()")
            for i, target in sends:
                dtype = self.const(op.ctx.input_dtypes[i], "D")
                self.emit(f"g = r[{i}]")
                self.emit(f"if g.dtype != {dtype} and type(g) is _nd: g = g.astype({dtype})")
                self.accumulate(_pending_name(target), "g", pending)
            if not step.retain_graph:
                self.emit(f"c{k}._saved = None")

    def accumulate(self, var: str, value: str, pending: set) -> None:
        """``var`` += ``value``, where the first contribution is just stored (as the engine
        stores it, so that a leaf's gradient is the very array when a single path reaches
        it)."""
        if var in pending:
            self.emit(f"{var} = {var} + {value}")
        else:
            self.emit(f"{var} = {value}")
            pending.add(var)

    # -- for a learner --------------------------------------------------------------------
    def explain(self, source: bool = False) -> str:
        """One line per step of the program: the op and its shapes, the fused groups with
        the ops each one fuses, the backward walk and the recorded calls."""
        out = [f"program of {self.name}: {len(self.lines)} lines of generated Python"]
        for _, note in self.notes:
            out.append("  " + note)
        if self.groups:
            out.append("fused kernels:")
            for group in self.groups:
                out.append("  " + group.describe())
                if source:
                    out.extend("    " + line for line in group.source().splitlines())
        if source:
            out.append("generated Python:")
            out.extend("  " + line for line in self.source.splitlines())
        return "\n".join(out)


def _parameter_names(tracer: Tracer) -> dict:
    """id(tensor) -> dotted name, for the parameters and buffers of the modules the trace
    ran (the outermost module is called first, so its names win)."""
    names: dict[int, str] = {}
    for module in tracer.modules.values():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            names.setdefault(id(t), name)
    return names


def _pending_name(target: tuple) -> str:
    """The variable that sums the gradient arriving at a node: p3 for the node of v3,
    g_x0 or g_L2 for the leaf x0 or live tensor L2."""
    if target[0] == "op":
        return f"p{target[1]}"
    ref = target[1]
    return f"g_x{ref.index}" if ref.kind == "input" else f"g_L{ref.index}"
