"""Differential privacy for training: per-sample gradients, DP-SGD and its accountant, with
Opacus's API (``PrivacyEngine.make_private``, ``GradSampleModule``, ``DPOptimizer``,
``RDPAccountant``, ``get_noise_multiplier``). Guide: docs/privacy.md."""

from minigrad.privacy.accountant import (
    RDPAccountant,
    compute_rdp,
    get_noise_multiplier,
    rdp_to_epsilon,
)
from minigrad.privacy.data import DPDataLoader, UniformWithReplacementSampler
from minigrad.privacy.engine import PrivacyEngine
from minigrad.privacy.grad_sample import GradSampleModule, per_sample_grads
from minigrad.privacy.optimizer import DPOptimizer

__all__ = [
    "DPDataLoader",
    "DPOptimizer",
    "GradSampleModule",
    "PrivacyEngine",
    "RDPAccountant",
    "UniformWithReplacementSampler",
    "compute_rdp",
    "get_noise_multiplier",
    "per_sample_grads",
    "rdp_to_epsilon",
]
