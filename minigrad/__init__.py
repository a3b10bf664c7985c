"""minigrad: a deep learning engine from scratch on NumPy, with Numba kernels.

The names follow PyTorch: ``minigrad.tensor``, ``minigrad.no_grad``, ``minigrad.manual_seed``,
``x.backward()``, ``x.grad``. Start reading at ``minigrad/tensor.py``.
"""

import os as _os

# OpenBLAS's idle threads spin for 2^28 cycles (about 70 ms here) after each call before they
# sleep (its THREAD_TIMEOUT), on the very cores that Numba's parallel kernels run on next. At
# 2 threads that halved everything that mixes the two: an LSTM layer's fwd+bwd took 31.9 ms,
# 13 ms with 2^16 cycles (about 18 us, still enough to catch back-to-back BLAS calls);
# conv2d (64,32,14,14)->64 13.7 ms, 11.6; the hand-written GEMM right after a BLAS call ran at
# 67 GFLOP/s instead of 144. BLAS's own speed is unchanged (198-200 GFLOP/s either way). 2^4
# was no better than 2^16 for convolutions and slower for the LSTM (15.4-15.9 ms).
# OpenBLAS reads this when it loads, that is when NumPy is first imported, so it applies
# when minigrad is imported before NumPy (the `minigrad` command, the benchmarks, the
# Makefile's commands); otherwise set it in the environment. A value already set is kept.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

# tensor.py first: it defines Tensor, then imports the engine and the ops that need it.
from minigrad.tensor import (  # isort: skip
    Tensor,
    arange,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from minigrad import (
    autograd,
    data,
    nn,  # noqa: E402  (nn imports ops, which need the names above)
    optim,
)
from minigrad.autograd import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    record_sites,
    set_grad_enabled,
)
from minigrad.backend import get_num_threads, set_num_threads
from minigrad.dtypes import (
    bool_ as bool,
)
from minigrad.dtypes import (
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    uint8,
)
from minigrad.dtypes import (
    float32 as float,
)
from minigrad.dtypes import (
    int32 as int,
)
from minigrad.io import load, save
from minigrad.ops import (
    abs,
    allclose,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    chunk,
    clamp,
    clone,
    cos,
    erf,
    exp,
    flatten,
    gather,
    isfinite,
    isnan,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    pad,
    permute,
    relu,
    reshape,
    sigmoid,
    sign,
    sin,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from minigrad.random import get_rng_state, manual_seed, set_rng_state

__version__ = "0.1.0"
clip = clamp

from minigrad import viz  # noqa: E402  (reads the graph; nothing in the core imports it)
from minigrad.viz import explain  # noqa: E402
