"""Every reader against mutated files: a valid file is saved, then bytes are flipped, cut off
or inserted, and the reader must either load it or raise its documented error (ValueError,
or CheckpointError for checkpoints), naming the file; never another exception."""

from __future__ import annotations

import gzip
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minigrad.data.datasets import CSVDataset, read_idx
from minigrad.data.text import BPETokenizer, Tokenizer
from minigrad.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def mutate(data, raw: bytes) -> bytes:
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1))
        if action == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[at:]
        else:
            raw[at:at] = bytes(data.draw(st.binary(min_size=1, max_size=8)))
    return bytes(raw)


def idx_file(folder):
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    path = folder / "t-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, 2, 3, 3) + images.tobytes())
    return path


@given(data=st.data())
def test_idx(tmp_path_factory, data):
    path = idx_file(tmp_path_factory.mktemp("idx"))
    path.write_bytes(mutate(data, path.read_bytes()))
    try:
        read_idx(path, 2051)
    except ValueError as e:
        assert str(path) in str(e)


@given(data=st.data())
def test_csv(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_bytes(b"a,b,label\n1,2.5,cat\n3,,dog\n4,5,cat\n")
    path.write_bytes(mutate(data, path.read_bytes()))
    try:
        CSVDataset(path, target="label", missing="drop")
    except ValueError as e:
        assert str(path) in str(e) or "TabularPreprocessor" in str(e)


@given(data=st.data())
def test_tokenizer(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("tok") / "t.json"
    BPETokenizer.train("hello hello world", 30).save(path)
    path.write_bytes(mutate(data, path.read_bytes()))
    try:
        Tokenizer.load(path)
    except ValueError as e:
        assert str(path) in str(e)


@given(data=st.data())
def test_checkpoint(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("ckpt")
    state = {
        "epoch": 1.0,
        "epoch_index": 1,
        "loader": {},
        "scheduler": {},
        "rng": {},
        "log_history": [],
        "best_metric": None,
        "best_model_checkpoint": None,
    }
    path = save_checkpoint(folder, 1, {"w": np.ones((2, 2), np.float32)}, None, state)
    name = data.draw(st.sampled_from(["model.safetensors", "trainer_state.json", "manifest.json"]))
    target = path / name
    target.write_bytes(mutate(data, target.read_bytes()))
    try:
        load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e)
