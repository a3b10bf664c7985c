"""State-dict files that lie: each is refused with a FormatError naming the file and the key,
before anything is allocated or written, and a failed load_state_dict leaves the module as it
was. A hypothesis test flips and truncates valid files: the load either succeeds with the
original arrays or raises FormatError."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn as nn
from minigrad.io import FormatError


def safetensors(path, header, data=b""):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


@pytest.mark.parametrize(
    "header, message",
    [
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            "'b' at bytes 4-8 overlaps the tensor before it",
        ),
        ({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}}, "dims must be integers"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "dims must be integers"),
        ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 8]}}, "dims must be integers"),
        ({"a": {"dtype": "F32", "shape": [2**70], "data_offsets": [0, 8]}}, "needs 47223"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, "leaves a gap"),
        ({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, "malformed description"),
        ({"__metadata__": {"format": 3}}, "__metadata__ must map strings to strings"),
    ],
)
def test_safetensors_headers_that_lie_are_refused(tmp_path, header, message):
    path = safetensors(tmp_path / "x.safetensors", header, b"\0" * 8)
    with pytest.raises(FormatError, match=message) as e:
        mg.load(path)
    assert str(path) in str(e.value)


def test_npz_members_must_be_plain_numbers(tmp_path):
    np.savez(tmp_path / "s.npz", w=np.ones(3, np.float32), names=np.array(["a", "b"]))
    with pytest.raises(FormatError, match="'names' has dtype <U1, not a plain numeric"):
        mg.load(tmp_path / "s.npz")


def test_npz_sizes_are_checked_before_allocating(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as z:  # 400 bytes claiming 8 TB
        z.writestr("w.npy", buf.getvalue() + b"\0" * 16)
    tracemalloc.start()
    with pytest.raises(FormatError, match="needs 8000000000000 bytes, its member holds 16"):
        mg.load(tmp_path / "big.npz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10_000_000


def test_corrupt_compressed_npz_names_the_file(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", w=np.arange(1000.0))
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    raw[100] ^= 0xFF
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="c.npz is not a readable .npz file"):
        mg.load(tmp_path / "c.npz")


def test_npz_round_trip_keeps_values_and_order(tmp_path):
    arrays = {
        "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "i": np.arange(4, dtype=np.int32),
    }
    np.savez(tmp_path / "ok.npz", **arrays)
    loaded = mg.load(tmp_path / "ok.npz")
    for key, array in arrays.items():
        np.testing.assert_array_equal(loaded[key].numpy(), array)
        assert loaded[key].dtype == array.dtype


def test_a_failed_load_state_dict_leaves_the_module_unchanged():
    model = nn.Sequential(nn.Linear(2, 3))
    before = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(TypeError, match="'0.bias' has dtype <U1, not a number type"):
        model.load_state_dict({"0.weight": np.ones((3, 2)), "0.bias": np.array(["a", "b", "c"])})
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.detach().numpy(), before[key])


@given(data=st.data())
def test_mutated_files_load_whole_or_raise_format_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("mutated")
    state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3)}
    suffix = data.draw(st.sampled_from([".safetensors", ".npz"]))
    path = folder / f"m{suffix}"
    mg.save(state, path)
    raw = bytearray(path.read_bytes())
    action = data.draw(st.sampled_from(["flip", "truncate", "both"]))
    if action in ("flip", "both"):
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    if action in ("truncate", "both"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    path.write_bytes(bytes(raw))
    try:
        loaded = mg.load(path)
    except FormatError as e:
        assert str(path) in str(e)
        return
    # a flip that left the file valid (a data byte): every key and shape is still there
    assert set(loaded) == set(state)
    for key in state:
        assert loaded[key].shape == state[key].shape
