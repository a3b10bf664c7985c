"""Benchmarks say where they ran, and write outside the source tree: the machine report
(CPU model, vector ISA, cores, threads, versions), the results folder, ``minigrad bench
--out``, and the algorithm a kernel takes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import minigrad as mg
from benchmarks import harness
from kernels.twins import conv as twin_conv

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_info_names_the_cpu_and_its_vector_isa():
    info = mg.backend.cpu_info()
    assert info["model"] and isinstance(info["model"], str)
    assert info["vector_isa"] in {"AVX-512", "AVX2", "AVX", "SSE", "NEON", "SVE", "scalar"}
    assert info["cores"] >= 1 and info["llvm_cpu"]
    if info["vector_isa"] == "AVX-512":
        assert "avx512f" in info["features"]


def test_the_report_line_and_json_carry_the_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGRAD_BENCH_OUT", str(tmp_path))
    path = harness.write_json("probe", {"rows": [{"case": "x", "ms": 1.0}]})
    assert path == tmp_path / "probe.json"
    payload = json.loads(path.read_text())
    machine = payload["machine"]
    for key in ("cpu", "vector_isa", "cores", "threads", "minigrad", "numpy", "numba", "python"):
        assert key in machine, key
    assert machine["threads"] == mg.get_num_threads()
    printed = capsys.readouterr().out
    assert machine["cpu"] in printed and machine["vector_isa"] in printed
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed


def test_results_go_to_the_users_cache_never_the_source_tree(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIGRAD_BENCH_OUT", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert harness.results_dir() == tmp_path / "minigrad" / "benchmarks"
    assert ROOT not in harness.results_dir().parents


def test_bench_out_is_passed_to_every_benchmark(tmp_path, monkeypatch):
    from models import cli

    seen = []
    monkeypatch.setattr(
        cli.subprocess, "call", lambda cmd, env: seen.append((cmd[-1], env)) or 0
    )
    assert cli.main(["bench", "func", "data", "--out", str(tmp_path / "out")]) == 0
    assert [name for name, _ in seen] == ["benchmarks.func", "benchmarks.data"]
    assert {env["MINIGRAD_BENCH_OUT"] for _, env in seen} == {str(tmp_path / "out")}


def test_conv_and_lstm_report_the_algorithm_they_take():
    x, w = np.zeros((8, 3, 10, 10), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    assert mg.backend.conv.conv2d_algorithm(x, w, 1, 1) in {"batch slivers", "Winograd", "im2col"}
    assert twin_conv.conv2d_algorithm(x, w, 1, 1) == "im2col (NumPy twin)"
    seq = np.zeros((5, 4, 3), np.float32)
    assert mg.backend.rnn.rnn_algorithm(seq, np.zeros((8, 2), np.float32)) in {
        "batch slivers",
        "steps on BLAS",
        "steps (NumPy twin)",
    }
