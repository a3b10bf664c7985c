"""Saving and loading models in Hugging Face's layout: a directory with ``config.json`` (the
constructor's arguments and the class name) and ``model.safetensors`` (the state dict).

    model.save_pretrained("runs/gpt")
    same = GPT.from_pretrained("runs/gpt")

Both files are written atomically; the directory is checked on load (missing files, a class
mismatch, a state dict that does not fit) with errors that name the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.autograd import no_grad
from minigrad.ops.reduce import softmax


class Pretrained:
    """Mixin for models whose constructor takes only JSON-serialisable keyword arguments; the
    class records them in ``self.config`` (call ``self._remember(locals())`` first thing)."""

    config: dict[str, Any]

    def _remember(self, arguments: dict[str, Any]) -> None:
        config = {k: v for k, v in arguments.items() if k not in ("self", "__class__")}
        object.__setattr__(self, "config", config)  # before Module.__init__, not a submodule

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        mg.save(self.state_dict(), directory / "model.safetensors")
        payload = {"model_type": type(self).__name__, **self.config}
        tmp = directory / "config.json.tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / "config.json")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> Any:
        directory = Path(directory)
        try:
            with open(directory / "config.json") as f:
                config = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"from_pretrained: {directory}/config.json is missing"
            ) from None
        except json.JSONDecodeError as e:
            raise ValueError(f"from_pretrained: {directory}/config.json is corrupt ({e})") from None
        kind = config.pop("model_type", None)
        if kind != cls.__name__:
            raise ValueError(f"from_pretrained: {directory} holds a {kind}, not a {cls.__name__}")
        model = cls(**config)
        model.load_state_dict(mg.load(directory / "model.safetensors"))
        return model


class Generator:
    """``generate`` for next-token models whose forward maps ids (B, T) to logits (B, T, V)."""

    context: int | None = None

    def generate(
        self,
        idx: Any,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Extend each row of ``idx`` (B, T) by sampling ``max_new_tokens`` tokens from the
        softmax of logits / temperature, restricted to the ``top_k`` most likely when given
        (temperature 0: the most likely token). Returns (B, T + max_new_tokens) ids."""
        if temperature < 0:
            raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
        ids = np.array(idx.data if isinstance(idx, mg.Tensor) else idx, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids[None]
        rng = generator or mg.random.rng()
        was_training = self.training
        self.eval()
        with no_grad():
            for _ in range(max_new_tokens):
                window = ids if self.context is None else ids[:, -self.context :]
                logits = self(mg.tensor(window)).data[:, -1, :].astype(np.float64)
                if temperature == 0:
                    nxt = logits.argmax(-1)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        k = min(top_k, logits.shape[-1])
                        cut = np.sort(logits, axis=-1)[:, -k][:, None]
                        logits = np.where(logits < cut, -np.inf, logits)
                    p = softmax(mg.tensor(logits), -1).data
                    nxt = np.array([rng.choice(len(row), p=row / row.sum()) for row in p])
                ids = np.concatenate([ids, nxt[:, None]], axis=1)
        self.train(was_training)
        return ids
