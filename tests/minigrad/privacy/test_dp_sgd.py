"""DP-SGD: the accountant against Opacus's RDPAccountant, get_noise_multiplier, Poisson
sampling, the clipped-and-summed step against Opacus's DPOptimizer with no noise, the noise's
scale, and PrivacyEngine end to end (own loop, Trainer, Keras fit)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.data import DataLoader, TensorDataset
from minigrad.privacy import (
    DPDataLoader,
    DPOptimizer,
    GradSampleModule,
    PrivacyEngine,
    RDPAccountant,
    UniformWithReplacementSampler,
    compute_rdp,
    get_noise_multiplier,
    rdp_to_epsilon,
)
from minigrad.privacy.accountant import rdp_sampled_gaussian

CASES = [  # (sample rate q, noise multiplier sigma, steps, delta)
    (0.01, 1.1, 1000, 1e-5),
    (0.004, 0.8, 5000, 1e-6),
    (0.1, 2.0, 50, 1e-5),
    (0.5, 5.0, 10, 1e-3),
    (0.02, 0.6, 300, 1e-5),
    (0.256, 1.3, 120, 1e-5),
]


def opacus_or_skip():
    pytest.importorskip("torch", reason="PyTorch is Opacus's base (pip install -e '.[privacy]')")
    return pytest.importorskip(
        "opacus", reason="Opacus is the DP-SGD oracle (pip install -e '.[privacy]')"
    )


@pytest.mark.parametrize("q, sigma, steps, delta", CASES)
def test_epsilon_against_opacus(q, sigma, steps, delta):
    opacus = opacus_or_skip()
    theirs = opacus.accountants.RDPAccountant()
    theirs.history = [(sigma, q, steps)]
    ours = RDPAccountant()
    ours.history = [(sigma, q, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns when the best order is an end one
        expected = theirs.get_epsilon(delta)
    assert ours.get_epsilon(delta) == pytest.approx(expected, rel=1e-6)


def test_rdp_special_cases_and_closed_forms():
    # q = 1 is the Gaussian mechanism: alpha / (2 sigma^2)
    assert rdp_sampled_gaussian(1.0, 2.0, 3.5) == pytest.approx(3.5 / 8)
    assert rdp_sampled_gaussian(0.0, 1.0, 2.0) == 0.0
    assert rdp_sampled_gaussian(0.1, 0.0, 2.0) == math.inf
    # alpha = 2 in closed form: log(1 + q^2 (e^{1/sigma^2} - 1))
    q, s = 0.03, 1.2
    assert rdp_sampled_gaussian(q, s, 2) == pytest.approx(math.log1p(q * q * math.expm1(1 / s**2)))
    # the fractional series is continuous with the integer sum
    assert rdp_sampled_gaussian(q, s, 3.0 + 1e-9) == pytest.approx(
        rdp_sampled_gaussian(q, s, 3), rel=1e-6
    )
    with pytest.raises(ValueError, match="delta must be in \\(0, 1\\), got 0"):
        rdp_to_epsilon([2.0], [0.1], 0)
    with pytest.raises(ValueError, match="q must be in \\[0, 1\\], got 1.5"):
        rdp_sampled_gaussian(1.5, 1.0, 2.0)


def test_history_composes_by_addition():
    acc = RDPAccountant()
    for _ in range(30):
        acc.step(noise_multiplier=1.0, sample_rate=0.02)
    for _ in range(20):
        acc.step(noise_multiplier=2.0, sample_rate=0.05)
    assert acc.history == [(1.0, 0.02, 30), (2.0, 0.05, 20)]
    from minigrad.privacy.accountant import DEFAULT_ALPHAS

    rdp = compute_rdp(0.02, 1.0, 30) + compute_rdp(0.05, 2.0, 20)
    assert acc.get_epsilon(1e-5) == rdp_to_epsilon(DEFAULT_ALPHAS, rdp, 1e-5)[0]


@pytest.mark.parametrize("epsilon, q, epochs", [(1.0, 0.01, 5), (3.0, 0.05, 10), (8.0, 0.004, 3)])
def test_get_noise_multiplier_round_trip(epsilon, q, epochs):
    sigma = get_noise_multiplier(
        target_epsilon=epsilon, target_delta=1e-5, sample_rate=q, epochs=epochs
    )
    acc = RDPAccountant()
    acc.history = [(sigma, q, int(epochs / q))]
    reached = acc.get_epsilon(1e-5)
    assert epsilon - 0.01 <= reached <= epsilon
    acc.history = [(sigma * 0.97, q, int(epochs / q))]  # a little less noise: over budget
    assert acc.get_epsilon(1e-5) > epsilon


def test_get_noise_multiplier_matches_opacus():
    opacus = opacus_or_skip()
    from opacus.accountants.utils import get_noise_multiplier as theirs

    kwargs = dict(target_epsilon=2.0, target_delta=1e-5, sample_rate=0.01, epochs=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert get_noise_multiplier(**kwargs) == pytest.approx(theirs(**kwargs), rel=1e-9)
    assert opacus is not None


def test_poisson_sampler_statistics():
    sampler = UniformWithReplacementSampler(1000, 0.05, generator=np.random.default_rng(0))
    assert len(sampler) == 20
    sizes = [len(b) for _ in range(20) for b in sampler]  # 400 batches
    # binomial(1000, 0.05): mean 50, sd 6.9; the mean of 400 has sd 0.34
    assert abs(np.mean(sizes) - 50) < 1.5
    assert 5.0 < np.std(sizes) < 9.0
    again = UniformWithReplacementSampler(1000, 0.05, generator=np.random.default_rng(0))
    assert [list(b) for b in again] == [list(b) for b in again.__class__(
        1000, 0.05, generator=np.random.default_rng(0))]  # fmt: skip
    with pytest.raises(ValueError, match="sample_rate must be in \\(0, 1\\], got 0"):
        UniformWithReplacementSampler(10, 0)


def test_dp_data_loader_gives_empty_batches_their_shape():
    data = TensorDataset(np.ones((5, 3), np.float32), np.arange(5))
    loader = DPDataLoader(data, sample_rate=0.02, generator=np.random.default_rng(1), steps=50)
    shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in loader]
    assert len(shapes) == 50
    assert ((0, 3), (0,)) in shapes  # rate 0.02 on 5 samples: most batches are empty
    dense = DPDataLoader.from_data_loader(DataLoader(data, batch_size=2))
    assert len(dense) == 3 and dense.sample_rate == pytest.approx(1 / 3)


def _model():
    return nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4))


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_clipped_sum_against_opacus_without_noise(rng):
    opacus = opacus_or_skip()
    import torch

    mg.manual_seed(5)
    ours = _model().double()
    theirs = torch.nn.Sequential(
        torch.nn.Conv1d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(12, 4)
    ).double()
    theirs.load_state_dict({k: torch.tensor(v.data) for k, v in ours.state_dict().items()})
    x, y = rng.normal(size=(7, 2, 6)) * 3, rng.integers(0, 4, 7)
    for reduction in ("mean", "sum"):
        gsm = opacus.GradSampleModule(theirs, loss_reduction=reduction)
        opt = opacus.optimizers.DPOptimizer(
            torch.optim.SGD(gsm.parameters(), lr=0.1),
            noise_multiplier=0.0,
            max_grad_norm=0.7,
            expected_batch_size=10,
            loss_reduction=reduction,
        )
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            gsm(torch.tensor(x)), torch.tensor(y), reduction=reduction
        )
        loss.backward()
        opt.pre_step()
        expected = [p.grad.detach().numpy().copy() for p in theirs.parameters()]
        gsm._close()

        wrapped = GradSampleModule(ours, loss_reduction=reduction)
        dp = DPOptimizer(
            mg.optim.SGD(ours.parameters(), lr=0.1),
            noise_multiplier=0.0,
            max_grad_norm=0.7,
            expected_batch_size=10,
            loss_reduction=reduction,
        )
        dp.zero_grad()
        F.cross_entropy(wrapped(mg.tensor(x)), mg.tensor(y), reduction=reduction).backward()
        dp.pre_step()
        assert (dp.per_sample_norms > 0.7).any()  # the clipping is exercised
        for p, e in zip(ours.parameters(), expected):
            np.testing.assert_allclose(p.grad.data, e, rtol=1e-9, atol=1e-12)
        wrapped.remove_hooks()


def test_clipping_bounds_each_sample_and_noise_has_the_stated_scale(rng):
    mg.manual_seed(6)
    model = nn.Linear(50, 40).double()
    wrapped = GradSampleModule(model, loss_reduction="sum")
    dp = DPOptimizer(
        mg.optim.SGD(model.parameters(), lr=0.0),
        noise_multiplier=0.0,
        max_grad_norm=0.5,
        expected_batch_size=4,
    )
    x = mg.tensor(rng.normal(size=(4, 50)) * 10)
    (wrapped(x) ** 2).sum().backward()
    dp.pre_step()
    assert (dp.per_sample_norms > 0.5).all()  # every sample was clipped ...
    total = np.sqrt(sum((p.grad.data.astype(np.float64) ** 2).sum() for p in model.parameters()))
    assert total <= 4 * 0.5 / 4 + 1e-9  # ... so the mean of 4 has norm at most 0.5

    # noise alone (zero gradients): N(0, (sigma C)^2) per coordinate, divided by 4
    for p in model.parameters():
        p.grad_sample = np.zeros((4, *p.shape))
    noisy = DPOptimizer(
        mg.optim.SGD(model.parameters(), lr=0.0),
        noise_multiplier=2.0,
        max_grad_norm=0.5,
        expected_batch_size=4,
        generator=np.random.default_rng(7),
    )
    noisy.pre_step()
    values = np.concatenate([p.grad.data.ravel() for p in model.parameters()])
    assert values.size == 2040
    assert np.std(values) == pytest.approx(2.0 * 0.5 / 4, rel=0.05)
    assert abs(np.mean(values)) < 4 * 0.25 / np.sqrt(values.size)


def _data(rng, n=64):
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def test_privacy_engine_end_to_end(rng):
    mg.manual_seed(8)
    x, y = _data(rng)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    engine = PrivacyEngine()
    module, optimizer, loader = engine.make_private(
        module=model,
        optimizer=mg.optim.SGD(model.parameters(), lr=0.5),
        data_loader=DataLoader(TensorDataset(x, y), batch_size=8),
        noise_multiplier=0.8,
        max_grad_norm=1.0,
        noise_generator=np.random.default_rng(9),
    )
    assert isinstance(loader, DPDataLoader) and len(loader) == 8
    schedule = mg.optim.lr_scheduler.StepLR(optimizer, step_size=8, gamma=0.5)
    before = [p.data.copy() for p in model.parameters()]
    steps = 0
    for _ in range(3):
        for xb, yb in loader:
            optimizer.zero_grad()
            F.cross_entropy(module(xb), yb).backward()
            optimizer.step()
            schedule.step()
            steps += 1
    assert steps == 24 and engine.accountant.history == [(0.8, 1 / 8, 24)]
    assert optimizer.param_groups[0]["lr"] == 0.5 * 0.5**3  # the schedule drives the wrapped
    expected = RDPAccountant()
    expected.history = [(0.8, 1 / 8, 24)]
    assert engine.get_epsilon(1e-5) == expected.get_epsilon(1e-5) > 0
    assert all(not np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    # an empty batch: the step is noise only, and still counted
    optimizer.zero_grad()
    empty = module(mg.tensor(np.zeros((0, 8), np.float32)))
    F.cross_entropy(empty, mg.tensor(np.zeros(0, np.int64))).backward()
    optimizer.step()
    assert engine.accountant.history == [(0.8, 1 / 8, 25)]
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_trainer_and_keras_fit_take_the_engine(rng, tmp_path):
    from minigrad.train import Trainer, TrainingArguments

    x, y = _data(rng)
    mg.manual_seed(10)
    engine = PrivacyEngine()
    args = TrainingArguments(
        str(tmp_path), num_train_epochs=2, per_device_train_batch_size=16, disable_tqdm=True,
        save_strategy="no",
    )  # fmt: skip
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    out = Trainer(
        model,
        args,
        train_dataset=TensorDataset(x, y),
        privacy_engine=engine,
        privacy_kwargs={"noise_multiplier": 1.0, "max_grad_norm": 1.0},
    ).train()
    assert out.global_step == 8 and engine.accountant.history == [(1.0, 0.25, 8)]
    with pytest.raises(ValueError, match="privacy_engine needs privacy_kwargs"):
        Trainer(model, args, train_dataset=TensorDataset(x, y), privacy_engine=engine)

    keras_engine = PrivacyEngine()
    km = mg.keras.Sequential(
        [mg.keras.layers.Dense(6, activation="relu", input_shape=(8,)),
         mg.keras.layers.Dense(1, activation="sigmoid")]
    )  # fmt: skip
    km.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    history = km.fit(
        x, y, epochs=2, batch_size=16, verbose=0, privacy_engine=keras_engine,
        privacy_kwargs={"noise_multiplier": 1.0, "max_grad_norm": 1.0},
    )  # fmt: skip
    assert len(history.history["loss"]) == 2
    assert keras_engine.accountant.history == [(1.0, 0.25, 8)]
    assert all(getattr(p, "grad_sample", None) is None for p in km._net.parameters())


def test_make_private_with_epsilon_reaches_its_target(rng):
    mg.manual_seed(11)
    x, y = _data(rng)
    model = nn.Sequential(nn.Linear(8, 2))
    engine = PrivacyEngine()
    module, optimizer, loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=mg.optim.SGD(model.parameters(), lr=0.1),
        data_loader=DataLoader(TensorDataset(x, y), batch_size=16),
        target_epsilon=3.0,
        target_delta=1e-5,
        epochs=2,
        max_grad_norm=1.0,
    )
    for _ in range(2):
        for xb, yb in loader:
            optimizer.zero_grad()
            F.cross_entropy(module(xb), yb).backward()
            optimizer.step()
    assert 3.0 - 0.01 <= engine.get_epsilon(1e-5) <= 3.0


def test_trainer_refuses_what_dp_cannot_do(rng, tmp_path):
    from minigrad.train import Trainer, TrainingArguments

    x, y = _data(rng)
    args = TrainingArguments(
        str(tmp_path), num_train_epochs=1, gradient_accumulation_steps=2, disable_tqdm=True
    )
    trainer = Trainer(
        nn.Linear(8, 2),
        args,
        train_dataset=TensorDataset(x, y),
        privacy_engine=PrivacyEngine(),
        privacy_kwargs={"noise_multiplier": 1.0, "max_grad_norm": 1.0},
    )
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        trainer.train()
