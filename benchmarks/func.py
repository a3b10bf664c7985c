"""Hessian-vector products through LeNet-5, minigrad next to PyTorch.

    python -m benchmarks.func [--threads 1] [--batch 64]

The HVP of the cross-entropy loss of a batch with respect to all 61,706 parameters, in a
random direction, in float32:

- PyTorch: double backward, ``grad(grad(loss, params, create_graph=True) . v, params)``;
- minigrad, the same double backward (``minigrad.autograd.grad``);
- minigrad, forward mode over the backward pass: ``minigrad.func.jvp(grad(loss), ...)``.

Both libraries start from the same weights and data; the two minigrad HVPs are checked
against PyTorch's before timing. Median of repeats after a warm-up, at the same thread count.
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from benchmarks.harness import table, time_call, torch_or_none, write_json
from benchmarks.training import models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch = torch_or_none(args.threads)
    if torch is None:
        raise SystemExit("benchmarks.func compares with PyTorch: pip install -e '.[torch]'")
    mg.set_num_threads(args.threads)
    ours, theirs, _, shape = models("lenet5", torch)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    names = [n for n, _ in theirs.named_parameters()]
    direction = [rng.standard_normal(p.shape).astype(np.float32) for p in theirs.parameters()]

    t_params = list(theirs.parameters())
    t_x, t_y = torch.tensor(x), torch.tensor(y)
    t_v = [torch.tensor(d) for d in direction]

    def torch_hvp():
        loss = torch.nn.functional.cross_entropy(theirs(t_x), t_y)
        grads = torch.autograd.grad(loss, t_params, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(grads, t_v))
        return torch.autograd.grad(dot, t_params)

    m_params = [dict(ours.named_parameters())[n] for n in names]
    m_x, m_y = mg.tensor(x), mg.tensor(y)
    m_v = [mg.tensor(d) for d in direction]

    def reverse_over_reverse():
        loss = mg.nn.functional.cross_entropy(ours(m_x), m_y)
        grads = mg.autograd.grad(loss, m_params, create_graph=True)
        dot = grads[0].mul(m_v[0]).sum()
        for g, v in zip(grads[1:], m_v[1:]):
            dot = dot + (g * v).sum()
        return mg.autograd.grad(dot, m_params)

    def loss_of(*params):
        out = mg.func.functional_call(ours, dict(zip(names, params)), (m_x,))
        return mg.nn.functional.cross_entropy(out, m_y)

    def forward_over_reverse():
        gradient = mg.func.grad(loss_of, argnums=tuple(range(len(names))))
        return mg.func.jvp(lambda *p: _flat(gradient(*p)), m_params, m_v)[1]

    reference = np.concatenate([h.numpy().ravel() for h in torch_hvp()])
    double = np.concatenate([h.numpy().ravel() for h in reverse_over_reverse()])
    for label, got in (
        ("reverse over reverse", double),
        ("forward over reverse", forward_over_reverse().numpy()),
    ):
        error = np.abs(got - reference).max() / np.abs(reference).max()
        if error > 1e-3:
            raise SystemExit(f"{label}: HVP differs from PyTorch's by {error:.2g} (relative)")

    seconds_torch = time_call(torch_hvp, 1, args.repeats)
    rows = [{"case": "PyTorch double backward", "ms": seconds_torch * 1e3, "vs PyTorch": 1.0}]
    for label, fn in (
        ("minigrad double backward", reverse_over_reverse),
        ("minigrad jvp(grad) (forward over reverse)", forward_over_reverse),
    ):
        seconds = time_call(fn, 1, args.repeats)
        rows.append({"case": label, "ms": seconds * 1e3, "vs PyTorch": seconds / seconds_torch})
    info = {"threads": args.threads, "batch": args.batch}
    print(f"HVP of LeNet-5's cross-entropy, batch {args.batch}, float32, {args.threads} thread(s)")
    print(table(rows, ["case", "ms", "vs PyTorch"]))
    print(write_json("func", {"machine": info, "rows": rows}))


def _flat(grads: tuple) -> mg.Tensor:
    return mg.cat([g.reshape(-1) for g in grads])


if __name__ == "__main__":
    main()
