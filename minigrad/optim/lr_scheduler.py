"""Learning-rate schedules with PyTorch's names and semantics.

A scheduler sets each parameter group's ``lr`` from its initial value (``initial_lr``, kept
in the group) and the number of ``step()`` calls so far (``last_epoch``; it counts epochs or
batches, whichever you step it by). Construction already applies step 0. Each schedule is
written as its closed form, ``lr_at(epoch)``, which is what PyTorch's recursive updates
compute when a schedule is used alone.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from minigrad.autograd import replayed
from minigrad.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define ``lr_at(epoch, base_lr, group_index)``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {optimizer!r}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"{type(self).__name__}: resuming (last_epoch={last_epoch}) needs "
                    "'initial_lr' in every parameter group"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()

    def lr_at(self, epoch: int, base_lr: float, group_index: int) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last step(), one per group."""
        return list(self._last_lr)

    @replayed
    def step(self) -> None:
        self.last_epoch += 1
        self._apply(self.last_epoch)

    def _apply(self, epoch: int) -> None:
        for i, (group, base) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            group["lr"] = self.lr_at(epoch, base, i)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer and functions (lambdas cannot be saved)."""
        return {
            k: v
            for k, v in self.__dict__.items()
            if k != "optimizer" and not callable(v) and not _holds_callables(v)
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _holds_callables(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and any(callable(x) for x in v)


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base * gamma ** (number of milestones reached)."""

    def __init__(self, optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = base * gamma ** epoch."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        cos = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cos / 2


class LinearLR(LRScheduler):
    """The factor goes linearly from start_factor to end_factor over total_iters steps."""

    def __init__(
        self,
        optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1]")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        done = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class LambdaLR(LRScheduler):
    """lr = base * lr_lambda(epoch); one function, or one per parameter group."""

    def __init__(self, optimizer, lr_lambda: Callable | Sequence[Callable], last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = (
            list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        )
        if len(self.lr_lambdas) != n:
            raise ValueError(f"LambdaLR: {len(self.lr_lambdas)} functions for {n} groups")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        return base_lr * self.lr_lambdas[group_index](epoch)


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` from its own
    epoch 0, and so on."""

    def __init__(
        self,
        optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} "
                f"milestones, got {len(milestones)}"
            )
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must drive this optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr, group_index):
        k = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[k - 1] if k > 0 else 0
        return self.schedulers[k].lr_at(epoch - start, base_lr, group_index)

    def state_dict(self):
        state = super().state_dict()
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def load_state_dict(self, state):
        state = dict(state)
        for s, sd in zip(self.schedulers, state.pop("schedulers")):
            s.load_state_dict(sd)
        super().load_state_dict(state)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith): lr rises from max_lr / div_factor to max_lr over the first
    ``pct_start`` of the steps, then anneals to max_lr / (div_factor * final_div_factor);
    momentum (or Adam's beta1) cycles the opposite way between max_momentum and
    base_momentum. Stepped once per batch; stepping past ``total_steps`` is an error."""

    def __init__(
        self,
        optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be positive, got {total_steps}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("OneCycleLR: anneal_strategy must be 'cos' or 'linear'")
        n = len(optimizer.param_groups)
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * n
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        self.cycle_momentum = cycle_momentum
        p = float(pct_start * total_steps)
        if three_phase:
            self.phases = [
                (p - 1, "initial", "max"),
                (2 * p - 2, "max", "initial"),
                (total_steps - 1, "initial", "min"),
            ]
        else:
            self.phases = [(p - 1, "initial", "max"), (total_steps - 1, "max", "min")]
        self.lr_points = [
            {"initial": m / div_factor, "max": m, "min": m / div_factor / final_div_factor}
            for m in max_lrs
        ]
        self.momentum_points = {"initial": max_momentum, "max": base_momentum, "min": max_momentum}
        for group, points in zip(optimizer.param_groups, self.lr_points):
            if last_epoch == -1:
                group["initial_lr"] = points["initial"]
            if cycle_momentum:
                if "momentum" not in group and "betas" not in group:
                    raise ValueError(
                        "OneCycleLR: cycle_momentum needs an optimizer with momentum or betas"
                    )
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _value(self, epoch, points):
        start_step = 0.0
        for i, (end_step, a, b) in enumerate(self.phases):
            if epoch <= end_step or i == len(self.phases) - 1:
                pct = (epoch - start_step) / (end_step - start_step)
                return self._anneal(points[a], points[b], pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def lr_at(self, epoch, base_lr, group_index):
        return self._value(epoch, self.lr_points[group_index])

    def _apply(self, epoch):
        if epoch > self.total_steps:
            raise ValueError(
                f"OneCycleLR: tried to step {epoch} times; total_steps is {self.total_steps}"
            )
        super()._apply(epoch)
        if self.cycle_momentum:
            m = self._value(epoch, self.momentum_points)
            for group in self.optimizer.param_groups:
                if "betas" in group:
                    group["betas"] = (m, group["betas"][1])
                else:
                    group["momentum"] = m


# -- Hugging Face's schedules (transformers.get_*_schedule_with_warmup) --------------------


def get_linear_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> LambdaLR:
    """Linear warm-up from 0 to the base lr over num_warmup_steps, then linear decay to 0 at
    num_training_steps."""

    def factor(step: int) -> float:
        if step < num_warmup_steps:
            return step / max(1, num_warmup_steps)
        return max(0.0, (num_training_steps - step) / max(1, num_training_steps - num_warmup_steps))

    return LambdaLR(optimizer, factor, last_epoch)


def get_cosine_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> LambdaLR:
    """Linear warm-up, then a cosine from the base lr down to 0 (num_cycles=0.5: half a
    period) by num_training_steps."""

    def factor(step: int) -> float:
        if step < num_warmup_steps:
            return step / max(1, num_warmup_steps)
        progress = (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress)))

    return LambdaLR(optimizer, factor, last_epoch)
