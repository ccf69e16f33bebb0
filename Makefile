# lakestack developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@$(BIN)/uv pip install -q --python $(BIN)/python -r requirements/dev.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@# precompile: where PYTHONDONTWRITEBYTECODE is set, every task process would recompile its imports
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src >/dev/null 2>&1 || true
	@touch $(STAMP)

install: $(STAMP) ## create the environment (.venv) from the lock file

lock: ## re-resolve requirements/dev.lock from pyproject.toml
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q uv==$(UV_VERSION); }
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal -q -o requirements/dev.lock

demo: $(STAMP) ## run the example bundle's main job on the embedded default
	cd examples/quickstart && ../../$(BIN)/lakestack bundle run daily_pipeline

test: $(STAMP) ## run the whole test suite
	@bash scripts/ensure-postgres.sh
	$(BIN)/pytest

fast-test: $(STAMP) ## unit tests only
	$(BIN)/pytest tests/unit

format: $(STAMP) ## format the code
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

check: $(STAMP) ## format check, lint, types, import contracts, tests
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) test

bench: $(STAMP) ## run the benchmarks (see benchmarks/README.md)
	$(BIN)/python benchmarks/run.py

clean: ## remove the environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install lock demo test fast-test format check bench clean
