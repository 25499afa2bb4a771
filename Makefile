# permgen developer entry points. Every target creates its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# -n auto: one pytest-xdist worker per core (PYTEST_XDIST_AUTO_NUM_WORKERS overrides it).
# Bytecode caches on even where the environment turns them off (PYTHONDONTWRITEBYTECODE):
# the permgen processes the tests start then load what the first import compiled.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n auto

lint: $(STAMP)
	$(BIN)/ruff check permgen tests bench
	$(BIN)/ruff format --check permgen tests bench
	$(BIN)/lint-imports --no-cache  # the layer contracts of pyproject.toml (docs/architecture.md)

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

docs: $(STAMP)
	$(BIN)/python -m permgen.tools.gendocs

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
