"""The two array namespaces a backward formula receives as ``ctx.xp``.

A backward formula uses Python operators plus the functions below, and nothing else. The
engine hands it ``numpy_ops`` on the normal path, where grads and saved values are NumPy
arrays, and ``tensor_ops`` under ``create_graph=True``, where they are Tensors: then the same
formula records a graph of the gradient itself, which is how second derivatives are taken.
The two classes list the same functions with the same signatures, side by side.
"""

from __future__ import annotations

import numpy as np
import scipy.special

from minigrad import backend, ops
from minigrad.ops.indexing import accumulate_into_zeros, normalize_index


class numpy_ops:
    """Backward formulas on NumPy arrays: the fast, first-order path."""

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    tanh = staticmethod(np.tanh)
    erf = staticmethod(scipy.special.erf)
    matmul = staticmethod(np.matmul)
    where = staticmethod(backend.elementwise.where)  # np.where, branch-free when large
    reshape = staticmethod(np.reshape)
    broadcast_to = staticmethod(np.broadcast_to)
    permute = staticmethod(np.transpose)

    @staticmethod
    def sum(x, axis, keepdims):
        return np.sum(x, axis=axis, keepdims=keepdims)

    sigmoid = staticmethod(scipy.special.expit)  # precise in both tails

    @staticmethod
    def mT(x):
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def accumulate_at(shape, index, values):
        return accumulate_into_zeros(shape, normalize_index(index, shape), values)

    @staticmethod
    def cast(x, dtype):
        return x.astype(dtype)


class tensor_ops:
    """Backward formulas on Tensors: every call is a recorded, differentiable op."""

    exp = staticmethod(ops.exp)
    log = staticmethod(ops.log)
    sin = staticmethod(ops.sin)
    cos = staticmethod(ops.cos)
    tanh = staticmethod(ops.tanh)
    erf = staticmethod(ops.erf)
    sigmoid = staticmethod(ops.sigmoid)
    matmul = staticmethod(ops.matmul)
    where = staticmethod(ops.where)
    reshape = staticmethod(ops.reshape)
    broadcast_to = staticmethod(ops.expand)
    permute = staticmethod(ops.permute)
    accumulate_at = staticmethod(ops.accumulate_at)
    cast = staticmethod(ops.cast)

    @staticmethod
    def sum(x, axis, keepdims):
        return ops.sum(x, axis, keepdims)

    @staticmethod
    def mT(x):
        return ops.transpose(x, -1, -2)
