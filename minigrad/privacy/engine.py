"""PrivacyEngine: Opacus's entry point. ``make_private`` turns a model, an optimizer and a data
loader into their DP-SGD versions and keeps the accountant up to date at every step."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.data.dataloader import DataLoader
from minigrad.nn.module import Module
from minigrad.optim.optimizer import Optimizer
from minigrad.privacy.accountant import RDPAccountant, get_noise_multiplier
from minigrad.privacy.data import DPDataLoader
from minigrad.privacy.grad_sample import GradSampleModule
from minigrad.privacy.optimizer import DPOptimizer


class PrivacyEngine:
    """DP-SGD with an RDP accountant, as ``opacus.PrivacyEngine``::

    engine = PrivacyEngine()
    model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer,
        data_loader=loader, noise_multiplier=1.1, max_grad_norm=1.0)
    ... train as usual ...
    engine.get_epsilon(delta=1e-5)
    """

    def __init__(self, accountant: str = "rdp") -> None:
        if accountant != "rdp":
            raise ValueError(f"PrivacyEngine: only the 'rdp' accountant exists, got {accountant!r}")
        self.accountant = RDPAccountant()

    def make_private(
        self,
        *,
        module: Module,
        optimizer: Optimizer,
        data_loader: DataLoader,
        noise_multiplier: float,
        max_grad_norm: float,
        poisson_sampling: bool = True,
        loss_reduction: str = "mean",
        noise_generator: np.random.Generator | None = None,
    ) -> tuple[GradSampleModule, DPOptimizer, DataLoader]:
        """Returns (module, optimizer, data_loader): the module wrapped in a
        ``GradSampleModule`` (per-sample gradients at every backward), a ``DPOptimizer``
        around ``optimizer`` (clip each sample's gradient to ``max_grad_norm``, sum, add
        N(0, (noise_multiplier * max_grad_norm)^2), divide by the expected batch size), and
        with ``poisson_sampling`` a ``DPDataLoader`` over the same data set at sample rate
        1 / len(data_loader). Without Poisson sampling the loader is returned as it is, and
        the accountant's figure assumes a sampling the loader does not do."""
        if isinstance(optimizer, DPOptimizer):
            raise ValueError("PrivacyEngine.make_private: the optimizer is already a DPOptimizer")
        if len(data_loader) == 0:
            raise ValueError("PrivacyEngine.make_private: the data loader gives no batch")
        sample_rate = 1 / len(data_loader)
        expected_batch_size = int(len(data_loader.dataset) * sample_rate)
        if poisson_sampling:
            data_loader = DPDataLoader.from_data_loader(data_loader, generator=noise_generator)
        wrapped = (
            module
            if isinstance(module, GradSampleModule)
            else GradSampleModule(module, loss_reduction=loss_reduction)
        )
        dp_optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction=loss_reduction,
            generator=noise_generator,
        )

        def account(opt: DPOptimizer) -> None:
            self.accountant.step(noise_multiplier=opt.noise_multiplier, sample_rate=sample_rate)

        dp_optimizer.step_hook = account
        self.sample_rate = sample_rate
        return wrapped, dp_optimizer, data_loader

    def make_private_with_epsilon(
        self,
        *,
        module: Module,
        optimizer: Optimizer,
        data_loader: DataLoader,
        target_epsilon: float,
        target_delta: float,
        epochs: int,
        max_grad_norm: float,
        **kwargs: Any,
    ) -> tuple[GradSampleModule, DPOptimizer, DataLoader]:
        """``make_private`` with the noise multiplier that reaches (target_epsilon,
        target_delta) after ``epochs`` epochs (``get_noise_multiplier``)."""
        sigma = get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            sample_rate=1 / len(data_loader),
            epochs=epochs,
        )
        return self.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=data_loader,
            noise_multiplier=sigma,
            max_grad_norm=max_grad_norm,
            **kwargs,
        )

    def get_epsilon(self, delta: float) -> float:
        """Epsilon spent so far (every optimizer step counted) at ``delta``."""
        return self.accountant.get_epsilon(delta)
