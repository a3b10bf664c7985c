"""``minigrad tune`` and the tuning file (kernels/tune.py, kernels/tuned.py): the kernels read
measured settings, a bad file is ignored with a warning that names it, and the file is written
whole or not at all."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kernels import conv, rnn, tune, tuned
from models.cli import main


@pytest.fixture
def tuning_file(tmp_path, monkeypatch):
    """A tuning file of this process's own choosing; the table is reloaded afterwards."""
    where = tmp_path / "tune.json"
    monkeypatch.setenv("MINIGRAD_TUNE_FILE", str(where))
    yield where
    monkeypatch.delenv("MINIGRAD_TUNE_FILE")
    tuned.load()


def write(where, threads, **overrides):
    data = {"format": tuned.FORMAT, "machine": tuned.machine(), "threads": threads, **overrides}
    where.write_text(json.dumps(data))


def slivers_layer():
    """A layer and batch that take the batch-sliver convolution with the shipped settings."""
    x = np.zeros((32, 16, 8, 8), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    return x, w


def test_the_kernels_read_the_measured_settings(tuning_file):
    x, w = slivers_layer()
    assert tuned.load() is None  # no file yet: the shipped defaults
    assert conv.conv2d_algorithm(x, w, padding=1) == "batch slivers"
    write(tuning_file, {"1": {"conv_sliver_fill": 1.01, "lstm_sliver_fill": 0.0}})
    assert tuned.load() == tuning_file and tuned.source() == tuning_file
    assert tuned.value("conv_sliver_fill", 1) == 1.01
    assert tuned.value("conv_sliver_fill", 2) == 0.75  # not measured at 2: shipped
    assert tuned.value("lstm_sliver_fill", 2) == 0.7
    import numba

    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert conv.conv2d_algorithm(x, w, padding=1) != "batch slivers"
        assert rnn.by_slivers(1, np.float32)  # any batch, at a fill of 0
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"tune.json: Expecting property name"),
        ('{"format": 99}', r"tune.json: not a minigrad tuning file of format 1"),
        ("[1, 2]", r"not a minigrad tuning file"),
        (b"\xff\xfe\x00garbage", r"tune.json: 'utf-8' codec can't decode"),
    ],
)
def test_a_corrupt_file_is_ignored_with_a_warning_naming_it(tuning_file, content, message):
    if isinstance(content, bytes):
        tuning_file.write_bytes(content)
    else:
        tuning_file.write_text(content)
    with pytest.warns(
        tuned.TuningWarning, match=r"tuning file ignored, defaults used: .*" + message
    ):
        assert tuned.load() is None
    assert tuned.value("conv_sliver_fill", 1) == 0.75 and tuned.source() is None


def test_a_file_from_another_machine_or_version_is_ignored(tuning_file):
    theirs = {**tuned.machine(), "cpu": "Some Other CPU", "minigrad": "0.0.1"}
    write(tuning_file, {"1": {"conv_sliver_fill": 0.5}}, machine=theirs)
    with pytest.warns(tuned.TuningWarning, match=r"another machine or version \(cpu, minigrad\)"):
        assert tuned.load() is None
    assert tuned.value("conv_sliver_fill", 1) == 0.75


def test_a_value_out_of_range_falls_back_to_its_default_alone(tuning_file):
    write(
        tuning_file,
        {"1": {"conv_sliver_fill": float("nan"), "lstm_sliver_fill": 0.5, "tiles": 3}},
    )
    with pytest.warns(tuned.TuningWarning) as caught:
        assert tuned.load() == tuning_file
    text = " | ".join(str(w.message) for w in caught)
    assert "threads['1']['conv_sliver_fill'] = nan is outside [0.0, 1.01]" in text
    assert "unknown setting 'tiles' ignored" in text
    assert tuned.value("conv_sliver_fill", 1) == 0.75 and tuned.value("lstm_sliver_fill", 1) == 0.5


def test_the_threshold_is_where_the_first_path_wins_from_then_on():
    assert tune.lowest_winning({0.5: 1.2, 0.75: 0.9, 1.0: 0.8}) == 0.75
    assert tune.lowest_winning({0.5: 0.9, 0.75: 1.1, 1.0: 0.8}) == 1.0  # not 0.5: it loses at 0.75
    assert tune.lowest_winning({0.5: 0.9, 1.0: 1.05}) == tune.NEVER


def test_the_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    where = tmp_path / "tune.json"
    where.write_text("previous")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tune.json, "dump", broken)
    with pytest.raises(OSError, match="disk full"):
        tune.write({"threads": {}, "measured": {}}, where)
    assert where.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["tune.json"]  # no temporary file left


@pytest.fixture
def quick(monkeypatch):
    """The measurements on two points each, so that the command runs in seconds."""
    monkeypatch.setattr(tune, "FILLS", (0.75, 1.0))
    monkeypatch.setattr(
        tune,
        "BLOCKS",
        {"attention_block_short": (64, (32, 64)), "attention_block_long": (320, (128, 256))},
    )
    monkeypatch.setattr(tune, "seconds", lambda fn, budget=0.0, repeats=1: _once(fn))


def _once(fn):
    import time

    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_minigrad_tune_writes_a_file_the_kernels_then_read(tuning_file, quick, capsys):
    assert main(["tune", "--threads", "1", "--out", str(tuning_file), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"written to {tuning_file}" in out and "1 thread(s)  conv_sliver_fill:" in out
    data = json.loads(tuning_file.read_text())
    assert data["machine"] == tuned.machine() and set(data["threads"]) == {"1"}
    assert set(data["threads"]["1"]) == {
        "conv_sliver_fill",
        "lstm_sliver_fill",
        "attention_block_short",
        "attention_block_long",
    }
    assert tuned.source() == tuning_file  # loaded at once: the file is this process's
    measured = data["measured"]["1"]["conv_sliver_fill"]
    assert set(measured["slivers / other, by fill"]) == {"0.75", "1.0"}


def test_an_interrupted_tune_leaves_the_previous_file(tuning_file, quick, monkeypatch, capsys):
    tuning_file.write_text("previous")
    calls = []

    def measure(counts, progress=None):
        calls.append(counts)
        raise KeyboardInterrupt

    monkeypatch.setattr(tune, "measure", measure)
    assert main(["tune", "--threads", "1", "--quiet"]) == 130
    assert "interrupted; nothing written" in capsys.readouterr().err
    assert tuning_file.read_text() == "previous" and calls == [[1]]


@pytest.mark.parametrize("given", ["one", "0", "1,99999"])
def test_bad_thread_counts_are_one_line(given, capsys):
    assert main(["tune", "--threads", given, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("--threads" in err or "thread counts must be" in err)
