"""Training checkpoints that lose nothing, written atomically.

A checkpoint is a directory ``checkpoint-<step>`` holding:

- ``model.safetensors``: the model's state dict;
- ``optimizer.safetensors``: the optimizer's per-parameter arrays (``state.<i>.<name>``);
- ``trainer_state.json``: the step and epoch, the optimizer's groups and scalar state, the
  scheduler's state, every random state (minigrad's global generator), the data loader's
  position in its epoch, and the log history.

- ``manifest.json``, written last: the size and SHA-256 of each of the files above.

It is first written to a hidden temporary directory (files fsynced), then renamed into place,
so a checkpoint either exists whole or not at all; temporary directories left by a save that
was killed are removed by the next save. Rotation renames a checkpoint aside before deleting
it, so a kill during rotation never leaves a visible ``checkpoint-N`` with part of its files.
``load_checkpoint`` validates everything before returning (every file against the manifest,
so a flipped byte is found; the JSON against its schema; a best-model path that leaves the
run's folder) and raises ``CheckpointError`` naming the file; ``latest_checkpoint`` falls back
to the newest one that loads, with a warning naming what was wrong with the others.
"""

from __future__ import annotations

import hashlib
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
MANIFEST = "manifest.json"
# what trainer_state.json must hold, and of which JSON types
_SCHEMA = {
    "step": int,
    "epoch": (int, float),
    "epoch_index": int,
    "loader": dict,
    "scheduler": dict,
    "rng": dict,
    "log_history": list,
    "best_metric": (int, float, type(None)),
    "best_model_checkpoint": (str, type(None)),
}


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
    remove_leftovers(directory)
    final = directory / f"{PREFIX}{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{PREFIX}{step}.", suffix=".tmp", dir=directory))
    try:
        save(model_state, tmp / "model.safetensors")
        state = dict(trainer_state, step=step)
        if optimizer_state is not None:
            arrays, meta = pack_optimizer(optimizer_state)
            save(arrays, tmp / "optimizer.safetensors")
            state["optimizer"] = meta
        _write_json(tmp / "trainer_state.json", state)
        _write_json(tmp / MANIFEST, {"files": {f.name: _digest(f) for f in sorted(tmp.iterdir())}})
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
    _verify_manifest(path)
    try:
        state = json.loads((path / "trainer_state.json").read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path}: trainer_state.json is corrupt ({e})") from None
    _check_schema(path, state)
    try:
        model = load(path / "model.safetensors")
        optimizer = None
        if "optimizer" in state:
            optimizer = unpack_optimizer(load(path / "optimizer.safetensors"), state["optimizer"])
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    return {"model": model, "optimizer": optimizer, "trainer_state": state}


def _write_json(path: Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())


def _digest(path: Path) -> dict:
    """The size and SHA-256 of a file, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}


def _verify_manifest(path: Path) -> None:
    """Every file the manifest lists is there with its size and SHA-256."""
    try:
        manifest = json.loads((path / MANIFEST).read_bytes().decode("utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"checkpoint {path}: {MANIFEST} is corrupt") from None
    for name in ("model.safetensors", "trainer_state.json"):
        if name not in files:
            raise CheckpointError(f"checkpoint {path}: {MANIFEST} does not list {name}")
    for name, expected in files.items():
        if Path(name).name != name:
            raise CheckpointError(f"checkpoint {path}: {MANIFEST} lists a path {name!r}")
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path}: {name} is missing")
        if _digest(file) != expected:
            raise CheckpointError(
                f"checkpoint {path}: {name} does not match its checksum in {MANIFEST} "
                "(the file was changed or damaged after it was written)"
            )


def _check_schema(path: Path, state: Any) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: trainer_state.json is not a JSON object")
    for key, kind in _SCHEMA.items():
        if key not in state:
            raise CheckpointError(f"checkpoint {path}: trainer_state.json has no {key!r}")
        if isinstance(state[key], bool) or not isinstance(state[key], kind):
            raise CheckpointError(
                f"checkpoint {path}: trainer_state.json's {key!r} is {state[key]!r}, of the "
                "wrong type"
            )
    optimizer = state.get("optimizer")
    if optimizer is not None and not (
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("param_groups"), list)
        and isinstance(optimizer.get("scalars"), dict)
    ):
        raise CheckpointError(f"checkpoint {path}: trainer_state.json's 'optimizer' is malformed")
    best = state["best_model_checkpoint"]
    if best is not None:
        run = path.resolve().parent
        if run not in Path(best).resolve().parents:
            raise CheckpointError(
                f"checkpoint {path}: best_model_checkpoint {best!r} is outside the run's "
                f"folder {run}"
            )


def remove_leftovers(directory: str | os.PathLike) -> list[Path]:
    """Remove what killed saves and rotations left behind in ``directory`` (hidden
    ``.checkpoint-*`` folders); returns what was removed."""
    removed = []
    for p in Path(directory).iterdir():
        if p.name.startswith(f".{PREFIX}") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


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
            # aside first, under a hidden name: a kill during the deletion leaves no visible
            # half checkpoint (the next save removes the rest)
            aside = p.with_name(f".{p.name}.deleting")
            os.replace(p, aside)
            shutil.rmtree(aside, ignore_errors=True)
            excess -= 1
