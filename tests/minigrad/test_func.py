"""minigrad.func against torch.func (and PyTorch's double backward) on the same functions and
weights, in float64: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap, and
Hessian-vector products by forward mode over the backward pass through a convolutional
network, a transformer block and an LSTM."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.func as mf

torch = pytest.importorskip("torch", reason="torch.func is the oracle (pip install -e '.[torch]')")
tf = torch.func

rng = np.random.default_rng(0)


def normal(*shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def close(mine, theirs, rtol=1e-10):
    theirs = theirs.detach().numpy()
    np.testing.assert_allclose(mine.numpy(), theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())


def both(fn_of_lib, *arrays):
    """(minigrad tensors, torch tensors) of the arrays and the function for each library."""
    return (
        [mg.tensor(a) for a in arrays], fn_of_lib(mg),
        [torch.tensor(a) for a in arrays], fn_of_lib(torch),
    )


def mlp(lib):
    F = lib.nn.functional

    def f(x, w1, w2):
        return (F.gelu(F.linear(x, w1)) @ w2).tanh().pow(2).sum()

    return f


X, W1, W2 = normal(4, 3), normal(5, 3), normal(5, 2)


def test_grad_and_value_of_several_arguments_with_aux():
    ms, fm, ts, ft = both(mlp, X, W1, W2)

    def with_aux(f):
        return lambda *a: (f(*a), a[0].sum())

    (gm, (vm, am)) = mf.grad_and_value(with_aux(fm), argnums=(1, 2), has_aux=True)(*ms)
    (gt, (vt, at)) = tf.grad_and_value(with_aux(ft), argnums=(1, 2), has_aux=True)(*ts)
    close(vm, vt)
    close(am, at)
    for a, b in zip(gm, gt):
        close(a, b)
    assert not gm[0].requires_grad


def test_vjp_and_jvp():
    ms, fm, ts, ft = both(lambda lib: lambda x, w: lib.sin(x @ w), normal(3, 4), normal(4, 2))
    out_m, pull_m = mf.vjp(fm, *ms)
    out_t, pull_t = tf.vjp(ft, *ts)
    cot = normal(3, 2)
    for a, b in zip(pull_m(mg.tensor(cot)), pull_t(torch.tensor(cot))):
        close(a, b)
    tangents = (normal(3, 4), normal(4, 2))
    _, jm = mf.jvp(fm, ms, [mg.tensor(t) for t in tangents])
    _, jt = tf.jvp(ft, tuple(ts), tuple(torch.tensor(t) for t in tangents))
    close(jm, jt)


def test_jacobians_both_ways():
    ms, fm, ts, ft = both(
        lambda lib: lambda x: lib.nn.functional.softmax(x @ x.transpose(0, 1), -1), normal(3, 2)
    )
    close(mf.jacrev(fm)(*ms), tf.jacrev(ft)(*ts))
    close(mf.jacfwd(fm)(*ms), tf.jacfwd(ft)(*ts))


def test_hessian_of_an_mlp_in_its_weights():
    ms, fm, ts, ft = both(mlp, X, W1, W2)
    close(mf.hessian(fm, argnums=1)(*ms), tf.hessian(ft, argnums=1)(*ts))


def test_grad_of_grad_and_vmap_of_grad():
    ms, fm, ts, ft = both(lambda lib: lambda r: (r.tanh() ** 3).sum(), normal(4, 3))
    close(mf.grad(lambda x: mf.grad(fm)(x).pow(2).sum())(*ms),
          tf.grad(lambda x: tf.grad(ft)(x).pow(2).sum())(*ts))
    close(mf.vmap(mf.grad(fm))(*ms), tf.vmap(tf.grad(ft))(*ts))
    close(mf.vmap(lambda r, c: (r * c).sum(), in_dims=(1, None))(ms[0], mg.tensor(2.0)),
          tf.vmap(lambda r, c: (r * c).sum(), in_dims=(1, None))(ts[0], torch.tensor(2.0)))


def _hvp_oracle(ft, ts, v):
    """PyTorch's double backward (its forward mode does not cover every op used here)."""
    x = ts[0].clone().requires_grad_()
    (g,) = torch.autograd.grad(ft(x, *ts[1:]), x, create_graph=True)
    (hv,) = torch.autograd.grad((g * torch.tensor(v)).sum(), x)
    return hv


def _check_hvp(fn_of_lib, arrays):
    ms, fm, ts, ft = both(fn_of_lib, *arrays)
    v = normal(*arrays[0].shape)
    _, hv = mf.jvp(lambda x: mf.grad(lambda y: fm(y, *ms[1:]))(x), [ms[0]], [mg.tensor(v)])
    close(hv, _hvp_oracle(ft, ts, v), rtol=1e-9)


def test_hvp_through_a_convolutional_network():
    def net(lib):
        F = lib.nn.functional

        def f(x, w1, w2, w3):
            h = F.max_pool2d(F.relu(F.conv2d(x, w1, padding=1)), 2)
            h = F.avg_pool2d(lib.tanh(F.conv2d(h, w2)), 2)
            return F.cross_entropy(F.linear(h.reshape(2, -1), w3), lib.tensor(np.array([1, 3])))

        return f

    _check_hvp(net, [normal(2, 1, 8, 8), normal(4, 1, 3, 3), normal(6, 4, 3, 3),
                     normal(5, 6, scale=0.5)])


