"""Elementwise ops: arithmetic, exp/log, activations, comparisons, casts.

Each op is a Function with ``forward`` (NumPy arrays) directly above ``backward``, its public
function right below, and its test spec after that. Binary ops broadcast like NumPy; their
backward calls ``unbroadcast`` to sum the gradient back to each input's shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

from minigrad import backend, dtypes
from minigrad.autograd import Function, derived, unbroadcast
from minigrad.ops.common import (
    as_tensor,
    broadcast_shape,
    operands,
    promote_to_float,
    require_float,
)
from minigrad.ops.spec import OpSpec, binary, register, unary
from minigrad.tensor import Tensor


def _binary(fn: type[Function], name: str, a: Any, b: Any) -> Tensor:
    """Apply a broadcasting binary Function, turning NumPy's broadcast error into ours."""
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype):
        a, b = operands(a, b)  # (two tensors of one dtype, the common case, need nothing)
    try:
        return fn.apply(a, b)
    except ValueError:
        broadcast_shape(a.shape, b.shape, name)  # raises the clear error
        raise


# -- arithmetic --------------------------------------------------------------------------


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        a_shape, b_shape = ctx.input_shapes
        return unbroadcast(ctx.xp, grad, a_shape), unbroadcast(ctx.xp, grad, b_shape)


def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting."""
    return _binary(Add, "add", a, b)


register(OpSpec("add", add, np.add, binary()))


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        a_shape, b_shape = ctx.input_shapes
        return unbroadcast(ctx.xp, grad, a_shape), unbroadcast(ctx.xp, -grad, b_shape)


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting."""
    return _binary(Sub, "sub", a, b)


