"""Privacy accounting for DP-SGD: Rényi differential privacy of the sampled Gaussian mechanism.

One DP-SGD step releases the sum of clipped per-sample gradients (sensitivity C, the clipping
norm) plus N(0, (sigma C)^2) noise, over a batch in which every sample is included
independently with probability q (Poisson sampling). Its RDP at order alpha is
log(A_alpha) / (alpha - 1), with A_alpha the alpha-th moment of the ratio of the two mixtures
(Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
Mechanism", Section 3.3):

- integer alpha: A_alpha = sum over k = 0..alpha of
  C(alpha, k) q^k (1-q)^(alpha-k) exp((k^2 - k) / (2 sigma^2));
- fractional alpha: the same binomial series, split at z0 = sigma^2 log(1/q - 1) + 1/2 into
  two integrals, each term weighted by a Gaussian tail (erfc), summed until the terms fall
  below e^-30.

RDP composes by addition over steps. The conversion to (epsilon, delta) is Theorem 21 of
Balle et al. 2020 ("Hypothesis Testing Interpretations and Renyi Differential Privacy"):
epsilon = min over alpha of
rdp(alpha) + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1), over the
orders Opacus's ``RDPAccountant`` uses (1.1, 1.2, ..., 10.9, 12, 13, ..., 63), so that the
two give the same epsilon. Sums of terms are formed in log space throughout.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

DEFAULT_ALPHAS: tuple[float, ...] = tuple(
    [1 + k / 10.0 for k in range(1, 100)] + [float(a) for a in range(12, 64)]
)


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    lo, hi = min(a, b), max(a, b)
    if lo == -math.inf:
        return hi
    return hi + math.log1p(math.exp(lo - hi))


def _log_sub(a: float, b: float) -> float:
    """log(exp(a) - exp(b)) for a >= b."""
    if b == -math.inf:
        return a
    if a < b:
        raise ValueError(f"log-space subtraction would be negative: log terms {a} < {b}")
    if a == b:
        return -math.inf
    diff = a - b
    if diff > 700:  # exp(diff) - 1 == exp(diff) to double precision
        return a
    return b + math.log(math.expm1(diff))


def _log_erfc(x: float) -> float:
    """log(erfc(x)), accurate in the far tail (erfc(x) = 2 Phi(-x sqrt 2))."""
    return math.log(2.0) + float(special.log_ndtr(-x * math.sqrt(2.0)))


def _log_a_integer(q: float, sigma: float, alpha: int) -> float:
    total = -math.inf
    log_q, log_1q = math.log(q), math.log1p(-q)
    for k in range(alpha + 1):
        term = (
            math.log(special.comb(alpha, k, exact=True))
            + k * log_q
            + (alpha - k) * log_1q
            + (k * k - k) / (2.0 * sigma * sigma)
        )
        total = _log_add(total, term)
    return total


def _log_a_fractional(q: float, sigma: float, alpha: float) -> float:
    below, above = -math.inf, -math.inf  # the integrals over (-inf, z0] and [z0, inf)
    z0 = sigma * sigma * math.log(1.0 / q - 1.0) + 0.5
    log_q, log_1q = math.log(q), math.log1p(-q)
    root2s = math.sqrt(2.0) * sigma
    k = 0
    while True:
        coef = special.binom(alpha, k)
        log_coef = math.log(abs(coef))
        j = alpha - k
        s0 = (
            log_coef + k * log_q + j * log_1q + (k * k - k) / (2.0 * sigma * sigma)
            + math.log(0.5) + _log_erfc((k - z0) / root2s)
        )  # fmt: skip
        s1 = (
            log_coef + j * log_q + k * log_1q + (j * j - j) / (2.0 * sigma * sigma)
            + math.log(0.5) + _log_erfc((z0 - j) / root2s)
        )  # fmt: skip
        if coef > 0:
            below, above = _log_add(below, s0), _log_add(above, s1)
        else:
            below, above = _log_sub(below, s0), _log_sub(above, s1)
        k += 1
        if max(s0, s1) < -30:
            return _log_add(below, above)


def rdp_sampled_gaussian(q: float, noise_multiplier: float, alpha: float) -> float:
    """RDP at order ``alpha`` of one step of the Poisson-sampled Gaussian mechanism with
    sampling rate ``q`` and noise ``noise_multiplier`` (the ratio of the noise's standard
    deviation to the sensitivity)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"rdp_sampled_gaussian: sampling rate q must be in [0, 1], got {q}")
    if alpha <= 1:
        raise ValueError(f"rdp_sampled_gaussian: the order alpha must be > 1, got {alpha}")
    if q == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    if q == 1.0:  # the plain Gaussian mechanism
        return alpha / (2.0 * noise_multiplier**2)
    if math.isinf(alpha):
        return math.inf
    if float(alpha).is_integer():
        log_a = _log_a_integer(q, noise_multiplier, int(alpha))
    else:
        log_a = _log_a_fractional(q, noise_multiplier, float(alpha))
    return log_a / (alpha - 1.0)


