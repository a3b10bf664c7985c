"""minigrad.transformers without transformers installed: where from_pretrained looks, what it
refuses, the tokenizer's rules on hand-checked sentences, and a save/load round trip."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

import minigrad as mg
from minigrad import transformers as mgt
from minigrad.transformers import hub

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "hello",
    "world",
    "play",
    "##ing",
    "##ed",
    "cafe",
    ",",
    "!",
    "'",
    "t",
    "don",
    "un",
    "##aff",
    "##able",
]


def _folder(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    mg.manual_seed(0)
    config = mgt.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    mgt.BertForSequenceClassification(config).save_pretrained(path)
    mgt.BertTokenizer(path / "vocab.txt").save_pretrained(path)
    return path


def test_tokenizer_rules():
    tok = mgt.BertTokenizer({t: i for i, t in enumerate(VOCAB)})
    # lower-cased, accents stripped, punctuation split, greedy longest-first word pieces
    assert tok.tokenize("Hello, Wörld! Playing PLAYED Café") == [
        "hello",
        ",",
        "world",
        "!",
        "play",
        "##ing",
        "play",
        "##ed",
        "cafe",
    ]
    assert tok.tokenize("don't unaffable") == ["don", "'", "t", "un", "##aff", "##able"]
    assert tok.tokenize("zebra playz") == ["[UNK]", "[UNK]"]  # no full cut -> the whole word
    # control and zero-width characters vanish (joining words), no-break space splits
    assert tok.tokenize("hel\u200blo\x00 world\u00a0[SEP]") == ["hello", "world", "[SEP]"]
    assert tok.tokenize("h" * 101) == ["[UNK]"]
    enc = tok(["hello world", "playing"], padding=True, return_tensors="np")
    np.testing.assert_array_equal(enc.input_ids, [[2, 5, 6, 3], [2, 7, 8, 3]])
    short = tok("hello world playing", truncation=True, max_length=4)
    assert short["input_ids"] == [2, 5, 6, 3]
    assert tok.decode(tok.encode("playing, hello!"), skip_special_tokens=True) == "playing, hello!"
    with pytest.raises(ValueError, match="different lengths need padding=True"):
        tok(["hello", "hello world"], return_tensors="np")
    with pytest.raises(ValueError, match="pad_token '\\[PAD\\]' is not in the vocabulary"):
        mgt.BertTokenizer({"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 3})


def test_directory_and_cache_resolution(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "files")
    model = mgt.BertForSequenceClassification.from_pretrained(folder)
    # the safetensors header carries the metadata transformers wants
    raw = (folder / "model.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert header["__metadata__"] == {"format": "pt"}
    # the cache: HF_HOME/hub/models--org--name/snapshots/<commit>, chosen by refs/main
    repo = tmp_path / "home" / "hub" / "models--org--tiny"
    for commit in ("old", "new"):
        (repo / "snapshots" / commit).mkdir(parents=True)
        for f in folder.iterdir():
            os.symlink(f, repo / "snapshots" / commit / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("new\n")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.resolve("org/tiny", "config.json") == repo / "snapshots" / "new"
    assert hub.resolve("org/tiny", "config.json", revision="old") == repo / "snapshots" / "old"
    again = mgt.AutoModelForSequenceClassification.from_pretrained("org/tiny")
    ids = np.array([[2, 5, 6, 3]])
    np.testing.assert_array_equal(
        model(ids).logits.detach().numpy(), again(ids).logits.detach().numpy()
    )
    assert mgt.AutoTokenizer.from_pretrained("org/tiny").tokenize("Hello") == ["hello"]
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # wins over HF_HOME
    with pytest.raises(mgt.CheckpointNotFoundError, match="elsewhere/models--org--tiny"):
        mgt.BertConfig.from_pretrained("org/tiny")


def test_refusals(tmp_path):
    folder = _folder(tmp_path / "files")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="never loads pickle files"):
        mgt.BertForSequenceClassification.from_pretrained(folder)
    with pytest.raises(mgt.CheckpointNotFoundError, match="has no config.json"):
        mgt.BertModel.from_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match="hidden_size 10 is not a multiple of num_attention_heads 4"
    ):
        mgt.BertConfig(hidden_size=10, num_attention_heads=4)
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key'"):
        mgt.BertConfig(position_embedding_type="relative_key")
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        mg.save({"w": np.zeros(2, np.float32)}, tmp_path / "w.safetensors", metadata={"a": 1})
    model = mgt.BertModel(
        mgt.BertConfig(
            vocab_size=20,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            max_position_embeddings=4,
        )
    )
    with pytest.raises(ValueError, match="5 tokens exceed max_position_embeddings 4"):
        model(np.ones((1, 5), np.int64))
    with pytest.raises(ValueError, match="input_ids must be integers"):
        model(np.ones((1, 3), np.float32))
