"""The jobs behind ``minigrad explain SCRIPT.py`` and ``minigrad explain-prediction RUN_DIR``.

``explain_script`` runs a training script with creation sites recorded and turns its first
``backward()`` into the interactive page of ``minigrad.viz.to_html``, then stops the script.
``explain_prediction`` loads a finished run, picks one test example and explains the model's
prediction: for the image recipes a PNG of the image, its saliency map and the Grad-CAM
overlay; for the text recipes the sentence printed with each token coloured by attribution.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import interpret
from minigrad.tensor import Tensor

IMAGE_RECIPES = {"digits-cnn": "net.3", "lenet5-mnist": "features.3"}  # the last conv layer
TEXT_RECIPES = ("sst2-kimcnn", "sst2-bert")


class ExplainError(Exception):
    """A user's mistake (a missing file, a bad index): the command prints it in one line."""


class _FirstBackwardDone(Exception):
    pass


def explain_script(script: str, out: str, argv: list[str] | None = None) -> tuple[str, int]:
    """Run ``script`` until its first ``backward()``; write that backward pass as a page to
    ``out``. Returns (path, number of nodes)."""
    if not os.path.isfile(script):
        raise ExplainError(f"no script {script!r}")
    original = Tensor.backward
    written: list = []

    def first_backward(self, gradient=None, retain_graph=None, create_graph=False):
        Tensor.backward = original
        steps = mg.viz.trace(self, None, gradient)
        mg.viz.graph.write_page(steps, out, None, f"first backward() of {os.path.basename(script)}")
        written.append(len(steps))
        raise _FirstBackwardDone

    Tensor.backward = first_backward
    saved_argv = sys.argv
    sys.argv = [script, *(argv or [])]
    try:
        with mg.record_sites():
            runpy.run_path(script, run_name="__main__")
    except _FirstBackwardDone:
        pass
    except SystemExit:
        pass
    except Exception as e:  # the script's own error: say where, in one line
        tb = e.__traceback__
        where = ""
        while tb is not None:
            if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(script):
                where = f" at {script}:{tb.tb_lineno}"
            tb = tb.tb_next
        raise ExplainError(f"{script} raised {type(e).__name__}: {e}{where}") from None
    finally:
        Tensor.backward = original
        sys.argv = saved_argv
    if not written:
        raise ExplainError(f"{script} finished without calling backward(); nothing to draw")
    return out, written[0]


def _load_run(run_dir: str) -> tuple[str, Any]:
    from models import zoo

    report = Path(run_dir) / "report.json"
    if not report.exists():
        raise ExplainError(
            f"{report} not found; train first: minigrad train RECIPE --out {run_dir}"
        )
    recipe = json.loads(report.read_text())["recipe"]
    config = Path(run_dir) / "model" / "config.json"
    if not config.exists():
        raise ExplainError(f"{config} not found: the run saved no model")
    kind = json.loads(config.read_text())["model_type"]
    model = zoo.MODELS[kind].from_pretrained(Path(run_dir) / "model")
    model.eval()
    return recipe, model


def _test_image(recipe: str, index: int, data: str | None) -> tuple[np.ndarray, int]:
    from models.recipes.base import data_dir, need

    if recipe == "digits-cnn":
        from minigrad.data.datasets import Digits

        test = Digits(train=False)
    else:
        from minigrad.data.datasets import MNIST

        root = data_dir(data)
        need(root / "mnist" / "t10k-images-idx3-ubyte.gz", "the MNIST test set")
        test = MNIST(root / "mnist", train=False)
    if not 0 <= index < len(test):
        raise ExplainError(f"--index {index} is out of range: the test set has {len(test)} items")
    image, label = test[index]
    image = image.data if isinstance(image, Tensor) else np.asarray(image)
    return image.astype(np.float32), int(label)


def explain_prediction(
    run_dir: str, index: int, out: str | None = None, data: str | None = None
) -> dict:
    """Explain the prediction of a finished run on test example ``index``."""
    recipe, model = _load_run(run_dir)
    if recipe in IMAGE_RECIPES:
        png = out or str(Path(run_dir) / f"explain-{index}.png")
        return _explain_image(recipe, model, index, png, data)
    if recipe in TEXT_RECIPES:
        return _explain_text(recipe, model, run_dir, index, data)
    raise ExplainError(
        f"explain-prediction knows the image recipes ({', '.join(IMAGE_RECIPES)}) and the text "
        f"recipes ({', '.join(TEXT_RECIPES)}); {run_dir} is a {recipe} run"
    )


