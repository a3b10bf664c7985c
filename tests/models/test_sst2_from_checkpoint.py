"""`minigrad train sst2-bert --from CHECKPOINT`: the SST-2 BERT recipe fine-tunes a Hugging
Face BERT checkpoint (here a tiny one written by minigrad.transformers in HF's layout)."""

from __future__ import annotations

import json
import string

import numpy as np
import pytest

import minigrad as mg
from minigrad import transformers as mgt
from models.cli import main
from models.recipes import run_recipe
from tests.conftest import SHARED_DATA


@pytest.fixture
def checkpoint(tmp_path):
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    mgt.BertTokenizer(folder / "vocab.txt").save_pretrained(folder)
    mg.manual_seed(0)
    config = mgt.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    mgt.BertModel(config).save_pretrained(folder)  # an encoder without a classifier
    return folder


def test_sst2_bert_starts_from_a_checkpoint(checkpoint, tmp_path):
    if not (SHARED_DATA / "sst2").exists():
        pytest.skip(f"{SHARED_DATA / 'sst2'} is not available")
    out = tmp_path / "run"
    report = run_recipe(
        "sst2-bert",
        out=str(out),
        data=str(SHARED_DATA),
        short=True,
        verbose=False,
        start_from=str(checkpoint),
    )
    assert 0.0 <= report["test_accuracy"] <= 1.0
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["model_type"] == "bert" and saved["architectures"] == [
        "BertForSequenceClassification"
    ]
    assert (out / "model" / "vocab.txt").read_text() == (checkpoint / "vocab.txt").read_text()
    start = mg.load(checkpoint / "model.safetensors")["embeddings.word_embeddings.weight"].numpy()
    trained = mg.load(out / "model" / "model.safetensors")
    end = trained["bert.embeddings.word_embeddings.weight"].numpy()
    # fine-tuned at 2e-5 for 80 steps: moved, but still the checkpoint's embeddings
    assert 0 < np.abs(end - start).max() < 0.01 < np.abs(start).max()
    # the run evaluates again and exports like any other
    assert main(["evaluate", str(out), "--data", str(SHARED_DATA)]) == 0
    pytest.importorskip("onnx", reason="export needs the optional onnx")
    assert main(["export", str(out), "--onnx"]) == 0
    assert (out / "model.onnx").stat().st_size > 0


def test_from_is_refused_clearly(tmp_path, capsys, monkeypatch):
    assert main(["train", "digits-cnn", "--from", str(tmp_path)]) == 2
    assert "--from works with sst2-bert only" in capsys.readouterr().err
    if not (SHARED_DATA / "sst2").exists():
        pytest.skip(f"{SHARED_DATA / 'sst2'} is not available")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    code = main(
        [
            "train",
            "sst2-bert",
            "--from",
            "bert-base-uncased",
            "--data",
            str(SHARED_DATA),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "vocab.txt for 'bert-base-uncased' is not on this machine" in err
    assert "Traceback" not in err
