"""Fusion: chains of elementwise ops in a traced program become one generated kernel.

``plan`` looks for groups of ops that have a scalar rule (``fusion_rule`` in
minigrad/ops/elementwise.py): an op joins the group of the op that consumes its output when
that output has no other use (no other op, no backward root, not returned), so the values
inside a group never need to exist as arrays. A group's inputs must each be of the group's
shape, a row broadcast over its leading dims (a bias), or a single value; its dtype float32
or float64.

Each group becomes two generated kernels (kernels/fused.py): the forward, one pass over the
elements; and the backward, which recomputes the chain per element and sends the gradient
back through it, summing over rows for a broadcast input. ``relu(x @ W + b)``'s bias add and
ReLU, or the residual ``h + relu(z)``, are one pass each way instead of two or three, and no
mask or intermediate is stored between forward and backward.

A lone ReLU, SiLU, sigmoid or tanh is worth a kernel too: one pass each way where eager
mode makes two or three (ReLU's backward selects with a saved mask, and np.where on a random
mask mispredicts a branch per element). GELU is left to its own kernels: its backward needs
exp, which a fused loop can only call per element, while the GELU kernel computes it a block
at a time (kernels/_math.exp_shifted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.compiler.trace import BackwardStep, CopyStep, OpStep, Ref, ViewRef, _TensorParam
from minigrad.ops.elementwise import Relu, Sigmoid, Silu, Tanh, fusion_rule

_WORTH_ALONE = (Relu, Silu, Sigmoid, Tanh)


class Group:
    """Ops ``members`` (step indices, in order), the last of which, ``output``, gives the
    group's value; ``inputs``: the refs that feed it from outside, in a fixed order."""

    def __init__(self, step: OpStep) -> None:
        self.members = [step.index]
        self.output = step.index
        self.shape = step.shape
        self.dtype = step.dtype
        self.recorded = step.recorded
        self.inputs: list = []
        self.kinds: list[str] = []
        self.steps: dict[int, OpStep] = {step.index: step}
        self.kernels: Any = None
        self.number = -1

    # -- the scalar code ------------------------------------------------------------------
    def _names(self) -> dict:
        """Scalar variable of each value: a<i> for input i, t<k> for member k's output."""
        names = {}
        for i, ref in enumerate(self.inputs):
            names[ref] = f"a{i}"
        for k in self.members:
            names[Ref("op", k)] = f"t{k}"
        return names

    def _forward_code(self) -> tuple:
        names = self._names()
        code = []
        for k in self.members:
            step = self.steps[k]
            rule = fusion_rule(step.cls, step.params)
            args = [names[r] for r in step.inputs]
            code.append((f"t{k}", rule[0].format(*args, p=step.params)))
        return tuple(code)

    def chain(self, needed: list[bool]) -> Any:
        """The chain for kernels/fused.py; ``needed[i]``: input i needs a gradient."""
        names = self._names()
        code = [(f"d{self.output}", "gr[j]")]
        contributions: dict[str, list[str]] = {}
        for k in reversed(self.members):
            step = self.steps[k]
            rule = fusion_rule(step.cls, step.params)
            args = [names[r] for r in step.inputs]
            for i, r in enumerate(step.inputs):
                term = rule[1][i].format(*args, g=f"d{k}", y=f"t{k}", p=step.params)
                if r in names and names[r].startswith("t"):
                    code.append((f"d{r.index}", term))  # a member's output: used once
                else:
                    contributions.setdefault(names[r], []).append(f"({term})")
        grads = []
        for i in range(len(self.inputs)):
            if not needed[i]:
                grads.append(None)
                continue
            terms = contributions.get(f"a{i}", ["0.0"])
            code.append((f"e{i}", " + ".join(terms)))
            grads.append(f"e{i}")
        return backend.fused_chain(
            tuple(self.kinds), self._forward_code(), f"t{self.output}", tuple(code), tuple(grads)
        )

    def describe(self) -> str:
        ops = " -> ".join(self.steps[k].cls.__name__ for k in self.members)
        kinds = ", ".join(f"{kind} {shape}" for kind, shape in zip(self.kinds, self.shapes))
        return f"fused{self.number}: {ops} on ({kinds}) -> {self.shape} {self.dtype}"

    def source(self) -> str:
        return self.kernels.source if self.kernels is not None else ""

    # -- in the program --------------------------------------------------------------------
    def emit_forward(self, program: Any) -> None:
        self.number = len([g for g in program.groups if g.number >= 0])
        chain = self.chain([False] * len(self.inputs))
        self.kernels = backend.fused_kernels(chain, self.shapes, self.shape, self.dtype)
        name = program.const(self.kernels, "FUSED")
        args = ", ".join(program.expr(r) for r in self.inputs)
        ops = ", ".join(self.steps[k].cls.__name__ for k in self.members)
        program.emit(
            f"v{self.output} = {name}.forward({args})",
            f"v{self.output} = fused{self.number}<{ops}>({program.describe(self.inputs)})",
        )

    def emit_backward(self, program: Any, step: BackwardStep, pending: set) -> None:
        targets: dict[int, tuple] = {}  # input position -> where its gradient goes
        for entry in step.walk:
            if entry[0] != "node" or entry[1] not in self.steps:
                continue
            op = self.steps[entry[1]]
            for i, target in entry[2]:
                ref = op.inputs[i]
                if ref in self.inputs:
                    targets[self.inputs.index(ref)] = target
        needed = [i in targets for i in range(len(self.inputs))]
        if not any(needed):
            return
        kernels = backend.fused_kernels(self.chain(needed), self.shapes, self.shape, self.dtype)
        name = program.const(kernels, "FUSEDB")
        args = ", ".join(program.expr(r) for r in self.inputs)
        from minigrad.compiler.program import _pending_name

        sent = ", ".join(_pending_name(t) for _, t in sorted(targets.items()))
        program.emit(
            f"r = {name}.backward(p{self.output}, {args})",
            f"  {sent} <- fused{self.number}.backward(p{self.output})",
        )
        for i, target in sorted(targets.items()):
            program.accumulate(_pending_name(target), f"r[{i}]", pending)