register(OpSpec("sub", sub, np.subtract, binary()))


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        # d(ab)/da = b and d(ab)/db = a: keep each only if the other side needs a gradient,
        # so that `y = x * 2; x += 1` stays legal, as in PyTorch.
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a_shape, b_shape = ctx.input_shapes
        ga = unbroadcast(ctx.xp, grad * b, a_shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(ctx.xp, grad * a, b_shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def mul(a: Any, b: Any) -> Tensor:
    """a * b with broadcasting."""
    return _binary(Mul, "mul", a, b)


register(OpSpec("mul", mul, np.multiply, binary()))


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a_shape, b_shape = ctx.input_shapes
        ga = unbroadcast(ctx.xp, grad / b, a_shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(ctx.xp, -grad * a / (b * b), b_shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def div(a: Any, b: Any) -> Tensor:
    """a / b with broadcasting (true division; integers give the default float dtype)."""
    a, b = operands(a, b)
    if not dtypes.is_floating(a.dtype):
        a, b = cast(a, dtypes.get_default_dtype()), cast(b, dtypes.get_default_dtype())
    return _binary(Div, "div", a, b)


register(OpSpec("div", div, np.divide, binary(domain_b=(0.5, 2.0))))


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


def neg(x: Tensor) -> Tensor:
    """-x."""
    return Neg.apply(x)


register(OpSpec("neg", neg, np.negative, unary()))


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        # the inputs, not the output, are saved (as PyTorch does), so that y = x ** 2 may
        # be modified in place afterwards; the gradient for b recomputes a ** b
        ctx.save_for_backward(a, b)
        return a**b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = ctx.xp
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(xp, grad * b * a ** (b - 1), a.shape)
        if ctx.needs_input_grad[1]:  # d(a^b)/db = a^b log a, defined for a > 0
            gb = unbroadcast(xp, grad * a**b * xp.log(a), b.shape)
        return ga, gb


def pow(a: Any, b: Any) -> Tensor:
    """a ** b with broadcasting. The gradient for b needs a > 0."""
    return _binary(Pow, "pow", a, b)


register(OpSpec("pow", pow, np.power, binary(domain_a=(0.5, 2.0))))
register(
    OpSpec(
        "pow_scalar_exponent",
        lambda x: pow(x, 3.0),
        lambda x: np.power(x, 3.0),
        unary(),
    )
)


# -- exp, log and friends ------------------------------------------------------------------


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)  # d exp(x)/dx = exp(x): the output is all we need
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


def exp(x: Tensor) -> Tensor:
    """e ** x."""
    return Exp.apply(promote_to_float(x))


register(OpSpec("exp", exp, np.exp, unary()))


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


def log(x: Tensor) -> Tensor:
    """Natural logarithm (-inf at 0, nan below, as PyTorch)."""
    return Log.apply(promote_to_float(x))


register(OpSpec("log", log, np.log, unary(domain=(0.2, 3.0))))


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    return Sqrt.apply(promote_to_float(x))


register(OpSpec("sqrt", sqrt, np.sqrt, unary(domain=(0.2, 3.0))))


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.xp.cos(x)


def sin(x: Tensor) -> Tensor:
    """Sine."""
    return Sin.apply(promote_to_float(x))


register(OpSpec("sin", sin, np.sin, unary()))


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * ctx.xp.sin(x)


def cos(x: Tensor) -> Tensor:
    """Cosine."""
    return Cos.apply(promote_to_float(x))


register(OpSpec("cos", cos, np.cos, unary()))


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.sign(x))
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved_tensors  # 0 at x = 0, as PyTorch
        return grad * sign


def abs(x: Tensor) -> Tensor:
    """|x| (gradient 0 at 0)."""
    return Abs.apply(x)


register(OpSpec("abs", abs, np.abs, unary(avoid=(0.0,))))


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1; piecewise constant, so it carries no gradient."""
    return derived(np.sign, x)


# -- max, min, clamp -----------------------------------------------------------------------


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        # Where a == b each side gets half the gradient, as PyTorch does.
        ctx.save_for_backward(((a > b) + 0.5 * (a == b)).astype(a.dtype))
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        (share_a,) = ctx.saved_tensors
        a_shape, b_shape = ctx.input_shapes
        return unbroadcast(ctx.xp, grad * share_a, a_shape), unbroadcast(
            ctx.xp, grad * (1 - share_a), b_shape
        )


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max with broadcasting."""
    return _binary(Maximum, "maximum", a, b)


register(OpSpec("maximum", maximum, np.maximum, binary()))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min with broadcasting: -max(-a, -b), so it shares maximum's gradient."""
    a, b = operands(a, b)
    return neg(maximum(neg(a), neg(b)))


register(OpSpec("minimum", minimum, np.minimum, binary()))


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        y = x
        if lo is not None:
            y = np.maximum(y, lo)
        if hi is not None:
            y = np.minimum(y, hi)
        ctx.save_for_backward(y == x)  # gradient passes where x was inside [lo, hi]
        return y if y is not x else x.copy()

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return ctx.xp.where(inside, grad, 0)


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """x limited to [min, max] (either may be None; tensors broadcast)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        y = x if min is None else maximum(x, min)
        return y if max is None else minimum(y, max)
    return Clamp.apply(x, lo=min, hi=max)


register(
    OpSpec(
        "clamp",
        clamp,
        np.clip,
        unary(avoid=(-0.5, 0.8), kwargs=({"min": -0.5, "max": 0.8}, {"min": -0.5}, {"max": 0.8})),
    )
)


# -- activations -------------------------------------------------------------------------


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        out, positive = backend.elementwise.relu_forward(x)
        ctx.save_for_backward(positive)
        return out

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return ctx.xp.where(positive, grad, 0)


def relu(x: Tensor) -> Tensor:
    """max(x, 0) (gradient 0 at 0)."""
    return Relu.apply(x)


register(OpSpec("relu", relu, lambda x: np.maximum(x, 0), unary(avoid=(0.0,))))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        # 1 / (1 + e^-x) with relative precision in both tails (sigmoid(-20) is 2.06e-9 in
        # float32, where 0.5 * (1 + tanh(x / 2)) cancels to 0) and no overflow
        y = scipy.special.expit(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return Sigmoid.apply(promote_to_float(x))


register(OpSpec("sigmoid", sigmoid, lambda x: 1 / (1 + np.exp(-x)), unary(domain=(-4, 4))))


class LogSigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return scipy.special.log_expit(x)  # min(x, 0) - log1p(e^-|x|): exact in both tails

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors  # d/dx log sigmoid(x) = 1 - sigmoid(x) = sigmoid(-x)
        return grad * ctx.xp.sigmoid(-x)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)), finite for any x (log(sigmoid(-200)) is -200, not -inf)."""
    return LogSigmoid.apply(promote_to_float(x))


register(OpSpec("logsigmoid", logsigmoid, lambda x: -np.logaddexp(0, -x), unary(domain=(-6, 6))))


_TANH_IS_ONE_FLOAT32 = np.float32(13 * np.log(2))


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        if y.dtype == np.float32:
            # Beyond |x| = 13 ln 2 the exact tanh is closer to +-1 than to any other float32,
            # but NumPy's float32 tanh returns 1 - 2^-24 up to |x| ~ 10.4, and the gradient
            # 1 - y^2 is then 2^-23 where the true one is ~4 e^(-2|x|), up to 13x too large.
            # Rounded as it should be, the gradient flushes to 0 there, as PyTorch's does.
            big = np.abs(x) > _TANH_IS_ONE_FLOAT32
            if np.count_nonzero(big):  # (rounding only when needed is 4x faster on 16 values)
                y = np.where(big, np.sign(x), y).astype(np.float32)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(promote_to_float(x))


register(OpSpec("tanh", tanh, np.tanh, unary()))


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = negative_slope
        return backend.elementwise.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return ctx.xp.where(positive, grad, grad * ctx.slope)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, negative_slope * x elsewhere (gradient negative_slope at 0)."""
    require_float(x, "leaky_relu")
    return LeakyRelu.apply(x, negative_slope=float(negative_slope))


register(
    OpSpec(
        "leaky_relu",
        leaky_relu,
        lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
        unary(avoid=(0.0,), kwargs=({}, {"negative_slope": 0.2})),
    )
)


class Elu(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        positive = x > 0
        ctx.save_for_backward(positive, x)
        ctx.alpha = alpha
        return backend.elementwise.where(positive, x, alpha * np.expm1(np.minimum(x, 0)))

    @staticmethod
    def backward(ctx, grad):
        positive, x = ctx.saved_tensors  # d/dx alpha (e^x - 1) = alpha e^x
        xp = ctx.xp
        return xp.where(positive, grad, grad * ctx.alpha * xp.exp(xp.where(positive, 0, x)))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    require_float(x, "elu")
    return Elu.apply(x, alpha=float(alpha))


register(
    OpSpec(
        "elu",
        elu,
        lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
        unary(avoid=(0.0,), kwargs=({}, {"alpha": 0.5})),
    )
)


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return scipy.special.erf(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors  # d erf(x)/dx = 2/sqrt(pi) e^(-x^2)
        return grad * (2.0 / math.sqrt(math.pi)) * ctx.xp.exp(-(x * x))


def erf(x: Tensor) -> Tensor:
    """The error function, 2/sqrt(pi) * integral of e^(-t^2) from 0 to x."""
    return Erf.apply(promote_to_float(x))


register(OpSpec("erf", erf, np.vectorize(math.erf), unary()))


def _sigmoid_pair(ctx, z):
    """(sigmoid(z), sigmoid(-z)) for a backward formula, both with relative precision in the
    tails. Under create_graph, where they are differentiated again, both are formed from
    sigmoid(-|z|): the derivative of a sigmoid near 1, y (1 - y) from its output, cancels."""
    xp = ctx.xp
    if not ctx._create_graph:
        return xp.sigmoid(z), xp.sigmoid(-z)
    negative = z.data < 0
    small = xp.sigmoid(xp.where(negative, z, -z))
    return xp.where(negative, small, 1 - small), xp.where(negative, 1 - small, small)


class Gelu(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":  # 0.5 (1 + tanh(u)) = sigmoid(2u): no cancellation for x << 0
            return x * scipy.special.expit(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
        return backend.elementwise.gelu_forward(x)  # float32: one vectorized pass

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xp = ctx.xp
        if ctx.approximate == "tanh":  # with s = sigmoid(2u): d/dx x s = s + 2 x s (1 - s) u'
            s, complement = _sigmoid_pair(ctx, 2 * _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (s + 2 * x * s * complement * du)
        if not ctx._create_graph:  # arrays: the fused kernel
            return backend.elementwise.gelu_backward(x, grad)
        cdf = 0.5 * (1 + xp.erf(x / _SQRT_2))  # d/dx x Phi(x) = Phi(x) + x phi(x)
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return grad * (cdf + x * pdf)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as PyTorch."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    require_float(x, "gelu")
    return Gelu.apply(x, approximate=approximate)


def _np_gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


register(OpSpec("gelu", gelu, _np_gelu, unary(kwargs=({}, {"approximate": "tanh"}))))


class Silu(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * scipy.special.expit(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors  # d/dx x s(x) = s(x) (1 + x (1 - s(x))), 1 - s(x) = s(-x)
        xp = ctx.xp
        # 1 + x s(-x) cancels near the gradient's zero at x ~ -1.278: float32 inputs take
        # the factor in float64, so that it keeps its relative precision there
        wide = xp.cast(x, np.float64) if x.dtype == np.float32 else x
        s, complement = _sigmoid_pair(ctx, wide)
        slope = s * (1 + wide * complement)
        return grad * xp.cast(slope, x.dtype)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    require_float(x, "silu")
    return Silu.apply(x)


register(OpSpec("silu", silu, lambda x: x / (1 + np.exp(-x)), unary()))


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        bx = x * beta
        linear = bx > threshold
        ctx.save_for_backward(linear, x)
        ctx.beta = beta
        return backend.elementwise.where(linear, x, np.logaddexp(0, bx) / beta)

    @staticmethod
    def backward(ctx, grad):
        linear, x = ctx.saved_tensors
        return ctx.xp.where(linear, grad, grad * ctx.xp.sigmoid(x * ctx.beta))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, computed without overflow; x itself where
    beta * x > threshold, as PyTorch."""
    if beta <= 0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    require_float(x, "softplus")
    return Softplus.apply(x, beta=float(beta), threshold=float(threshold))


register(
    OpSpec(
        "softplus",
        softplus,
        lambda x, beta=1.0, threshold=20.0: np.where(
            beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta
        ),
        unary(
            domain=(-3, 3),
            avoid=(1.5,),
            kwargs=({}, {"beta": 2.0}, {"beta": 2.0, "threshold": 3.0}),
        ),
    )
)


# -- dtype casts and copies ----------------------------------------------------------------


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.cast(grad, ctx.input_dtypes[0])


def cast(x: Tensor, dtype: Any) -> Tensor:
    """x converted to ``dtype``; differentiable between float dtypes."""
    dt = dtypes.resolve(dtype)
    if x.dtype == dt:
        return x
    return Cast.apply(x, dtype=dt)


register(
    OpSpec(
        "cast",
        lambda x: cast(cast(x, np.float32), x.dtype),  # a round trip back to x's dtype
        lambda x: x.astype(np.float32).astype(x.dtype),
        unary(),
        eps=1e-2,  # float32 rounds at ~1e-7: a larger step keeps it out of the difference
    )
)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(x: Tensor) -> Tensor:
    """A copy with its own memory, still connected to the graph."""
    return Clone.apply(x)


register(OpSpec("clone", clone, np.copy, unary()))


# -- comparisons and logic (no gradient) ---------------------------------------------------


def _compare(ufunc: Any, name: str, a: Any, b: Any) -> Tensor:
    a, b = operands(a, b)
    try:
        return derived(ufunc, a, b)
    except ValueError:
        broadcast_shape(a.shape, b.shape, name)
        raise


def eq(a: Any, b: Any) -> Tensor:
    return _compare(np.equal, "eq", a, b)


def ne(a: Any, b: Any) -> Tensor:
    return _compare(np.not_equal, "ne", a, b)


def lt(a: Any, b: Any) -> Tensor:
    return _compare(np.less, "lt", a, b)


def le(a: Any, b: Any) -> Tensor:
    return _compare(np.less_equal, "le", a, b)


def gt(a: Any, b: Any) -> Tensor:
    return _compare(np.greater, "gt", a, b)


def ge(a: Any, b: Any) -> Tensor:
    return _compare(np.greater_equal, "ge", a, b)


def logical_and(a: Any, b: Any) -> Tensor:
    return _compare(np.logical_and, "logical_and", a, b)


def logical_or(a: Any, b: Any) -> Tensor:
    return _compare(np.logical_or, "logical_or", a, b)


def logical_xor(a: Any, b: Any) -> Tensor:
    return _compare(np.logical_xor, "logical_xor", a, b)


def logical_not(x: Any) -> Tensor:
    return derived(np.logical_not, as_tensor(x))


def isnan(x: Tensor) -> Tensor:
    return derived(np.isnan, x)


def isfinite(x: Tensor) -> Tensor:
    return derived(np.isfinite, x)


def allclose(a: Tensor, b: Tensor, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    return bool(np.allclose(as_tensor(a).data, as_tensor(b).data, rtol=rtol, atol=atol))


# -- fusion rules (minigrad.compile) ------------------------------------------------------
#
# A chain of these ops becomes one generated kernel (minigrad/compiler/fusion.py,
# kernels/fused.py), which runs each op as scalar code per element. A rule is the op's
# output from its inputs {0}, {1} and each input's gradient from the output's gradient {g},
# the inputs and the output {y}; a parameter is {p[name]}. The scalar code computes what
# forward and backward above compute, up to float rounding: it may round in another order,
# and in float32 tanh, sigmoid and erf are the kernels' approximations (kernels/_math.py,
# within 4e-7 absolute).

_ERF_SCALE, _PDF_SCALE = 1 / math.sqrt(2), 1 / math.sqrt(2 * math.pi)
_FUSION_RULES: dict[type, tuple] = {
    Add: ("{0} + {1}", ("{g}", "{g}")),
    Sub: ("{0} - {1}", ("{g}", "-{g}")),
    Mul: ("{0} * {1}", ("{g} * {1}", "{g} * {0}")),
    Div: ("{0} / {1}", ("{g} / {1}", "-{g} * {0} / ({1} * {1})")),
    Neg: ("-{0}", ("-{g}",)),
    Exp: ("math.exp({0})", ("{g} * {y}",)),
    Log: ("math.log({0})", ("{g} / {0}",)),
    Sqrt: ("math.sqrt({0})", ("{g} / (2.0 * {y})",)),
    Relu: ("({0} if not {0} <= 0.0 else 0.0)", ("({g} if {0} > 0.0 else 0.0)",)),
    Sigmoid: ("sigmoid_fast({0})", ("{g} * {y} * (1.0 - {y})",)),
    Tanh: ("tanh_fast({0})", ("{g} * (1.0 - {y} * {y})",)),
    Silu: (
        "{0} * sigmoid_fast({0})",
        ("{g} * sigmoid_fast({0}) * (1.0 + {0} * (1.0 - sigmoid_fast({0})))",),
    ),
    Gelu: (
        f"0.5 * {{0}} * (1.0 + erf_fast({{0}} * {_ERF_SCALE!r}))",
        (
            f"{{g}} * (0.5 * (1.0 + erf_fast({{0}} * {_ERF_SCALE!r}))"
            f" + {{0}} * {_PDF_SCALE!r} * math.exp(-0.5 * {{0}} * {{0}}))",
        ),
    ),
}


def fusion_rule(cls: type, params: dict) -> tuple | None:
    """The scalar rule of an elementwise op with these parameters, or None if it has none."""
    if cls is Gelu and params.get("approximate") != "none":
        return None
    return _FUSION_RULES.get(cls)
