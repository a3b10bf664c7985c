"""minigrad.compile: a compiled step gives what the eager step gives (bit for bit without
fusion, within stated float32 tolerances with it), its guards retrace when they should and
only then, what it cannot capture runs eagerly and says why once, and explain() shows the
program.

Every comparison runs the same function twice from the same seed: once eagerly, once
compiled (the first compiled call traces, the later ones replay the program).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.ops.spec import REGISTRY
from minigrad.testing.conformance import samples_of
from models.mnist1d import MNIST1DMLP
from models.text import GPT, CharLSTM, MakemoreMLP
from models.vision import MLP, DigitsCNN, LeNet5

# -- tolerances ------------------------------------------------------------------------------
#
# Without fusion (fuse=False) a program calls the same forward, backward and optimizer
# kernels as eager mode, in the same order, on the same arrays: its results are eager's bit
# for bit, and the tests compare them with ==. With fusion a chain of elementwise ops is one
# generated kernel, which rounds in its own order (fastmath may also contract a * b + c into
# one FMA) and, in float32, computes tanh, sigmoid and erf with the approximations of
# kernels/_math.py (within 4e-7 absolute). Each fused op may then differ from eager by a few
# float32 ulps, and training steps compound that. Measured over 15 steps of the zoo below:
# losses within 7e-7 relative, parameters and optimizer states within 6e-6 of each array's
# largest magnitude, Adam's parameters within 0.014 learning rates.
FUSED_RTOL = 1e-5  # float32 values and losses, relative
FUSED_STATE_RTOL = 1e-4  # a parameter or optimizer state array, relative to its largest |value|
# Adam divides each update by the root of the gradient's running square, so an element whose
# gradient is at rounding level still moves by up to lr, in a direction rounding decides:
# Adam's parameters may also differ by this many learning rates.
FUSED_ADAM_LR_ATOL = 0.05
# float64 fused chains use no approximations (tanh_fast etc. are the exact functions in
# float64): only the rounding order differs.
FUSED_RTOL_FLOAT64 = 1e-10

STEPS = 12  # training steps compared in the zoo


# -- the zoo -----------------------------------------------------------------------------------


def _optimizer(name, params):
    if name == "adam":
        return mg.optim.Adam(params, lr=1e-3)
    if name == "adamw":
        return mg.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
    return mg.optim.SGD(params, lr=0.05, momentum=0.9)


# input kind -> (shape of x, dtype or number of classes/tokens, shape of y, classes)
_INPUTS = {
    "image28": ((4, 1, 28, 28), None, (4,), 10),
    "image8": ((6, 1, 8, 8), None, (6,), 10),
    "flat784": ((5, 784), None, (5,), 10),
    "flat40": ((8, 40), None, (8,), 10),
    "context3": ((8, 3), 27, (8,), 27),
    "chars": ((2, 8), 65, (2, 8), 65),
}


def _batches(kind, n, rng):
    x_shape, tokens, y_shape, classes = _INPUTS[kind]
    out = []
    for _ in range(n):
        if tokens is None:
            x = mg.tensor(rng.standard_normal(x_shape, dtype=np.float32))
        else:
            x = mg.tensor(rng.integers(0, tokens, x_shape))
        out.append((x, mg.tensor(rng.integers(0, classes, y_shape))))
    return out


ZOO = {
    "mlp": (lambda: MLP(hidden=[32]), "flat784"),
    "lenet5": (lambda: LeNet5(), "image28"),
    "digits-cnn": (lambda: DigitsCNN(dropout=0.3), "image8"),
    "gpt": (lambda: GPT(context=8, width=32, layers=2, heads=2, dropout=0.1), "chars"),
    "char-lstm": (lambda: CharLSTM(embedding=8, hidden=16, num_layers=1), "chars"),
    "makemore": (lambda: MakemoreMLP(hidden=32), "context3"),
    "mnist1d-mlp": (lambda: MNIST1DMLP(hidden=32), "flat40"),
}


def _training(model_name, opt_name, seed=0):
    """A fresh model (the same weights for the same seed), its optimizer and its step."""
    mg.manual_seed(seed)
    model = ZOO[model_name][0]()
    opt = _optimizer(opt_name, model.parameters())

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def _run(step, batches, steps, seed=1):
    mg.manual_seed(seed)  # the same dropout masks for eager and compiled
    return [float(step(*batches[i % len(batches)]).data) for i in range(steps)]


def _state_items(opt):
    """(parameter index, name, value) of every optimizer state entry, in a fixed order."""
    out = []
    for i, p in enumerate(opt.param_groups[0]["params"]):
        for name, v in sorted(opt.state.get(p, {}).items()):
            out.append((i, name, v))
    return out


def _close(got, want, rtol, atol=0.0, what=""):
    """got == want within atol + rtol * (want's largest |value|), elementwise."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=0, atol=atol + rtol * scale, err_msg=what)


def _assert_same_training(model, opt, eager_model, eager_opt, fuse):
    """Parameters and optimizer states of two runs: equal without fusion, within the fused
    tolerances with it."""
    params = list(model.named_parameters())
    eager_params = list(eager_model.named_parameters())
    assert [n for n, _ in params] == [n for n, _ in eager_params]
    adam = isinstance(opt, mg.optim.Adam)
    lr = opt.param_groups[0]["lr"]
    for (name, p), (_, q) in zip(params, eager_params):
        if not fuse:
            np.testing.assert_array_equal(p.data, q.data, err_msg=name)
        else:
            atol = FUSED_ADAM_LR_ATOL * lr if adam else 0.0
            _close(p.data, q.data, FUSED_STATE_RTOL, atol, what=name)
    states, eager_states = _state_items(opt), _state_items(eager_opt)
    assert [s[:2] for s in states] == [s[:2] for s in eager_states]
    assert states, "the optimizer kept no state"
    for (i, name, v), (_, _, w) in zip(states, eager_states):
        what = f"state {name} of parameter {i}"
        if not isinstance(w, np.ndarray):
            assert v == w, what  # Adam's step count
        elif not fuse:
            np.testing.assert_array_equal(v, w, err_msg=what)
        else:
            _close(v, w, FUSED_STATE_RTOL, what=what)


CASES = [(m, o) for m in ZOO for o in ("sgd", "adam", "adamw")]


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("model_name, opt_name", CASES)
def test_compiled_training_matches_eager(model_name, opt_name, fuse):
    batches = _batches(ZOO[model_name][1], 3, np.random.default_rng(0))
    eager_model, eager_opt, eager_step = _training(model_name, opt_name)
    model, opt, step = _training(model_name, opt_name)
    compiled = mg.compile(step, fuse=fuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)  # nothing may fall back
        losses = _run(compiled, batches, STEPS)
    expected = _run(eager_step, batches, STEPS)
    assert compiled.traces == 1 and compiled.program_count == 1  # traced once, then replayed
    assert len(set(losses)) > 1  # it trains (a frozen program would repeat itself)
    _assert_same_value(losses, expected, fuse)  # unfused: the same kernels, bit for bit
    _assert_same_training(model, opt, eager_model, eager_opt, fuse)


def _assert_same_value(got, want, fuse):
    """A loss (or a list of them): equal without fusion, within FUSED_RTOL with it."""
    if fuse:
        np.testing.assert_allclose(got, want, rtol=FUSED_RTOL)
    else:
        assert got == want


def test_fusion_is_used_in_the_zoo():
    """The fused runs above compare generated kernels, not only the unfused replay."""
    for name in ("mlp", "lenet5", "digits-cnn", "gpt", "makemore", "mnist1d-mlp"):
        _, _, step = _training(name, "sgd")
        compiled = mg.compile(step, fuse=True)
        compiled(*_batches(ZOO[name][1], 1, np.random.default_rng(0))[0])
        (entry,) = next(iter(compiled.programs.values()))
        assert entry.program.groups, name


@pytest.mark.parametrize("model_name", ["digits-cnn", "gpt"])
def test_dropout_masks_follow_the_seed(model_name):
    """With the same seed, the compiled run draws eager's masks; with another seed it does
    not (so the equality above is not that of a program without dropout)."""
    batches = _batches(ZOO[model_name][1], 2, np.random.default_rng(0))
    _, _, eager_step = _training(model_name, "sgd")
    expected = _run(eager_step, batches, 4, seed=5)
    for seed, same in ((5, True), (6, False)):
        _, _, step = _training(model_name, "sgd")
        got = _run(mg.compile(step, fuse=False), batches, 4, seed=seed)
        assert (got == expected) == same


def test_dropout_draws_fresh_masks_on_every_replay():
    mg.manual_seed(0)
    drop = nn.Dropout(0.5)

    @mg.compile
    def f(x):
        return drop(x)

    x = mg.ones(64)
    with mg.no_grad():
        first, second, third = (f(x).data.copy() for _ in range(3))
    assert f.traces == 1
    assert not np.array_equal(second, third)  # a frozen mask would repeat
    mg.manual_seed(3)
    with mg.no_grad():
        replayed = [f(x).data.copy() for _ in range(2)]
    mg.manual_seed(3)
    with mg.no_grad():
        eager = [drop(x).data.copy() for _ in range(2)]
    np.testing.assert_array_equal(replayed, eager)


def _small_model(seed=0):
    mg.manual_seed(seed)
    model = MNIST1DMLP(hidden=16)
    return model, mg.optim.Adam(model.parameters(), lr=1e-2)


def _grads(model):
    return [None if p.grad is None else p.grad.data.copy() for p in model.parameters()]


def _assert_grads(got, want, fuse):
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is None:
            continue
        if fuse:
            _close(g, w, FUSED_STATE_RTOL)
        else:
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("set_to_none", [True, False], ids=["to-none", "to-zero"])
def test_gradient_accumulation_across_calls(fuse, set_to_none):
    """zero_grad and step outside the compiled function, every K calls: the first call of a
    cycle finds no gradient (or zeros), the others add to it, with one program."""
    k_calls = 3
    batches = _batches("flat40", 4, np.random.default_rng(0))

    def micro(model):
        def f(x, y):
            loss = F.cross_entropy(model(x), y) / k_calls
            loss.backward()
            return loss

        return f

    m1, o1 = _small_model()
    m2, o2 = _small_model()
    eager, compiled = micro(m1), mg.compile(micro(m2), fuse=fuse)
    for k in range(3 * k_calls):
        losses = []
        for fn, opt in ((eager, o1), (compiled, o2)):
            if k % k_calls == 0:
                opt.zero_grad(set_to_none=set_to_none)
            losses.append(float(fn(*batches[k % 4]).data))
            if k % k_calls == k_calls - 1:
                opt.step()
        _assert_same_value(losses[1], losses[0], fuse)
        _assert_grads(_grads(m2), _grads(m1), fuse)
    assert compiled.traces == 1
    _assert_same_training(m2, o2, m1, o1, fuse)


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
def test_two_micro_batches_inside_one_call(fuse):
    batches = _batches("flat40", 4, np.random.default_rng(1))

    def two(model, opt):
        def f(x1, y1, x2, y2):
            opt.zero_grad()
            first = F.cross_entropy(model(x1), y1) / 2
            first.backward()
            second = F.cross_entropy(model(x2), y2) / 2
            second.backward()
            opt.step()
            return first + second

        return f

    m1, o1 = _small_model()
    m2, o2 = _small_model()
    eager, compiled = two(m1, o1), mg.compile(two(m2, o2), fuse=fuse)
    for i in range(5):
        args = (*batches[i % 4], *batches[(i + 1) % 4])
        want, got = float(eager(*args).data), float(compiled(*args).data)
        _assert_same_value(got, want, fuse)
        _assert_grads(_grads(m2), _grads(m1), fuse)
    assert compiled.traces == 1
    _assert_same_training(m2, o2, m1, o1, fuse)


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
def test_scheduler_and_clipping_inside_are_replayed(fuse):
    batches = _batches("flat40", 3, np.random.default_rng(0))
    max_norm = 0.5

    def build():
        model, _ = _small_model()
        opt = mg.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        sched = mg.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch))

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            opt.step()
            sched.step()
            return loss, norm

        return model, opt, step

    m1, o1, eager = build()
    m2, o2, step = build()
    compiled = mg.compile(step, fuse=fuse)
    norms = []
    for i in range(8):
        want_loss, want_norm = eager(*batches[i % 3])
        got_loss, got_norm = compiled(*batches[i % 3])
        assert o2.param_groups[0]["lr"] == o1.param_groups[0]["lr"] == 0.5 / (i + 2)
        norms.append(float(want_norm.data))
        _assert_same_value(float(got_loss.data), float(want_loss.data), fuse)
        _assert_same_value(float(got_norm.data), norms[-1], fuse)  # this call's, not the first
    assert compiled.traces == 1
    assert len(set(norms)) == len(norms) and max(norms) > max_norm  # the clipping clipped
    _assert_same_training(m2, o2, m1, o1, fuse)


