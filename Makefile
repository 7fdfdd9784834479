# Two commands a newcomer needs: `make demo` and `make test`. Everything installs into .venv from the lock files:
# `make demo` only the runtime lock (requirements.lock), `make test` also the development tools (requirements-dev.lock).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest lock clean

$(RUNTIME): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $(RUNTIME)

$(STAMP): requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	touch $(RUNTIME) $(STAMP)

## Start the MCP server on a built-in simulated fleet (no Flight Control account needed).
demo: $(RUNTIME)
	$(BIN)/python main.py demo

## Run every check CI runs: lint, format, types, then the whole test suite.
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Containerfile

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Re-resolve the pinned dependencies (needs network access to PyPI).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --extra dev --output-file requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
