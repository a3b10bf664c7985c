"""`minigrad train --seeds`: the seeds parsed, each figure summarised with its mean and
standard deviation into report.json; and the command lists only the files a run wrote."""

from __future__ import annotations

import json
import statistics
import sys

import pytest

from models.cli import main
from models.runs import _run_seeds, parse_seeds, summarize, written_files

pytest.importorskip("sklearn", reason="digits-cnn reads scikit-learn's bundled digits")


def test_parse_seeds_takes_lists_and_ranges_and_names_mistakes():
    assert parse_seeds("0,1,2,3,4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3-5, 9") == [3, 4, 5, 9]
    for bad, what in [
        ("0,x", "'x' is not a seed"),
        ("-1", "'-1' is not a seed"),
        ("5-3", "'5-3' is not a seed or a range"),
        ("1,1", "repeats a seed"),
    ]:
        with pytest.raises(ValueError, match=what):
            parse_seeds(bad)


def test_summary_gives_each_figure_by_seed_with_mean_and_sample_std():
    reports = [
        {"recipe": "r", "test_accuracy": a, "seconds": 1.0, "reference": "Kim 2014"}
        for a in (0.80, 0.82, 0.81)
    ]
    ran = _run_seeds([4, 5, 6], lambda s: reports[s - 4])
    summary = summarize([4, 5, 6], ran)
    acc = summary["figures"]["test_accuracy"]
    assert acc["per_seed"] == [0.80, 0.82, 0.81] and summary["seeds"] == [4, 5, 6]
    assert acc["mean"] == pytest.approx(0.81)
    assert acc["std"] == pytest.approx(statistics.stdev([0.80, 0.82, 0.81]))
    assert "seconds" not in summary["figures"] and summary["reference"] == "Kim 2014"
    assert summarize([0], ran[:1])["figures"]["test_accuracy"]["std"] == 0.0


def test_train_with_seeds_writes_each_run_and_the_summary(tmp_path, capsys):
    out = tmp_path / "digits"
    code = main(
        ["train", "digits-cnn", "--epochs", "1", "--seeds", "0,1", "--out", str(out), "--quiet"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    each = [json.loads((out / f"seed-{s}" / "report.json").read_text()) for s in (0, 1)]
    summary = json.loads((out / "report.json").read_text())
    values = [r["test_accuracy"] for r in each]
    assert summary["figures"]["test_accuracy"]["per_seed"] == values
    assert summary["figures"]["test_accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    assert f"seed 0: {100 * values[0]:.2f} %, seed 1: {100 * values[1]:.2f} %" in printed
    assert "(std over 2 seeds)" in printed and "scikit-learn" in printed
    assert "issue" not in printed
    assert main(["train", "digits-cnn", "--seeds", "0,zero"]) == 2
    assert "'zero' is not a seed" in capsys.readouterr().err
    assert main(["evaluate", str(out)]) == 2
    assert "seed-0" in capsys.readouterr().err


def test_without_matplotlib_the_command_says_how_to_get_the_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    out = tmp_path / "digits"
    assert main(["train", "digits-cnn", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert not (out / "curves.png").exists()
    listed = [line for line in printed.splitlines() if line.startswith("written to")]
    assert len(listed) == 1 and "curves.png" not in listed[0] and "report.json" in listed[0]
    assert "no curves.png: matplotlib is not installed (pip install 'minigrad[plot]')" in printed


def test_written_files_lists_only_what_exists(tmp_path):
    assert written_files(tmp_path) == []
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "checkpoint-5").mkdir()
    assert written_files(tmp_path) == [
        f"written to {tmp_path}: report.json, 1 checkpoint(s) (checkpoint-5)"
    ]