# -- random graphs of registered ops ----------------------------------------------------------

# The shapes of the second input: the first one's (3, 4), a row broadcast over its rows (a
# bias), a row with a leading 1, a single value, a column (which no fused kernel takes).
X_SHAPE = (3, 4)
Y_SHAPES = [(3, 4), (4,), (1, 4), (), (3, 1)]


@functools.cache
def _op_pool():
    """The registered ops that map one float tensor to one of its shape (unary) or two to
    their broadcast shape (binary), each with the keyword sets of its samples, and the range
    its samples draw each argument from (where the op is defined and smooth)."""
    pool = []
    shapes = [X_SHAPE] + Y_SHAPES
    for name, spec in sorted(REGISTRY.items()):
        samples = samples_of(spec)
        arities = {len(s.args) for s in samples}
        if arities not in ({1}, {2}):
            continue
        if not all(np.asarray(a).dtype.kind == "f" for s in samples for a in s.args):
            continue
        n = arities.pop()
        ranges = tuple(
            (
                min(float(np.min(s.args[i])) for s in samples if np.size(s.args[i])),
                max(float(np.max(s.args[i])) for s in samples if np.size(s.args[i])),
            )
            for i in range(n)
        )
        seen = set()
        for sample in samples:
            kwargs = sample.kwargs
            if any(isinstance(v, np.ndarray) for v in kwargs.values()) or repr(kwargs) in seen:
                continue
            seen.add(repr(kwargs))
            if all(_keeps_shapes(spec.op, kwargs, n, a, b) for a in shapes for b in shapes):
                pool.append((name, n, kwargs, ranges))
    return pool


