"""Every recipe in a short seeded version (a few steps; the loss must go down past a stated
bound), the `minigrad` command's answers, and, marked slow, the full runs with their bars."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.cli import main
from models.recipes import RECIPES, RESULTS, recorded, run_recipe
from tests.conftest import ROOT, SHARED_DATA

pytest.importorskip("sklearn")

# recipe -> (data it needs under the data folder, or None; bound on the last logged loss as a
# fraction of the first)
SHORT = {  # measured smoothed ratios (seed 0): 0.22, 0.80, 0.72, 0.61, 0.71, 0.50, 0.90,
    # 0.83, 0.84, 0.96, 0.99, 0.16
    "digits-cnn": (None, 0.35),
    "digits-cnn-dp": (None, 0.75),  # DP-SGD's noise; measured 0.59
    "mnist1d-linear": (None, 0.9),
    "mnist1d-mlp": (None, 0.85),
    "mnist1d-cnn": (None, 0.75),
    "mnist1d-gru": (None, 0.85),
    "lenet5-mnist": ("mnist", 0.65),
    "names-mlp": ("names", 0.95),
    "shakespeare-gpt": ("tinyshakespeare", 0.92),
    "shakespeare-lstm": ("tinyshakespeare", 0.92),
    "sst2-kimcnn": ("sst2", 0.99),
    "sst2-bert": ("sst2", 1.0),
    "wnut17-bilstm": ("wnut17", 0.3),
    "wnut17-bilstm-crf": ("wnut17", 0.4),  # measured 0.15
}


def test_every_recipe_has_a_short_check():
    assert set(SHORT) == set(RECIPES)


def test_the_readme_table_shows_the_recorded_results():
    # models/recipes/results.json is the one record of what the full runs reached
    assert set(RESULTS["recipes"]) == set(RECIPES)
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `")
    }
    for name, entry in RESULTS["recipes"].items():
        assert name in rows, f"the README's recipe table has no row for {name}"
        cells = [c.strip() for c in rows[name].split("|")]
        assert f"**{recorded(name)}**" in cells, (name, recorded(name), cells)
        assert f"{entry['seconds']} s" in cells, (name, entry["seconds"], cells)
        assert cells[4] == str(RECIPES[name].reference), (name, cells[4])


def test_recorded_figures_are_formatted_as_the_readme_shows_them():
    saved = {name: dict(RESULTS["recipes"][name]) for name in ("mnist1d-cnn", "names-mlp")}
    try:
        RESULTS["recipes"]["mnist1d-cnn"]["seeds"] = {"0": 0.697}
        RESULTS["recipes"]["names-mlp"]["seeds"] = {"0": 2.111}
        assert recorded("mnist1d-cnn") == "69.7 %"  # one seed
        assert recorded("names-mlp") == "2.111"
        RESULTS["recipes"]["mnist1d-cnn"]["seeds"] = {"0": 0.94, "1": 0.92, "2": 0.93}
        assert recorded("mnist1d-cnn") == "93.0 % +- 1.0 (3 seeds)"
        RESULTS["recipes"]["names-mlp"]["seeds"] = {"0": 2.111, "1": 2.105, "2": 2.108}
        assert recorded("names-mlp") == "2.108 +- 0.003 (3 seeds)"
    finally:
        RESULTS["recipes"].update(saved)


@pytest.mark.parametrize("name", sorted(SHORT))
def test_short_recipe_learns(name, tmp_path):
    # recipes on bundled or generated data run everywhere; the others need ../shared/data
    folder, bound = SHORT[name]
    if folder and not (SHARED_DATA / folder).exists():
        pytest.skip(f"{SHARED_DATA / folder} is not available")
    report = run_recipe(
        name, out=str(tmp_path), seed=0, data=str(SHARED_DATA), short=True, verbose=False
    )
    logged = [
        json.loads(line) for line in (tmp_path / "logs" / "log.jsonl").read_text().splitlines()
    ]
    losses = [e["loss"] for e in logged if "loss" in e]
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])  # smoothed: single batches are noisy
    assert len(losses) >= 6 and last < bound * first, losses
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (tmp_path / "model" / "config.json").exists()


def test_the_command_lists_trains_and_explains_errors(tmp_path, capsys):
    assert main(["recipes"]) == 0
    assert "digits-cnn" in capsys.readouterr().out
    assert main(["train", "no-such-recipe"]) == 2
    assert "unknown recipe 'no-such-recipe'" in capsys.readouterr().err
    assert main(["train", "lenet5-mnist", "--data", str(tmp_path / "void"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --data DIR" in err
    assert main(["train", "digits-cnn", "--epochs", "0"]) == 2
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert main(["generate", str(tmp_path)]) == 2
    assert main(["bench", "fastest"]) == 2
    out = tmp_path / "digits"
    assert main(["train", "digits-cnn", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    stored = json.loads((out / "report.json").read_text())["test_accuracy"]
    assert f"test_accuracy {stored:.4g} (at the end of training: {stored:.4g})" in printed
    assert "DigitsCNN" in printed


def test_generate_from_a_short_shakespeare_run(tmp_path, capsys, shared_data):
    if not (shared_data / "tinyshakespeare").exists():
        pytest.skip("tiny shakespeare is not available")
    run_recipe(
        "shakespeare-lstm", out=str(tmp_path), data=str(shared_data), short=True, verbose=False
    )
    assert main(["generate", str(tmp_path), "--prompt", "ROMEO:", "--tokens", "20"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text.rstrip("\n")) == len("ROMEO:") + 20


FULL_BARS = {
    "digits-cnn": lambda r: r["test_accuracy"] >= 0.97,
    "digits-cnn-dp": lambda r: r["test_accuracy"] >= 0.80 and r["epsilon"] <= 2.0,
    "mnist1d-linear": lambda r: abs(r["test_accuracy"] - 0.315) <= 0.02,
    "mnist1d-mlp": lambda r: abs(r["test_accuracy"] - 0.651) <= 0.02,
    "mnist1d-cnn": lambda r: abs(r["test_accuracy"] - 0.923) <= 0.02,
    "mnist1d-gru": lambda r: abs(r["test_accuracy"] - 0.891) <= 0.02,
    "lenet5-mnist": lambda r: r["test_accuracy"] >= 0.97,
    "names-mlp": lambda r: r["dev_loss"] <= 2.20,
    "shakespeare-gpt": lambda r: r["val_loss"] <= 1.95,
    "wnut17-bilstm": lambda r: r["test_entity_f1"] > r["dictionary_baseline_f1"],
    "wnut17-bilstm-crf": lambda r: r["test_entity_f1"] > r["dictionary_entity_f1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_BARS))
def test_full_recipe_reaches_its_bar(name, tmp_path, shared_data):
    report = run_recipe(name, out=str(tmp_path), data=str(shared_data), verbose=False)
    assert FULL_BARS[name](report), report


# recipe -> (seeds, figure, bar on its mean over the seeds): bars that one seed cannot show
SEEDED_BARS = {
    "sst2-kimcnn": ([0, 1, 2, 3, 4], "test_accuracy", 0.81),
    "wnut17-bilstm-crf": ([0, 1, 2], "test_entity_f1", 0.20),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SEEDED_BARS))
def test_full_recipe_reaches_its_bar_on_average_over_seeds(name, tmp_path, shared_data):
    from models.runs import _run_seeds, summarize

    seeds, figure, bar = SEEDED_BARS[name]
    reports = _run_seeds(
        seeds,
        lambda s: run_recipe(
            name, out=str(tmp_path / f"seed-{s}"), seed=s, data=str(shared_data), verbose=False
        ),
    )
    summary = summarize(seeds, reports)
    assert summary["figures"][figure]["mean"] >= bar, summary
