"""A differential fuzzer: random programs run by minigrad and by PyTorch must agree.

Hypothesis draws small programs from the op registry (``minigrad.ops.spec.REGISTRY``):

- expression graphs with broadcasting, views and non-contiguous inputs;
- in-place ops through views of a non-leaf tensor (PyTorch's view + in-place rules);
- kernel calls (convolution, pooling, attention, losses, norms) on random geometry;
- second order: a Hessian-vector product of an expression graph.

A program is Python source that runs unchanged on either library (minigrad keeps PyTorch's
names): ``lib`` is ``minigrad`` or ``torch`` and ``F`` its ``nn.functional``. Each program
runs in float64 (minigrad against PyTorch, tight tolerances) and in float32 (minigrad's
error against the float64 result may be at most a few times PyTorch's own float32 error).
A failure shrinks to a minimal program, printed as runnable code.

Small in CI (the hypothesis profile), long with ``-m slow``:

    MINIGRAD_HYPOTHESIS_PROFILE=thorough python -m pytest tests/minigrad/test_fuzz_torch.py -m slow
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad
from minigrad.ops.spec import REGISTRY

torch = pytest.importorskip(
    "torch", reason="the differential fuzzer needs PyTorch as its oracle: pip install -e '.[torch]'"
)

LIBS = {"minigrad": minigrad, "torch": torch}

# -- the op table: source templates, each naming the registered op it exercises ---------------
# {a} and {b} are operands; shapes: "same" keeps a's shape, "bcast" broadcasts a with b,
# "keep_last" reduces the last dim to 1, "keep_first" the first.

UNARY = [
    ("exp", "({a} * 0.5).exp()"),
    ("log", "({a}.abs() + 0.5).log()"),
    ("sqrt", "({a} * {a} + 0.25).sqrt()"),
    ("tanh", "{a}.tanh()"),
    ("sigmoid", "{a}.sigmoid()"),
    ("logsigmoid", "F.logsigmoid({a})"),
    ("silu", "F.silu({a})"),
    ("softplus", "F.softplus({a})"),
    ("gelu", "F.gelu({a})"),
    ("gelu", "F.gelu({a}, approximate='tanh')"),
    ("elu", "F.elu({a})"),
    ("sin", "{a}.sin()"),
    ("cos", "{a}.cos()"),
    ("neg", "-{a}"),
    ("pow_scalar_exponent", "{a} ** 3"),
    ("softmax", "{a}.softmax(-1)"),
    ("log_softmax", "{a}.log_softmax(-1)"),
    ("clone", "{a}.clone()"),
]
REDUCE = [  # keepdim, so shapes stay broadcastable
    ("sum", "{a}.sum(-1, keepdim=True)", "keep_last"),
    ("mean", "{a}.mean(0, keepdim=True)", "keep_first"),
    ("logsumexp", "{a}.logsumexp(-1, keepdim=True)", "keep_last"),
    ("amax", "{a}.amax(-1, keepdim=True)", "keep_last"),
    ("var", "{a}.var(0, keepdim=True)", "keep_first"),
]
BINARY = [
    ("add", "{a} + {b}"),
    ("sub", "{a} - {b}"),
    ("mul", "{a} * {b}"),
    ("div", "{a} / ({b} * {b} + 1.0)"),
    ("pow", "({a}.abs() + 0.5) ** ({b} * 0.5)"),
    ("maximum", "{a}.maximum({b})"),
    ("where", "lib.where({a} > {b}, {a}, {b} * 2.0)"),
]
VIEWS = [  # applied to a 2-D operand; shape function of (m, n)
    ("transpose", "{a}.transpose(0, 1)", lambda m, n: (n, m)),
    ("getitem", "{a}[1:]", lambda m, n: (m - 1, n)),
    ("getitem", "{a}[:, ::2]", lambda m, n: (m, (n + 1) // 2)),
    ("reshape", "{a}.reshape(-1, 1)", lambda m, n: (m * n, 1)),
]


def _check_table() -> None:
    names = {t[0] for t in UNARY + REDUCE + BINARY + VIEWS}
    missing = sorted(n for n in names if n not in REGISTRY)
    assert not missing, f"fuzzer ops not in the op registry: {missing}"


# -- programs --------------------------------------------------------------------------------

HEADER = (
    "import numpy as np\n"
    "import {lib} as lib  # the same program runs on minigrad and on torch\n"
    "F = lib.nn.functional\n"
)


class Program:
    """Source lines plus the names of the leaves whose gradients are compared."""

    def __init__(self, seed: int, dtype: str) -> None:
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.lines: list[str] = []
        self.leaves: list[str] = []
        self.shapes: list[tuple] = []

    def leaf(self, shape: tuple, low: float = -2.0, high: float = 2.0) -> str:
        name = f"x{len(self.leaves)}"
        values = np.round(self.rng.uniform(low, high, shape), 3).tolist()
        self.lines.append(
            f"{name} = lib.tensor({values!r}, dtype=lib.{self.dtype}, requires_grad=True)"
        )
        self.leaves.append(name)
        self.shapes.append(tuple(shape))
        return name

    def constant(self, shape: tuple) -> str:
        values = np.round(self.rng.uniform(-1.0, 1.0, shape), 3).tolist()
        return f"lib.tensor({values!r}, dtype=lib.{self.dtype})"

    def source(self, lib: str) -> str:
        return HEADER.format(lib=lib) + "\n".join(self.lines) + "\nout.backward()\n"


def run(program: Program, lib: str) -> dict:
    """Run the program on ``lib``: its namespace, or the error it raised (an in-place write
    that makes a saved value stale, a geometry that leaves no output: both must refuse)."""
    namespace: dict = {}
    try:
        exec(compile(program.source(lib), f"<{lib} program>", "exec"), namespace)
    except Exception as e:  # noqa: BLE001 - compared with the other library's outcome
        return {"error": e}
    return namespace


def as_array(value) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().numpy().astype(np.float64)
    return np.asarray(value.data, dtype=np.float64)


def results(namespace: dict, program: Program) -> dict:
    out = {"out": as_array(namespace["out"])}
    for name in program.leaves:
        out[name] = as_array(namespace[name].grad)
    for name in namespace.get("retained", ()):  # non-leaves whose .grad is compared too
        out[name + ".grad"] = as_array(namespace[name].grad)
    return out


def compare(make_program) -> None:
    """Run in float64 on both libraries, then in float32 against the float64 reference."""
    p64 = make_program("float64")
    ours, theirs = run(p64, "minigrad"), run(p64, "torch")
    report = "\n\nminimal failing program (run it with lib = minigrad, then torch):\n\n"
    report += p64.source("minigrad")
    if "error" in ours or "error" in theirs:  # both refuse (an ambiguous in-place) or neither
        assert ("error" in ours) == ("error" in theirs), (
            f"minigrad: {ours.get('error')!r}\ntorch: {theirs.get('error')!r}" + report
        )
        return
    ref = results(theirs, p64)
    got = results(ours, p64)
    for key, expected in ref.items():
        if expected is None:
            assert got[key] is None or not np.any(got[key]), f"{key}: torch has no grad" + report
            continue
        assert got[key] is not None, f"{key}: minigrad has no gradient, torch has one" + report
        assert got[key].shape == expected.shape, f"{key}: shape differs" + report
        np.testing.assert_allclose(
            got[key], expected, rtol=1e-7, atol=1e-9, err_msg=f"{key} (float64)" + report
        )
    # float32: minigrad's error against torch's float64 result within 4x torch's float32 error
    # (plus a few ulps of the value's scale, where torch happens to be exact)
    p32 = make_program("float32")
    ours32, theirs32 = run(p32, "minigrad"), run(p32, "torch")
    if "error" in ours32 or "error" in theirs32:
        assert ("error" in ours32) == ("error" in theirs32), (
            f"float32: minigrad {ours32.get('error')!r}, torch {theirs32.get('error')!r}" + report
        )
        return
    got32, torch32 = results(ours32, p32), results(theirs32, p32)
    eps = float(np.finfo(np.float32).eps)
    for key, expected in ref.items():
        if expected is None or got32[key] is None:
            continue
        scale = np.max(np.abs(expected), initial=1.0)
        ours_err = np.abs(got32[key] - expected)
        torch_err = np.abs(torch32[key] - expected)
        bound = 4 * torch_err + 64 * eps * scale
        worst = int(np.argmax(ours_err - bound))
        assert np.all(ours_err <= bound), (
            f"{key} (float32): error {ours_err.flat[worst]:.3g} at {worst}, torch's "
            f"{torch_err.flat[worst]:.3g} (value {expected.flat[worst]:.6g})" + report
        )


# -- strategies ----------------------------------------------------------------------------

SHAPES = st.tuples(st.integers(2, 4), st.integers(2, 4))


@st.composite
def expression_programs(draw, smooth_only: bool = False):
    """A random expression graph over 2-3 leaves of broadcastable shapes."""
    seed = draw(st.integers(0, 2**31 - 1))
    m, n = draw(SHAPES)
    leaf_shapes = draw(
        st.lists(st.sampled_from([(m, n), (1, n), (m, 1), (n,), ()]), min_size=1, max_size=2)
    )
    transposed = draw(st.booleans())  # a non-contiguous input: the transpose of a leaf
    unary = [u for u in UNARY if not smooth_only or REGISTRY[u[0]].second_order]
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("unary"), st.sampled_from(unary)),
                st.tuples(st.just("reduce"), st.sampled_from(REDUCE)),
                st.tuples(st.just("binary"), st.sampled_from(BINARY)),
                st.tuples(st.just("view"), st.sampled_from(VIEWS)),
            ),
            min_size=1,
            max_size=6,
        )
    )
    picks = draw(st.lists(st.integers(0, 99), min_size=2 * len(steps), max_size=2 * len(steps)))

    def make(dtype: str) -> Program:
        p = Program(seed, dtype)
        first = p.leaf((n, m)) if transposed else p.leaf((m, n))
        values = [(f"{first}.transpose(0, 1)" if transposed else first, (m, n))]
        for shape in leaf_shapes:
            values.append((p.leaf(shape), shape))
        for k, (kind, entry) in enumerate(steps):
            a_expr, a_shape = values[picks[2 * k] % len(values)]
            name = f"v{k}"
            if kind == "unary":
                expr, shape = entry[1].format(a=a_expr), a_shape
                if "softmax" in entry[1] and len(a_shape) == 0:
                    continue
            elif kind == "reduce":
                # var of one element: PyTorch gives nan with a warning, minigrad refuses
                if len(a_shape) != 2 or (entry[0] == "var" and a_shape[0] < 2):
                    continue
                expr = entry[1].format(a=a_expr)
                shape = (a_shape[0], 1) if entry[2] == "keep_last" else (1, a_shape[1])
            elif kind == "binary":
                b_expr, b_shape = values[picks[2 * k + 1] % len(values)]
                shape = np.broadcast_shapes(a_shape, b_shape) if _fits(a_shape, b_shape) else None
                if shape is None:
                    continue
                expr = entry[1].format(a=a_expr, b=b_expr)
            else:
                if len(a_shape) != 2 or (entry[1] == "{a}[1:]" and a_shape[0] < 2):
                    continue
                expr, shape = entry[1].format(a=a_expr), entry[2](*a_shape)
            p.lines.append(f"{name} = {expr}")
            values.append((name, tuple(shape)))
        last, shape = values[-1]
        p.lines.append(f"out = ({last} * {p.constant(shape)}).sum()")
        return p

    return make


def _fits(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


INPLACE_VIEWS = [
    ("{t}", lambda m, n: (m, n)),
    ("{t}[1:]", lambda m, n: (m - 1, n)),
    ("{t}[:, 1:]", lambda m, n: (m, n - 1)),
    ("{t}[0]", lambda m, n: (n,)),
    ("{t}.transpose(0, 1)", lambda m, n: (n, m)),
    ("{t}[:, ::2]", lambda m, n: (m, (n + 1) // 2)),
]
INPLACE_OPS = [
    "{v}.mul_(1.5)",
    "{v}.add_({w})",
    "{v}.mul_({w})",
    "{v}.sub_({w}.sigmoid())",
    "{v}.div_({w} * {w} + 1.0)",
    "{v}.zero_()",
    "{v}.fill_(0.5)",
    "{v}.copy_({w}.tanh())",
    "{v}.clamp_(-1.0, 1.0)",
    "{v} *= {w}",
    "{v}[...] = {w} * 2.0",
]
BETWEEN = [  # out-of-place steps between the writes; some save y, making a later write ambiguous
    None,
    "z = z + y.exp().sum()",
    "z = z + (y * y).sum()",
    "y = y * 1.0",
    "y = y.sigmoid()",
]


@st.composite
def inplace_programs(draw):
    """y = f(x0) (a non-leaf), then in-place writes through random views of y."""
    seed = draw(st.integers(0, 2**31 - 1))
    m, n = draw(SHAPES)
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(INPLACE_VIEWS),
                st.sampled_from(INPLACE_OPS),
                st.sampled_from(BETWEEN),
                st.booleans(),  # keep the view from before the previous write
            ),
            min_size=1,
            max_size=4,
        )
    )
    retain = draw(st.booleans())

    def make(dtype: str) -> Program:
        p = Program(seed, dtype)
        x0, x1 = p.leaf((m, n)), p.leaf((m, n))
        p.lines.append(f"y = {x0} * 1.0")
        p.lines.append("z = (y * 0.0).sum()")
        if retain:
            p.lines.append("y.retain_grad()")
            p.lines.append("y_kept = y  # y may be rebound below; the retained one is compared")
        old_view = None
        for k, ((view, _shape), op, between, reuse) in enumerate(steps):
            if view == "{t}[1:]" and m < 2:
                continue
            p.lines.append(f"v{k} = {view.format(t='y')}")
            w = view.format(t=x1)
            target = old_view if reuse and old_view is not None else f"v{k}"
            if target != f"v{k}":  # an old view: its grad_fn is redone from y's new graph
                w = f"{target}.detach() * 0.0 + 1.0"
            p.lines.append(op.format(v=target, w=w))
            old_view = f"v{k}"
            if between:
                p.lines.append(between)
        p.lines.append(f"out = (y * {p.constant((m, n))}).sum() + z")
        if retain:
            p.lines.append("retained = ['y_kept']")
        return p

    return make


@st.composite
def kernel_programs(draw):
    """One kernel-backed op on random geometry, then a weighted sum."""
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(["conv2d", "max_pool2d", "avg_pool2d", "attention", "losses",
                                 "norms", "matmul"]))
    b, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(3, 7)), draw(st.integers(3, 7))
    k = draw(st.integers(1, 3))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, k // 2))
    ceil_mode = draw(st.booleans())
    groups = draw(st.sampled_from([1, c]))
    oc = groups * draw(st.integers(1, 2))
    t, s, d, dv = (draw(st.integers(1, 5)) for _ in range(4))
    mask = draw(st.sampled_from(["none", "bool", "float", "learned", "causal"]))
    batch_a = draw(st.sampled_from([(), (2,), (2, 1)]))

    def make(dtype: str) -> Program:
        p = Program(seed, dtype)
        if kind == "conv2d":
            x, wt, bias = p.leaf((b, c, h, w)), p.leaf((oc, c // groups, k, k)), p.leaf((oc,))
            expr = (f"F.conv2d({x}, {wt}, {bias}, stride={stride}, padding={padding}, "
                    f"dilation={dilation}, groups={groups})")
        elif kind in ("max_pool2d", "avg_pool2d"):
            x = p.leaf((b, c, h, w))
            extra = f", dilation={dilation}" if kind == "max_pool2d" else ""
            expr = (f"F.{kind}({x}, {k}, stride={stride}, padding={padding}{extra}, "
                    f"ceil_mode={ceil_mode})")
        elif kind == "attention":
            q, kk, v = p.leaf((b, 2, t, d)), p.leaf((b, 2, s, d)), p.leaf((b, 2, s, dv))
            arg = ""
            if mask == "bool":
                keep = p.rng.random((t, s)) < 0.7
                keep[:, 0] = True  # every query sees at least one key
                arg = f", attn_mask=lib.tensor({keep.tolist()!r})"
            elif mask == "float":
                arg = f", attn_mask={p.constant((t, s))}"
            elif mask == "learned":
                arg = f", attn_mask={p.leaf((t, s))}"
            elif mask == "causal" and t <= s:
                arg = ", is_causal=True"
            expr = f"F.scaled_dot_product_attention({q}, {kk}, {v}{arg})"
        elif kind == "losses":
            logits = p.leaf((b * 3, c + 1), -4.0, 4.0)
            target = p.rng.integers(0, c + 1, b * 3).tolist()
            expr = (f"F.cross_entropy({logits}, lib.tensor({target!r}), label_smoothing=0.1)"
                    f" + F.binary_cross_entropy_with_logits({logits}, {logits}.detach().sigmoid())")
        elif kind == "norms":
            x, g, beta = p.leaf((b + 1, c, h)), p.leaf((h,)), p.leaf((h,))
            expr = (f"F.layer_norm({x}, ({h},), {g}, {beta}) "
                    f"+ F.batch_norm({x}, None, None, training=True)")
        else:
            a, m2 = p.leaf(batch_a + (t, d)), p.leaf((d, s))
            expr = f"{a} @ {m2}"
        p.lines.append(f"y = {expr}")
        p.lines.append(f"out = (y * {p.constant(())}).sum() + (y * y).mean()")
        return p

    return make


@st.composite
def second_order_programs(draw):
    """A Hessian-vector product of a smooth expression graph."""
    make_expr = draw(expression_programs(smooth_only=True))

    def make(dtype: str) -> Program:
        p = make_expr(dtype)
        body = p.lines[:-1]
        last = p.lines[-1]
        leaves = ", ".join(p.leaves)
        body.append(last.replace("out = ", "f = "))
        body.append(f"gs = lib.autograd.grad(f, [{leaves}], create_graph=True)")
        vs = " + ".join(f"(g{i} * {p.constant(shape)}).sum()" for i, shape in enumerate(p.shapes))
        body.append(f"g{', g'.join(str(i) for i in range(len(p.leaves)))}, = gs")
        body.append(f"out = {vs} + f")
        p.lines = body
        return p

    return make


# -- the tests -----------------------------------------------------------------------------


def test_fuzzer_ops_are_registered_ops():
    _check_table()


@given(expression_programs())
def test_random_expression_graphs_match_pytorch(make):
    compare(make)


@given(inplace_programs())
def test_random_in_place_and_view_programs_match_pytorch(make):
    compare(make)


@given(kernel_programs())
def test_random_kernel_calls_match_pytorch(make):
    compare(make)


@given(second_order_programs())
def test_random_second_order_programs_match_pytorch(make):
    compare(make)


@pytest.mark.slow
@settings(max_examples=10000)
@given(st.one_of(expression_programs(), inplace_programs(), kernel_programs(),
                 second_order_programs()))
def test_long_fuzz_run(make):
    compare(make)
