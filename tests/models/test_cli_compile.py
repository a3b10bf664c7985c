"""`minigrad train NAME --compile`: the recipe's Trainer runs its steps through
minigrad.compile, with the eager run's losses and figures, tracing once per batch shape."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest

import minigrad as mg
import minigrad.train.trainer as trainer_module
from models.cli import main
from models.recipes import RECIPES, run
from tests.conftest import SHARED_DATA
from tests.models.test_sst2_from_checkpoint import checkpoint  # noqa: F401  (a fixture)

pytest.importorskip("sklearn", reason="digits-cnn reads scikit-learn's bundled digits")


@pytest.fixture
def compiled_steps(monkeypatch):
    """Every CompiledFunction the Trainer makes while the test runs."""
    made = []

    def compile_and_keep(fn, **kwargs):
        made.append(mg.compile(fn, **kwargs))
        return made[-1]

    monkeypatch.setattr(trainer_module, "compile_step", compile_and_keep)
    return made


def _losses(out) -> list[float]:
    lines = (out / "logs" / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def test_train_with_compile_gives_the_eager_run_and_replays(tmp_path, capsys, compiled_steps):
    runs = {}
    for flag in ([], ["--compile"]):
        out = tmp_path / ("compiled" if flag else "eager")
        with warnings.catch_warnings():
            warnings.simplefilter("error", mg.CompileWarning)
            code = main(
                ["train", "digits-cnn", "--epochs", "1", "--out", str(out), "--quiet", *flag]
            )
        assert code == 0
        runs[bool(flag)] = (_losses(out), json.loads((out / "report.json").read_text()))
    (eager_losses, eager_report), (losses, report) = runs[False], runs[True]
    # DigitsCNN's fused chains (ReLU, dropout's multiply) are exact: the same run
    assert losses == eager_losses and len(losses) > 5
    assert report["test_accuracy"] == eager_report["test_accuracy"]
    assert report["test_loss"] == eager_report["test_loss"]
    # 1,437 training images in batches of 32: 44 of 32 and one of 29, each shape traced once
    micro_step, step = compiled_steps
    assert step.traces == 2 and micro_step.traces == 0


def test_compile_passes_through_seeds(tmp_path, capsys, compiled_steps):
    out = tmp_path / "seeds"
    args = ["train", "digits-cnn", "--epochs", "1", "--seeds", "0", "--out", str(out)]
    assert main([*args, "--quiet", "--compile"]) == 0
    assert (out / "seed-0" / "report.json").exists()
    assert [c.traces for c in compiled_steps] == [0, 2]


def test_compile_takes_no_value(capsys):
    assert main(["train", "digits-cnn", "--compile=yes"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--compile" in err


def test_a_checkpoints_bert_trains_compiled(checkpoint, tmp_path):  # noqa: F811
    """minigrad.transformers' BERT makes its additive attention mask as an op, so a
    compiled step recomputes it from each batch's mask and nothing falls back."""
    if not (SHARED_DATA / "sst2").exists():
        pytest.skip(f"{SHARED_DATA / 'sst2'} is not available")
    recipe = dataclasses.replace(RECIPES["sst2-bert"], steps=lambda d, epochs, short: 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mg.CompileWarning)
        report = run(
            recipe,
            out=str(tmp_path / "run"),
            data=str(SHARED_DATA),
            short=True,
            verbose=False,
            start_from=str(checkpoint),
            compiled=True,
        )
    assert 0.0 <= report["test_accuracy"] <= 1.0
