"""Training checkpoints that lose nothing, written atomically.

A checkpoint is a directory ``checkpoint-<step>`` holding:

- ``model.safetensors``: the model's state dict;
- ``optimizer.safetensors``: the optimizer's per-parameter arrays (``state.<i>.<name>``);
- ``trainer_state.json``: the step and epoch, the optimizer's groups and scalar state, the
  scheduler's state, every random state (minigrad's global generator), the data loader's
  position in its epoch, and the log history.

It is first written to a hidden temporary directory (files fsynced), then renamed into place,
so a checkpoint either exists whole or not at all. ``load_checkpoint`` validates everything
before returning (a truncated safetensors file or broken JSON raises ``CheckpointError``), and
``latest_checkpoint`` falls back to the newest one that loads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.io import load, save
from minigrad.tensor import Tensor

PREFIX = "checkpoint-"


class CheckpointError(ValueError):
    """A checkpoint that is missing a file, truncated or corrupt."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pack_optimizer(state_dict: dict) -> tuple[dict[str, Tensor], dict]:
    """Split an optimizer state dict into arrays (for safetensors) and JSON."""
    arrays, scalars = {}, {}
    for i, entry in state_dict["state"].items():
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"state.{i}.{name}"] = Tensor._from_array(value)
            else:
                scalars.setdefault(str(i), {})[name] = value
    return arrays, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unpack_optimizer(arrays: dict[str, Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, t in arrays.items():
        _, i, name = key.split(".", 2)
        state.setdefault(int(i), {})[name] = t.data
    for i, entry in meta["scalars"].items():
        state.setdefault(int(i), {}).update(entry)
    groups = [
        {k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    model_state: dict,
    optimizer_state: dict | None,
    trainer_state: dict,
) -> Path:
    """Write ``<directory>/checkpoint-<step>`` atomically; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{PREFIX}{step}.", suffix=".tmp", dir=directory))
    try:
        save(model_state, tmp / "model.safetensors")
        state = dict(trainer_state, step=step)
        if optimizer_state is not None:
            arrays, meta = pack_optimizer(optimizer_state)
            save(arrays, tmp / "optimizer.safetensors")
            state["optimizer"] = meta
        with open(tmp / "trainer_state.json", "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again: replace it
            old = directory / f".{PREFIX}{step}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint: {'model': state dict, 'optimizer': state dict or None,
    'trainer_state': dict}. Raises CheckpointError naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with open(path / "trainer_state.json") as f:
            state = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: trainer_state.json is missing") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path}: trainer_state.json is corrupt ({e})") from None
    try:
        model = load(path / "model.safetensors")
        optimizer = None
        if "optimizer" in state:
            optimizer = unpack_optimizer(load(path / "optimizer.safetensors"), state["optimizer"])
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    return {"model": model, "optimizer": optimizer, "trainer_state": state}


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Completed checkpoints in ``directory``, oldest step first (temporary ones ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = re.fullmatch(rf"{PREFIX}(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, with its contents; a broken newer one is reported
    with a warning and skipped."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as e:
            warnings.warn(f"skipping a broken checkpoint: {e}", stacklevel=2)
    return None


def rotate_checkpoints(
    directory: str | os.PathLike, limit: int | None, keep: Path | None = None
) -> None:
    """Delete the oldest checkpoints beyond ``limit``; never the newest, nor ``keep`` (the
    best model's)."""
    if not limit or limit <= 0:
        return
    checkpoints = list_checkpoints(directory)
    protected = {checkpoints[-1]} if checkpoints else set()
    if keep is not None:
        protected.add(Path(keep))
    excess = len(checkpoints) - max(limit, len(protected))
    for p in checkpoints:
        if excess <= 0:
            break
        if p not in protected:
            shutil.rmtree(p)
            excess -= 1