def test_hvp_through_a_transformer_block():
    def block(lib):
        F = lib.nn.functional

        def f(x, wq, wk, wv, g):
            h = F.layer_norm(x, (4,), g)
            q, k, v = (h @ w for w in (wq, wk, wv))
            if lib is mg:
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:  # PyTorch's CPU attention has no double backward: the plain formula
                s = (q @ k.transpose(-1, -2) / 2.0).masked_fill(
                    ~torch.ones(5, 5, dtype=torch.bool).tril(), -np.inf
                )
                a = torch.softmax(s, -1) @ v
            return (F.gelu(a + x) ** 2).sum()

        return f

    _check_hvp(block, [normal(2, 5, 4), normal(4, 4), normal(4, 4), normal(4, 4), normal(4)])


def test_hvp_through_an_lstm():
    layer_t = torch.nn.LSTM(3, 4).double()
    layer_m = mg.nn.LSTM(3, 4).double()
    state = {k: v.detach().numpy() for k, v in layer_t.state_dict().items()}
    layer_m.load_state_dict({k: mg.tensor(v) for k, v in state.items()})

    def net(lib):
        layer = layer_m if lib is mg else layer_t
        return lambda x: (layer(x)[0] ** 2).sum()

    _check_hvp(net, [normal(6, 2, 3)])


def test_clear_errors():
    with pytest.raises(RuntimeError, match="must return a scalar tensor, got \\(2,\\)"):
        mf.grad(lambda x: x * 2)(mg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="primal 0 has shape \\(2,\\), its tangent \\(3,\\)"):
        mf.jvp(lambda x: x, [mg.tensor([1.0, 2.0])], [mg.tensor([1.0, 2.0, 3.0])])
    with pytest.raises(NotImplementedError, match="nested forward mode"):
        mf.jacfwd(mf.jacfwd(lambda x: x.sin()))(mg.tensor([1.0]))
    with pytest.raises(ValueError, match="share one batch size, got \\[2, 3\\]"):
        mf.vmap(lambda a, b: a + b)(mg.zeros(2), mg.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        mf.grad(lambda x: x.sum())(mg.tensor([1, 2]))


def test_results_at_the_outermost_level_carry_no_graph():
    x = mg.tensor(normal(3))
    for result in (
        mf.grad(lambda t: (t**3).sum())(x),
        mf.jacrev(lambda t: t.sin())(x),
        mf.jacfwd(lambda t: t.sin())(x),
        mf.hessian(lambda t: (t**3).sum())(x),
        mf.jvp(lambda t: t.sin(), [x], [x])[1],
        mf.vjp(lambda t: t.sin(), x)[1](x)[0],
    ):
        assert not result.requires_grad and result.grad_fn is None


def test_per_sample_gradients_of_an_mlp_run_batched(capfd):
    """vmap(grad) with the weights shared and the samples batched: the ops used here all
    have batching rules, so the batch runs in one pass (no note on stderr)."""

    def loss(lib):
        F = lib.nn.functional

        def f(w1, w2, x, y):
            out = F.linear(F.gelu(F.linear(x, w1)), w2)
            return ((out - y) ** 2).mean() + F.log_softmax(out, -1).sum()

        return f

    arrays = [normal(5, 3), normal(2, 5), normal(6, 3), normal(6, 2)]
    ms, fm, ts, ft = both(loss, *arrays)
    mine = mf.vmap(mf.grad(fm, argnums=(0, 1)), in_dims=(None, None, 0, 0))(*ms)
    theirs = tf.vmap(tf.grad(ft, argnums=(0, 1)), in_dims=(None, None, 0, 0))(*ts)
    for a, b in zip(mine, theirs):
        assert a.shape == tuple(b.shape)
        close(a, b)
    assert "once per sample" not in capfd.readouterr().err


def test_vmap_falls_back_to_a_loop_when_the_function_reads_arrays(capfd):
    def reads_the_array(x):
        scale = float(np.abs(x.numpy()).max())  # no rule can batch this
        return x / scale

    x = normal(3, 4)
    out = mf.vmap(reads_the_array)(mg.tensor(x))
    np.testing.assert_allclose(out.numpy(), x / np.abs(x).max(1, keepdims=True))
    assert "reads_the_array runs once per sample" in capfd.readouterr().err


def test_nested_vmap_and_dims():
    ms, fm, ts, ft = both(
        lambda lib: lambda a, b: (a * b).sum(-1).tanh() + a.sum(), normal(3, 4, 5), normal(5)
    )
    mine = mf.vmap(mf.vmap(fm, in_dims=(0, None)), in_dims=(1, None), out_dims=1)(*ms)
    theirs = tf.vmap(tf.vmap(ft, in_dims=(0, None)), in_dims=(1, None), out_dims=1)(*ts)
    close(mine, theirs)


def test_a_users_op_gives_its_own_jvp_rule_or_gets_one_from_its_backward():
    class Cube(mg.autograd.Function):
        calls = 0

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    class CubeWithRule(Cube):
        @staticmethod
        def jvp(primals, tangents):
            CubeWithRule.calls += 1
            return 3 * primals[0] * primals[0] * tangents[0]

    x, v = mg.tensor(normal(4)), mg.tensor(normal(4))
    for op in (Cube, CubeWithRule):
        _, tangent = mf.jvp(op.apply, [x], [v])
        np.testing.assert_allclose(tangent.numpy(), 3 * x.numpy() ** 2 * v.numpy())
    assert CubeWithRule.calls == 1


def test_vmap_compares_a_sample_with_a_wider_unbatched_tensor():
    x, y = normal(4, 3), normal(2, 3)
    out = mf.vmap(lambda r: mg.where(r > mg.tensor(y), r, mg.tensor(y)))(mg.tensor(x))
    np.testing.assert_array_equal(out.numpy(), np.stack([np.where(r > y, r, y) for r in x]))