def _keeps_shapes(op, kwargs, n, a, b):
    inputs = [mg.tensor(np.full(a, 0.6), requires_grad=True)]
    if n == 2:
        inputs.append(mg.tensor(np.full(b, 0.7), requires_grad=True))
    try:
        out = op(*inputs, **kwargs)
    except (ValueError, TypeError, IndexError, RuntimeError):
        return False
    want = a if n == 1 else np.broadcast_shapes(a, b)
    return isinstance(out, mg.Tensor) and tuple(out.shape) == want and out.dtype == mg.float64


def test_the_op_pool_has_fusable_and_other_ops():
    names = {p[0] for p in _op_pool()}
    assert {"add", "sub", "mul", "div", "exp", "log", "tanh", "sigmoid", "relu", "gelu"} <= names
    assert {"abs", "clamp", "maximum", "softplus"} <= names  # ops without a fusion rule
    assert len(names) >= 25


@st.composite
def graphs(draw):
    """A small DAG: each step applies a pooled op to earlier values (x, y or results)."""
    pool = _op_pool()
    steps = []
    for k in range(draw(st.integers(1, 6))):
        name, n, kwargs, ranges = draw(st.sampled_from(pool))
        operands = tuple(draw(st.integers(0, k + 1)) for _ in range(n))
        if k == 0:  # the first step reads x, so that a gradient always flows
            operands = (0,) + operands[1:]
        steps.append((name, kwargs, ranges, operands))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    y_shape = draw(st.sampled_from(Y_SHAPES))
    y_grad = draw(st.booleans())
    return steps, dtype, y_shape, y_grad


