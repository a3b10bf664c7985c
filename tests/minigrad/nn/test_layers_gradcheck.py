"""Every layer gradchecked in float64, with respect to its inputs and all its parameters
(minigrad.testing.gradcheck_module). Layers with randomness (dropout) reseed before each
forward, so that the function being differentiated is fixed."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.testing import gradcheck_module


def x_(*shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


class Seeded(nn.Module):
    """Runs the wrapped module after manual_seed(0): the same dropout mask every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        mg.manual_seed(0)
        return self.inner(*args, **kwargs)


class Outputs(nn.Module):
    """Flattens a layer's nested outputs ((out, (h, c)) for an LSTM) into one tuple."""

    def __init__(self, inner, **call_kwargs):
        super().__init__()
        self.inner, self.call_kwargs = inner, call_kwargs

    def forward(self, *args):
        out = self.inner(*args, **self.call_kwargs)
        flat = []

        def walk(o):
            if isinstance(o, tuple):
                for item in o:
                    walk(item)
            elif o is not None:
                flat.append(o)

        walk(out)
        return tuple(flat)


class WithState(Outputs):
    """An LSTM called with its initial state (h0, c0) as separate tensors."""

    def forward(self, x, h0, c0):
        return super().forward(x, (h0, c0))


# (id, module factory, inputs factory, gradcheck mode)
CASES = [
    ("Linear", lambda: nn.Linear(3, 2), lambda: [x_(4, 3)], "full"),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3, padding=1, stride=2), lambda: [x_(2, 2, 7)], "full"),
    (
        "Conv2d_groups_dilation",
        lambda: nn.Conv2d(4, 2, 3, padding=2, dilation=2, groups=2),
        lambda: [x_(1, 4, 5, 5)],
        "directional",
    ),
    ("MaxPool1d", lambda: nn.MaxPool1d(2), lambda: [x_(2, 3, 6)], "full"),
    ("MaxPool2d", lambda: nn.MaxPool2d(2, ceil_mode=True), lambda: [x_(1, 2, 5, 5)], "full"),
    ("AvgPool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1), lambda: [x_(2, 2, 7)], "full"),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), lambda: [x_(1, 2, 4, 6)], "full"),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda: [x_(1, 2, 5, 7)], "full"),
    ("Flatten", lambda: nn.Flatten(), lambda: [x_(2, 3, 2)], "full"),
    ("Identity", lambda: nn.Identity(), lambda: [x_(3)], "full"),
    ("Dropout_train", lambda: Seeded(nn.Dropout(0.3)), lambda: [x_(4, 5)], "full"),
    ("LayerNorm", lambda: nn.LayerNorm((3, 4)), lambda: [x_(2, 3, 4)], "full"),
    ("BatchNorm1d_train", lambda: nn.BatchNorm1d(3), lambda: [x_(5, 3)], "full"),
    ("BatchNorm2d_train", lambda: nn.BatchNorm2d(2), lambda: [x_(3, 2, 2, 2)], "full"),
    ("ReLU", lambda: nn.ReLU(), lambda: [x_(3, 4)], "full"),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), lambda: [x_(3, 4)], "full"),
    ("ELU", lambda: nn.ELU(0.7), lambda: [x_(3, 4)], "full"),
    ("GELU", lambda: nn.GELU(), lambda: [x_(3, 4)], "full"),
    ("GELU_tanh", lambda: nn.GELU("tanh"), lambda: [x_(3, 4)], "full"),
    ("SiLU", lambda: nn.SiLU(), lambda: [x_(3, 4)], "full"),
    ("Softplus", lambda: nn.Softplus(beta=2.0), lambda: [x_(3, 4)], "full"),
    ("Sigmoid", lambda: nn.Sigmoid(), lambda: [x_(3, 4)], "full"),
    ("Tanh", lambda: nn.Tanh(), lambda: [x_(3, 4)], "full"),
    ("Softmax", lambda: nn.Softmax(dim=1), lambda: [x_(3, 4)], "full"),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=0), lambda: [x_(3, 4)], "full"),
    ("RNN_tanh", lambda: Outputs(nn.RNN(3, 4)), lambda: [x_(5, 2, 3)], "full"),
    (
        "RNN_relu_2layers_bidirectional",
        lambda: Outputs(nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True)),
        lambda: [x_(4, 2, 3)],
        "directional",
    ),
    ("LSTM", lambda: Outputs(nn.LSTM(3, 4)), lambda: [x_(5, 2, 3)], "full"),
    (
        "LSTM_2layers_bidirectional_batch_first",
        lambda: Outputs(nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)),
        lambda: [x_(2, 5, 3)],
        "directional",
    ),
    (
        "LSTM_no_bias_initial_state",
        lambda: WithState(nn.LSTM(3, 4, bias=False)),
        lambda: [x_(4, 2, 3), x_(1, 2, 4, seed=1), x_(1, 2, 4, seed=2)],
        "full",
    ),
    ("GRU", lambda: Outputs(nn.GRU(3, 4)), lambda: [x_(5, 2, 3)], "full"),
    (
        "GRU_2layers_dropout_train",
        lambda: Seeded(Outputs(nn.GRU(3, 4, num_layers=2, dropout=0.5))),
        lambda: [x_(4, 2, 3)],
        "directional",
    ),
    ("GRU_unbatched_with_h0", lambda: Outputs(nn.GRU(3, 4)), lambda: [x_(5, 3), x_(1, 4)], "full"),
    ("RNNCell", lambda: nn.RNNCell(3, 4), lambda: [x_(2, 3), x_(2, 4, seed=1)], "full"),
    ("LSTMCell", lambda: Outputs(nn.LSTMCell(3, 4)), lambda: [x_(2, 3)], "full"),
    ("GRUCell", lambda: nn.GRUCell(3, 4), lambda: [x_(2, 3), x_(2, 4, seed=1)], "full"),
    (
        "MultiheadAttention_weights",
        lambda: Outputs(nn.MultiheadAttention(4, 2)),
        lambda: [x_(3, 2, 4), x_(5, 2, 4, seed=1), x_(5, 2, 4, seed=2)],
        "directional",
    ),
    (
        "MultiheadAttention_flash_padding_mask",
        lambda: Outputs(
            nn.MultiheadAttention(4, 2, batch_first=True),
            need_weights=False,
            key_padding_mask=np.array([[False, False, True], [False, True, False]]),
        ),
        lambda: [x_(2, 4, 4), x_(2, 3, 4, seed=1), x_(2, 3, 4, seed=2)],
        "directional",
    ),
    (
        "TransformerEncoderLayer_post_norm_relu",
        lambda: nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0),
        lambda: [x_(3, 2, 4)],
        "directional",
    ),
    (
        "TransformerEncoder_pre_norm_gelu_causal_dropout",
        lambda: Seeded(
            nn.TransformerEncoder(
                nn.TransformerEncoderLayer(
                    4, 2, 6, dropout=0.2, activation="gelu", norm_first=True, batch_first=True
                ),
                2,
                norm=nn.LayerNorm(4),
            )
        ),
        lambda: [x_(2, 3, 4)],
        "directional",
    ),
]


