"""`minigrad explain SCRIPT.py` and `minigrad explain-prediction RUN_DIR`."""

import json
import re

import numpy as np
import pytest

import minigrad as mg
from models.cli import main
from models.explain import color_tokens

SCRIPT = """
import sys

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

mg.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
opt = mg.optim.SGD(model.parameters(), lr=0.1)
x, y = mg.randn(16, 4), mg.randint(0, 3, (16,))
assert sys.argv[1:] == ["--steps", "3"], sys.argv
for step in range(1000):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
raise SystemExit("the script should have been stopped at its first backward()")
"""


def test_explain_script_writes_the_page_of_the_first_backward(tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    page = tmp_path / "page.html"
    assert main(["explain", "--out", str(page), str(script), "--steps", "3"]) == 0
    assert "10 nodes" in capsys.readouterr().out
    data = json.loads(re.search(r"const DATA = (.*);\n", page.read_text()).group(1))
    labels = [n["label"] for n in data["nodes"]]
    assert {"0.weight", "0.bias", "2.weight", "2.bias", "CrossEntropyRows"} <= set(labels)
    assert "train.py:14" in " ".join(n["text"] for n in data["nodes"])  # the model(x) line
    assert mg.Tensor.backward.__name__ == "backward"  # put back


def test_explain_script_errors_are_one_line(tmp_path, capsys):
    assert main(["explain", str(tmp_path / "missing.py")]) == 2
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\nraise ValueError('boom')\n")
    assert main(["explain", str(bad)]) == 2
    quiet = tmp_path / "quiet.py"
    quiet.write_text("x = 1\n")
    assert main(["explain", str(quiet)]) == 2
    err = capsys.readouterr().err
    assert "no script" in err and "missing.py" in err
    assert "raised ValueError: boom at" in err and "bad.py:2" in err
    assert "without calling backward()" in err
    assert "Traceback" not in err


def _digits_run(tmp_path):
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (extra: datasets)")
    from models.vision import DigitsCNN

    mg.manual_seed(0)
    model = DigitsCNN()
    run = tmp_path / "run"
    model.save_pretrained(run / "model")
    (run / "report.json").write_text(json.dumps({"recipe": "digits-cnn"}))
    return run


def test_explain_prediction_saves_the_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the PNG is drawn with matplotlib (extra: plot)")
    run = _digits_run(tmp_path)
    assert main(["explain-prediction", str(run), "--index", "3"]) == 0
    png = run / "explain-3.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "predicted" in capsys.readouterr().out


def test_explain_prediction_errors_are_one_line(tmp_path, capsys):
    run = _digits_run(tmp_path)
    assert main(["explain-prediction", str(run), "--index", "100000"]) == 2
    assert main(["explain-prediction", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "--index 100000 is out of range: the test set has 359 items" in err
    assert "report.json not found" in err and "Traceback" not in err


def test_color_tokens_marks_sign_and_strength():
    text = color_tokens(["good", "bad", "film"], np.array([1.0, -1.0, 0.0]))
    assert "\x1b[48;5;82m\x1b[30m good " in text  # strongest for
    assert "\x1b[48;5;196m\x1b[30m bad " in text  # strongest against
    assert "\x1b[48;5;231m\x1b[30m film " in text  # neutral


def test_explain_prediction_colours_the_tokens_of_a_text_run(tmp_path, capsys):
    from models.recipes import MissingData, data_dir
    from models.recipes.text_classification import sst2
    from models.text import KimCNN

    try:
        tokenizer = sst2(data_dir(None), False, 0).tokenizer
    except MissingData as e:
        pytest.skip(f"SST-2 is not in the data folder: {e}")
    mg.manual_seed(0)
    run = tmp_path / "run"
    KimCNN(vocab_size=tokenizer.vocab_size, num_classes=2).save_pretrained(run / "model")
    tokenizer.save(run / "tokenizer.json")
    (run / "report.json").write_text(json.dumps({"recipe": "sst2-kimcnn"}))
    assert main(["explain-prediction", str(run), "--index", "2"]) == 0
    out = capsys.readouterr().out
    assert "sst2-kimcnn test #2" in out
    assert out.count("\x1b[48;5;") == len(re.findall(r"\x1b\[30m ", out)) > 5