def _graph_sinks(steps, x, y):
    """The DAG's values that no step uses. Each operand is first mapped into the range the
    op's samples come from (mid + half-width * tanh(u)), so that eager and compiled are
    compared where the op is smooth (away from log(0), 0 / 0 and overflow)."""
    values = [x, y]
    used = set()
    for name, kwargs, ranges, operands in steps:
        args = []
        for i, (lo, hi) in zip(operands, ranges):
            used.add(i)
            args.append(mg.tanh(values[i]) * (0.45 * (hi - lo)) + 0.5 * (lo + hi))
        values.append(REGISTRY[name].op(*args, **kwargs))
    return [v for i, v in enumerate(values) if i >= 2 and i not in used]


def _graph_fn(steps):
    """The DAG as fn(x, y): the sum of its sinks, whose backward reaches every step."""

    def f(x, y):
        sinks = _graph_sinks(steps, x, y)
        out = sinks[0].sum()
        for v in sinks[1:]:
            out = out + v.sum()
        out.backward()
        return out

    return f


SCALES = (1.0, -0.5, 0.75)  # the inputs of the three calls: the later two replay


def _check_graph(graph, fuse):
    steps, dtype, y_shape, y_grad = graph
    rng = np.random.default_rng(0)
    xa = rng.uniform(-2.0, 2.0, X_SHAPE).astype(dtype)
    ya = rng.uniform(-2.0, 2.0, y_shape).astype(dtype)
    f = _graph_fn(steps)

    def run(fn):
        results = []
        for scale in SCALES:
            x = mg.tensor(xa * scale, requires_grad=True)
            y = mg.tensor(ya * scale, requires_grad=y_grad)
            out = fn(x, y)
            results.append((out.data, x.grad, y.grad))
        return results

    want = run(f)
    compiled = mg.compile(f, fuse=fuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        got = run(compiled)
    assert compiled.traces == 1
    if fuse:
        (entry,) = next(iter(compiled.programs.values()))
        event(f"fused groups: {min(len(entry.program.groups), 3)}")
    rtol = FUSED_RTOL if dtype == np.float32 else FUSED_RTOL_FLOAT64
    for scale, call_got, call_want in zip(SCALES, got, want):
        # the result sums the sinks' elements, which may cancel: its tolerance is relative
        # to the sum of their magnitudes
        with mg.no_grad():
            sinks = _graph_sinks(steps, mg.tensor(xa * scale), mg.tensor(ya * scale))
        magnitude = sum(float(np.abs(v.data).sum()) for v in sinks)
        for k, (g, w) in enumerate(zip(call_got, call_want)):
            assert (g is None) == (w is None)
            if g is None:
                continue
            g, w = np.asarray(getattr(g, "data", g)), np.asarray(getattr(w, "data", w))
            assert g.dtype == w.dtype == dtype and g.shape == w.shape
            if not fuse:
                np.testing.assert_array_equal(g, w)
            elif k == 0:
                np.testing.assert_allclose(g, w, rtol=0, atol=rtol * magnitude)
            else:
                _close(g, w, rtol, what=f"gradient of {'xy'[k - 1]}")


@given(graphs())
def test_random_graphs_replay_bit_for_bit(graph):
    _check_graph(graph, fuse=False)


# Each fused example compiles its generated kernels with Numba (about 0.3 s a kernel, 1 s
# an example): a third of the profile's examples (ci 5, dev 13, thorough 133), and a long
# run with -m slow.
FUSED_GRAPH_EXAMPLES = max(5, settings.default.max_examples // 3)


@settings(max_examples=FUSED_GRAPH_EXAMPLES)
@given(graphs())
def test_random_graphs_fused_match_eager(graph):
    _check_graph(graph, fuse=True)


@pytest.mark.slow
@settings(max_examples=400)
@given(graphs())
def test_random_graphs_fused_long_run(graph):
    _check_graph(graph, fuse=True)


def test_a_nan_gradient_stays_nan_through_a_fused_chain():
    def f(x):  # d/dx of x - x is 0, times the NaN of log's derivative at 0: NaN, as eager
        out = mg.sigmoid(mg.log(x - x)).sum()
        out.backward()
        return out

    compiled = mg.compile(f, fuse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's log(0) and 0 / 0
        for fn in (f, compiled, compiled):
            x = mg.tensor([1.0, 2.0], requires_grad=True)
            fn(x)
            assert np.isnan(x.grad.data).all()
    assert "fused0<Sub, Log, Sigmoid>" in compiled.explain()


# -- guards ------------------------------------------------------------------------------------


def _tiny(seed=0, dropout=0.5):
    mg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 3))
    opt = mg.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y, scale=1.0):
        opt.zero_grad()
        loss = F.cross_entropy(model(x) * scale, y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


class _Twin:
    """The same model, optimizer and step twice: one eager, one compiled without fusion (so
    that results compare with ==). ``call`` runs both from the same seed and checks that they
    agree: the value, every parameter and every gradient."""

    def __init__(self, make=_tiny, **compile_options):
        self.eager_model, self.eager_opt, self.eager = make()
        self.model, self.opt, step = make()
        self.compiled = mg.compile(step, fuse=False, **compile_options)
        self.seed = 100

    def both(self, fn):
        """Apply the same change to both models."""
        fn(self.eager_model)
        fn(self.model)

    def call(self, *args, **kwargs):
        self.seed += 1
        mg.manual_seed(self.seed)
        want = self.eager(*args, **kwargs)
        mg.manual_seed(self.seed)
        got = self.compiled(*args, **kwargs)
        np.testing.assert_array_equal(got.data, want.data)
        assert got.dtype == want.dtype
        for (name, p), q in zip(self.model.named_parameters(), self.eager_model.parameters()):
            np.testing.assert_array_equal(p.data, q.data, err_msg=name)
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None:
                np.testing.assert_array_equal(p.grad.data, q.grad.data, err_msg=name)
        return got


def _xy(n, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (
        mg.tensor(rng.standard_normal((n, 4)).astype(dtype)),
        mg.tensor(rng.integers(0, 3, n)),
    )


def test_the_same_shapes_do_not_retrace():
    twin = _Twin()
    for seed in range(6):  # new values each call, the same shapes
        twin.call(*_xy(5, seed=seed))
    assert twin.compiled.traces == 1 and twin.compiled.program_count == 1


def test_a_new_input_shape_retraces():
    twin = _Twin()
    twin.call(*_xy(5))
    twin.call(*_xy(7, seed=1))
    assert twin.compiled.traces == 2
    twin.call(*_xy(5, seed=2))  # the first program, kept
    twin.call(*_xy(7, seed=3))
    assert twin.compiled.traces == 2 and twin.compiled.program_count == 2


def test_a_new_dtype_retraces():
    twin = _Twin()
    twin.call(*_xy(5))
    got = twin.call(*_xy(5, dtype=np.float64, seed=1))  # promoted by the layers
    assert twin.compiled.traces == 2 and got.dtype == mg.float64
    twin.call(*_xy(5, dtype=np.float64, seed=2))
    twin.call(*_xy(5, seed=3))
    assert twin.compiled.traces == 2


def _with_backward_when_grad_is_on(seed=0):
    model, opt, _ = _tiny(seed)

    def f(x):
        out = (model(x) ** 2).mean()
        if mg.is_grad_enabled():
            out.backward()
        return out

    return model, opt, f


def test_grad_mode_retraces():
    twin = _Twin(_with_backward_when_grad_is_on)
    x = _xy(5)[0]
    twin.call(x)
    assert twin.compiled.traces == 1
    with mg.no_grad():
        got = twin.call(_xy(5, seed=1)[0])
    assert twin.compiled.traces == 2 and not got.requires_grad
    twin.call(_xy(5, seed=2)[0])  # each mode's program, reused
    with mg.no_grad():
        twin.call(_xy(5, seed=3)[0])
    assert twin.compiled.traces == 2


def test_training_mode_retraces_and_eval_matches_eager_eval():
    twin = _Twin()
    x, y = _xy(5)
    twin.call(x, y)
    twin.both(lambda m: m.eval())
    twin.call(x, y)  # no dropout now: compared with eager in eval mode
    assert twin.compiled.traces == 2
    twin.both(lambda m: m.train())
    twin.call(x, y)  # back to the first program, checked and reused
    twin.both(lambda m: m.eval())
    twin.call(x, y)
    assert twin.compiled.traces == 2


def test_eval_forward_under_no_grad_matches_eager():
    model, _, _ = _tiny()

    @mg.compile
    def forward(x):
        return model(x)

    with mg.no_grad():
        model.train()
        forward(_xy(5)[0])
        model.eval()
        for seed in range(3):
            x = _xy(5, seed=seed)[0]
            np.testing.assert_array_equal(forward(x).data, model(x).data)
    assert forward.traces == 2


def test_replacing_a_parameter_retraces():
    twin = _Twin()
    x, y = _xy(5)
    twin.call(x, y)
    weight = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)

    def replace(m):
        m[0].weight = nn.Parameter(mg.tensor(weight.copy()))

    twin.both(replace)
    twin.call(x, y)  # the new parameter is the one used (and it gets the gradient)
    assert twin.compiled.traces == 2
    assert twin.model[0].weight.grad is not None
    twin.call(*_xy(5, seed=1))
    assert twin.compiled.traces == 2


def test_requires_grad_false_on_a_parameter_retraces():
    twin = _Twin()
    x, y = _xy(5)
    twin.call(x, y)
    twin.both(lambda m: m[3].bias.requires_grad_(False))
    twin.call(x, y)
    assert twin.compiled.traces == 2 and twin.model[3].bias.grad is None
    twin.both(lambda m: m[3].bias.requires_grad_(True))
    twin.call(*_xy(5, seed=1))  # the first program again
    assert twin.compiled.traces == 2 and twin.model[3].bias.grad is not None


def test_a_non_tensor_argument_is_a_guard():
    twin = _Twin()
    x, y = _xy(5)
    twin.call(x, y)
    twin.call(x, y, 2.0)
    assert twin.compiled.traces == 2
    twin.call(*_xy(5, seed=1), 2.0)
    twin.call(*_xy(5, seed=2), scale=2.0)  # a keyword: another layout of the arguments
    assert twin.compiled.traces == 3
    twin.call(*_xy(5, seed=3), 2.0)
    twin.call(*_xy(5, seed=4))
    assert twin.compiled.traces == 3


def test_the_cache_is_bounded():
    twin = _Twin(max_programs=2)
    counts = []
    for round_ in range(2):
        for n in (2, 3, 4):  # three shapes alternating: each evicts the oldest
            twin.call(*_xy(n, seed=round_ * 10 + n))
            counts.append(twin.compiled.program_count)
    assert counts == [1, 2, 2, 2, 2, 2]
    assert twin.compiled.traces == 6
    twin.call(*_xy(3, seed=50))  # the most recent two are kept
    twin.call(*_xy(4, seed=51))
    assert twin.compiled.traces == 6

    roomy = _Twin(max_programs=3)
    for round_ in range(2):
        for n in (2, 3, 4):
            roomy.call(*_xy(n, seed=round_ * 10 + n))
    assert roomy.compiled.traces == 3 and roomy.compiled.program_count == 3


def test_bad_arguments_to_compile():
    with pytest.raises(ValueError, match="max_programs"):
        mg.compile(lambda x: x, max_programs=0)
    with pytest.raises(TypeError, match="expected a function"):
        mg.compile(3)


def test_a_parameter_used_without_calling_its_module_is_guarded():
    """F.linear(x, lin.weight, lin.bias) reads the module's parameters without calling the
    module: replacing one must not leave the program on the old tensor."""
    mg.manual_seed(0)
    lin = nn.Linear(3, 2)

    def f(x):
        return F.linear(x, lin.weight, lin.bias).sum()

    compiled = mg.compile(f, fuse=False)
    x = mg.ones(1, 3)
    with mg.no_grad():
        compiled(x)
        lin.weight = nn.Parameter(mg.zeros(2, 3))
        np.testing.assert_array_equal(compiled(x).data, f(x).data)


def test_one_tensor_passed_for_two_arguments_then_two():
    """A trace where both arguments are one tensor must not be replayed for two tensors."""

    def f(a, b):
        return (a * 2 + b * 3).sum()

    compiled = mg.compile(f, fuse=False)
    x = mg.ones(3)
    u, v = mg.ones(3), mg.zeros(3)
    with mg.no_grad():
        assert float(compiled(x, x).data) == 15.0
        assert float(compiled(u, v).data) == float(f(u, v).data) == 6.0


# -- state a program must not freeze --------------------------------------------------------


def test_a_returned_gradient_is_this_calls():
    """Returning a parameter's .grad: the gradient of this call, as eager returns it."""
    w = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    opt = mg.optim.SGD([w], lr=0.1)

    def f(x):
        opt.zero_grad()
        (x * w).sum().backward()
        return w.grad

    compiled = mg.compile(f, fuse=False)
    for i in range(3):
        x = mg.tensor(np.full(3, float(i + 1), np.float32))
        got = compiled(x)
        assert got is w.grad
        np.testing.assert_array_equal(got.data, x.data)


def test_setting_grad_to_none_inside_is_replayed():
    """``p.grad = None`` inside the function (a hand-written zero_grad) happens on every
    call, or the function runs eagerly; it is not silently dropped."""
    w1 = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w2 = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)

    def make(w):
        def f(x):
            w.grad = None
            (x * w).sum().backward()

        return f

    eager, compiled = make(w1), mg.compile(make(w2), fuse=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mg.CompileWarning)  # running eagerly would be right
        for i in range(3):
            x = mg.tensor(np.full(3, float(i + 1), np.float32))
            eager(x)
            compiled(x)
            np.testing.assert_array_equal(w2.grad.data, w1.grad.data)