def _uses(steps: list, outputs: list) -> dict:
    """How many times each op's output is read. A read that no kernel can see (a view of it,
    a copy, a Tensor parameter, a returned value, the root of a backward) counts twice: the
    value must stay an array."""
    uses: dict[int, int] = {}

    def visit(v: Any, weight: int = 1) -> None:
        if isinstance(v, ViewRef):
            visit(v.base, 2)
        elif isinstance(v, Ref):
            if v.kind == "op":
                uses[v.index] = uses.get(v.index, 0) + weight
        elif type(v) in (tuple, list):
            for x in v:
                visit(x, weight)
        elif isinstance(v, _TensorParam):
            visit(v.ref, 2)

    for step in steps:
        if isinstance(step, OpStep):
            visit(step.inputs)
            visit(list(step.params.values()))
        elif isinstance(step, CopyStep):
            visit(step.source, 2)
        elif isinstance(step, BackwardStep):
            visit(Ref("op", step.root), 2)
            visit(step.gradient)
    visit(outputs, 2)
    return uses


def _fusable(step: OpStep) -> bool:
    return (
        step.dtype in (np.float32, np.float64)
        and not step.wrap
        and fusion_rule(step.cls, step.params) is not None
    )


def plan(steps: list, outputs: list, shape_of: Any) -> list[Group]:
    """The groups to fuse in a traced program (see the module docstring)."""
    uses = _uses(steps, outputs)
    group_of: dict[int, Group] = {}
    for step in steps:
        if not isinstance(step, OpStep) or not _fusable(step):
            continue
        group = Group(step)
        for ref in step.inputs:
            inner = group_of.get(ref.index) if isinstance(ref, Ref) and ref.kind == "op" else None
            if (
                inner is not None
                and inner.output == ref.index
                and uses.get(ref.index, 0) == 1
                and inner.recorded == step.recorded
                and inner.shape == step.shape
                and inner.dtype == step.dtype
            ):
                for k in inner.members:
                    group.steps[k] = inner.steps[k]
                    group_of[k] = group
                group.members = sorted(inner.members + group.members)
        for k in group.members:
            group_of[k] = group
    groups = []
    seen = set()
    for group in group_of.values():
        if id(group) in seen:
            continue
        seen.add(id(group))
        if _finish(group, shape_of) and (
            len(group.members) > 1 or group.steps[group.output].cls in _WORTH_ALONE
        ):
            groups.append(group)
    return groups


def _finish(group: Group, shape_of: Any) -> bool:
    """Find the group's inputs and their kinds; False if one fits no kind."""
    members = {Ref("op", k) for k in group.members}
    inputs = []
    for k in group.members:
        for ref in group.steps[k].inputs:
            if ref not in members and ref not in inputs:
                inputs.append(ref)
    shape = tuple(group.shape)
    kinds, shapes, cols = [], [], set()
    for ref in inputs:
        s = tuple(shape_of(ref))
        size = int(np.prod(s, dtype=np.int64))
        stripped = s
        while stripped and stripped[0] == 1:
            stripped = stripped[1:]
        if s == shape:
            kinds.append("full")
        elif size == 1:
            kinds.append("scalar")
        elif stripped and len(stripped) <= len(shape) and shape[-len(stripped) :] == stripped:
            kinds.append("row")
            cols.add(size)
        else:
            return False
        shapes.append(s)
    if len(cols) > 1 or (kinds and all(k != "full" for k in kinds) and "row" not in kinds):
        return False
    if not any(k == "full" for k in kinds) and not cols:
        return False  # every input a single value: NumPy's scalar ops are as good
    group.inputs, group.kinds, group.shapes = inputs, kinds, tuple(shapes)
    return True
