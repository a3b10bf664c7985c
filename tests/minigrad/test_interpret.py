"""Attributions: integrated gradients' completeness, Captum as the oracle, Grad-CAM."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad import interpret


def _mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def _x():
    return np.random.default_rng(1).normal(size=(2, 5))


def test_saliency_and_input_x_gradient_are_the_input_gradient():
    model = _mlp()
    x = _x()
    w1, b1 = model[0].weight.data, model[0].bias.data
    w2 = model[2].weight.data
    h = np.tanh(x @ w1.T + b1)
    grad = ((1 - h**2) * w2[1]) @ w1  # d score_1 / dx by hand
    np.testing.assert_allclose(interpret.saliency(model, x, 1), np.abs(grad), rtol=1e-10)
    np.testing.assert_allclose(interpret.input_x_gradient(model, x, 1), x * grad, rtol=1e-10)


def test_integrated_gradients_completeness():
    model = _mlp()
    x = _x()
    attr = interpret.integrated_gradients(model, x, target=[0, 2], steps=64)
    total, gap = interpret.completeness(model, x, attr, target=[0, 2])
    # the midpoint rule's error is O(1/steps^2); stated: within 1e-3 of f(x) - f(0)
    assert abs(total - gap) < 1e-3 * max(1.0, abs(gap))
    few = interpret.integrated_gradients(model, x, target=[0, 2], steps=1)
    assert abs(np.sum(few) - gap) > abs(total - gap)  # more steps, closer


def test_integrated_gradients_match_captum():
    torch = pytest.importorskip("torch", reason="Captum runs on PyTorch (extra: torch)")
    captum = pytest.importorskip("captum.attr", reason="Captum is the oracle (pip install captum)")
    model = _mlp()
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()
    tmodel.load_state_dict({k: torch.tensor(v.data) for k, v in model.state_dict().items()})
    x = _x()
    ours = interpret.integrated_gradients(model, x, target=2, steps=50)
    ig = captum.IntegratedGradients(tmodel)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # Captum makes its path points (alphas) in it
    try:
        theirs = ig.attribute(torch.tensor(x), target=2, n_steps=50, method="riemann_middle")
    finally:
        torch.set_default_dtype(previous)
    # Captum multiplies by its step size 1/50 cast to float32 (integrated_gradients.py,
    # ``torch.tensor(step_sizes).float()``): undo exactly that rounding, then compare in float64
    rounding = float(np.float32(1 / 50)) * 50
    np.testing.assert_allclose(ours, theirs.detach().numpy() / rounding, rtol=1e-10, atol=1e-14)
    sal = captum.Saliency(tmodel).attribute(torch.tensor(x, requires_grad=True), target=2)
    np.testing.assert_allclose(interpret.saliency(model, x, 2), sal.numpy(), rtol=1e-10)


def test_smoothgrad_averages_noisy_gradients():
    model = _mlp()
    x = _x()
    no_noise = interpret.smoothgrad(model, x, 0, samples=3, noise=0.0)
    np.testing.assert_allclose(no_noise, interpret.saliency(model, x, 0, abs=False), rtol=1e-10)
    noisy = interpret.smoothgrad(model, x, 0, samples=8, noise=0.2)
    assert noisy.shape == x.shape and not np.allclose(noisy, no_noise)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.conv(x).relu()
        return self.fc(h.mean(dim=(2, 3)))


def test_grad_cam_by_hand():
    mg.manual_seed(0)
    model = _ConvNet().double()
    x = np.random.default_rng(2).normal(size=(2, 1, 6, 6))
    cam = interpret.grad_cam(model, x, "conv", target=1)
    # by hand: activations A = conv(x); d score / dA = relu'(A) * w_fc[1, c] / 36
    a = model.conv(mg.tensor(x)).data
    g = (a > 0) * model.fc.weight.data[1][None, :, None, None] / 36
    expected = np.maximum((g.mean(axis=(2, 3), keepdims=True) * a).sum(axis=1), 0)
    expected /= expected.reshape(2, -1).max(axis=1).reshape(-1, 1, 1)
    np.testing.assert_allclose(cam, expected, rtol=1e-10)
    assert not model.conv.__dict__["_module_hooks"]["forward"]  # the hook was removed


def test_bad_layer_and_target_are_named():
    model = _ConvNet()
    with pytest.raises(KeyError, match="no layer 'conv9'; layers: conv, fc"):
        interpret.grad_cam(model, np.zeros((1, 1, 4, 4), np.float32), "conv9", 0)
    with pytest.raises(ValueError, match="target 5 is out of range for 2 classes"):
        interpret.saliency(model, np.zeros((1, 1, 4, 4), np.float32), 5)
    with pytest.raises(ValueError, match="pass target="):
        interpret.saliency(model, np.zeros((1, 1, 4, 4), np.float32))