def test_a_module_attribute_that_is_not_a_tensor_is_not_frozen():
    """Dropout's p changed after the trace (a dropout schedule): the program must not keep
    drawing with the old p."""
    mg.manual_seed(0)
    drop = nn.Dropout(0.5)
    compiled = mg.compile(lambda x: drop(x), fuse=False)
    x = mg.ones(1000)
    with mg.no_grad():
        compiled(x)
        drop.p = 0.0
        np.testing.assert_array_equal(compiled(x).data, x.data)


def test_a_parameter_group_added_after_the_trace_is_stepped():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2))
    opt = mg.optim.SGD([a], lr=0.1)

    def step(x):
        opt.zero_grad()
        ((a * x).sum() + (b * x).sum()).backward()
        opt.step()

    compiled = mg.compile(step, fuse=False)
    compiled(mg.ones(2))
    opt.add_param_group({"params": [b]})  # unfreezing a layer while training, say
    compiled(mg.ones(2))
    np.testing.assert_allclose(a.data, [0.8, 0.8])
    np.testing.assert_allclose(b.data, [0.9, 0.9])


def test_a_replayed_step_checks_what_eager_checks():
    """An embedding index out of range is an IndexError eagerly; a replay must not read
    another row instead (a negative index would wrap around in NumPy)."""
    mg.manual_seed(0)
    emb = nn.Embedding(5, 2)
    compiled = mg.compile(lambda i: emb(i), fuse=False)
    with mg.no_grad():
        compiled(mg.tensor([0, 1]))
        with pytest.raises(IndexError, match="out of range"):
            emb(mg.tensor([0, -1]))
        with pytest.raises(IndexError):
            compiled(mg.tensor([0, -1]))


