"""Saving and loading state dicts: safetensors or .npz, never pickle, never half written.

``minigrad.save(state_dict, "model.safetensors")`` / ``minigrad.load(path)``. The format is
chosen by the suffix. Files are written to a temporary file in the same folder, flushed to
disk and renamed over the target, so a crash leaves either the old file or the new one.

The safetensors layout (the Hugging Face format, readable by its library and by PyTorch
through it): 8 bytes little-endian header length N, N bytes of JSON
``{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}``, then the
raw little-endian C-order bytes. It is written here directly (a few lines) rather than
through the ``safetensors`` package, so no dependency is needed. Loading checks everything
(header, dtypes, offsets, truncation) and names the file and key in any error.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.tensor import Tensor

_DTYPES = {
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
    "I8": np.int8,
    "U8": np.uint8,
    "I16": np.int16,
    "I32": np.int32,
    "I64": np.int64,
    "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def _arrays(obj: Any) -> OrderedDict:
    if not isinstance(obj, dict):
        raise TypeError(f"save: expected a state dict (name -> tensor), got {type(obj).__name__}")
    out: OrderedDict = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be strings, got {key!r}")
        array = value.data if isinstance(value, Tensor) else value
        if not isinstance(array, np.ndarray):
            raise TypeError(f"save: {key!r} is a {type(value).__name__}, not a tensor or array")
        if array.dtype not in _NAMES:
            raise TypeError(f"save: {key!r} has unsupported dtype {array.dtype}")
        # not np.ascontiguousarray: it turns a 0-d array into a 1-d one
        out[key] = array if array.flags.c_contiguous else array.copy()
    return out


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(obj: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Save a state dict to ``path`` (``.safetensors`` or ``.npz``), atomically. ``metadata``
    (strings only) goes into a safetensors header's ``__metadata__``; Hugging Face's loader
    wants ``{"format": "pt"}`` there."""
    path = Path(path)
    arrays = _arrays(obj)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise TypeError(f"save: metadata must map strings to strings, got {metadata!r}")
    if path.suffix == ".safetensors":
        header, offset = ({"__metadata__": dict(metadata)} if metadata else {}), 0
        for key, a in arrays.items():
            header[key] = {
                "dtype": _NAMES[a.dtype],
                "shape": list(a.shape),
                "data_offsets": [offset, offset + a.nbytes],
            }
            offset += a.nbytes
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # pad so the data starts 8-byte aligned

        def write(f):
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for a in arrays.values():
                f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())

    elif path.suffix == ".npz":

        def write(f):
            np.savez(f, **arrays)

    else:
        raise ValueError(
            f"save: unknown format {path.suffix!r} for {path} (use .safetensors or .npz)"
        )
    _atomic_write(path, write)


def load(path: str | os.PathLike) -> OrderedDict:
    """Load a state dict saved by ``save`` (or any safetensors/.npz file of arrays)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no file at {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return OrderedDict((k, Tensor._from_array(data[k].copy())) for k in data.files)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise ValueError(f"load: {path} is not a readable .npz file ({e})") from None
    raise ValueError(f"load: unknown format {path.suffix!r} for {path} (use .safetensors or .npz)")


def _load_safetensors(path: Path) -> OrderedDict:
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ValueError(f"load: {path} is truncated ({len(raw)} bytes, not even a header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(_MAX_HEADER, len(raw) - 8):
        raise ValueError(
            f"load: {path} has a header length of {n} bytes but the file has {len(raw)}"
        )
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"load: {path} has a malformed header ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"load: {path} has a malformed header (not a JSON object)")
    data = memoryview(raw)[8 + n :]
    out: OrderedDict = OrderedDict()
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"load: {path}: entry {key!r} has a malformed description {info!r}"
            ) from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected or begin < 0:
            raise ValueError(
                f"load: {path}: {key!r} of shape {shape} and dtype {info['dtype']} needs "
                f"{expected} bytes, its offsets give {end - begin}"
            )
        if end > len(data):
            raise ValueError(
                f"load: {path} is truncated: {key!r} ends at byte {end} of the data but only "
                f"{len(data)} bytes are there"
            )
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        out[key] = Tensor._from_array(array.astype(dtype.newbyteorder("="), copy=True))
    return out