def compute_rdp(q: float, noise_multiplier: float, steps: int, orders=DEFAULT_ALPHAS) -> np.ndarray:
    """RDP of ``steps`` compositions of the sampled Gaussian mechanism, one per order."""
    return np.array([rdp_sampled_gaussian(q, noise_multiplier, a) for a in orders]) * steps


def rdp_to_epsilon(orders, rdp, delta: float) -> tuple[float, float]:
    """(epsilon, best order) for ``delta`` from RDP values at ``orders`` (Balle et al. 2020,
    Theorem 21)."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"rdp_to_epsilon: delta must be in (0, 1), got {delta}")
    a = np.atleast_1d(np.asarray(orders, dtype=np.float64))
    r = np.atleast_1d(np.asarray(rdp, dtype=np.float64))
    if a.shape != r.shape:
        raise ValueError(f"rdp_to_epsilon: {a.size} orders but {r.size} RDP values")
    with np.errstate(invalid="ignore"):
        eps = r - (math.log(delta) + np.log(a)) / (a - 1.0) + np.log((a - 1.0) / a)
    if np.isnan(eps).all():
        return math.inf, math.nan
    best = int(np.nanargmin(eps))
    return float(eps[best]), float(a[best])


class RDPAccountant:
    """Keeps the (noise_multiplier, sample_rate, steps) history of a training run and turns it
    into epsilon, as Opacus's ``RDPAccountant`` (its ``step``, ``get_epsilon``,
    ``get_privacy_spent`` and ``history``)."""

    mechanism = "rdp"

    def __init__(self) -> None:
        self.history: list[tuple[float, float, int]] = []

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        if self.history and self.history[-1][:2] == (noise_multiplier, sample_rate):
            nm, q, steps = self.history[-1]
            self.history[-1] = (nm, q, steps + 1)
        else:
            self.history.append((noise_multiplier, sample_rate, 1))

    def get_privacy_spent(self, *, delta: float, alphas=None) -> tuple[float, float]:
        """(epsilon, best order) of the whole history at ``delta``."""
        if not self.history:
            return 0.0, math.nan
        orders = DEFAULT_ALPHAS if alphas is None else tuple(alphas)
        rdp = sum(compute_rdp(q, nm, steps, orders) for nm, q, steps in self.history)
        return rdp_to_epsilon(orders, rdp, delta)

    def get_epsilon(self, delta: float, alphas=None) -> float:
        return self.get_privacy_spent(delta=delta, alphas=alphas)[0]

    def __len__(self) -> int:
        return len(self.history)


def get_noise_multiplier(
    *,
    target_epsilon: float,
    target_delta: float,
    sample_rate: float,
    epochs: float | None = None,
    steps: int | None = None,
    epsilon_tolerance: float = 0.01,
) -> float:
    """The smallest noise multiplier (to within a bisection) whose RDP epsilon after ``steps``
    steps (or ``epochs`` epochs of 1 / sample_rate steps, as Opacus counts them) at
    ``target_delta`` is at most ``target_epsilon``; the epsilon it gives is within
    ``epsilon_tolerance`` (absolute) below the target."""
    if (steps is None) == (epochs is None):
        raise ValueError("get_noise_multiplier: give either steps or epochs, not both or neither")
    if steps is None:
        steps = int(epochs / sample_rate)
    if target_epsilon <= 0:
        raise ValueError(f"get_noise_multiplier: target_epsilon must be > 0, got {target_epsilon}")

    def epsilon(sigma: float) -> float:
        orders = DEFAULT_ALPHAS
        return rdp_to_epsilon(orders, compute_rdp(sample_rate, sigma, steps, orders), target_delta)[
            0
        ]

    low, high = 0.0, 10.0
    eps_high = epsilon(high)
    while eps_high > target_epsilon:
        low, high = high, 2 * high
        if high > 1e6:
            raise ValueError(
                f"get_noise_multiplier: no noise multiplier up to 1e6 reaches epsilon "
                f"{target_epsilon} at delta {target_delta} in {steps} steps of rate {sample_rate}"
            )
        eps_high = epsilon(high)
    while target_epsilon - eps_high > epsilon_tolerance:
        mid = (low + high) / 2
        eps_mid = epsilon(mid)
        if eps_mid < target_epsilon:
            high, eps_high = mid, eps_mid
        else:
            low = mid
    return high
