"""``minigrad.explain(loss)``: run backward and tell, node by node, what the engine does.

Each entry of the trace is one node of the backward graph, in the order the engine visits
it: which op it is and where the user's code created it, the local derivative rule of its
backward, the shapes and saved values, the gradient that came in (and the sum, where two
paths met) and the gradients it sends to its inputs. The same entries are returned as a list
of ``Step`` records, for tests and notebooks; ``minigrad.viz`` draws them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from minigrad import autograd
from minigrad.autograd import AccumulateGrad, Function
from minigrad.tensor import Tensor

# The local derivative of each op, in the words of its backward. a, b are the inputs, y the
# output; the engine multiplies each by the incoming gradient g (vector-Jacobian product).
RULES = {
    "Add": "d(a+b)/da = 1, d(a+b)/db = 1 (summed over broadcast axes)",
    "Sub": "d(a-b)/da = 1, d(a-b)/db = -1",
    "Mul": "d(a*b)/da = b, d(a*b)/db = a",
    "Div": "d(a/b)/da = 1/b, d(a/b)/db = -a/b**2",
    "Neg": "d(-a)/da = -1",
    "Pow": "d(a**b)/da = b*a**(b-1), d(a**b)/db = a**b*log(a)",
    "Exp": "d(exp a)/da = exp a = y",
    "Log": "d(log a)/da = 1/a",
    "Sqrt": "d(sqrt a)/da = 1/(2*sqrt a) = 1/(2y)",
    "Sin": "d(sin a)/da = cos a",
    "Cos": "d(cos a)/da = -sin a",
    "Abs": "d|a|/da = sign(a)",
    "Maximum": "d max(a,b)/da = 1 where a wins, else 0 (ties split)",
    "Clamp": "d clamp(a)/da = 1 inside the bounds, 0 outside",
    "Relu": "d relu(a)/da = 1 where a > 0, else 0",
    "Sigmoid": "d sigmoid(a)/da = y*(1-y)",
    "Tanh": "d tanh(a)/da = 1 - y**2",
    "LeakyRelu": "d/da = 1 where a > 0, else negative_slope",
    "Elu": "d/da = 1 where a > 0, else y + alpha",
    "Erf": "d erf(a)/da = 2/sqrt(pi) * exp(-a**2)",
    "Gelu": "d gelu(a)/da = Phi(a) + a*phi(a)",
    "Silu": "d (a*sigmoid a)/da = s + a*s*(1-s), s = sigmoid(a)",
    "Softplus": "d softplus(a)/da = sigmoid(beta*a)",
    "Cast": "the gradient, cast back to the input's dtype",
    "Clone": "d(a)/da = 1",
    "GetItem": "the gradient scattered back to the selected positions, zeros elsewhere",
    "Where": "g goes to a where cond, to b elsewhere",
    "CrossEntropyRows": "d loss/d logits = (softmax(logits) - onehot(target)) / N",
    "MatMul": "d(A@B)/dA = g @ B^T, d(A@B)/dB = A^T @ g",
    "Linear": "y = x W^T + b: dx = g W, dW = g^T x, db = sum of g over rows",
    "Reshape": "the gradient reshaped back to the input's shape",
    "Permute": "the gradient permuted back (the inverse permutation)",
    "Expand": "the gradient summed over the expanded axes",
    "Pad": "the gradient with the padding cut off",
    "Cat": "the gradient split back into the pieces",
    "LayerNorm": "dx = (g*w - mean(g*w) - xhat*mean(g*w*xhat)) / std; dw = sum g*xhat",
    "MaxPool2d": "g goes to the position of each window's maximum",
    "AvgPool2d": "g shared equally over each window",
    "AdaptiveAvgPool2d": "g shared equally over each window",
    "Sum": "d sum(a)/da = 1 for every element: g broadcast back",
    "Amax": "g goes to the maxima (shared between ties)",
    "LogSumExp": "d lse(a)/da = softmax(a)",
    "Softmax": "d softmax/da: y * (g - sum(g*y))",
    "LogSoftmax": "d log_softmax/da: g - softmax(a) * sum(g)",
    "Conv2d": "dx = transposed convolution of g with W; dW = correlation of x with g",
    "ScaledDotProductAttention": "backward of softmax(QK^T/sqrt d)V: dV = P^T g, dP = g V^T, "
    "dS = P*(dP - rowsum(dP*P)), dQ = dS K/sqrt d, dK = dS^T Q/sqrt d",
    "LSTMLayer": "backpropagation through time over the gates i, f, g, o",
    "GRULayer": "backpropagation through time over the gates r, z, n",
    "BackwardHookIdentity": "d(a)/da = 1 (where a module's backward hook meets the gradient)",
}


@dataclass
class Step:
    """One node of the backward pass, in the order the engine visited it."""

    index: int
    op: str  # the op's class name, or "leaf" for a leaf's accumulator
    label: str  # the op, or the leaf's name
    site: str | None  # "file.py:12" where the user's code made the node
    rule: str
    output_shape: tuple
    input_shapes: list
    saved: list  # one short summary per saved value
    grad_in: np.ndarray  # d(loss)/d(this node's output), all paths summed
    contributions: list = field(default_factory=list)  # [(from step index, gradient)]
    grads_out: list = field(default_factory=list)  # one array (or None) per input
    inputs: list = field(default_factory=list)  # the step index each input's gradient goes to
    node: Any = None

    def is_sum(self) -> bool:
        return len(self.contributions) > 1


def summary(a: Any, small: int = 6) -> str:
    """A number, a short list, or for bigger arrays shape, mean and range; never a dump."""
    if a is None:
        return "None"
    a = np.asarray(a.data if isinstance(a, Tensor) else a)
    if a.size == 1:
        return f"{float(a.reshape(())):.6g}"
    if a.size <= small and a.dtype.kind == "f":
        return (
            "["
            + ", ".join(f"{v:.4g}" for v in a.ravel())
            + "]"
            + (f" shape {a.shape}" if a.ndim > 1 else "")
        )
    if a.dtype.kind != "f":
        return f"{a.dtype} shape {a.shape}"
    return (
        f"shape {a.shape} mean {a.mean():.4g} min {a.min():.4g} max {a.max():.4g} "
        f"|.| {np.linalg.norm(a.ravel()):.4g}"
    )


def leaf_names(names: Any) -> dict:
    """{id(tensor): name} from a Module (parameters by dotted name) or a dict name -> tensor."""
    if names is None:
        return {}
    if hasattr(names, "named_parameters"):
        return {id(p): n for n, p in names.named_parameters()}
    return {id(t): n for n, t in dict(names).items()}


def site_text(node: Function) -> str | None:
    if node.site is None:
        return None
    path, line = node.site
    return f"{os.path.relpath(path) if not path.startswith('<') else path}:{line}"


def trace(loss: Tensor, names: Any = None, gradient: Any = None, retain_graph: bool = False):
    """Run ``loss.backward()`` and return the list of ``Step`` records (no printing)."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"explain: expected a Tensor, got {type(loss).__name__}")
    root = loss._edge()
    if root is None:
        raise RuntimeError(
            "explain: this tensor does not require grad, so there is no backward graph; "
            "call requires_grad_() on a leaf it depends on"
        )
    if names is None:  # parameters by name, when the graph was built by a module
        names = next((n.scope[0] for n in autograd._topological_order([root]) if n.scope), None)
    named = leaf_names(names)
    steps: list[Step] = []
    index_of: dict = {}
    arrived: dict = {}  # node -> [(from step, gradient)]
    leaf_count = [0]

    def observe(node: Function, g: Any, in_grads: tuple) -> None:
        k = len(steps)
        index_of[node] = k
        if isinstance(node, AccumulateGrad):
            leaf = node.leaf()
            name = named.get(id(leaf)) if leaf is not None else None
            if name is None:
                leaf_count[0] += 1
                name = f"leaf {leaf_count[0]}"
            step = Step(
                k,
                "leaf",
                name,
                None,
                "leaf.grad += g",
                tuple(np.shape(g)),
                [],
                [],
                _copy(g),
                node=node,
            )
            if leaf is not None:
                step.saved = [f"value {summary(leaf.data)}"]
        else:
            step = Step(
                k,
                node.name(),
                node.name(),
                site_text(node),
                RULES.get(node.name(), f"{node.name()}.backward"),
                tuple(np.shape(g)),
                list(node.input_shapes),
                [f"{what}: {summary(array)}" for what, array in autograd.saved_values(node)],
                _copy(g),
                grads_out=[None if x is None else _copy(x) for x in in_grads],
                node=node,
            )
            for edge, x in zip(node.edges, in_grads):
                if edge is not None and x is not None:
                    arrived.setdefault(edge, []).append((k, step.grads_out[len(step.inputs)]))
                step.inputs.append(edge)
        step.contributions = arrived.pop(node, [(None, step.grad_in)])
        steps.append(step)

    previous = autograd._observer
    autograd._observer = observe
    try:
        loss.backward(gradient, retain_graph=retain_graph)
    finally:
        autograd._observer = previous
    for step in steps:  # inputs as step indices, now that every node has one
        step.inputs = [index_of.get(e) for e in step.inputs]
    return steps


