"""Module hooks: what ``Module.__call__`` does when a hook is registered.

Forward hooks are plain calls around ``forward``. The full backward hook is built on the
engine's tensor hooks (``Tensor.register_hook``): each tensor input goes through an identity
op, so the gradient with respect to it has a node of its own to meet a hook at, and a hook on
the output catches ``grad_output``. When the last input gradient arrives (every path summed),
the user's hook sees both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minigrad.autograd import Function, add_hook, is_grad_enabled
from minigrad.tensor import Tensor


def register(module: Any, kind: str, hook: Callable) -> Any:
    """Store ``hook`` in ``module._module_hooks[kind]`` and return its removable handle."""
    table = module.__dict__.get("_module_hooks")
    if table is None:
        table = {"forward_pre": None, "forward": None, "backward": None}
        object.__setattr__(module, "_module_hooks", table)
    holder = _Holder(table, kind)
    return add_hook(holder, "hooks", hook)


class _Holder:
    """Lets ``add_hook`` (which sets an attribute) fill one entry of the module's table."""

    def __init__(self, table: dict, kind: str) -> None:
        self.table, self.kind = table, kind

    @property
    def hooks(self) -> Any:
        return self.table[self.kind]

    @hooks.setter
    def hooks(self, value: Any) -> None:
        self.table[self.kind] = value


class BackwardHookIdentity(Function):
    """y = x. Gives the gradient with respect to a module input a node to be caught at."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def call_with_hooks(module: Any, args: tuple, kwargs: dict) -> Any:
    table = module.__dict__["_module_hooks"]
    for hook in list((table["forward_pre"] or {}).values()):
        new = hook(module, args)
        if new is not None:
            args = new if isinstance(new, tuple) else (new,)
    backward_hooks = table["backward"]
    catcher = None
    if backward_hooks and is_grad_enabled():
        catcher = _GradCatcher(module, backward_hooks, args)
        args = catcher.wrap_inputs()
    output = module.forward(*args, **kwargs)
    for hook in list((table["forward"] or {}).values()):
        new = hook(module, args, output)
        if new is not None:
            output = new
    if catcher is not None:
        catcher.watch_outputs(output)
    return output


class _GradCatcher:
    """Collects grad_output and grad_input of one module call and calls the backward hooks."""

    def __init__(self, module: Any, hooks: dict, args: tuple) -> None:
        self.module, self.hooks, self.args = module, hooks, args
        self.grad_output: list = []
        self.grad_input: list = []
        self.pending = 0

    def wrap_inputs(self) -> tuple:
        wrapped = []
        self.grad_input = [None] * len(self.args)
        for i, a in enumerate(self.args):
            if isinstance(a, Tensor) and a.requires_grad:
                a = BackwardHookIdentity.apply(a)
                a.register_hook(self._input_hook(i))
                self.pending += 1
            wrapped.append(a)
        self.expected = self.pending
        return tuple(wrapped)

    def watch_outputs(self, output: Any) -> None:
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        tensors = [t for t in outputs if isinstance(t, Tensor) and t.requires_grad]
        self.grad_output = [None] * len(tensors)
        for k, t in enumerate(tensors):
            t.register_hook(self._output_hook(k))

    def _output_hook(self, k: int) -> Callable:
        def hook(grad: Tensor) -> None:
            self.grad_output[k] = grad
            if self.expected == 0:  # no input needs a gradient: call with grad_input None
                self._call(single=None)

        return hook

    def _input_hook(self, i: int) -> Callable:
        def hook(grad: Tensor) -> Any:
            self.grad_input[i] = grad
            self.pending -= 1
            if self.pending == 0:
                return self._call(single=i)
            return None

        return hook

    def _call(self, single: int | None) -> Any:
        name = type(self.module).__name__
        replacement = None
        for hook in list(self.hooks.values()):
            new = hook(self.module, tuple(self.grad_input), tuple(self.grad_output))
            if new is None:
                continue
            new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
            if len(new) != len(self.grad_input):
                raise RuntimeError(
                    f"{name} backward hook returned {len(new)} gradients for "
                    f"{len(self.grad_input)} inputs"
                )
            if self.expected > 1:
                raise RuntimeError(
                    f"{name} backward hook: replacing grad_input is supported for modules with "
                    f"one tensor input that needs a gradient; this call has {self.expected}"
                )
            self.grad_input = list(new)
            replacement = new[single] if single is not None else None
        return replacement
