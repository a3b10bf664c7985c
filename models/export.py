"""``minigrad export RUN_DIR --onnx``: a trained run's model (RUN_DIR/model, saved by the
recipe in Hugging Face's layout) written as RUN_DIR/model.onnx, with example inputs of the
shape the model was trained on (the batch and, for text, the token dimensions stay free)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


class ExportError(Exception):
    """A run that cannot be exported, said in one line."""


def example_inputs(kind: str, config: dict) -> tuple:
    """One example batch for a zoo model of class ``kind`` built from ``config``."""
    f32 = np.float32
    if kind == "MLP":
        return (np.zeros((1, config.get("in_features", 784)), f32),)
    if kind == "LeNet5":
        return (np.zeros((1, config.get("in_channels", 1), 28, 28), f32),)
    if kind == "DigitsCNN":
        return (np.zeros((1, 1, 8, 8), f32),)
    if kind.startswith("MNIST1D"):
        return (np.zeros((1, config.get("length", 40)), f32),)
    if kind in ("CharLSTM", "GPT"):
        return (np.ones((1, min(16, config.get("context") or 16)), np.int64),)
    if kind == "BertForSequenceClassification":
        t = min(16, config.get("context", 128))
        return np.ones((1, t), np.int64), np.ones((1, t), np.int64)
    raise ExportError(f"a {kind} has no ONNX export yet")


def export_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Export RUN_DIR/model to ``out`` (default RUN_DIR/model.onnx); returns the path."""
    from models import zoo

    run_dir = Path(run_dir)
    config_path = run_dir / "model" / "config.json"
    if not config_path.is_file():
        raise ExportError(
            f"{config_path} not found; train first: minigrad train RECIPE --out {run_dir}"
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise ExportError(f"{config_path} is not valid JSON ({e})") from None
    kind = config.pop("model_type", None)
    if kind == "bert":  # a run started from a Hugging Face checkpoint (sst2-bert --from)
        from minigrad.transformers import BertForSequenceClassification as Bert

        t = min(16, config.get("max_position_embeddings", 512))
        ids = np.ones((1, t), np.int64)
        return _export(Bert.from_pretrained(run_dir / "model"), (ids, ids, 0 * ids), out, run_dir)
    if kind not in zoo.MODELS:
        raise ExportError(f"{config_path} names model_type {kind!r}, not a model of the zoo")
    inputs = example_inputs(kind, config)
    return _export(zoo.MODELS[kind].from_pretrained(run_dir / "model"), inputs, out, run_dir)


def _export(model: Any, inputs: tuple, out: Any, run_dir: Path) -> Path:
    import minigrad.onnx

    try:
        return minigrad.onnx.export(model, inputs, out or run_dir / "model.onnx")
    except ImportError as e:
        raise ExportError(str(e)) from None
