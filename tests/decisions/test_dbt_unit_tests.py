"""Run the decision and sync models' dbt `unit_tests` (hand-written edge cases beside the
properties).

dbt unit tests need their input relations to exist (it reads their column types), so the
compiled decision engine is first run on an empty world in memory and copied into a fresh
warehouse file; then `dbt test --select test_type:unit` runs against it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from tests.dbt.dbt_helpers import failures, policy_vars, run_dbt
from tests.decisions.compiled_sql import CompiledModel, CompiledRunner
from tests.decisions.conftest import INPUTS, PROJECT_DIR, TARGETS
from tests.decisions.decision_worlds import World, run_context_frames

UNIT_TEST_FOLDERS = ("models/decisions", "models/sync")


def _warehouse_with_decision_relations(models: dict[str, CompiledModel], warehouse: Path) -> None:
    runner = CompiledRunner(models, inputs=INPUTS, targets=TARGETS)
    try:
        world = World(as_of_date=dt.date(2025, 1, 6), reps=[], pool_users=["005P00"])
        for name, frame in world.frames().items():
            runner.load(name, frame)
        context, cycle_ids = run_context_frames(world.as_of_date, "r")
        runner.load("dec_run_context", context)
        runner.load_source("ops", "run_cycle_ids", cycle_ids)
        runner.run()
        catalogs = {model.database for model in models.values()}
        assert catalogs == {warehouse.stem}, f"compiled for catalogs {catalogs}"
        runner.con.execute(f"attach '{warehouse}' as unit_warehouse")
        runner.con.execute(f'copy from database "{warehouse.stem}" to unit_warehouse')
        runner.con.execute("detach unit_warehouse")
    finally:
        runner.close()


@pytest.mark.slow
def test_decision_unit_tests_pass(
    compiled_models: dict[str, CompiledModel], tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _warehouse_with_decision_relations(compiled_models, warehouse)
    result = run_dbt(
        ["test", "--select", *(f"test_type:unit,path:{folder}" for folder in UNIT_TEST_FOLDERS)],
        warehouse,
        {**policy_vars("2025-01-06"), "cycle_mode": "full", "dry_run": False},
        tmp_path,
    )
    assert failures(result) == []
    # the results hold the project's on-run-start hook too (a no-op on DuckDB)
    names = {r.node.name for r in result.result.results if r.node.resource_type == "unit_test"}
    assert names == _defined_unit_tests()  # every one ran (a selection of nothing passes too)


def _defined_unit_tests() -> set[str]:
    """The unit tests written in the YAML beside the decision and sync models."""
    return {
        test["name"]
        for folder in UNIT_TEST_FOLDERS
        for path in (PROJECT_DIR / folder).glob("*.yml")
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    }
