"""float32 accuracy of values and gradients, minigrad next to PyTorch.

    python -m benchmarks.accuracy

Accuracy is measured, not timing. Each case runs in float32 on both libraries. The error
is the largest distance from PyTorch's float64 result at the same float32 inputs. It is
relative per element for the activations (on x in [-40, 12], over the elements whose
reference is a normal float32), and relative to the largest gradient for cross-entropy
and batch norm. Needs PyTorch.
"""

from __future__ import annotations

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.harness import table, torch_or_none, write_json


def _errors(a: np.ndarray, ref: np.ndarray, relative_to_max: bool) -> float:
    a = np.asarray(a, np.float64)
    if relative_to_max:
        return float(np.abs(a - ref).max() / np.abs(ref).max())
    normal = np.abs(ref) > np.finfo(np.float32).tiny
    return float(np.max(np.abs(a - ref)[normal] / np.abs(ref)[normal]))


def run_case(torch, name, x32, f_mg, f_torch, weights=None, relative_to_max=False) -> dict:
    xr = torch.tensor(x32.astype(np.float64), requires_grad=True)
    yr = f_torch(xr)
    w = np.ones(tuple(yr.shape)) if weights is None else weights
    (yr * torch.tensor(w)).sum().backward()
    xt = torch.tensor(x32, requires_grad=True)
    yt = f_torch(xt)
    (yt * torch.tensor(w, dtype=torch.float32)).sum().backward()
    xm = mg.tensor(x32, requires_grad=True)
    ym = f_mg(xm)
    (ym * mg.tensor(w.astype(np.float32))).sum().backward()
    ref_y, ref_g = yr.detach().numpy(), xr.grad.numpy()
    return {
        "case": name,
        "value minigrad": _errors(ym.data, ref_y, relative_to_max),
        "value torch": _errors(yt.detach().numpy(), ref_y, relative_to_max),
        "grad minigrad": _errors(xm.grad.data, ref_g, relative_to_max),
        "grad torch": _errors(xt.grad.numpy(), ref_g, relative_to_max),
    }


def batch_statistics_case(torch, offset, x32) -> dict:
    """The batch mean and variance that training-mode batch norm takes (read from the running
    statistics at momentum 1, so unbiased for the variance), as relative errors per channel;
    the "value" columns are the means and the "grad" columns the variances."""
    c = x32.shape[1]

    def torch_stats(x):
        mean, var = torch.zeros(c, dtype=x.dtype), torch.ones(c, dtype=x.dtype)
        torch.nn.functional.batch_norm(x, mean, var, training=True, momentum=1.0)
        return mean.numpy(), var.numpy()

    mean, var = mg.zeros(c), mg.ones(c)
    F.batch_norm(mg.tensor(x32), mean, var, training=True, momentum=1.0)
    ref_mean, ref_var = torch_stats(torch.tensor(x32.astype(np.float64)))
    t_mean, t_var = torch_stats(torch.tensor(x32))
    return {
        "case": f"batch_norm statistics, offset {offset:g} (mean | var)",
        "value minigrad": _errors(mean.data, ref_mean, False),
        "value torch": _errors(t_mean, ref_mean, False),
        "grad minigrad": _errors(var.data, ref_var, False),
        "grad torch": _errors(t_var, ref_var, False),
    }


def main() -> None:
    torch = torch_or_none()
    if torch is None:
        raise SystemExit("benchmarks.accuracy needs PyTorch: pip install -e '.[torch]'")
    tf = torch.nn.functional
    rng = np.random.default_rng(0)
    x = np.linspace(-40, 12, 2001).astype(np.float32)
    rows = [
        run_case(torch, "sigmoid", x, F.sigmoid, torch.sigmoid),
        run_case(torch, "log(sigmoid(x))", x, lambda t: F.sigmoid(t).log(),
                 lambda t: torch.sigmoid(t).log()),
        run_case(torch, "logsigmoid", x, F.logsigmoid, tf.logsigmoid),
        run_case(torch, "silu", x, F.silu, tf.silu),
        run_case(torch, "softplus", x, F.softplus, tf.softplus),
        run_case(torch, "tanh", x, mg.tanh, torch.tanh),
        run_case(torch, "gelu tanh", x, lambda t: F.gelu(t, approximate="tanh"),
                 lambda t: tf.gelu(t, approximate="tanh")),
    ]
    for scale in (1.0, 80.0):
        logits = (rng.standard_normal((64, 10)) * scale).astype(np.float32)
        target = rng.integers(0, 10, 64)
        rows.append(
            run_case(torch, f"cross_entropy, logits ~ N(0, {scale:g}^2)", logits,
                     lambda t, y=target: F.cross_entropy(t, mg.tensor(y), reduction="none"),
                     lambda t, y=target: tf.cross_entropy(t, torch.tensor(y), reduction="none"),
                     relative_to_max=True)
        )
    for offset in (0.0, 1e3):
        data = (rng.standard_normal((32, 4, 5, 5)) + offset).astype(np.float32)
        weights = rng.standard_normal(data.shape)
        rows.append(
            run_case(torch, f"batch_norm training, offset {offset:g}", data,
                     lambda t: F.batch_norm(t, None, None, training=True),
                     lambda t: tf.batch_norm(t, None, None, training=True),
                     weights=weights, relative_to_max=True)
        )
        rows.append(batch_statistics_case(torch, offset, data))
    columns = ["case", "value minigrad", "value torch", "grad minigrad", "grad torch"]
    print(table(rows, columns))
    print(write_json("accuracy", {"rows": rows}))


if __name__ == "__main__":
    main()
