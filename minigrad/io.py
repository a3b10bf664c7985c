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
import math
import os
import struct
import tempfile
import zipfile
import zlib
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
# DEFLATE cannot shrink data by more than about 1032:1, so a compressed .npz member that
# claims more than this many bytes per compressed byte is lying about its size
_MAX_DEFLATE_RATIO = 1100


class FormatError(ValueError):
    """A file that is not a valid state dict: the message names the file and the key."""


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
        return _load_npz(path)
    raise ValueError(f"load: unknown format {path.suffix!r} for {path} (use .safetensors or .npz)")


def _load_npz(path: Path) -> OrderedDict:
    """A .npz of plain numeric arrays: every member's .npy header (dtype, shape) is read and
    checked against the member's size, and the size against the file's, before any array is
    allocated; object, string and structured arrays are refused."""
    out: OrderedDict = OrderedDict()
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if not info.filename.endswith(".npy"):
                    raise FormatError(f"load: {path}: member {info.filename!r} is not a .npy array")
                stored = info.compress_type == zipfile.ZIP_STORED
                limit = info.compress_size * (1 if stored else _MAX_DEFLATE_RATIO) + 4096
                if info.file_size > limit:
                    raise FormatError(
                        f"load: {path}: {key!r} claims {info.file_size} bytes, more than its "
                        f"{info.compress_size} stored bytes can hold"
                    )
                with archive.open(info) as f:
                    dtype, shape, fortran, header = _npy_header(path, key, f)
                    nbytes = math.prod(shape) * dtype.itemsize
                    if header + nbytes != info.file_size:
                        raise FormatError(
                            f"load: {path}: {key!r} of shape {shape} and dtype {dtype} needs "
                            f"{nbytes} bytes, its member holds {info.file_size - header}"
                        )
                    raw = f.read(nbytes)
                if len(raw) != nbytes:
                    raise FormatError(f"load: {path}: {key!r} is truncated")
                order = "F" if fortran else "C"
                array = np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)
                out[key] = Tensor._from_array(
                    np.array(array, dtype=dtype.newbyteorder("="), order="C")
                )
    except FormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
        raise FormatError(f"load: {path} is not a readable .npz file ({e})") from None
    return out


def _npy_header(path: Path, key: str, f) -> tuple[np.dtype, tuple, bool, int]:
    """The dtype, shape, order and header length of a .npy stream, refusing anything but
    plain numeric or boolean arrays."""
    try:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(f, max_header_size=10_000)
    except ValueError as e:
        raise FormatError(f"load: {path}: {key!r} has a malformed .npy header ({e})") from None
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields is not None:
        raise FormatError(
            f"load: {path}: {key!r} has dtype {dtype}, not a plain numeric or boolean one"
        )
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise FormatError(f"load: {path}: {key!r} has an invalid shape {shape}")
    header = f.tell() if hasattr(f, "tell") else 0
    return dtype, tuple(shape), fortran, header


def _load_safetensors(path: Path) -> OrderedDict:
    raw = path.read_bytes()
    if len(raw) < 8:
        raise FormatError(f"load: {path} is truncated ({len(raw)} bytes, not even a header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(_MAX_HEADER, len(raw) - 8):
        raise FormatError(
            f"load: {path} has a header length of {n} bytes but the file has {len(raw)}"
        )
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"load: {path} has a malformed header ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(f"load: {path} has a malformed header (not a JSON object)")
    data = memoryview(raw)[8 + n :]
    out: OrderedDict = OrderedDict()
    entries = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in info.items()
            ):
                raise FormatError(f"load: {path}: __metadata__ must map strings to strings")
            continue
        if not (isinstance(info, dict) and info.get("dtype") in _DTYPES):
            raise FormatError(f"load: {path}: entry {key!r} has a malformed description {info!r}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(_natural(d) for d in shape)):
            raise FormatError(
                f"load: {path}: {key!r} has shape {shape!r}; dims must be integers >= 0"
            )
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_natural, offsets))):
            raise FormatError(
                f"load: {path}: {key!r} has data_offsets {offsets!r}; expected [begin, end]"
            )
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        begin, end = offsets
        expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if end - begin != expected:
            raise FormatError(
                f"load: {path}: {key!r} of shape {tuple(shape)} and dtype {info['dtype']} needs "
                f"{expected} bytes, its offsets give {end - begin}"
            )
        if end > len(data):
            raise FormatError(
                f"load: {path} is truncated: {key!r} ends at byte {end} of the data but only "
                f"{len(data)} bytes are there"
            )
        entries.append((begin, end, key, dtype, tuple(shape)))
    covered = 0  # the tensors must tile the data: no overlap, no hole
    for begin, end, key, _, _ in sorted(entries):
        if begin != covered:
            what = "overlaps the tensor before it" if begin < covered else "leaves a gap"
            raise FormatError(f"load: {path}: {key!r} at bytes {begin}-{end} {what}")
        covered = end
    for begin, end, key, dtype, shape in entries:
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        out[key] = Tensor._from_array(array.astype(dtype.newbyteorder("="), copy=True))
    return out


def _natural(value: Any) -> bool:
    """An integer >= 0 (JSON's true and false and 2.0 are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
