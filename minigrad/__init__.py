"""minigrad: a deep learning engine from scratch on NumPy, with Numba kernels.

The names follow PyTorch: ``minigrad.tensor``, ``minigrad.no_grad``, ``minigrad.manual_seed``,
``x.backward()``, ``x.grad``. Start reading at ``minigrad/tensor.py``.
"""

# Before anything imports NumPy or Numba: minigrad's process-wide settings, all in one
# function (minigrad/process.py; MINIGRAD_PROCESS_SETTINGS=off turns them off).
from minigrad import process as _process  # isort: skip

_process.apply()

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
from minigrad.compiler import CompiledFunction, CompileWarning, compile
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

from minigrad import (
    func,  # noqa: E402  (function transforms over autograd and forward_ad)
    viz,  # noqa: E402  (reads the graph; nothing in the core imports it)
)
from minigrad.viz import explain  # noqa: E402


def __getattr__(name: str):
    """Load the high-level packages on first use, so ``import minigrad`` stays cheap and
    ``import minigrad as tf`` then ``tf.keras.Sequential(...)`` works as in TensorFlow."""
    if name in ("keras", "transformers", "onnx", "train", "distributed"):
        import importlib

        return importlib.import_module(f"minigrad.{name}")
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
