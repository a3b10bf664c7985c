"""The optimizer base class: parameter groups, per-parameter state, zero_grad, state dicts.

An optimizer holds ``param_groups``: a list of dicts, each with its ``params`` and its own
hyperparameters (``lr``, ``weight_decay``, ...), defaults filled from the constructor, as in
PyTorch. ``state[p]`` holds what the update of parameter ``p`` carries from step to step
(momentum buffers, moment estimates, the step count). Each update is one fused kernel pass
over the parameter (kernels/optim.py, through minigrad/backend.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.autograd import no_grad, replayed, state_changed
from minigrad.tensor import Tensor


class Optimizer:
    """Base class: subclasses define ``_update(p, grad, state, group)``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest)."""
        state_changed()  # compiled programs that step this optimizer recheck their guards
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}"
                )
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: a parameter does not require grad")
            if id(p) in seen:
                raise ValueError(
                    f"{type(self).__name__}: a parameter appears in more than one group"
                )
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(
                f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}"
            )

    @replayed
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (None, or zeros with set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    @replayed
    @no_grad()
    def step(self, closure: Any = None) -> Any:
        """Update every parameter that has a gradient; ``closure`` (re-evaluating the loss)
        is called first when given, and its value returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.data.shape:
                    raise RuntimeError(
                        f"{type(self).__name__}: gradient of shape {grad.shape} for a parameter "
                        f"of shape {p.data.shape}"
                    )
                if grad.dtype != p.data.dtype or not grad.flags.c_contiguous:
                    grad = np.ascontiguousarray(grad, dtype=p.data.dtype)
                if not p.data.flags.c_contiguous:
                    p.data = np.ascontiguousarray(p.data)
                self._update(p.data, grad, self.state.setdefault(p, {}), group)
                p._version_counter().value += 1  # p changed in place
        return loss

    def _update(self, p: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    # -- state dicts ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: array or number}}, 'param_groups': [...]} with parameters
        replaced by their index, as PyTorch (so it can be saved without the model)."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: (v.copy() if isinstance(v, np.ndarray) else v)
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state_dict from an optimizer over parameters of the same shapes, in the
        same order; checked before anything changes."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: {len(groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        params = []
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: a group has "
                    f"{len(theirs['params'])} parameters, this one {len(mine['params'])}"
                )
            params.extend(zip(mine["params"], theirs["params"]))
        by_index = {i: p for p, i in params}
        new_state = {}
        for i, entry in state_dict["state"].items():
            p = by_index.get(int(i))
            if p is None:
                raise ValueError(f"{type(self).__name__}.load_state_dict: unknown parameter {i}")
            converted = {}
            for k, v in entry.items():
                if isinstance(v, np.ndarray) or isinstance(v, Tensor):
                    v = np.array(v.data if isinstance(v, Tensor) else v, dtype=p.data.dtype)
                    if v.shape != p.data.shape:
                        raise ValueError(
                            f"{type(self).__name__}.load_state_dict: state {k!r} of parameter "
                            f"{i} has shape {v.shape}, the parameter {p.data.shape}"
                        )
                converted[k] = v
            new_state[p] = converted
        for mine, theirs in zip(self.param_groups, groups):
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = v
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"