@pytest.mark.parametrize("name, make, inputs, mode", CASES, ids=[c[0] for c in CASES])
def test_layer_gradchecks_inputs_and_parameters(name, make, inputs, mode):
    mg.manual_seed(0)
    module = make().double()
    assert gradcheck_module(module, inputs(), mode=mode, n_directions=6)


def test_layer_gradcheck_catches_a_wrong_parameter_gradient():
    """gradcheck_module really checks parameters: detach one and it fails."""

    class Broken(nn.Linear):
        def forward(self, x):
            return mg.nn.functional.linear(x, self.weight, self.bias.detach() * 1.0)

    with pytest.raises(mg.testing.GradcheckError):
        gradcheck_module(Broken(3, 2).double(), [x_(4, 3)])


def test_embedding_gradchecks_its_weight():
    emb = nn.Embedding(6, 3).double()
    assert gradcheck_module(emb, [mg.tensor([[1, 4], [0, 5]])])


@pytest.mark.parametrize(
    "loss",
    [
        nn.MSELoss(),
        nn.L1Loss(reduction="sum"),
        nn.SmoothL1Loss(beta=0.5),
        nn.HuberLoss(delta=0.7),
        nn.KLDivLoss(reduction="batchmean", log_target=True),
        nn.BCEWithLogitsLoss(pos_weight=np.array([2.0, 0.5, 1.0])),
    ],
    ids=lambda m: type(m).__name__,
)
def test_loss_modules_gradcheck_both_arguments(loss):
    loss.double()
    assert gradcheck_module(loss, [x_(4, 3), x_(4, 3, seed=5)])


def test_bce_loss_gradchecks():
    p = mg.tensor(np.random.default_rng(0).uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    t = mg.tensor(np.random.default_rng(1).uniform(0, 1, (3, 4)), requires_grad=True)
    assert gradcheck_module(nn.BCELoss(weight=np.linspace(0.5, 2, 4)).double(), [p, t])


@pytest.mark.parametrize("path", ["slivers", "steps"])
def test_lstm_gradchecks_along_both_kernel_paths(path, monkeypatch):
    """The LSTM kernels run by batch slivers or by steps on BLAS, by batch size and thread
    count (kernels/rnn.py, by_slivers): both are gradchecked here, the first on a batch of two
    float64 slivers (8 columns each) with a padded last one."""
    from kernels import rnn

    monkeypatch.setattr(rnn, "by_slivers", lambda *_: path == "slivers")
    mg.manual_seed(0)
    module = Outputs(nn.LSTM(3, 4)).double()
    assert gradcheck_module(module, [x_(3, 11, 3)], mode="directional", n_directions=6)
