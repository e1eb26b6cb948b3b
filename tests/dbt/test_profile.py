"""The dbt profile: what an operator sets through the environment reaches DuckDB."""

from __future__ import annotations

import duckdb

from tests.dbt.dbt_helpers import policy_vars, run_dbt

SHOW_LIMIT = "select current_setting('memory_limit') as memory_limit"


def _memory_limit(tmp_path) -> str:
    result = run_dbt(["show", "--inline", SHOW_LIMIT], tmp_path / "warehouse.duckdb",
                     policy_vars("2025-06-02"), tmp_path)  # fmt: skip
    assert result.success, result.exception
    return str(result.result.results[0].agate_table.rows[0]["memory_limit"])


def test_the_duckdb_memory_limit_comes_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BOOKS_DUCKDB_MEMORY_LIMIT", "1GB")
    assert _memory_limit(tmp_path) == "953.6 MiB"  # DuckDB shows 10^9 bytes in MiB


def test_without_it_duckdb_keeps_its_own_default(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BOOKS_DUCKDB_MEMORY_LIMIT", raising=False)
    default = duckdb.connect().execute("select current_setting('memory_limit')").fetchone()[0]
    assert _memory_limit(tmp_path) == default
