"""Progress bars (tqdm) and training-curve plots (matplotlib, when installed)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


class Progress:
    """A tqdm bar over ``total`` steps showing the loss, metrics and samples per second;
    silent when ``enabled`` is False or stderr is not a terminal."""

    def __init__(self, total: int | None, desc: str, enabled: bool = True) -> None:
        self.bar = None
        self.samples = 0
        self.start = time.perf_counter()
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=True, dynamic_ncols=True)

    def update(self, steps: int, samples: int, **numbers: float) -> None:
        self.samples += samples
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        shown = {k: f"{v:.4g}" for k, v in numbers.items()}
        shown["samples/s"] = f"{self.samples / elapsed:.0f}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def save_curves(
    series: dict[str, list[tuple[float, float]]], path: str | os.PathLike, xlabel: str = "step"
) -> Path | None:
    """Plot each named series of (x, y) points into a PNG at ``path`` (written atomically);
    returns the path, or None when matplotlib is not installed."""
    if not any(series.values()):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in series.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=name, marker="o" if len(points) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.legend()
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def enabled(verbose: Any) -> bool:
    """Keras's verbose: 'auto' and 1 show a bar, 0 and 2 do not."""
    return verbose in ("auto", 1, True)