def test_an_error_inside_the_trace_is_raised_and_leaves_no_trace_behind():
    x = mg.tensor([1.0, 2.0], requires_grad=True)

    def bad(t):
        t += 1  # in place on a leaf that requires grad: refused eagerly
        return t

    compiled = mg.compile(bad)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            compiled(x)
    assert mg.autograd.tracer is None
    twin = _Twin()  # another compiled function still traces and replays
    twin.call(*_xy(5))
    twin.call(*_xy(5, seed=1))
    assert twin.compiled.traces == 1


def test_numpy_arrays_and_structures_as_arguments_and_results():
    """Tensors inside dicts and tuples, a NumPy array (an input like a tensor, returned as
    an array), a Python value returned as it is."""
    mg.manual_seed(0)
    lin = nn.Linear(4, 2)

    def f(batch, weights, offset):
        out = lin(batch["x"]) * weights[1] + mg.tensor(offset)
        return {"out": out.detach(), "mean": [out.mean().detach()], "n": len(weights)}, offset

    compiled = mg.compile(f, fuse=False)
    with mg.no_grad():
        for seed in range(3):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((3, 4)).astype(np.float32)
            offset = rng.standard_normal(2).astype(np.float32)
            args = ({"x": mg.tensor(x)}, (1.0, mg.tensor(np.float32(seed + 1))), offset)
            (got, got_offset), (want, _) = compiled(*args), f(*args)
            assert set(got) == {"out", "mean", "n"} and got["n"] == 2
            np.testing.assert_array_equal(got["out"].data, want["out"].data)
            np.testing.assert_array_equal(got["mean"][0].data, want["mean"][0].data)
            assert isinstance(got_offset, np.ndarray)
            np.testing.assert_array_equal(got_offset, offset)
    assert compiled.traces == 1


