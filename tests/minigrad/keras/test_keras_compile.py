"""Keras's compile(jit_compile=True): fit's step runs through minigrad.compile, gives the
eager History, traces once per batch shape, and runs eagerly (with one CompileWarning) what
a program cannot capture."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minigrad as mg

L = mg.keras.layers


def _data(n: int = 90):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def _model(jit: bool, loss="sparse_categorical_crossentropy", optimizer="adam"):
    mg.manual_seed(0)
    model = mg.keras.Sequential(
        [
            L.Dense(16, activation="relu", input_shape=(8,)),
            L.Dropout(0.2),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], jit_compile=jit)
    return model


def _fit(model, epochs=3, **kwargs):
    x, y = _data()
    history = model.fit(
        x, y, epochs=epochs, batch_size=32, verbose=0, validation_split=0.2, **kwargs
    )
    return history.history


def test_fit_with_jit_compile_gives_the_eager_history_and_replays():
    want = _fit(_model(False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        model = _model(True)
        got = _fit(model)
    # ReLU and dropout's multiply are fused exactly; softmax and the loss are the eager
    # kernels: every figure of every epoch is the same number
    assert got == want
    # 72 training samples in batches of 32: two of 32 and one of 8 an epoch, three epochs
    assert model._train_step.traces == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        _fit(model, epochs=1)  # a second fit replays the same programs
    assert model._train_step.traces == 2


def test_a_replaced_optimizer_is_the_one_that_steps():
    histories = []
    for jit in (False, True):
        model = _model(jit)
        _fit(model, epochs=1)
        model.optimizer = mg.optim.SGD(model._net.parameters(), lr=0.5)
        histories.append(_fit(model, epochs=2))
    assert histories[1] == histories[0]


def test_a_loss_that_reads_values_runs_eagerly_and_says_why_once():
    def loss(y_true, y_pred):
        value = mg.keras.losses.get("sparse_categorical_crossentropy")(y_true, y_pred)
        assert value.item() > 0  # as a print or a check of the loss would
        return value

    want = _fit(_model(False, loss=loss))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = _fit(_model(True, loss=loss))
    said = [str(w.message) for w in seen if issubclass(w.category, mg.CompileWarning)]
    assert len(said) == 1 and "runs eagerly: .item()" in said[0], said
    assert got == want


def test_a_private_fit_after_a_compiled_one_runs_eagerly_with_dp_sgd():
    from minigrad.privacy import PrivacyEngine

    def fits(jit):
        model = _model(jit, optimizer="sgd")
        _fit(model, epochs=1)  # with jit: traced and replayed without DP-SGD's hooks
        mg.manual_seed(1)
        engine = PrivacyEngine()
        kwargs = {"noise_multiplier": 1.0, "max_grad_norm": 1.0}
        return _fit(model, epochs=1, privacy_engine=engine, privacy_kwargs=kwargs)

    want = fits(False)
    with pytest.warns(mg.CompileWarning, match="runs eagerly with a privacy_engine") as seen:
        got = fits(True)
    assert len(seen) == 1
    assert got == want


@pytest.mark.parametrize("bad", ["auto", 1, None])
def test_jit_compile_must_be_a_bool(bad):
    model = mg.keras.Sequential([L.Dense(1, input_shape=(2,))])
    with pytest.raises(TypeError, match="jit_compile must be True or False"):
        model.compile(optimizer="adam", loss="mse", jit_compile=bad)
