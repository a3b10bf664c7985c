"""The Trainer: it learns, logs JSON lines, evaluates and predicts, rotates checkpoints,
restores the best model, accumulates gradients exactly, and says clearly what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.data import TensorDataset
from minigrad.train import Trainer, TrainingArguments, metrics
from minigrad.train.checkpoint import list_checkpoints, load_checkpoint

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits():
    d = sklearn_datasets.load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return TensorDataset(x[:1200], d.target[:1200]), TensorDataset(x[1200:], d.target[1200:])


def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def accuracy(p):
    return {"accuracy": metrics.accuracy(p.label_ids, p.predictions)}


def test_trainer_learns_logs_and_keeps_the_best(tmp_path, digits):
    train, val = digits
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=4,
        per_device_train_batch_size=32,
        learning_rate=1e-2,
        warmup_steps=5,
        logging_steps=10,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        disable_tqdm=True,
    )
    trainer = Trainer(mlp(), args, train, val, compute_metrics=accuracy)
    before = trainer.evaluate()
    out = trainer.train()
    after = trainer.evaluate()
    assert out.global_step == 4 * 38
    assert after["eval_loss"] < before["eval_loss"] / 3 and after["eval_accuracy"] > 0.85
    lines = [json.loads(s) for s in (tmp_path / "logs" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines if "loss" in e][:3] == [10, 20, 30]
    assert sum("eval_accuracy" in e for e in lines) == 4
    assert all(np.isfinite(e["loss"]) and e["learning_rate"] > 0 for e in lines if "loss" in e)
    kept = [p.name for p in list_checkpoints(tmp_path)]
    assert len(kept) <= 3 and kept[-1] == "checkpoint-152"  # limit 2, plus the best if older
    best = load_checkpoint(trainer.best_model_checkpoint)["model"]
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(v.data, best[k].data)  # the best model was restored
    pred = trainer.predict(val)
    assert pred.predictions.shape == (len(val), 10) and pred.metrics["test_accuracy"] > 0.85
    if (tmp_path / "curves.png").exists():  # matplotlib installed
        assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_gradient_accumulation_equals_the_big_batch(tmp_path, digits):
    train, _ = digits
    small = TensorDataset(train.tensors[0].data[:64], train.tensors[1].data[:64])
    results = []
    for batch, accumulate in ((32, 1), (16, 2)):
        args = TrainingArguments(
            output_dir=str(tmp_path / f"{batch}"),
            max_steps=2,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulate,
            learning_rate=0.1,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            save_strategy="no",
            disable_tqdm=True,
        )
        trainer = Trainer(mlp(), args, small, optimizers=(None, None))
        trainer.train_dataset = small
        mg.manual_seed(0)  # the same shuffled order for both
        trainer.get_train_dataloader = lambda b=batch: mg.data.DataLoader(small, b)
        trainer.train()
        results.append([p.data.copy() for p in trainer.model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_arguments_and_batches_are_checked(tmp_path):
    with pytest.raises(ValueError, match="eval_strategy must be one of"):
        TrainingArguments(output_dir=str(tmp_path), eval_strategy="sometimes")
    with pytest.raises(ValueError, match="load_best_model_at_end needs save_strategy equal"):
        TrainingArguments(
            output_dir=str(tmp_path), load_best_model_at_end=True, eval_strategy="epoch"
        )
    with pytest.raises(ValueError, match="lr_scheduler_type must be one of"):
        TrainingArguments(output_dir=str(tmp_path), lr_scheduler_type="warmup_and_pray")
    trainer = Trainer(mlp(), TrainingArguments(output_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="train\\(\\) needs a train_dataset"):
        trainer.train()
    with pytest.raises(FileNotFoundError, match="holds no usable checkpoint"):
        Trainer(
            mlp(),
            TrainingArguments(output_dir=str(tmp_path / "empty")),
            train_dataset=TensorDataset(np.zeros((4, 64), np.float32), np.zeros(4, np.int64)),
        ).train(resume_from_checkpoint=True)


def test_dict_batches_and_models_that_return_their_loss(tmp_path):
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp()

        def forward(self, inputs, labels):
            logits = self.net(inputs)
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

    class Dicts(mg.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            rng = np.random.default_rng(i)
            return {"inputs": rng.random(64).astype(np.float32), "labels": i % 10}

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=8,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(WithLoss(), args, Dicts(), Dicts())
    assert trainer.train().global_step == 3
    assert np.isfinite(trainer.evaluate()["eval_loss"])


def test_training_loss_is_the_mean_over_every_batch_even_with_no_log_line(tmp_path, digits):
    train, _ = digits
    losses = []

    class Recording(Trainer):
        def compute_loss(self, batch):
            loss = super().compute_loss(batch)
            losses.append(float(loss.data))
            return loss

    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=32,
        logging_steps=500, save_strategy="no", disable_tqdm=True,
    )
    out = Recording(mlp(), args, train).train()
    assert len(losses) == 3  # fewer steps than logging_steps: no log line was written
    assert out.training_loss == pytest.approx(np.mean(losses), rel=1e-12)
    assert out.metrics["train_loss"] == out.training_loss
