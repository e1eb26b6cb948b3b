"""A cycle passes dbt only the policy var: the as-of date and run id come from ops.run_context."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb

from policy import load_policy, policy_dbt_vars
from tests.dbt.conftest import BuiltWorld
from tests.dbt.dbt_helpers import POLICY_FILE, run_dbt
from warehouse.run_context import write_run_context

MODEL = "int_reps_capacity"  # reads as_of_date() several times


def _compiled(built_world: BuiltWorld, tmp_path, dbt_vars: dict, context: dict | None) -> str:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_world.warehouse, warehouse)
    if context is not None:
        with duckdb.connect(str(warehouse)) as con:
            write_run_context(con, **context)
    result = run_dbt(["compile", "--select", MODEL], warehouse, dbt_vars, tmp_path)
    if not result.success:
        return f"FAILED: {result.exception or result.result}"
    return next(r.node.compiled_code for r in result.result.results if r.node.name == MODEL)


def test_the_as_of_date_comes_from_the_run_context_as_a_literal(built_world, tmp_path) -> None:
    context = {"run_id": "ctx-1", "as_of_date": date(2024, 2, 29), "policy_version": "v"}
    sql = _compiled(built_world, tmp_path, policy_dbt_vars(load_policy(POLICY_FILE)), context)
    assert "cast('2024-02-29' as date)" in sql, sql[:500]
    assert "run_context" not in sql  # a literal, not a subquery


def test_a_var_overrides_the_run_context(built_world, tmp_path) -> None:
    context = {"run_id": "ctx-1", "as_of_date": date(2024, 2, 29), "policy_version": "v"}
    sql = _compiled(built_world, tmp_path, built_world.dbt_vars, context)
    assert f"cast('{built_world.dbt_vars['as_of_date']}' as date)" in sql
    assert "2024-02-29" not in sql


def test_without_a_run_context_dbt_fails_naming_the_table(built_world, tmp_path) -> None:
    sql = _compiled(built_world, tmp_path, policy_dbt_vars(load_policy(POLICY_FILE)), None)
    assert sql.startswith("FAILED")
    assert "run_context" in sql
