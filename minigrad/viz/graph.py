"""The backward graph drawn: Graphviz DOT text, and one self-contained HTML page that steps
through the backward pass node by node with the explain entry of each node.

Both read the same list of nodes: the ``Step`` records of ``minigrad.viz.explain.trace``
(for the page, which needs the gradients) or the graph walked without running backward
(for DOT). Nodes made inside a module carry its name (when the forward ran inside
``minigrad.record_sites()``), so modules can be drawn as boxes and collapsed.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from typing import Any

from minigrad.autograd import AccumulateGrad, _topological_order, saved_values
from minigrad.tensor import Tensor
from minigrad.viz.explain import format_step, leaf_names, site_text, summary, trace
from minigrad.viz.page import TEMPLATE as _TEMPLATE


def _module_path(node: Any, module_names: dict) -> str:
    """The dotted name of the innermost named module that made ``node`` ("" if none)."""
    for m in reversed(node.scope):
        name = module_names.get(id(m))
        if name:
            return name
    return ""


def _leaf_module(label: str, module_names: dict) -> str:
    """A parameter belongs to the module of its dotted name ("0.weight" -> "0")."""
    owner = label.rsplit(".", 1)[0] if "." in label else ""
    return owner if owner in module_names.values() else ""


def _module_names(model: Any) -> dict:
    if model is None or not hasattr(model, "named_modules"):
        return {}
    return {id(m): n for n, m in model.named_modules() if n}


def _graph(tensor: Tensor) -> list:
    """Nodes of the backward graph of ``tensor`` in the engine's order (output first)."""
    root = tensor._edge()
    if root is None:
        raise RuntimeError(
            "viz: this tensor does not require grad, so it has no backward graph; call "
            "requires_grad_() on a leaf it depends on"
        )
    return list(reversed(_topological_order([root])))


def to_dot(tensor: Tensor, names: Any = None, small: int = 6) -> str:
    """Graphviz DOT of the backward graph of ``tensor``: op nodes (boxes) and leaves
    (ellipses, parameters by module name), each with its shape, and values and grads when
    the tensor has at most ``small`` elements. Nodes made inside a module are grouped in a
    ``cluster`` subgraph named after it. Pass the model (or a dict name -> tensor) as
    ``names``."""
    named, modules = leaf_names(names), _module_names(names)
    nodes = _graph(tensor)
    ids = {node: f"n{k}" for k, node in enumerate(nodes)}
    clusters: dict[str, list[str]] = {}
    lines = ["digraph backward {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    for node in nodes:
        if isinstance(node, AccumulateGrad):
            leaf = node.leaf()
            label = named.get(id(leaf), "leaf") if leaf is not None else "leaf (freed)"
            if leaf is not None:
                label += f"\\nshape {tuple(leaf.shape)}"
                if leaf.data.size <= small:
                    label += f"\\nvalue {summary(leaf.data)}"
                if leaf.grad is not None and leaf.grad.data.size <= small:
                    label += f"\\ngrad {summary(leaf.grad.data)}"
            shape = "ellipse"
            group = ""
        else:
            label = node.name()
            out_shape = _output_shape(node)
            if out_shape is not None:
                label += f"\\nout {out_shape}"
            where = site_text(node)
            if where:
                label += f"\\n{os.path.basename(where)}"
            shape = "box"
            group = _module_path(node, modules)
        line = f'  {ids[node]} [label="{_dot_escape(label)}", shape={shape}];'
        clusters.setdefault(group, []).append(line)
    for k, (group, members) in enumerate(clusters.items()):
        if group:
            lines.append(f"  subgraph cluster_{k} {{")
            lines.append(f'    label="{_dot_escape(group)}"; style=rounded; color=gray;')
            lines.extend("  " + m for m in members)
            lines.append("  }")
        else:
            lines.extend(members)
    for node in nodes:
        for edge in node.edges:
            if edge is not None and edge in ids:
                lines.append(f"  {ids[edge]} -> {ids[node]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _output_shape(node: Any) -> tuple | None:
    out = node.retained_output() if node.retained_output is not None else None
    if out is not None:
        return tuple(out.shape)
    for what, array in saved_values(node):
        if what == "the output":
            return tuple(array.shape)
    return None


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")


def _layers(steps: list) -> list[int]:
    """Longest-path layering: the output is layer 0, every node one below its deepest user."""
    layer = [0] * len(steps)
    for step in steps:  # the engine's order visits a node after every node that uses it
        for target in step.inputs:
            if target is not None:
                layer[target] = max(layer[target], layer[step.index] + 1)
    return layer


def page_data(steps: list, names: Any = None) -> dict:
    """The nodes, edges, layout and explain entries that the HTML page shows."""
    modules = _module_names(names)
    layer = _layers(steps)
    rows: dict[int, int] = {}
    nodes = []
    for step in steps:
        row = rows.get(layer[step.index], 0)
        rows[layer[step.index]] = row + 1
        grad = step.grad_in
        nodes.append(
            {
                "id": step.index,
                "label": step.label,
                "kind": "leaf" if step.op == "leaf" else "op",
                "layer": layer[step.index],
                "row": row,
                "shape": list(step.output_shape),
                "grad": summary(grad),
                "grad_values": grad.ravel().astype(float).tolist() if grad.size <= 64 else None,
                "module": _leaf_module(step.label, modules)
                if step.op == "leaf"
                else _module_path(step.node, modules),
                "text": format_step(step, steps),
            }
        )
    edges = [{"from": step.index, "to": t} for step in steps for t in step.inputs if t is not None]
    return {"nodes": nodes, "edges": edges}


def to_html(tensor: Tensor, path: str, names: Any = None, title: str = "backward pass") -> str:
    """Run backward on ``tensor`` and write one self-contained HTML page to ``path``: the
    graph (laid out in layers, modules as boxes that can be collapsed) and buttons that
    step through the backward pass node by node, showing each node's explain entry.
    No network is used: the script and style are inline. Returns ``path``."""
    return write_page(trace(tensor, names), path, names, title)


def write_page(steps: list, path: str, names: Any = None, title: str = "backward pass") -> str:
    """Write the page of already traced ``steps`` to ``path`` (atomically)."""
    data = page_data(steps, names if names is not None else _root_module(steps))
    page = _TEMPLATE.replace("__TITLE__", html.escape(title)).replace(
        "__DATA__", json.dumps(data).replace("</", "<\\/")
    )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".html.tmp")  # never half written
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _root_module(steps: list) -> Any:
    """The outermost module that ran while sites were recorded, to name modules by."""
    for step in steps:
        if step.node is not None and step.node.scope:
            return step.node.scope[0]
    return None
