# Two commands on a fresh machine: `make run` and `make test`. Both create the virtualenv first.
# Installs are pinned by requirements/lock.txt (running) and requirements/lock-dev.txt (running
# plus the test and lint tools); `make lock` recompiles both from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# STAMP: the package and what running it needs; DEV_STAMP: the test and lint tools on top.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
LOCK := requirements/lock.txt
DEV_LOCK := requirements/lock-dev.txt
LOCK_VENV ?= .venv-lock
PIP_TOOLS_VERSION ?= 7.7.0
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet \
	--strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: run test lint typecheck unit bench clean lock docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet -c $(DEV_LOCK) -e ".[dev]"
	touch $(DEV_STAMP)

# Regenerate the reference pages in docs/ (tests fail while the committed ones are stale).
docs: $(STAMP)
	$(BIN)/python -m tradegraph.config.reference > docs/configuration.md
	$(BIN)/python -m tradegraph.strategies.api_reference > docs/strategy-api.md

# Recompile the lock files from pyproject.toml, keeping every pin that still satisfies it
# (`make lock UPGRADE=1` moves everything to the newest allowed versions).
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || \
		($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet pip-tools==$(PIP_TOOLS_VERSION))
	$(PIP_COMPILE) $(if $(UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml
	$(PIP_COMPILE) $(if $(UPGRADE),--upgrade) --extra dev --constraint $(LOCK) \
		--output-file $(DEV_LOCK) pyproject.toml

run: $(STAMP)
	$(BIN)/tradegraph backtest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/backtest_throughput.py --bars 100000
	$(BIN)/python benchmarks/backtest_throughput.py --bars 1000000

clean:
	rm -rf $(VENV) $(LOCK_VENV) out .mypy_cache .ruff_cache .pytest_cache