def _explain_image(recipe: str, model: Any, index: int, out: str, data: str | None) -> dict:
    image, label = _test_image(recipe, index, data)
    x = image[None]
    with mg.no_grad():
        scores = model(mg.tensor(x)).data[0]
    predicted = int(scores.argmax())
    sal = interpret.saliency(model, x, predicted)[0, 0]
    cam = interpret.grad_cam(model, x, IMAGE_RECIPES[recipe], predicted)[0]
    save_explanation_png(
        image[0], sal, cam, out, f"{recipe} test #{index}: label {label}, predicted {predicted}"
    )
    return {"label": label, "predicted": predicted, "png": out}


def _upsample(cam: np.ndarray, shape: tuple) -> np.ndarray:
    """Bilinear resize of a (h, w) map to ``shape`` (align corners)."""
    h, w = cam.shape
    ys, xs = np.linspace(0, h - 1, shape[0]), np.linspace(0, w - 1, shape[1])
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = cam[y0][:, x0] * (1 - fx) + cam[y0][:, x1] * fx
    bottom = cam[y1][:, x0] * (1 - fx) + cam[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def save_explanation_png(
    image: np.ndarray, saliency: np.ndarray, cam: np.ndarray, out: str, title: str
) -> None:
    """Three panels: the image, the saliency map, Grad-CAM over the image."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExplainError(
            "saving the PNG needs matplotlib: pip install 'minigrad[plot]'"
        ) from None
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(saliency, cmap="hot")
    axes[1].set_title("saliency |d score/d x|")
    axes[2].imshow(image, cmap="gray")
    axes[2].imshow(_upsample(cam, image.shape), cmap="jet", alpha=0.5)
    axes[2].set_title("Grad-CAM")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, out)


def _explain_text(recipe: str, model: Any, run_dir: str, index: int, data: str | None) -> dict:
    from minigrad.data.datasets import SST2
    from minigrad.data.text import Tokenizer
    from models.recipes.base import data_dir, need

    tokenizer = Tokenizer.load(Path(run_dir) / "tokenizer.json")
    test = SST2(need(data_dir(data) / "sst2" / "stsa.binary.test", "SST-2 test split"))
    if not 0 <= index < len(test):
        raise ExplainError(f"--index {index} is out of range: the test set has {len(test)} items")
    sentence, label = test[index]
    ids = tokenizer.encode(sentence)
    ids = ids + [0] * max(0, 5 - len(ids))  # KimCNN's widest filter needs 5 tokens
    embedding = next((m for m in model.modules() if isinstance(m, mg.nn.Embedding)), None)
    if embedding is None:
        raise ExplainError(f"the {recipe} model has no Embedding layer to attribute to")
    seen: dict = {}

    def keep(module, args, output):
        seen["emb"] = output.data.copy()
        output.register_hook(lambda g: seen.__setitem__("grad", g.data.copy()))

    handle = embedding.register_forward_hook(keep)
    try:
        out = model(mg.tensor(np.array([ids], dtype=np.int64)))
        logits = out["logits"] if isinstance(out, dict) else out
        predicted = int(logits.data[0].argmax())
        logits[0, predicted].backward()
    finally:
        handle.remove()
    # input x gradient at the embeddings, summed over the embedding dimension: one per token
    scores = (seen["emb"] * seen["grad"])[0].sum(-1)[: len(tokenizer.encode(sentence))]
    tokens = [tokenizer.decode([i]) for i in ids[: len(scores)]]
    print(f"{recipe} test #{index}: label {label}, predicted {predicted}")
    print(color_tokens(tokens, scores))
    print("(green pushes towards the predicted class, red against it)")
    return {"label": label, "predicted": predicted, "tokens": tokens, "scores": scores.tolist()}


def color_tokens(tokens: list[str], scores: np.ndarray) -> str:
    """Tokens on a background from red (against) to green (for), by attribution."""
    peak = float(np.max(np.abs(scores))) or 1.0
    parts = []
    for token, s in zip(tokens, scores):
        level = int(round(4 * abs(s) / peak))  # xterm-256 colours, white to strong
        code = (231, 194, 157, 120, 82)[level] if s >= 0 else (231, 224, 217, 210, 196)[level]
        parts.append(f"\x1b[48;5;{code}m\x1b[30m {token} \x1b[0m")
    return "".join(parts)
