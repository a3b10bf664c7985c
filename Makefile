# The two commands of the README: `make demo` and `make test`. Each creates the virtual
# environment .venv on first use and reuses it after (it is refreshed when pyproject.toml
# changes). Only a Python 3.10+ with the venv module is needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Numba's compiled kernels are cached here, outside the checkout, so they survive between
# runs and fresh clones (CI included).
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/minigrad/numba

.PHONY: demo test test-slow bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-datasets: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[datasets]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed-datasets
	$(BIN)/minigrad train digits-cnn --out runs/digits-cnn

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow

bench: $(VENV)/.installed-test
	$(BIN)/minigrad bench overhead

lint: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet ruff && $(BIN)/python -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
