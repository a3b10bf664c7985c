"""The documentation's code runs: every ```python block of README.md and of each page under
docs/ is executed in order (blocks of one file share a namespace), so the docs stay true.
Its links to other pages and files resolve, too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))
WITH_CODE = [name for name in DOCS if "```python\n" in (ROOT / name).read_text()]
# pages whose examples need an optional package, and why
NEEDS = {"docs/onnx.md": ("onnxruntime", "its example runs the exported file in ONNX Runtime")}


@pytest.mark.parametrize("name", WITH_CODE)
def test_python_blocks_run(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name][0], reason=NEEDS[name][1])
        pytest.importorskip("onnx", reason="minigrad.onnx builds graphs with onnx")
    text = (ROOT / name).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{name} has no python blocks"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{name}[block {i}]", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message is the point
            raise AssertionError(f"{name}, python block {i} failed: {e!r}\n{block}") from e


@pytest.mark.parametrize("name", DOCS)
def test_relative_links_resolve(name):
    page = ROOT / name
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text())
    broken = [link for link in links if not (page.parent / link).exists()]
    assert not broken, f"{name} links to missing files: {broken}"
