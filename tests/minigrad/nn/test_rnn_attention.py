"""Recurrent and attention layers: shapes, masks, modes and errors (PyTorch comparisons are in
test_nn_torch.py, gradchecks in test_layers_gradcheck.py)."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn


def randn(*shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_sequence_output_shapes(cls):
    m = cls(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    out, state = m(randn(4, 7, 3))
    assert out.shape == (4, 7, 10)
    h_n = state[0] if cls is nn.LSTM else state
    assert h_n.shape == (4, 4, 5)
    # the last layer's forward direction ends at the last step, its reverse at the first
    np.testing.assert_allclose(h_n.data[2], out.data[:, -1, :5], rtol=1e-6)
    np.testing.assert_allclose(h_n.data[3], out.data[:, 0, 5:], rtol=1e-6)
    out, state = m(randn(7, 3))  # unbatched
    assert out.shape == (7, 10) and (state[0] if cls is nn.LSTM else state).shape == (4, 5)


def test_lstm_cell_steps_equal_the_sequence_layer():
    seq, cell = nn.LSTM(3, 4), nn.LSTMCell(3, 4)
    cell.load_state_dict({k[:-3]: v for k, v in seq.state_dict().items()})
    x = randn(6, 2, 3)
    out, (h_n, c_n) = seq(x)
    h = c = None
    for t in range(6):
        h, c = cell(x[t], None if h is None else (h, c))
        np.testing.assert_allclose(h.data, out.data[t], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.data, c_n.data[0], rtol=1e-5, atol=1e-6)


def test_parameter_names_and_default_init_bound():
    m = nn.GRU(3, 16, num_layers=2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih_l1_reverse" in names and m.weight_ih_l1.shape == (48, 32)
    for p in m.parameters():
        assert np.abs(p.data).max() <= 0.25  # uniform in +-1/sqrt(16)
        assert np.abs(p.data).max() > 0.2
    assert [n for n, _ in nn.LSTM(2, 3, bias=False).named_parameters()] == [
        "weight_ih_l0",
        "weight_hh_l0",
    ]


def test_dropout_between_layers_only_in_training():
    m = nn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = randn(5, 2, 3)
    mg.manual_seed(0)
    a = m(x)[0].data
    mg.manual_seed(1)
    b = m(x)[0].data
    assert not np.allclose(a, b)
    m.eval()
    np.testing.assert_array_equal(m(x)[0].data, m(x)[0].data)
    one_layer = nn.GRU(3, 8, dropout=0.0)
    np.testing.assert_array_equal(one_layer(x)[0].data, one_layer(x)[0].data)


def test_recurrent_input_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"LSTM\(10, 20\): expected input \(T, B, 10\)"):
        nn.LSTM(10, 20)(mg.zeros((5, 3, 7)))
    with pytest.raises(ValueError, match=r"GRU\(4, 2\): expected input \(B, T, 4\)"):
        nn.GRU(4, 2, batch_first=True)(mg.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"GRU\(4, 2\): expected h0 of shape \(2, 3, 2\), got"):
        nn.GRU(4, 2, num_layers=2)(mg.zeros((5, 3, 4)), mg.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="at least one time step"):
        nn.RNN(4, 2)(mg.zeros((0, 3, 4)))
    with pytest.raises(ValueError, match=r"LSTMCell\(3, 4\): expected input \(B, 3\)"):
        nn.LSTMCell(3, 4)(mg.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"GRUCell\(3, 4\): expected hx of shape \(2, 4\)"):
        nn.GRUCell(3, 4)(mg.zeros((2, 3)), mg.zeros((4,)))
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)


def test_second_order_through_lstm_matches_finite_differences():
    m = nn.LSTM(2, 3).double()
    x = mg.tensor(np.linspace(-1, 1, 4).reshape(2, 1, 2), requires_grad=True)
    (g,) = mg.autograd.grad(m(x)[0].sum(), [x], create_graph=True)
    (hv,) = mg.autograd.grad((g * g).sum(), [x])  # d/dx |grad|^2 = 2 H grad

    def gradient(values):
        t = mg.tensor(values, requires_grad=True)
        return mg.autograd.grad(m(t)[0].sum(), [t])[0].numpy()

    h, numeric = 1e-6, np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[i] = h
        slope = (gradient(x.detach().numpy() + e) - gradient(x.detach().numpy() - e)) / (2 * h)
        numeric[i] = 2 * (slope * g.detach().numpy()).sum()
    np.testing.assert_allclose(hv.numpy(), numeric, rtol=1e-6, atol=1e-9)


def test_attention_weights_shapes_and_rows_sum_to_one():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    q, kv = randn(3, 4, 8), randn(3, 6, 8, seed=1)
    out, w = mha(q, kv, kv)
    assert out.shape == (3, 4, 8) and w.shape == (3, 4, 6)
    np.testing.assert_allclose(w.data.sum(-1), 1.0, rtol=1e-5)
    _, w = mha(q, kv, kv, average_attn_weights=False)
    assert w.shape == (3, 2, 4, 6)
    out2, none = mha(q, kv, kv, need_weights=False)
    assert none is None
    np.testing.assert_allclose(out2.data, out.data, rtol=1e-5, atol=1e-6)  # flash == explicit


def test_key_padding_mask_blocks_keys():
    mha = nn.MultiheadAttention(4, 1)
    q, kv = randn(2, 1, 4), randn(3, 1, 4, seed=1)
    pad = np.array([[False, True, False]])
    out, w = mha(q, kv, kv, key_padding_mask=pad)
    assert np.all(w.data[..., 1] == 0)
    changed = kv.data.copy()
    changed[1] += 10.0  # a masked key/value changes nothing
    out2, _ = mha(q, mg.tensor(changed), mg.tensor(changed), key_padding_mask=pad)
    np.testing.assert_allclose(out2.data, out.data, rtol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_encoder_is_a_gpt_block(norm_first):
    """With is_causal, an output depends only on its own and earlier positions."""
    layer = nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first
    )
    x = randn(1, 5, 8)
    later = x.data.copy()
    later[0, 3:] += 1.0
    a = layer(x, is_causal=True).data
    b = layer(mg.tensor(later), is_causal=True).data
    np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[0, 3:], b[0, 3:])
    c = layer(mg.tensor(later)).data  # without the mask the future leaks back
    assert not np.allclose(a[0, :3], c[0, :3])


def test_encoder_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    enc = nn.TransformerEncoder(layer, 3)
    assert "layers.2.self_attn.in_proj_weight" in enc.state_dict()
    p0, p1 = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert p0 is not p1 and p0.data is not p1.data
    np.testing.assert_array_equal(p0.data, p1.data)  # deep copies, as in PyTorch
    enc.layers[0].linear1.weight.data[...] = 0
    assert np.any(enc.layers[1].linear1.weight.data != 0)


def test_attention_errors_name_the_layer():
    with pytest.raises(ValueError, match="embed_dim 6 must be divisible by num_heads 4"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"MultiheadAttention\(8, num_heads=2\): expected query"):
        mha(mg.zeros((3, 2, 5)), mg.zeros((3, 2, 5)), mg.zeros((3, 2, 5)))
    x = mg.zeros((3, 2, 8))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 2\) should be \(3, 3\)"):
        mha(x, x, x, attn_mask=np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(3, 2\) should be \(2, 3\)"):
        mha(x, x, x, key_padding_mask=np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (nn.LayerNorm(8), (3, 5), r"LayerNorm\(\(8,\)\): expected input \(\.\.\., 8\), got"),
        (nn.MaxPool2d(2), (3,), r"MaxPool2d\(kernel_size=2.*expected input \(B, C, H, W\)"),
        (nn.AvgPool1d(2), (3, 4, 5, 6), r"AvgPool1d\(kernel_size=2.*expected input \(B, C, L\)"),
        (nn.AdaptiveAvgPool2d(2), (3,), r"AdaptiveAvgPool2d\(output_size=2\): expected input"),
        (nn.Conv2d(3, 16, 3), (8, 1, 28, 28), r"Conv2d\(3, 16\): expected input \(B, 3, H, W\)"),
    ],
)
def test_layer_input_errors_name_the_layer(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(mg.zeros(shape))


@pytest.mark.parametrize("need_weights", [True, False])
def test_a_query_with_no_allowed_key_gets_zeros_not_nan(need_weights):
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    x = randn(2, 3, 4)
    pad = np.array([[True, True, True], [False, True, False]])  # sample 0: every key masked
    out, w = mha(x, x, x, key_padding_mask=pad, need_weights=need_weights)
    assert np.all(np.isfinite(out.data))
    # sample 0 attends to nothing: its output is the output projection's bias alone
    np.testing.assert_allclose(out.data[0], np.broadcast_to(mha.out_proj.bias.data, (3, 4)))
    if need_weights:
        assert np.all(w.data[0] == 0) and np.allclose(w.data[1].sum(-1), 1.0)
    out.sum().backward()
    assert all(np.all(np.isfinite(p.grad.data)) for p in mha.parameters())
