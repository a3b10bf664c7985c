"""NumPy twin of kernels/elementwise.py."""

from __future__ import annotations

import numpy as np


def where(cond, a, b):
    return np.where(cond, a, b)