# -- what runs eagerly ------------------------------------------------------------------------------


def _fallbacks():
    """name -> (make, what the warning says): ``make()`` builds a fresh function of one
    input (3,) with its own parameter W (the same values each time) and returns (fn, W,
    extra), where extra is the function's other state (a module, a hook's calls)."""

    def with_w(body, state=lambda: ()):
        def make():
            mg.manual_seed(0)
            w = mg.randn(3, requires_grad=True)
            extra = state()

            def fn(x):
                return body(x, w, extra)

            return fn, w, extra

        return make

    def item(x, w, extra):
        scale = (x * w).sum().item()
        loss = (x * w * scale).sum()
        loss.backward()
        return loss

    def numpy(x, w, extra):
        (x * w).sum().backward()
        return mg.tensor((x * w).detach().numpy() * 2)

    def if_positive(x, w, extra):
        t = (x * w).sum()
        if t > 0:
            t = t * 2
        t.backward()
        return t

    def bool_(x, w, extra):
        t = (x * w).sum()
        flag = bool(t < 0)
        (t * (3.0 if flag else 1.0)).backward()
        return t

    def add_in_place(x, w, extra):
        h = x * w
        h += 1
        (h * h).sum().backward()
        return h.detach()

    def mul_in_place(x, w, extra):
        h = x * w
        h.mul_(2)
        (h * h).sum().backward()
        return h.detach()

    def hook(x, w, extra):
        h = x * w
        h.register_hook(lambda g: g * 2)
        (h * h).sum().backward()

    def retain(x, w, extra):
        h = x * w
        h.retain_grad()
        (h * h).sum().backward()
        return h.grad

    def create_graph(x, w, extra):
        (x * w * w).sum().backward(create_graph=True)
        g = w.grad.detach()
        w.grad = None
        return g

    def grad(x, w, extra):
        (g,) = mg.autograd.grad((x * w * w).sum(), w)
        return g

    def batch_norm(x, w, extra):
        out = extra[0](mg.stack([x, x * w, x - w]))
        (out * out * w).sum().backward()
        return out.detach()

    def nll(x, w, extra):
        loss = F.nll_loss(F.log_softmax((x * w).reshape(1, 3), dim=1), mg.tensor([1]))
        loss.backward()
        return loss

    def module_hook(x, w, extra):
        out = extra[0](x * w)
        out.sum().backward()
        return out.detach()

    def graph_out(x, w, extra):
        return x * w

    def bn():
        return (nn.BatchNorm1d(3),)

    def hooked():
        lin = nn.Linear(3, 3)
        calls = []
        lin.register_forward_hook(lambda m, args, out: calls.append(out.shape))
        return lin, calls

    return {
        "item": (with_w(item), ".item()"),
        "numpy": (with_w(numpy), ".numpy()"),
        "if-positive": (with_w(if_positive), "bool(tensor)"),
        "bool": (with_w(bool_), "bool(tensor)"),
        "add-in-place": (with_w(add_in_place), "in-place op"),
        "mul-in-place": (with_w(mul_in_place), "in-place op"),
        "hook": (with_w(hook), "register_hook"),
        "retain-grad": (with_w(retain), "retain_grad()"),
        "create-graph": (with_w(create_graph), "create_graph=True"),
        "autograd-grad": (with_w(grad), "autograd.grad"),
        "batch-norm": (with_w(batch_norm, bn), "batch_norm in training mode"),
        "nll-loss": (with_w(nll), "nll_loss"),
        "module-hook": (with_w(module_hook, hooked), "hooks registered on a Linear"),
        "graph-out": (with_w(graph_out), "requires grad and runs no backward"),
    }


FALLBACKS = _fallbacks()


def _comparable(value):
    if value is None:
        return None
    return np.asarray(value.data if isinstance(value, mg.Tensor) else value)


def _extra_state(extra):
    out = []
    for e in extra:
        if isinstance(e, nn.Module):
            out += [t.data.copy() for t in list(e.parameters()) + list(e.buffers())]
        elif isinstance(e, list):
            out.append(len(e))  # a hook's calls
    return out


