"""Every zoo model exported by minigrad.onnx runs in ONNX Runtime and gives minigrad's outputs
within 1e-5 (float32) at two batch sizes, from one file with a dynamic batch dimension.
Needs the optional onnx and onnxruntime (pip install 'minigrad[onnx]')."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the exporter builds and checks graphs with onnx")
ort = pytest.importorskip("onnxruntime", reason="the oracle is ONNX Runtime")

import minigrad as mg  # noqa: E402
import minigrad.onnx  # noqa: E402
from minigrad import transformers as mgt  # noqa: E402
from models import zoo  # noqa: E402

TOL = 1e-5


def _floats(*shape):
    return lambda rng, b: (rng.standard_normal((b, *shape)).astype(np.float32),)


def _ids(vocab, t):
    return lambda rng, b: (rng.integers(0, vocab, (b, t)),)


def _ids_and_mask(vocab, t, types=False):
    def make(rng, b):
        ids = rng.integers(1, vocab, (b, t))
        lengths = rng.integers(2, t + 1, (b, 1))
        lengths[0] = t  # one full row, the others padded
        mask = (np.arange(t)[None] < lengths).astype(np.int64)
        ids = ids * mask
        return (ids, mask, (np.arange(t)[None] >= t // 2).astype(np.int64) * mask)[: 2 + types]

    return make


def _hf_bert(cls=mgt.BertForSequenceClassification):
    config = mgt.BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=24,
        num_labels=3,
    )
    return cls(config)


CASES = {
    "MLP": (lambda: zoo.MLP(), _floats(1, 28, 28), "input"),
    "LeNet5": (lambda: zoo.LeNet5(), _floats(1, 28, 28), "input"),
    "DigitsCNN": (lambda: zoo.DigitsCNN(), _floats(1, 8, 8), "input"),
    "MNIST1DLinear": (lambda: zoo.MNIST1DLinear(), _floats(40), "input"),
    "MNIST1DMLP": (lambda: zoo.MNIST1DMLP(), _floats(40), "input"),
    "MNIST1DCNN": (lambda: zoo.MNIST1DCNN(), _floats(40), "input"),
    "MNIST1DGRU": (lambda: zoo.MNIST1DGRU(), _floats(40), "input"),
    "CharLSTM": (lambda: zoo.CharLSTM(), _ids(65, 20), "input_ids"),
    "GPT": (lambda: zoo.GPT(context=32), _ids(65, 20), "input_ids"),
    "BertForSequenceClassification": (
        lambda: zoo.BertForSequenceClassification(vocab_size=200, context=32, width=32),
        _ids_and_mask(200, 16),
        "input_ids",
    ),
    "transformers.BertForSequenceClassification": (
        _hf_bert,
        _ids_and_mask(60, 16, True),
        "input_ids",
    ),
    "transformers.BertForTokenClassification": (
        lambda: _hf_bert(mgt.BertForTokenClassification),
        _ids_and_mask(60, 16, True),
        "input_ids",
    ),
}


def _reference(model, inputs):
    with mg.no_grad():
        out = model(*[mg.tensor(a) for a in inputs])
    out = out["logits"] if isinstance(out, dict) else out
    return out.numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_zoo_model_runs_in_onnx_runtime_with_the_same_outputs(name, tmp_path):
    make_model, make_inputs, first_input = CASES[name]
    mg.manual_seed(0)
    model = make_model()
    model.eval()
    rng = np.random.default_rng(1)
    path = mg.onnx.export(model, make_inputs(rng, 2), tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    assert inputs[0].name == first_input and inputs[0].shape[0] == "batch"
    assert session.get_outputs()[0].name == "output"
    for batch in (1, 5):  # neither is the example's batch of 2
        feed = make_inputs(rng, batch)
        (got,) = session.run(None, {i.name: a for i, a in zip(inputs, feed)})
        expected = _reference(model, feed)
        assert got.shape == expected.shape and got.shape[0] == batch
        np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_padding_changes_nothing_in_the_exported_bert(tmp_path):
    """The attention mask is an input of the graph, not a constant of the example."""
    mg.manual_seed(0)
    model = zoo.BertForSequenceClassification(vocab_size=50, context=16, width=32).eval()
    ids = np.array([[5, 6, 7, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    path = mg.onnx.export(model, (ids, mask), tmp_path / "bert.onnx")
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    short = s.run(None, {"input_ids": ids[:, :3], "attention_mask": mask[:, :3]})[0]
    padded = s.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(short, padded, atol=TOL, rtol=0)


def test_clear_errors(tmp_path, monkeypatch):
    class Odd(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = mg.nn.Sequential(mg.nn.Linear(3, 3), mg.nn.Softplus())

        def forward(self, x):
            return self.body(x)

    with pytest.raises(NotImplementedError, match="Odd has no ONNX mapping"):
        mg.onnx.export(Odd(), np.zeros((2, 3), np.float32), tmp_path / "odd.onnx")
    seq = mg.nn.Sequential(mg.nn.Linear(3, 3), mg.nn.Softplus())
    with pytest.raises(NotImplementedError, match="Softplus has no ONNX mapping"):
        mg.onnx.export(seq, np.zeros((2, 3), np.float32), tmp_path / "seq.onnx")
    assert not (tmp_path / "seq.onnx").exists()
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'minigrad\[onnx\]'"):
        mg.onnx.export(zoo.MNIST1DLinear(), np.zeros((2, 40), np.float32), tmp_path / "x.onnx")


def test_minigrad_export_command_writes_a_runs_model(tmp_path, capsys):
    from models.cli import main

    run = tmp_path / "run"
    mg.manual_seed(0)
    model = zoo.DigitsCNN().eval()
    model.save_pretrained(run / "model")  # what `minigrad train digits-cnn` leaves in model/
    assert main(["export", str(run), "--onnx"]) == 0
    assert "model.onnx" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    s = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(s.run(None, {"input": x})[0], _reference(model, (x,)), atol=TOL)
    # one line, no traceback, for a user's mistake
    assert main(["export", str(tmp_path / "nothing"), "--onnx"]) == 2
    assert main(["export", str(run)]) == 2
    zoo.KimCNN(vocab_size=30).save_pretrained(tmp_path / "kim" / "model")
    assert main(["export", str(tmp_path / "kim"), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert "model/config.json not found; train first" in err
    assert "say which format" in err and "a KimCNN has no ONNX export yet" in err