def _copy(g: Any) -> np.ndarray:
    return np.array(g.data if isinstance(g, Tensor) else g, copy=True)


def format_step(step: Step, steps: list[Step]) -> str:
    """The printed entry of one step."""
    where = f"  (made at {step.site})" if step.site else ""
    lines = [f"[{step.index}] {step.label}{where}"]
    if step.op == "leaf":
        if step.saved:
            lines.append(f"    {step.saved[0]}")
        lines.append("    rule  leaf.grad += g (a leaf's gradient accumulates until zeroed)")
    else:
        shapes = ", ".join(str(tuple(s)) for s in step.input_shapes)
        lines.append(f"    rule  {step.rule}")
        lines.append(f"    shapes  inputs {shapes} -> output {step.output_shape}")
        for s in step.saved:
            lines.append(f"    saved  {s}")
    if step.index == 0 or step.contributions[0][0] is None:
        if step.index == 0:
            lines.append(f"    g in  {summary(step.grad_in)}   (the start: d(out)/d(out))")
        else:
            lines.append(f"    g in  {summary(step.grad_in)}")
    elif step.is_sum():
        parts = " + ".join(f"{summary(c)} from [{k}]" for k, c in step.contributions)
        lines.append(f"    g in  {parts}")
        meet = f"({len(step.contributions)} paths meet: gradients add)"
        lines.append(f"        = {summary(step.grad_in)}   {meet}")
    else:
        k, _ = step.contributions[0]
        lines.append(f"    g in  {summary(step.grad_in)}   from [{k}]")
    for i, (gout, target) in enumerate(zip(step.grads_out, step.inputs)):
        to = f" -> [{target}] {steps[target].label}" if target is not None else " (not needed)"
        lines.append(f"    g out input {i}: {summary(gout)}{to}")
    return "\n".join(lines)


def explain(
    loss: Tensor, names: Any = None, file: TextIO | None = sys.stdout, gradient: Any = None
) -> list[Step]:
    """Run ``loss.backward()`` and print one entry per node of the backward graph, in the
    engine's order; return the entries as a list of ``Step`` records.

    ``names`` labels leaves: a Module (its parameters by name) or a dict ``{"a": a, ...}``.
    Build the graph inside ``with minigrad.record_sites():`` to see where each op was made.
    ``file=None`` prints nothing.
    """
    steps = trace(loss, names, gradient)
    if file is not None:
        for step in steps:
            print(format_step(step, steps), file=file)
    return steps
