"""The generated world of tests/dbt, with the decision and mart layers built on top of it."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pytest

from tests.dbt.conftest import BuiltWorld, built_world  # noqa: F401 - reused session fixture
from tests.dbt.dbt_helpers import run_dbt
from warehouse.run_context import ensure_run_context_tables

MART_PATH = "models/marts"


@dataclass
class MartsWorld:
    world: BuiltWorld
    mart_failures: list[str]


def _node_failures(result, path_prefix: str) -> list[str]:
    """Failed nodes whose file lies under `path_prefix` (other layers are tested elsewhere)."""
    if result.exception is not None:
        return [repr(result.exception)]
    out = []
    for node_result in result.result or []:
        node = node_result.node
        status = str(node_result.status).lower()
        if node.original_file_path.startswith(path_prefix) and status not in ("success", "pass"):
            out.append(f"{node.unique_id}: {status}: {node_result.message}")
    return out


@pytest.fixture(scope="session")
def marts_world(built_world: BuiltWorld) -> MartsWorld:  # noqa: F811 - the imported fixture
    """Run the decisions (marts read book_decisions), then build and test every mart."""
    assert not built_world.build_failures, built_world.build_failures
    with duckdb.connect(str(built_world.warehouse)) as con:
        ensure_run_context_tables(con)  # empty ops.run_cycle_ids: a full run (vars carry the rest)
    decisions = run_dbt(
        ["run", "--select", "path:models/decisions"],
        built_world.warehouse,
        built_world.dbt_vars,
        built_world.work_dir,
    )
    assert decisions.success, _node_failures(decisions, "models/decisions")
    marts = run_dbt(
        ["build", "--select", f"path:{MART_PATH}"],
        built_world.warehouse,
        built_world.dbt_vars,
        built_world.work_dir,
    )
    return MartsWorld(built_world, _node_failures(marts, MART_PATH))
