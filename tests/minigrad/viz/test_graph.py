"""DOT that parses, and the HTML page walked in a real headless browser."""

import json
import os
import re
import shutil

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn


def _mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_dot_parses_and_names_parameters_and_modules():
    pydot = pytest.importorskip("pydot", reason="pydot parses the DOT output (pip install pydot)")
    model = _mlp()
    with mg.record_sites():
        loss = model(mg.randn(2, 4)).sum()
    text = mg.viz.to_dot(loss, names=model)
    graphs = pydot.graph_from_dot_data(text)
    assert graphs and len(graphs) == 1
    graph = graphs[0]
    labels = " ".join(
        n.get_label() or "" for sg in [graph, *graph.get_subgraphs()] for n in sg.get_nodes()
    )
    for name in ("0.weight", "0.bias", "2.weight", "2.bias", "Linear", "Relu", "Sum"):
        assert name in labels
    clusters = [sg.get_label() for sg in graph.get_subgraphs()]
    assert '"0"' in clusters and '"2"' in clusters
    # Sum<-Linear, Linear<-Relu, Relu<-Linear, and the 4 parameters (the input needs no grad)
    assert len(graph.get_edges()) == 7


def test_dot_shows_values_and_grads_of_small_leaves():
    a = mg.tensor(2.0, dtype=mg.float64, requires_grad=True)
    y = a * a
    y.backward(retain_graph=True)
    text = mg.viz.to_dot(y, names={"a": a})
    assert re.search(r"a\\nshape \(\)\\nvalue 2\\ngrad 4", text)


def _leaf_tensors():
    x = mg.tensor([[1.0, -2.0, 0.5]], dtype=mg.float64, requires_grad=True)
    w = mg.tensor([[0.5, 1.0], [-1.0, 2.0], [1.5, -0.5]], dtype=mg.float64, requires_grad=True)
    return x, w


def test_page_is_self_contained_and_carries_every_step(tmp_path):
    x, w = _leaf_tensors()
    h = x @ w
    loss = (h.tanh() * h).sum()
    path = mg.viz.to_html(loss, str(tmp_path / "g.html"), names={"x": x, "w": w})
    page = open(path, encoding="utf-8").read()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<script src" not in page and "<link" not in page
    data = json.loads(re.search(r"const DATA = (.*);\n", page).group(1))
    assert [n["label"] for n in data["nodes"]][-2:] in (["x", "w"], ["w", "x"])
    assert all(0 <= e["from"] < e["to"] for e in data["edges"])  # the engine's order


def _chromium():
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright drives the browser (pip install playwright)"
    )
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return playwright, exe


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_browser_steps_through_every_node_and_shows_the_engine_gradients(tmp_path):
    playwright, exe = _chromium()
    x, w = _leaf_tensors()
    with mg.record_sites():
        h = x @ w
        loss = (h.tanh() * h).sum()
    # the engine's gradients, node by node, from the records the page is built from
    x2, w2 = _leaf_tensors()
    h2 = x2 @ w2
    steps = mg.viz.trace((h2.tanh() * h2).sum(), names={"x": x2, "w": w2})
    path = mg.viz.to_html(loss, str(tmp_path / "g.html"), names={"x": x, "w": w})
    shot = os.environ.get("MINIGRAD_SCREENSHOT", str(tmp_path / "page.png"))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=exe,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 560},
        )
        try:
            page = browser.new_page()
            page.goto("file://" + path)
            assert page.inner_text("#count") == str(len(steps))
            for step in steps:
                page.click("#next")
                assert page.inner_text("#step") == str(step.index)
                assert page.inner_text("#label") == step.label
                shown = np.array(json.loads(page.inner_text("#grad")))
                np.testing.assert_allclose(shown, step.grad_in.ravel(), rtol=1e-12)
                assert step.rule.split(",")[0] in page.inner_text("#entry")
                current = page.query_selector_all("g.node.current")
                assert [c.get_attribute("data-id") for c in current] == [str(step.index)]
            np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-12)
            page.click("#prev")
            assert page.inner_text("#step") == str(len(steps) - 2)
            page.click(f"g.node[data-id='{steps[2].index}']")
            assert page.inner_text("#step") == "2"
            page.screenshot(path=shot)
        finally:
            browser.close()
    assert os.path.getsize(shot) > 1000


def test_browser_collapses_modules_into_boxes(tmp_path):
    playwright, exe = _chromium()
    model = _mlp()
    with mg.record_sites():
        loss = model(mg.randn(2, 4)).sum()
    path = mg.viz.to_html(loss, str(tmp_path / "mlp.html"), names=model)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=exe, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto("file://" + path)
            ops_before = len(page.query_selector_all("g.node[data-id]"))
            page.check("#collapse")
            boxes = sorted(b.get_attribute("data-module") for b in page.query_selector_all("g.box"))
            assert boxes == ["0", "1", "2"]  # Linear, ReLU, Linear
            assert len(page.query_selector_all("g.node[data-id]")) < ops_before
        finally:
            browser.close()
