# dynamic-books: two commands on a fresh machine with only Python 3.11:
#   make demo   (set up, generate a world, run one cycle)
#   make test   (set up, lint, run the test suite; what .ci/run runs)
# and, while developing, `make check` (lint and the quick tests, a few minutes at most).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# pytest-xdist workers for `make test` (auto = one per CPU); a test file runs on one worker, so
# its module fixtures are built once. Files are queued in collection order, the `long_pole` ones
# first (tests/conftest.py): xdist's default reorder (most tests first) queued the ten-minute
# decision properties file (two tests) last, and CI took 28 min instead of ~17.
TEST_WORKERS ?= auto
# `make check`: the tests that neither build a dbt world nor run a cycle. Files whose module
# fixtures build dbt (tests/dbt, decisions, marts, e2e, benchmarks) are left out whole; elsewhere
# the `slow` and `long_pole` markers say which tests run a pipeline.
QUICK_TESTS := -m "not slow and not long_pole" --ignore=tests/dbt --ignore=tests/decisions \
	--ignore=tests/marts --ignore=tests/e2e --ignore=tests/benchmarks
CHECK_WORKERS ?= 2
# sqlfluff (dbt templater, minutes for the whole project) lints only the models changed
# against this branch, committed or not.
CHECK_BASE ?= main
# dbt (and so sqlfluff's dbt templater) reads the warehouse path and the policy
# (BOOKS_DBT_POLICY, set by `lint`) from the environment.
export BOOKS_WAREHOUSE ?= $(CURDIR)/data/warehouse.duckdb

.PHONY: setup demo test check lint ui lock setup-spark test-spark lock-spark

# Idempotent: creates .venv only if missing; uv leaves already-installed pins untouched.
# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
# process would otherwise recompile dagster, dbt, dlt and GX from source on import.
# The dbt project is parsed here once (a no-op while fresh), so the first demo starts without it.
setup: $(BIN)/uv
	$(BIN)/uv pip install --quiet --compile-bytecode -p $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet -p $(BIN)/python -e . --no-deps \
		--config-settings editable_mode=compat
	$(BIN)/python -m orchestration.dbt_parse

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

demo: setup
	$(BIN)/books demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=40

check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@models=$$( { git diff --name-only $(CHECK_BASE) -- 'dbt_project/models/*.sql' 2>/dev/null; \
		git ls-files --others --exclude-standard -- 'dbt_project/models/*.sql'; } \
		| sort -u | while read -r f; do [ -f "$$f" ] && echo "$$f"; done ); \
	if [ -n "$$models" ]; then \
		BOOKS_DBT_POLICY="$$($(BIN)/python -m policy books.yml)" $(BIN)/sqlfluff lint $$models; \
	else echo "sqlfluff: no model changed against $(CHECK_BASE)"; fi
	$(BIN)/pytest -q -n $(CHECK_WORKERS) --dist loadfile $(QUICK_TESTS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	BOOKS_DBT_POLICY="$$($(BIN)/python -m policy books.yml)" $(BIN)/sqlfluff lint dbt_project/models

ui: setup
	$(BIN)/books ui

# Spark engine, opt-in: a venv of its own (pyspark is a whole Spark, ~450 MB, and the default
# suite must not need it) with requirements.lock plus the `spark` extra's pins. Needs Java 17+
# (Debian: apt-get install openjdk-17-jre-headless); nothing else downloads at run time.
SPARK_VENV ?= .venv-spark
setup-spark: $(BIN)/uv
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode -p $(SPARK_VENV)/bin/python \
		-r requirements-spark.lock
	$(BIN)/uv pip install --quiet -p $(SPARK_VENV)/bin/python -e . --no-deps \
		--config-settings editable_mode=compat

# The Spark tests (marker `spark`): they start a loopback standalone cluster and stop it.
test-spark: setup-spark
	$(SPARK_VENV)/bin/pytest -n 0 -m spark tests/spark

lock-spark: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark -p 3.11 \
		-c requirements.lock -o requirements-spark.lock

# Re-pin after changing pyproject.toml dependencies (existing pins are preferred).
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev -p 3.11 -o requirements.lock
