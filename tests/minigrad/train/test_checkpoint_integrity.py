"""Checkpoints exist whole or not at all, and a damaged one is never resumed from: each file
is checked against the manifest's SHA-256, trainer_state.json against its schema, and paths
it names must stay inside the run's folder. Kills at random moments of saving and rotating
leave only whole checkpoints visible, and the next save cleans up what they left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rotate_checkpoints,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[3]

STATE = {
    "epoch": 1.0,
    "epoch_index": 1,
    "loader": {"batches_yielded": 0, "epoch_seed": None},
    "scheduler": {},
    "rng": {},
    "log_history": [],
    "best_metric": None,
    "best_model_checkpoint": None,
}


def save(folder, step, **state):
    model = {"w": np.full((4, 3), float(step), np.float32)}
    return save_checkpoint(folder, step, model, None, {**STATE, **state})


def test_a_flipped_byte_in_tensor_data_is_found(tmp_path):
    good, bad = save(tmp_path, 1), save(tmp_path, 2)
    raw = bytearray((bad / "model.safetensors").read_bytes())
    raw[-3] ^= 0x01  # inside the last tensor's data: a valid file with wrong weights
    (bad / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="model.safetensors does not match its checksum"):
        load_checkpoint(bad)
    with pytest.warns(UserWarning, match="checkpoint-2: model.safetensors does not match"):
        path, loaded = latest_checkpoint(tmp_path)
    assert path == good and loaded["model"]["w"].numpy()[0, 0] == 1.0


def test_a_damaged_or_foreign_trainer_state_falls_back(tmp_path):
    save(tmp_path, 1)
    second = save(tmp_path, 2)
    raw = bytearray((second / "trainer_state.json").read_bytes())
    raw[5] = 0xFF  # not UTF-8 any more
    (second / "trainer_state.json").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="trainer_state.json does not match its checksum"):
        load_checkpoint(second)
    third = save(tmp_path, 3)
    # a wrong schema written with a valid manifest (as a bug or a hand edit would) is refused
    state = json.loads((third / "trainer_state.json").read_text())
    state["step"] = "three"
    (third / "trainer_state.json").write_text(json.dumps(state))
    _rewrite_manifest(third)
    with pytest.raises(CheckpointError, match="'step' is 'three', of the wrong type"):
        load_checkpoint(third)
    with pytest.warns(UserWarning):
        path, _ = latest_checkpoint(tmp_path)
    assert path.name == "checkpoint-1"


def test_paths_in_the_metadata_stay_inside_the_run(tmp_path):
    outside = save(tmp_path, 1, best_model_checkpoint=str(tmp_path.parent / "elsewhere"))
    with pytest.raises(CheckpointError, match="best_model_checkpoint .* is outside the run"):
        load_checkpoint(outside)
    inside = save(tmp_path, 2, best_model_checkpoint=str(tmp_path / "checkpoint-1"))
    assert load_checkpoint(inside)["trainer_state"]["best_model_checkpoint"].endswith("-1")


def test_leftovers_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    save(tmp_path, 1)
    (tmp_path / ".checkpoint-2.abc.tmp").mkdir()  # a save killed half way
    (tmp_path / ".checkpoint-0.deleting").mkdir()  # a rotation killed half way
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-1"]
    save(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "checkpoint-2"]


def test_a_checkpoint_without_its_manifest_is_not_trusted(tmp_path):
    path = save(tmp_path, 1)
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest.json is missing"):
        load_checkpoint(path)


def _rewrite_manifest(path: Path) -> None:
    from minigrad.train.checkpoint import _digest

    files = {f.name: _digest(f) for f in sorted(path.iterdir()) if f.name != "manifest.json"}
    (path / "manifest.json").write_text(json.dumps({"files": files}))


SAVER = """
import sys
import numpy as np
from minigrad.train.checkpoint import rotate_checkpoints, save_checkpoint
folder = sys.argv[1]
state = {state!r}
step = 0
while True:
    step += 1
    model = {{"w": np.full((64, 64), float(step), np.float32)}}
    save_checkpoint(folder, step, model, None, dict(state))
    rotate_checkpoints(folder, 2)
    print(step, flush=True)
"""


def kill_at_random_moments(code: str, target: Path, rng, kills: int, check) -> None:
    """Start ``code`` (a loop that writes to ``target``) ``kills`` times, SIGKILL it at a
    random moment after its first write, and ``check()`` what it left."""
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(target)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        proc.stdout.readline()  # it has written once
        time.sleep(float(rng.uniform(0.0, 0.05)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
        check()


def kill_during_saves(folder: Path, rng: np.random.Generator, kills: int) -> None:
    def every_visible_checkpoint_is_whole():
        for path in list_checkpoints(folder):
            load_checkpoint(path)

    kill_at_random_moments(
        SAVER.format(state=STATE), folder, rng, kills, every_visible_checkpoint_is_whole
    )


def test_sigkill_at_random_moments_leaves_only_whole_checkpoints(tmp_path):
    kill_during_saves(tmp_path, np.random.default_rng(0), kills=4)
    assert list_checkpoints(tmp_path)
    save(tmp_path, 10_000)
    rotate_checkpoints(tmp_path, 2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_sigkill_many_times(tmp_path):
    kill_during_saves(tmp_path, np.random.default_rng(1), kills=60)


SAVE_LOOP = """
import sys
import numpy as np
import minigrad as mg
path = sys.argv[1]
step = 0
while True:
    step += 1
    mg.save({"w": np.full((256, 256), float(step), np.float32)}, path)
    print(step, flush=True)
"""


def test_sigkill_during_save_leaves_the_old_file_or_the_new(tmp_path):
    import minigrad as mg

    target = tmp_path / "model.safetensors"

    def whole():  # one step's values throughout
        w = mg.load(target)["w"].numpy()
        assert w.shape == (256, 256) and (w == w[0, 0]).all()

    kill_at_random_moments(SAVE_LOOP, target, np.random.default_rng(2), 4, whole)
