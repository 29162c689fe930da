# The README's two commands: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test down crds lint

$(BIN)/.installed: pyproject.toml testbed/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./testbed
	touch $@

install: $(BIN)/.installed

## The demo: build or reuse the binaries, start the plane and simulator, run the operator, apply examples/.
demo: install
	$(BIN)/testbed demo

## The whole test suite: unit tests, the simulator's tests and the end-to-end tier.
test: install
	$(BIN)/testbed build
	$(BIN)/python -m pytest

down: install
	$(BIN)/testbed down

## Regenerate crds/ from the API models (a test fails when they drift).
crds: install
	$(BIN)/virtstack crds

lint: install
	$(BIN)/ruff check .
