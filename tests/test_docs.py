"""The documentation's code runs: every ```python block of README.md and docs/backprop.md is
executed in order (blocks of one file share a namespace), so the docs stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/backprop.md", "docs/see-backprop.md"]


@pytest.mark.parametrize("name", DOCS)
def test_python_blocks_run(name):
    text = (ROOT / name).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{name} has no python blocks"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{name}[block {i}]", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message is the point
            raise AssertionError(f"{name}, python block {i} failed: {e!r}\n{block}") from e
