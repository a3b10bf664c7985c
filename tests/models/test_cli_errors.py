"""The command's answer to a user's mistake is one line on stderr and exit status 2, never a
traceback; --debug shows the traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models.cli import main
from tests.conftest import ROOT


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_out_naming_a_file_or_an_unwritable_place(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    args = ["train", "digits-cnn", "--epochs", "1", "--quiet", "--out"]
    assert main([*args, str(tmp_path / "afile" / "run")]) == 2
    assert "Not a directory" in one_line(capsys)
    assert main([*args, "/proc/minigrad-run"]) == 2
    assert "/proc/minigrad-run" in one_line(capsys)


def test_corrupt_or_foreign_run_folders(tmp_path, capsys):
    (tmp_path / "report.json").write_bytes(b"\xff\xfe{")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "report.json is not valid JSON" in one_line(capsys)
    (tmp_path / "report.json").write_text(json.dumps({"recipe": "no-such-recipe"}))
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "names recipe 'no-such-recipe'" in one_line(capsys)
    (tmp_path / "tokenizer.json").write_text("{not json")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({"model_type": "Nope"}))
    assert main(["generate", str(tmp_path)]) == 2
    one_line(capsys)


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"recipe": "digits-cnn"}))
    cmd = [sys.executable, "-m", "models"]
    quiet = subprocess.run(
        [*cmd, "generate", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    (tmp_path / "tokenizer.json").write_text("{not json")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    quiet = subprocess.run(
        [*cmd, "generate", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert quiet.returncode == 2 and quiet.stderr.count("\n") == 1, quiet.stderr
    loud = subprocess.run(
        [*cmd, "--debug", "generate", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loud.returncode != 0 and "Traceback" in loud.stderr


@pytest.mark.parametrize("bad", [["train"], ["train", "digits-cnn", "--seed", "x"]])
def test_usage_errors_are_one_line_too(bad, capsys):
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
