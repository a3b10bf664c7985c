"""Exact resume: a training run killed with SIGKILL part-way and resumed from its last
checkpoint ends with parameters bit-identical to an uninterrupted run with the same seed.
Both runs are real subprocesses (tests/minigrad/train/resume_job.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.train.checkpoint import list_checkpoints

pytest.importorskip("sklearn")

JOB = Path(__file__).with_name("resume_job.py")
ROOT = Path(__file__).resolve().parents[3]


def run(out, *flags, **kwargs):
    return subprocess.run(
        [sys.executable, str(JOB), str(out), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kwargs,
    )


def test_killed_run_resumes_bit_identically(tmp_path):
    reference = run(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    steps = int(reference.stdout.split()[-1])

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(JOB), str(out), "--slow"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    # An epoch is 10 optimizer steps (19 batches of 32, accumulated in pairs); checkpoints
    # come every 4 steps, so checkpoint-12 is in the middle of the second epoch. Kill at 14.
    for line in proc.stdout:
        if line.strip() == "step 14":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = list_checkpoints(out)
    assert [p.name for p in saved] == ["checkpoint-8", "checkpoint-12"]  # save_total_limit 2
    assert not (out / "final.safetensors").exists()

    resumed = run(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert int(resumed.stdout.split()[-1]) == steps
    a = mg.load(tmp_path / "reference" / "final.safetensors")
    b = mg.load(out / "final.safetensors")
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k].data, b[k].data, err_msg=k)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    out = tmp_path / "run"
    first = run(out)
    assert first.returncode == 0, first.stderr[-3000:]
    newest = list_checkpoints(out)[-1]
    data = (newest / "model.safetensors").read_bytes()
    (newest / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    from minigrad.train import CheckpointError, latest_checkpoint, load_checkpoint

    with pytest.raises(CheckpointError, match="model.safetensors does not match its checksum"):
        load_checkpoint(newest)
    with pytest.warns(UserWarning, match="skipping a broken checkpoint"):
        path, _ = latest_checkpoint(out)
    assert path == list_checkpoints(out)[-2]
