"""minigrad.compile: a compiled step gives what the eager step gives, its guards retrace when
they should (and only then), what it cannot capture runs eagerly and says why once, and
explain() shows the program."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from models.mnist1d import MNIST1DMLP
from models.text import GPT, CharLSTM, MakemoreMLP
from models.vision import MLP, DigitsCNN, LeNet5

# With fusion, a chain of elementwise ops rounds in its own order, and in float32 its tanh,
# sigmoid and erf are the kernels' approximations (kernels/_math.py, within 4e-7 absolute).
# Over a few Adam steps, whose update divides by the gradient's own scale, parameters then
# differ by a few float32 steps of the learning rate: 1e-4 absolute bounds that for lr 1e-3.
FUSED_PARAM_ATOL = 1e-4
FUSED_LOSS_RTOL = 1e-5


def _optimizer(name, params):
    if name == "adam":
        return mg.optim.Adam(params, lr=1e-3)
    if name == "adamw":
        return mg.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
    return mg.optim.SGD(params, lr=0.05, momentum=0.9)


def _batches(kind, n, rng):
    if kind == "image28":
        return [
            (
                mg.tensor(rng.standard_normal((4, 1, 28, 28), dtype=np.float32)),
                mg.tensor(rng.integers(0, 10, 4)),
            )
            for _ in range(n)
        ]
    if kind == "image8":
        return [
            (
                mg.tensor(rng.standard_normal((6, 1, 8, 8), dtype=np.float32)),
                mg.tensor(rng.integers(0, 10, 6)),
            )
            for _ in range(n)
        ]
    if kind == "flat784":
        return [
            (
                mg.tensor(rng.standard_normal((5, 784), dtype=np.float32)),
                mg.tensor(rng.integers(0, 10, 5)),
            )
            for _ in range(n)
        ]
    if kind == "flat40":
        return [
            (
                mg.tensor(rng.standard_normal((8, 40), dtype=np.float32)),
                mg.tensor(rng.integers(0, 10, 8)),
            )
            for _ in range(n)
        ]
    if kind == "context3":
        return [
            (mg.tensor(rng.integers(0, 27, (8, 3))), mg.tensor(rng.integers(0, 27, 8)))
            for _ in range(n)
        ]
    return [  # characters: (2, 8) ids and their next characters
        (mg.tensor(rng.integers(0, 65, (2, 8))), mg.tensor(rng.integers(0, 65, (2, 8))))
        for _ in range(n)
    ]


ZOO = {
    "mlp": (lambda: MLP(hidden=[32]), "flat784"),
    "lenet5": (lambda: LeNet5(), "image28"),
    "digits-cnn": (lambda: DigitsCNN(dropout=0.3), "image8"),
    "gpt": (lambda: GPT(context=8, width=32, layers=1, heads=2, dropout=0.1), "chars"),
    "char-lstm": (lambda: CharLSTM(embedding=8, hidden=16, num_layers=1), "chars"),
    "makemore": (lambda: MakemoreMLP(hidden=32), "context3"),
    "mnist1d-mlp": (lambda: MNIST1DMLP(hidden=32), "flat40"),
}


def _training(model_name, opt_name, seed=0):
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


def _states(opt):
    out = []
    for p in opt.param_groups[0]["params"]:
        for v in opt.state.get(p, {}).values():
            if isinstance(v, np.ndarray):
                out.append(v)
    return out


CASES = [
    ("mlp", "sgd"),
    ("lenet5", "adam"),
    ("digits-cnn", "adamw"),
    ("gpt", "adamw"),
    ("char-lstm", "adam"),
    ("makemore", "sgd"),
    ("mnist1d-mlp", "adam"),
]


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("model_name, opt_name", CASES)
def test_compiled_training_matches_eager(model_name, opt_name, fuse):
    batches = _batches(ZOO[model_name][1], 3, np.random.default_rng(0))
    eager_model, eager_opt, eager_step = _training(model_name, opt_name)
    model, opt, step = _training(model_name, opt_name)
    compiled = mg.compile(step, fuse=fuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)  # nothing may fall back
        losses = _run(compiled, batches, 8)
    expected = _run(eager_step, batches, 8)
    assert compiled.traces == 1
    params = [p.data for p in model.parameters()]
    eager_params = [p.data for p in eager_model.parameters()]
    if not fuse:  # the same kernels in the same order: bit for bit
        assert losses == expected
        for a, b in zip(params + _states(opt), eager_params + _states(eager_opt)):
            np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(losses, expected, rtol=FUSED_LOSS_RTOL)
        for a, b in zip(params, eager_params):
            np.testing.assert_allclose(a, b, atol=FUSED_PARAM_ATOL, rtol=0)


def test_dropout_draws_fresh_masks_on_every_replay():
    mg.manual_seed(0)
    drop = nn.Dropout(0.5)

    @mg.compile
    def f(x):
        return drop(x)

    x = mg.ones(64)
    with mg.no_grad():
        first, second = f(x).data.copy(), f(x).data.copy()
    assert not np.array_equal(first, second)  # a frozen mask would repeat
    mg.manual_seed(3)
    with mg.no_grad():
        replayed = f(x).data.copy()
    mg.manual_seed(3)
    with mg.no_grad():
        eager = drop(x).data
    np.testing.assert_array_equal(replayed, eager)


def test_gradient_accumulation_outside_and_inside():
    rng = np.random.default_rng(0)
    batches = _batches("flat40", 4, rng)

    def build():
        mg.manual_seed(0)
        model = MNIST1DMLP(hidden=16)
        return model, mg.optim.SGD(model.parameters(), lr=0.1)

    # accumulate over two calls: zero_grad and step outside the compiled function
    m1, o1 = build()
    m2, o2 = build()

    def accumulate(model):
        def f(x, y):
            loss = F.cross_entropy(model(x), y) / 2
            loss.backward()
            return loss

        return f

    eager, compiled = accumulate(m1), mg.compile(accumulate(m2))
    for k in range(4):
        for fn, opt in ((eager, o1), (compiled, o2)):
            if k % 2 == 0:
                opt.zero_grad()
            fn(*batches[k])
            if k % 2 == 1:
                opt.step()
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)

    # two micro-batches inside one compiled call
    m3, o3 = build()
    m4, o4 = build()

    def two(model, opt):
        def f(x1, y1, x2, y2):
            opt.zero_grad()
            (F.cross_entropy(model(x1), y1) / 2).backward()
            (F.cross_entropy(model(x2), y2) / 2).backward()
            opt.step()

        return f

    eager, compiled = two(m3, o3), mg.compile(two(m4, o4))
    for _ in range(3):
        eager(*batches[0], *batches[1])
        compiled(*batches[0], *batches[1])
    assert compiled.traces == 1
    for a, b in zip(m3.parameters(), m4.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_scheduler_and_clipping_inside_are_replayed():
    batches = _batches("flat40", 2, np.random.default_rng(0))

    def build():
        mg.manual_seed(0)
        model = MNIST1DMLP(hidden=16)
        opt = mg.optim.SGD(model.parameters(), lr=0.5)
        sched = mg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

        def step(x, y):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            opt.step()
            sched.step()

        return model, opt, step

    m1, o1, eager = build()
    m2, o2, step = build()
    compiled = mg.compile(step)
    for i in range(6):
        eager(*batches[i % 2])
        compiled(*batches[i % 2])
    assert o2.param_groups[0]["lr"] == o1.param_groups[0]["lr"] == 0.5 * 0.5**3
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


# -- random graphs of registered ops ------------------------------------------------------

UNARY = ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "silu", "gelu", "sin", "neg"]
BINARY = ["add", "sub", "mul", "div", "maximum"]


@st.composite
def graphs(draw):
    """A program: each step applies a registered op to earlier values (x, y or results)."""
    steps = []
    for k in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(UNARY)), draw(st.integers(0, k + 1)), None))
        else:
            a, b = draw(st.integers(0, k + 1)), draw(st.integers(0, k + 1))
            steps.append((draw(st.sampled_from(BINARY)), a, b))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    bias = draw(st.booleans())  # y as a row broadcast over x's rows
    return steps, dtype, bias


def _graph_fn(steps):
    """The program as a function; each op's operands are mapped into the domain where it is
    smooth (as the op registry's specs draw them), so that eager and compiled are compared
    away from singular points such as log(0) and 0 / 0."""
    from minigrad.ops.spec import REGISTRY

    def f(x, y):
        values = [x, y]
        for name, a, b in steps:
            op = REGISTRY[name].op
            u = values[a]
            if name in ("log", "sqrt"):
                u = mg.sigmoid(u) + 0.5
            elif name == "exp":
                u = mg.tanh(u)
            if b is None:
                values.append(op(u))
                continue
            v = values[b] if b != a else values[b] * 0.5 + 0.25  # not x - x or x / x
            if name == "div":
                v = mg.sigmoid(v) + 0.5
            values.append(op(u, v))
        out = values[-1].sum()
        out.backward()
        return out

    return f


@given(graphs())
def test_random_graphs_of_registered_ops(graph):
    steps, dtype, bias = graph
    rng = np.random.default_rng(0)
    xa = rng.uniform(0.5, 2.0, (3, 4)).astype(dtype)
    ya = rng.uniform(0.5, 2.0, (4,) if bias else (3, 4)).astype(dtype)
    f = _graph_fn(steps)
    results = {}
    for mode in ("eager", "unfused", "fused"):
        fn = f if mode == "eager" else mg.compile(f, fuse=mode == "fused")
        for _ in range(2):  # the second call replays
            x = mg.tensor(xa, requires_grad=True)
            y = mg.tensor(ya, requires_grad=True)
            out = fn(x, y)
        results[mode] = (out.data, x.grad, y.grad)
    for mode in ("unfused", "fused"):
        for got, want in zip(results[mode], results["eager"]):
            assert (got is None) == (want is None)
            if got is None:
                continue
            got, want = (
                np.asarray(getattr(got, "data", got)),
                np.asarray(getattr(want, "data", want)),
            )
            if mode == "unfused":
                np.testing.assert_array_equal(got, want)
            else:
                rtol = 1e-5 if dtype == np.float32 else 1e-10
                np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


# -- guards --------------------------------------------------------------------------------


def _tiny():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    opt = mg.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y, scale=1.0):
        opt.zero_grad()
        loss = F.cross_entropy(model(x) * scale, y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def test_the_same_call_does_not_retrace_and_each_guard_does():
    model, opt, step = _tiny()
    f = mg.compile(step)
    x, y = mg.randn(5, 4), mg.randint(0, 3, (5,))
    f(x, y)
    f(mg.randn(5, 4), mg.randint(0, 3, (5,)))
    assert f.traces == 1
    f(mg.randn(6, 4), mg.randint(0, 3, (6,)))  # shape
    assert f.traces == 2
    f(mg.randn(5, 4, dtype=mg.float64), y)  # dtype (promoted by the layer)
    assert f.traces == 3
    f(x, y, 2.0)  # a non-tensor argument's value
    assert f.traces == 4
    f(x, y, 2.0)
    assert f.traces == 4
    model[0].weight = nn.Parameter(mg.zeros(8, 4))  # a parameter replaced
    f(x, y)
    assert f.traces == 5
    assert model[0].weight.grad is not None  # the new parameter is the one trained
    model[3].bias.requires_grad_(False)  # requires_grad
    f(x, y)
    assert f.traces == 6 and model[3].bias.grad is None


def test_training_mode_and_grad_mode_are_guards():
    model, _, _ = _tiny()

    @mg.compile
    def forward(x):
        return model(x)

    x = mg.randn(5, 4)
    with mg.no_grad():
        model.train()
        forward(x)
        model.eval()
        got = forward(x)
        want = model(x)
    assert forward.traces == 2
    np.testing.assert_array_equal(got.data, want.data)  # eval: no dropout
    model.train()
    with mg.no_grad():
        forward(x)
    assert forward.traces == 2  # back to the first program, checked and reused
    # grad on: a tensor with a graph would be returned, so this runs eagerly (and says so)
    with pytest.warns(mg.CompileWarning, match="requires grad"):
        forward(x)


def test_the_cache_is_bounded():
    _, _, step = _tiny()
    f = mg.compile(step, max_programs=2)
    for n in (2, 3, 4, 2):
        f(mg.randn(n, 4), mg.randint(0, 3, (n,)))
    assert f.program_count == 2 and f.traces == 4  # 2 was dropped, then traced again
    with pytest.raises(ValueError, match="max_programs"):
        mg.compile(step, max_programs=0)
    with pytest.raises(TypeError, match="expected a function"):
        mg.compile(3)


# -- what runs eagerly ------------------------------------------------------------------------

W = mg.randn(3, requires_grad=True)


def _reason_item(x):
    loss = (x * W).sum()
    loss.item()
    return loss.detach()


def _reason_numpy(x):
    return mg.tensor(x.numpy() * 2)


def _reason_bool(x):
    return x * 2 if x.sum() > 0 else x


def _reason_inplace(x):
    y = x * W
    y.mul_(2)
    y.sum().backward()


def _reason_hook(x):
    y = x * W
    y.register_hook(lambda g: g * 2)
    y.sum().backward()


def _reason_retain(x):
    y = x * W
    y.retain_grad()
    y.sum().backward()


def _reason_create_graph(x):
    (x * W * W).sum().backward(create_graph=True)
    W.grad = None


def _reason_grad(x):
    (g,) = mg.autograd.grad((x * W).sum(), W)
    return g.detach()


_BN = nn.BatchNorm1d(3)


def _reason_batch_norm(x):
    return _BN(mg.stack([x, x * 2])).detach()


def _reason_nll(x):
    return F.nll_loss(F.log_softmax(x.reshape(1, 3), dim=1), mg.tensor([1])).detach()


_HOOKED = nn.Linear(3, 3)
_HOOKED.register_forward_hook(lambda m, args, out: None)


def _reason_module_hook(x):
    return _HOOKED(x).detach()


def _reason_graph_out(x):
    return x * W


REASONS = {
    _reason_item: ".item()",
    _reason_numpy: ".numpy()",
    _reason_bool: "bool(tensor)",
    _reason_inplace: "in-place",
    _reason_hook: "register_hook",
    _reason_retain: "retain_grad",
    _reason_create_graph: "create_graph",
    _reason_grad: "autograd.grad",
    _reason_batch_norm: "batch_norm",
    _reason_nll: "nll_loss",
    _reason_module_hook: "hooks registered on a Linear",
    _reason_graph_out: "requires grad and runs no backward",
}


@pytest.mark.parametrize("fn", list(REASONS), ids=lambda f: f.__name__[8:])
def test_what_cannot_be_captured_runs_eagerly_and_says_why_once(fn):
    compiled = mg.compile(fn)
    x = mg.tensor([0.5, -1.0, 2.0])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        results = [compiled(x) for _ in range(3)]
    said = [w for w in seen if issubclass(w.category, mg.CompileWarning)]
    assert len(said) == 1, [str(w.message) for w in said]
    message = str(said[0].message)
    assert REASONS[fn] in message and "\n" not in message
    assert fn.__name__ in message
    expected = fn(x)
    for got in results:
        if expected is None:
            assert got is None
        else:
            np.testing.assert_allclose(got.data, expected.data)


# -- explain -------------------------------------------------------------------------------------


def test_explain_shows_ops_shapes_fusion_backward_and_source():
    model, _, step = _tiny()
    f = mg.compile(step, fuse=True)
    assert "not traced yet" in f.explain()
    f(mg.randn(5, 4), mg.randint(0, 3, (5,)))
    text = f.explain()
    assert "Linear(x0 (5, 4), 0.weight (8, 4), 0.bias (8,))" in text
    assert "fused0<Relu, Mul>" in text  # the ReLU and dropout's mask, one kernel
    assert "Linear.backward" in text and "0.weight.grad +=" in text
    assert "call SGD.zero_grad" in text and "SGD.step: one update per parameter" in text
    assert "fused0: Relu -> Mul on (full (5, 8), full (5, 8))" in text
    full = f.explain(source=True)
    assert "def program(" in full and "@strict_kernel" in full and "def backward(rows, cols" in full
    assert repr(text) == str(text)  # at the prompt it shows as text


# -- wired into the Trainer and Keras ----------------------------------------------------------


def test_trainer_with_torch_compile_matches_eager_and_replays(tmp_path):
    from minigrad.data import TensorDataset
    from minigrad.train import Trainer, TrainingArguments

    rng = np.random.default_rng(0)
    data = TensorDataset(rng.standard_normal((70, 8), dtype=np.float32), rng.integers(0, 2, 70))

    def train(compiled, accumulation):
        mg.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
        args = TrainingArguments(
            str(tmp_path / f"{compiled}-{accumulation}"),
            num_train_epochs=2,
            disable_tqdm=True,
            logging_steps=1,
            torch_compile=compiled,
            gradient_accumulation_steps=accumulation,
            max_grad_norm=0.5,
            learning_rate=1e-2,
            save_strategy="no",
        )
        trainer = Trainer(mlp, args, train_dataset=data)
        trainer.train()
        losses = [h["loss"] for h in trainer.log_history if "loss" in h]
        return losses, [p.data.copy() for p in mlp.parameters()], trainer

    for accumulation in (1, 2):
        want, want_params, _ = train(False, accumulation)
        with warnings.catch_warnings():
            warnings.simplefilter("error", mg.CompileWarning)
            got, params, trainer = train(True, accumulation)
        assert got == want  # ReLU and dropout's multiply fuse exactly
        for a, b in zip(params, want_params):
            np.testing.assert_array_equal(a, b)
        assert trainer.compiled_step.traces == 2  # batches of 8, and the last one of 6
    with pytest.raises(TypeError, match="torch_compile must be True or False"):
        TrainingArguments(str(tmp_path), torch_compile="yes")


def test_keras_fit_with_jit_compile_matches_eager_and_replays():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)

    def fit(jit):
        mg.manual_seed(0)
        model = mg.keras.Sequential(
            [
                mg.keras.layers.Dense(10, activation="relu", input_shape=(8,)),
                mg.keras.layers.Dropout(0.2),
                mg.keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=jit)
        history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_split=0.2)
        return history.history, model

    want, _ = fit(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        got, model = fit(True)
    # the sigmoid is fused: float32's approximation (FUSED_LOSS_RTOL)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=FUSED_LOSS_RTOL)
    np.testing.assert_allclose(got["val_loss"], want["val_loss"], rtol=FUSED_LOSS_RTOL)
    assert model._train_step.traces == 2  # batches of 32, and the last one of 8
    with pytest.raises(TypeError, match="jit_compile must be True or False"):
        model.compile(optimizer="adam", loss="mse", jit_compile=1)


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
