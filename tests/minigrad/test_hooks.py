"""Tensor and module hooks, compared with PyTorch where it is installed."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn


def _graph(lib, x0, w0):
    x = lib.tensor(x0, requires_grad=True)
    w = lib.tensor(w0, requires_grad=True)
    h = x * w
    y = (h.tanh() * h).sum()
    return x, w, h, y


def _run(lib, replace: bool, remove: bool):
    x0 = np.array([0.5, -1.0, 2.0])
    w0 = np.array([1.5, 0.25, -0.75])
    x, w, h, y = _graph(lib, x0, w0)
    seen = []
    handle = h.register_hook(
        lambda g: seen.append(np.array(g.detach().numpy())) or (g * 3 if replace else None)
    )
    leaf_seen = []
    x.register_hook(lambda g: leaf_seen.append(np.array(g.detach().numpy())))
    if remove:
        handle.remove()
    y.backward()
    return seen, leaf_seen, x.grad.detach().numpy(), w.grad.detach().numpy()


@pytest.mark.parametrize("replace,remove", [(False, False), (True, False), (True, True)])
def test_tensor_hook_matches_torch(replace, remove):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for hooks (extra: torch)")
    ours = _run(mg, replace, remove)
    theirs = _run(torch, replace, remove)
    assert len(ours[0]) == len(theirs[0]) == (0 if remove else 1)
    for a, b in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ours[1][0], theirs[1][0], rtol=1e-12)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12)


def test_hook_replacing_gradient_scales_the_leaf_gradient():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    y = x * x
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 10 * 2 * np.array([1.0, 2.0]))


def test_hook_sees_sum_of_two_paths_once():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    h = x * 2
    calls = []
    h.register_hook(lambda g: calls.append(g.numpy().copy()))
    (h * h + h).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], 2 * np.array([2.0, 4.0]) + 1)


def test_hook_with_wrong_shape_names_the_shapes():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: mg.ones(3))
    with pytest.raises(RuntimeError, match=r"shape \(3,\) for a tensor of shape \(2,\)"):
        y.sum().backward()


def test_register_hook_on_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: g)


def test_post_accumulate_grad_hook_sees_final_grad_and_can_be_removed():
    w = mg.tensor([1.0, -2.0], dtype=mg.float64, requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    (w * w).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [2.0, -4.0])
    np.testing.assert_allclose(seen[1], [5.0, -1.0])  # accumulated before the hook runs
    handle.remove()
    (w * 3).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)


def test_post_accumulate_grad_hook_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for hooks (extra: torch)")
    out = []
    for lib in (mg, torch):
        w = lib.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
        seen: list = []
        w.register_post_accumulate_grad_hook(
            lambda p, seen=seen: seen.append(p.grad.detach().numpy().copy())
        )
        (w * w).sum().backward()
        (w.sin()).sum().backward()
        out.append(seen)
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _module_hooks(lib, layer, x0, replace):
    log = []
    x = lib.tensor(x0, requires_grad=True)
    layer.register_forward_pre_hook(lambda m, args: log.append(("pre", args[0].shape)))
    layer.register_forward_hook(
        lambda m, args, out: log.append(("fwd", np.array(out.detach().numpy())))
    )

    def bwd(m, gin, gout):
        log.append(("bwd", np.array(gin[0].detach().numpy()), np.array(gout[0].detach().numpy())))
        if replace:
            return (gin[0] * 2,)
        return None

    handle = layer.register_full_backward_hook(bwd)
    (layer(x) ** 2).sum().backward()
    handle.remove()
    return log, x.grad.detach().numpy()


@pytest.mark.parametrize("kind", ["linear", "conv", "lstm", "attention"])
@pytest.mark.parametrize("replace", [False, True])
def test_module_hooks_match_torch_on_fused_layers(kind, replace):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for hooks (extra: torch)")
    rng = np.random.default_rng(0)
    if kind == "linear":
        ours, theirs = nn.Linear(4, 3), torch.nn.Linear(4, 3)
        x0 = rng.normal(size=(2, 4))
    elif kind == "conv":
        ours, theirs = nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(2, 3, 3, padding=1)
        x0 = rng.normal(size=(2, 2, 5, 5))
    elif kind == "lstm":
        ours, theirs = nn.LSTM(3, 4, batch_first=True), torch.nn.LSTM(3, 4, batch_first=True)
        x0 = rng.normal(size=(2, 5, 3))
    else:
        ours = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        theirs = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        x0 = rng.normal(size=(2, 5, 8))
    ours = ours.double()
    theirs = theirs.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    if kind == "lstm":  # the output is a tuple; hook a wrapper that returns the sequence

        class First(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x)[0]

        class TFirst(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x)[0]

        ours, theirs = First(ours), TFirst(theirs)
    log_ours, gx_ours = _module_hooks(mg, ours, x0, replace)
    log_theirs, gx_theirs = _module_hooks(torch, theirs, x0, replace)
    assert [e[0] for e in log_ours] == [e[0] for e in log_theirs] == ["pre", "fwd", "bwd"]
    assert tuple(log_ours[0][1]) == tuple(log_theirs[0][1])
    np.testing.assert_allclose(log_ours[1][1], log_theirs[1][1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(log_ours[2][1], log_theirs[2][1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(log_ours[2][2], log_theirs[2][2], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gx_ours, gx_theirs, rtol=1e-7, atol=1e-9)


def test_forward_hooks_replace_args_and_output_and_are_removed():
    layer = nn.Linear(2, 2)
    x = mg.ones(1, 2)
    h1 = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = layer.register_forward_hook(lambda m, args, out: out + 100)
    np.testing.assert_allclose(layer(x).data, layer.bias.data[None] + 100, rtol=1e-6)
    h1.remove()
    h2.remove()
    expected = x.data @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-6)
