"""TrainingArguments(torch_compile=True): the Trainer's step runs through minigrad.compile,
gives the eager run's losses, gradient norms and parameters bit for bit, traces once per
batch shape, and runs eagerly (with one CompileWarning) what a program cannot capture."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.data import TensorDataset
from minigrad.train import Callback, Trainer, TrainingArguments


def _data(n: int = 70) -> TensorDataset:
    rng = np.random.default_rng(0)
    return TensorDataset(rng.standard_normal((n, 8), dtype=np.float32), rng.integers(0, 3, n))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


class _Logs(Callback):
    """Every step's logs, as the callbacks see them."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(dict(logs or {}))


def _train(tmp_path, compiled: bool, trainer_class=Trainer, **settings):
    mg.manual_seed(0)
    args = TrainingArguments(
        str(tmp_path / f"compiled-{compiled}"),
        **{
            "num_train_epochs": 2,
            "per_device_train_batch_size": 8,
            "disable_tqdm": True,
            "logging_steps": 1,
            "learning_rate": 1e-2,
            "max_grad_norm": 0.5,  # the norms of the first steps are above it: clipped
            "warmup_steps": 3,  # and a schedule that changes the rate every step
            "save_strategy": "no",
            "torch_compile": compiled,
            **settings,
        },
    )
    logs = _Logs()
    model = _mlp()
    trainer = trainer_class(model, args, train_dataset=_data(), callbacks=[logs])
    out = trainer.train()
    return trainer, out, logs.seen, [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("accumulation", [1, 3])
def test_compiled_training_gives_the_eager_run_bit_for_bit(tmp_path, accumulation):
    eager, eager_out, eager_logs, eager_params = _train(
        tmp_path / "eager", False, gradient_accumulation_steps=accumulation
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        trainer, out, logs, params = _train(
            tmp_path / "compiled", True, gradient_accumulation_steps=accumulation
        )
    # the log lines (loss, grad_norm, learning_rate), what callbacks saw, the mean loss and
    # the parameters: ReLU and dropout's multiply are fused exactly, the rest are the same
    # kernels in the same order
    assert trainer.log_history == eager.log_history
    assert any(h["grad_norm"] > 0.5 for h in trainer.log_history)  # clipping happened
    assert logs == eager_logs and out == eager_out
    for a, b in zip(params, eager_params):
        np.testing.assert_array_equal(a, b)
    # 70 samples in batches of 8: nine batches an epoch, the last of 6. The last micro-batch
    # of each step (the whole step) traced once for 8 and once for 6, the others once for 8
    steps = out.global_step
    assert steps == 2 * (9 // accumulation)
    assert trainer.compiled_step.traces == 2 and trainer.compiled_step.program_count == 2
    assert trainer.compiled_micro_step.traces == (0 if accumulation == 1 else 1)


def test_evaluation_between_steps_does_not_retrace(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        mg.manual_seed(0)
        args = TrainingArguments(
            str(tmp_path),
            num_train_epochs=3,
            per_device_train_batch_size=8,
            dataloader_drop_last=True,  # one batch shape
            eval_strategy="steps",
            eval_steps=2,  # eval mode, then training mode again, every other step
            disable_tqdm=True,
            save_strategy="no",
            torch_compile=True,
        )
        trainer = Trainer(_mlp(), args, train_dataset=_data(64), eval_dataset=_data(20))
        out = trainer.train()
    assert out.global_step == 24
    assert trainer.compiled_step.traces == 1


class _LoggingTrainer(Trainer):
    """A compute_loss that reads the loss into Python: a step minigrad.compile cannot
    capture."""

    def compute_loss(self, batch, return_outputs=False):
        result = super().compute_loss(batch, return_outputs)
        loss = result[0] if return_outputs else result
        assert loss.item() > 0  # as a print or a check of the loss would
        return result


def test_a_step_that_reads_values_runs_eagerly_and_says_why_once(tmp_path):
    eager, _, _, eager_params = _train(tmp_path / "eager", False, _LoggingTrainer)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trainer, _, _, params = _train(tmp_path / "compiled", True, _LoggingTrainer)
    said = [str(w.message) for w in seen if issubclass(w.category, mg.CompileWarning)]
    assert len(said) == 1 and "runs eagerly: .item()" in said[0], said
    assert trainer.log_history == eager.log_history
    for a, b in zip(params, eager_params):
        np.testing.assert_array_equal(a, b)


def test_dp_sgd_runs_eagerly_with_one_warning(tmp_path):
    from minigrad.privacy import PrivacyEngine

    def train(compiled):
        mg.manual_seed(0)
        args = TrainingArguments(
            str(tmp_path / f"dp-{compiled}"),
            num_train_epochs=1,
            per_device_train_batch_size=16,
            disable_tqdm=True,
            save_strategy="no",
            logging_steps=1,
            torch_compile=compiled,
        )
        trainer = Trainer(
            _mlp(),
            args,
            train_dataset=_data(64),
            privacy_engine=PrivacyEngine(),
            privacy_kwargs={"noise_multiplier": 1.0, "max_grad_norm": 1.0},
        )
        trainer.train()
        return trainer.log_history

    want = train(False)
    with pytest.warns(mg.CompileWarning, match="runs eagerly under DP-SGD") as seen:
        got = train(True)
    assert len(seen) == 1
    assert got == want


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_torch_compile_must_be_a_bool(tmp_path, bad):
    with pytest.raises(TypeError, match="torch_compile must be True or False"):
        TrainingArguments(str(tmp_path), torch_compile=bad)
