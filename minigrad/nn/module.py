"""Module: the base class of every layer, and the containers Sequential, ModuleList, ModuleDict.

As in PyTorch, assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so
``parameters()``, ``state_dict()`` and ``train()``/``eval()`` find everything by walking the
tree of submodules. State dict keys are dotted paths (``"0.weight"``, ``"conv1.bias"``) with
PyTorch's layouts, so a state dict crosses over to the equivalent PyTorch module by name.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from minigrad import autograd, dtypes
from minigrad.autograd import no_grad
from minigrad.nn import hooks
from minigrad.tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a learnable part of a module: ``requires_grad=True`` by default.

    ``grad_sample`` stays None unless ``minigrad.privacy.GradSampleModule`` stores per-sample
    gradients there (B, *shape), as Opacus does on PyTorch's parameters."""

    __slots__ = ("grad_sample",)

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty(0, dtypes.get_default_dtype())
        super().__init__(data.data if isinstance(data, Tensor) else data)
        if not dtypes.is_floating(self.data.dtype):
            self.data = self.data.astype(dtypes.get_default_dtype())
        self.requires_grad = requires_grad
        self.grad_sample: Any = None

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class for layers and models: subclass it, assign submodules and parameters in
    ``__init__``, and write ``forward``. Call the module (``model(x)``) to run forward."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning {name!r}"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if (
            isinstance(value, (Parameter, Module))
            or name in params
            or name in modules
            or (name in buffers)
        ):
            autograd.state_changed()  # compiled programs recheck their guards
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params or name in modules:
            if value is not None:
                kind = "parameter" if name in params else "submodule"
                raise TypeError(
                    f"{type(self).__name__}: can't assign {type(value).__name__} to {kind} "
                    f"{name!r} (expected a {'Parameter' if kind == 'parameter' else 'Module'} "
                    "or None)"
                )
            (params if name in params else modules)[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: buffer {name!r} must be a Tensor or None")
            buffers[name] = value
        else:
            if name in self.__dict__ and self.__dict__[name] is not value:
                autograd.state_changed()  # the mode, or a setting such as Dropout.p
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        for store in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(store)
            if values is not None and name in values:
                if autograd.tracer is not None:  # minigrad.compile: guard on what was read
                    autograd.tracer.module(self, called=False)
                return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        autograd.state_changed()
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None")
        autograd.state_changed()
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state but not learnable (running statistics); saved in the state
        dict unless ``persistent=False``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None")
        autograd.state_changed()
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None")
        autograd.state_changed()
        self._modules[name] = module

    # -- running ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if autograd.tracer is not None:  # minigrad.compile: guard on this module's mode
            autograd.tracer.module(self)
        if autograd._record_sites:  # remember which module made each op (minigrad.viz)
            autograd.module_stack.append(self)
            try:
                return self._call(args, kwargs)
            finally:
                autograd.module_stack.pop()
        return self._call(args, kwargs)

    def _call(self, args: tuple, kwargs: dict) -> Any:
        if "_module_hooks" not in self.__dict__:  # the common case: no hooks, no detour
            return self.forward(*args, **kwargs)
        return hooks.call_with_hooks(self, args, kwargs)

    # -- hooks (PyTorch's names; minigrad/nn/hooks.py runs them) --------------------------
    def register_forward_pre_hook(self, hook: Callable) -> Any:
        """``hook(module, args)`` runs before forward; returning a value (a tuple, or one
        value for a single argument) replaces the positional arguments."""
        return hooks.register(self, "forward_pre", hook)

    def register_forward_hook(self, hook: Callable) -> Any:
        """``hook(module, args, output)`` runs after forward; returning a value replaces the
        output."""
        return hooks.register(self, "forward", hook)

    def register_full_backward_hook(self, hook: Callable) -> Any:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to
        the module's tensor inputs are computed (tuples; ``None`` for an input that needs
        none). Returning a tuple replaces ``grad_input``."""
        return hooks.register(self, "backward", hook)

    # -- walking the tree ---------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = ""
    ) -> Iterator[tuple[str, Module]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def get_submodule(self, target: str) -> Module:
        """The submodule at the dotted path ``target`` ('' is the module itself)."""
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(
                    f"get_submodule: {type(module).__name__} has no submodule {part!r} "
                    f"(looking up {target!r})"
                )
            module = child
        return module

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named(self, store: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))  # a tensor shared by two modules is listed once
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        yield from self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm updates its statistics)."""
        for m in self.modules():
            if m.training != bool(mode):
                autograd.state_changed()  # compiled programs recheck their guards
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    @autograd.replayed
    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, dtype: Any) -> Module:
        """Cast floating parameters and buffers to ``dtype`` (``float()``, ``double()``)."""
        dt = dtypes.resolve(dtype)
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                if dtypes.is_floating(t.dtype):
                    t.data = t.data.astype(dt)
                    t.grad = None
        return self

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Parameters and persistent buffers by dotted name, as detached tensors."""
        state: OrderedDict = OrderedDict()
        for prefix, module in self.named_modules():
            head = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[head + name] = p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    state[head + name] = b.detach()
        return state

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy tensors into the parameters and buffers of the same names.

        Every key and shape is checked before anything is written, so on an error the module
        is unchanged. With ``strict`` (default) missing or unexpected keys are an error;
        otherwise they are returned as (missing_keys, unexpected_keys).
        """
        own = self.state_dict()
        targets = {}
        for prefix, module in self.named_modules():
            head = f"{prefix}." if prefix else ""
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is not None and head + name in own:
                        targets[head + name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        arrays = {}
        for key, target in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
            if array.shape != target.shape:
                raise ValueError(
                    f"load_state_dict for {type(self).__name__}: {key!r} has shape {array.shape} "
                    f"in the state dict but {target.shape} in the module"
                )
            if array.dtype.kind not in "biuf":
                raise TypeError(
                    f"load_state_dict for {type(self).__name__}: {key!r} has dtype "
                    f"{array.dtype}, not a number type"
                )
            # converted now, so that nothing is written unless every tensor can be
            arrays[key] = np.array(array, dtype=target.dtype, copy=True)
        with no_grad():
            for key, array in arrays.items():
                targets[key].data = array
        return IncompatibleKeys(missing, unexpected)

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def __repr__(self) -> str:
        lines = []
        for name, module in self.named_children():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + f"\n)  # {self.num_parameters():,} parameters"


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(8, 16), ReLU(), Linear(16, 1))``."""

    def __init__(self, *modules: Module | OrderedDict) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*items[index])
        return items[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules, registered so their parameters are found."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules, registered so their parameters are found."""

    def __init__(self, modules: dict | None = None) -> None:
        super().__init__()
        for name, m in (modules or {}).items():
            self[name] = m

    def __getitem__(self, name: str) -> Module:
        return self._modules[name]

    def __setitem__(self, name: str, module: Module) -> None:
        self.add_module(name, module)

    def __contains__(self, name: str) -> bool:
        return name in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
