"""minigrad.save / minigrad.load: both formats, atomic writes, and damaged files refused."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_round_trip_of_every_dtype(tmp_path, suffix):
    sd = {
        "f32": mg.randn(3, 4),
        "f64": mg.randn(2, dtype=mg.float64),
        "i64": mg.arange(5),
        "b": mg.tensor([True, False]),
        "scalar": mg.tensor(1.5),
        "empty": mg.zeros(0, 3),
    }
    path = tmp_path / f"state{suffix}"
    mg.save(sd, path)
    back = mg.load(path)
    assert list(back) == list(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype and back[k].shape == sd[k].shape
        np.testing.assert_array_equal(back[k].data, sd[k].data)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_a_module_restored_from_file_gives_the_same_outputs(tmp_path):
    a = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    mg.save(a.state_dict(), tmp_path / "m.safetensors")
    b = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    b.load_state_dict(mg.load(tmp_path / "m.safetensors"))
    x = mg.randn(2, 1, 4, 4)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "m.safetensors"
    mg.save({"w": mg.ones(2)}, path)
    with pytest.raises(TypeError, match="not a tensor or array"):
        mg.save({"w": mg.ones(2), "bad": "text"}, path)
    np.testing.assert_array_equal(mg.load(path)["w"].data, [1.0, 1.0])


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    mg.save({"weight": mg.ones(4, 4)}, path)
    raw = path.read_bytes()
    (tmp_path / "short.safetensors").write_bytes(raw[:-10])
    with pytest.raises(
        ValueError, match=r"short.safetensors is truncated: 'weight' ends at byte 64"
    ):
        mg.load(tmp_path / "short.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(raw[:5])
    with pytest.raises(ValueError, match="truncated"):
        mg.load(tmp_path / "tiny.safetensors")
    (tmp_path / "header.safetensors").write_bytes(struct.pack("<Q", 10) + b"{not json}" + raw[8:])
    with pytest.raises(ValueError, match="malformed header"):
        mg.load(tmp_path / "header.safetensors")
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 10**9) + raw[8:])
    with pytest.raises(ValueError, match="header length of 1000000000 bytes"):
        mg.load(tmp_path / "huge.safetensors")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        mg.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="no file at"):
        mg.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="unknown format '.pt'"):
        mg.save({"w": mg.ones(1)}, tmp_path / "m.pt")


def test_wrong_shape_for_the_module_is_refused_and_module_unchanged(tmp_path):
    mg.save({"weight": mg.ones(3, 5), "bias": mg.ones(3)}, tmp_path / "m.npz")
    lin = nn.Linear(4, 3)
    before = lin.weight.data.copy()
    with pytest.raises(
        ValueError,
        match=r"'weight' has shape \(3, 5\) in the state dict but \(3, 4\) in the module",
    ):
        lin.load_state_dict(mg.load(tmp_path / "m.npz"))
    np.testing.assert_array_equal(lin.weight.data, before)
