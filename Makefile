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

IRIS := cd examples/iris && ../../$(BIN)/lakestack

demo: $(STAMP) ## run the Iris project end to end on the embedded default (docs/examples/iris.md)
	$(IRIS) bundle run end_to_end
	@echo; echo "What it made:"
	@$(IRIS) tables list dev.iris
	@$(IRIS) models versions iris_model
	@$(IRIS) runs list --limit 6
	@$(IRIS) sql "SELECT model_id, prediction, count(*) AS flowers FROM dev.iris.iris_inferences GROUP BY ALL ORDER BY ALL"
	@echo
	@echo "Try next, in examples/iris:"
	@echo "  lakestack bundle run end_to_end -t prod        # pauses at the approval of the new version"
	@echo "  LAKESTACK_USER=ml-lead lakestack models approve iris_model 1 -t prod --comment 'looks good'"
	@echo "  lakestack sql \"SELECT * FROM dev.iris.iris_inferences LIMIT 5\""
	@echo "  lakestack runs logs <run id of model_deployment_job>   # the evaluation against the champion"

test: $(STAMP) ## run the whole test suite
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-chromium.sh
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