@pytest.mark.parametrize("name", list(FALLBACKS))
def test_what_cannot_be_captured_runs_eagerly_and_says_why_once(name):
    make, reason = FALLBACKS[name]
    fn, w, extra = make()
    eager, eager_w, eager_extra = make()
    compiled = mg.compile(fn)
    inputs = [
        mg.tensor([0.5, -1.0, 2.0]),
        mg.tensor([-1.5, 0.25, 1.0]),
        mg.tensor([2.0, 1.0, -3.0]),
    ]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for x in inputs:  # other values each call: a frozen result would show
            got, want = compiled(x), eager(x)
            got, want = _comparable(got), _comparable(want)
            assert (got is None) == (want is None)
            if got is not None:
                np.testing.assert_array_equal(got, want)
            assert (w.grad is None) == (eager_w.grad is None)
            if w.grad is not None:
                np.testing.assert_array_equal(w.grad.data, eager_w.grad.data)
            for a, b in zip(_extra_state(extra), _extra_state(eager_extra), strict=True):
                np.testing.assert_array_equal(a, b)
        compiled(mg.tensor([[1.0, 2.0, 3.0]]).reshape(3))  # a view: the same guard key
    said = [m for m in seen if issubclass(m.category, mg.CompileWarning)]
    assert len(said) == 1, [str(m.message) for m in said]
    message = str(said[0].message)
    assert reason in message and "\n" not in message, message
    assert message.startswith(f"minigrad.compile({fn.__qualname__}) runs eagerly: ")
    assert compiled.traces == 1  # the decision is remembered: no trace on every call


def test_a_fallback_says_why_once_across_retraces():
    make, _ = FALLBACKS["item"]
    fn, _, _ = make()
    compiled = mg.compile(fn)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        compiled(mg.ones(3))
        compiled(mg.ones(3, dtype=mg.float64))  # a new guard key: traced again, same reason
        compiled(mg.ones(3))
    assert compiled.traces == 2
    assert len([m for m in seen if issubclass(m.category, mg.CompileWarning)]) == 1


def test_the_warning_points_at_the_callers_line():
    make, _ = FALLBACKS["item"]
    fn, _, _ = make()
    compiled = mg.compile(fn)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        compiled(mg.ones(3))
    (said,) = [m for m in seen if issubclass(m.category, mg.CompileWarning)]
    assert said.filename == __file__, said.filename


def test_a_fallback_in_training_mode_does_not_stop_eval_mode_compiling():
    """batch_norm runs eagerly in training mode, but in eval mode it reads its running
    statistics like any constant: the eval-mode forward gets its program."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())

    @mg.compile
    def forward(x):
        return model(x)

    with mg.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", mg.CompileWarning)
        forward(mg.randn(5, 3))  # training mode: eager, with the reason said
        model.eval()
        for _ in range(3):
            x = mg.randn(5, 3)
            np.testing.assert_array_equal(forward(x).data, model(x).data)
    assert forward.traces == 2
    assert any(type(e).__name__ == "_Entry" for es in forward.programs.values() for e in es)


# -- explain -------------------------------------------------------------------------------------


def test_explain_shows_ops_shapes_fusion_backward_and_source():
    _, _, step = _tiny()
    f = mg.compile(step, fuse=True)
    assert "not traced yet" in f.explain()
    f(mg.randn(5, 4), mg.randint(0, 3, (5,)))
    text = f.explain()
    lines = text.splitlines()
    assert lines[0] == "inputs ((5, 4) <f4, (5,) <i8), grad on:"
    (entry,) = next(iter(f.programs.values()))
    program = entry.program
    ops = [s for s in program.steps if type(s).__name__ == "OpStep"]
    fused = {k for g in program.groups for k in g.members}
    # one line per op: each one not fused, by name, with its inputs' names and shapes
    for step in ops:
        if step.index in fused:
            continue
        name = step.cls.__name__
        assert any(line.strip().startswith(f"v{step.index} = {name}(") for line in lines), name
    assert "  v1 = Linear(x0 (5, 4), 0.weight (8, 4), 0.bias (8,))" in lines
    # the fused group: which ops it fuses, on what
    (group,) = program.groups
    assert "fused kernels:" in lines
    assert "  fused0: Relu -> Mul on (full (5, 8), full (5, 8)) -> (5, 8) float32" in lines
    assert any(f"v{group.output} = fused0<Relu, Mul>(" in line for line in lines)
    # the backward walk and the recorded calls
    assert any("<- Linear.backward(" in line for line in lines)
    assert any("<- fused0.backward(" in line for line in lines)
    for name in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert any(line.strip().startswith(f"{name}.grad +=") for line in lines), name
    assert "  call SGD.zero_grad" in lines
    assert "  SGD.step: one update per parameter" in lines
    assert "def program(" not in text and "def forward(rows" not in text
    assert repr(text) == str(text)  # at the prompt it shows as text
    # with source: the generated Python and the kernels' source
    full = f.explain(source=True)
    assert full.startswith(text.split("fused kernels:")[0])
    assert "generated Python:" in full and "  def program(X, x0, x1):" in full
    assert group.source() and group.source().splitlines()[0] in full
    assert "def forward(rows, cols" in full and "def backward(rows, cols" in full


def test_explain_of_a_fallback_says_why():
    fn, _, _ = FALLBACKS["item"][0]()
    compiled = mg.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mg.CompileWarning)
        compiled(mg.ones(3))
    assert "runs eagerly: .item()" in compiled.explain()
