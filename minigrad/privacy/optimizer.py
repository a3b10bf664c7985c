"""DPOptimizer: the DP-SGD step (Abadi et al. 2016, "Deep Learning with Differential Privacy",
Algorithm 1) in front of any minigrad optimizer, with Opacus's ``DPOptimizer`` semantics.

At ``step()``: each sample's gradient over all parameters together (one flat vector) is
clipped to L2 norm ``max_grad_norm`` (factor min(1, C / (norm + 1e-6)), as Opacus), the
clipped gradients are summed over the batch, Gaussian noise N(0, (noise_multiplier * C)^2)
is added to every coordinate, the sum is divided by the expected batch size (with
``loss_reduction="mean"``; nothing with ``"sum"``), and the result becomes ``p.grad`` for the
wrapped optimizer's own update (SGD, Adam, ...). The noise comes from ``generator`` (a
``numpy.random.Generator``) or minigrad's global one (``minigrad.manual_seed``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import random
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor


class DPOptimizer(Optimizer):
    """Wraps ``optimizer``: ``step()`` replaces each ``p.grad`` with the clipped, summed,
    noised and scaled per-sample gradients ``p.grad_sample``, then runs the optimizer's step.
    ``param_groups``, ``state``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` are the
    wrapped optimizer's, and it is an ``Optimizer`` (so learning-rate schedulers work on it
    unchanged)."""

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int | None,
        loss_reduction: str = "mean",
        generator: np.random.Generator | None = None,
    ) -> None:
        if noise_multiplier < 0:
            raise ValueError(f"DPOptimizer: noise_multiplier must be >= 0, got {noise_multiplier}")
        if not max_grad_norm > 0:
            raise ValueError(f"DPOptimizer: max_grad_norm must be > 0, got {max_grad_norm}")
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(
                f"DPOptimizer: loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}"
            )
        if loss_reduction == "mean" and (expected_batch_size is None or expected_batch_size <= 0):
            raise ValueError(
                "DPOptimizer: loss_reduction='mean' needs a positive expected_batch_size, got "
                f"{expected_batch_size}"
            )
        self.original_optimizer = optimizer
        self.noise_multiplier, self.max_grad_norm = float(noise_multiplier), float(max_grad_norm)
        self.expected_batch_size, self.loss_reduction = expected_batch_size, loss_reduction
        self.generator = generator
        self.step_hook: Callable[[DPOptimizer], None] | None = None  # the accountant's
        self.per_sample_norms: np.ndarray | None = None  # of the last step, before clipping

    # -- the wrapped optimizer's face ----------------------------------------------------
    @property
    def param_groups(self) -> list[dict]:
        return self.original_optimizer.param_groups

    @property
    def state(self) -> dict:
        return self.original_optimizer.state

    @property
    def defaults(self) -> dict:
        return self.original_optimizer.defaults

    def state_dict(self) -> dict:
        return self.original_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.original_optimizer.load_state_dict(state_dict)

    @property
    def params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"] if p.requires_grad]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget ``p.grad`` and ``p.grad_sample``."""
        self.original_optimizer.zero_grad(set_to_none)
        for p in self.params:
            p.grad_sample = None

    # -- DP-SGD -------------------------------------------------------------------------
    def clip_and_accumulate(self) -> None:
        """Set ``p.summed_grad``: the sum over the batch of the per-sample gradients, each
        clipped (over all parameters together) to ``max_grad_norm``."""
        samples = [getattr(p, "grad_sample", None) for p in self.params]
        batch = next((s.shape[0] for s in samples if s is not None), 0)
        for p, s in zip(self.params, samples):
            if s is not None and s.shape[0] != batch:
                raise ValueError(
                    f"DPOptimizer: per-sample gradients disagree on the batch size: {s.shape[0]} "
                    f"for a parameter of shape {p.shape}, {batch} for another"
                )
        squares = np.zeros(batch, np.float64)
        for s in samples:
            if s is not None and batch:
                flat = s.reshape(batch, -1).astype(np.float64)
                squares += np.einsum("bi,bi->b", flat, flat)
        norms = np.sqrt(squares)
        self.per_sample_norms = norms
        factor = np.minimum(self.max_grad_norm / (norms + 1e-6), 1.0)
        self._summed = []
        for p, s in zip(self.params, samples):
            if s is None or batch == 0:
                summed = np.zeros(p.shape, np.float64)
            else:
                summed = np.tensordot(factor, s.reshape(batch, -1).astype(np.float64), 1)
                summed = summed.reshape(p.shape)
            self._summed.append(summed)

    def add_noise(self) -> None:
        """p.grad = summed clipped gradients + N(0, (noise_multiplier * max_grad_norm)^2)."""
        std = self.noise_multiplier * self.max_grad_norm
        gen = random.rng(self.generator)
        for p, summed in zip(self.params, self._summed):
            noisy = summed + gen.normal(0.0, std, p.shape) if std > 0 else summed
            p.grad = Tensor._from_array(np.asarray(noisy, dtype=p.data.dtype))

    def scale_grad(self) -> None:
        if self.loss_reduction == "mean":
            for p in self.params:
                p.grad.data /= p.grad.data.dtype.type(self.expected_batch_size)

    def pre_step(self) -> None:
        self.clip_and_accumulate()
        self.add_noise()
        self.scale_grad()
        if self.step_hook is not None:
            self.step_hook(self)

    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        self.pre_step()
        self.original_optimizer.step()
        return loss

    def __repr__(self) -> str:
        return (
            f"DPOptimizer(noise_multiplier={self.noise_multiplier}, max_grad_norm="
            f"{self.max_grad_norm}, expected_batch_size={self.expected_batch_size}, "
            f"loss_reduction={self.loss_reduction!r}) around\n{self.original_optimizer!r}"
        )
