"""A small generated world loaded into a DuckDB raw layer and built with dbt, once per session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ingest.files import run_file_ingest
from local_crm.generator import WorldSummary, generate_world
from tests.dbt.dbt_helpers import REPO_ROOT, failures, policy_vars, run_dbt
from tests.dbt.raw_fixture import create_empty_raw, load_raw_from_crm

AS_OF = date(2025, 3, 31)
# The layers this package owns; marts/decisions/sync are built and tested by their own suites.
OWN_LAYERS = ["path:models/staging", "path:models/intermediate", "path:seeds"]


@dataclass
class BuiltWorld:
    crm_db: Path
    warehouse: Path
    work_dir: Path
    dbt_vars: dict
    build_failures: list[str]
    summary: WorldSummary


@pytest.fixture(scope="session")
def built_world(tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    root = tmp_path_factory.mktemp("dbt_world")
    crm_db = root / "crm.sqlite"
    warehouse = root / "warehouse.duckdb"
    landing = root / "landing"
    summary = generate_world(
        crm_db,
        accounts=400,
        reps=8,
        seed=11,
        as_of=AS_OF,
        landing_dir=landing,
        policy_path=REPO_ROOT / "books.yml",
    )
    create_empty_raw(warehouse)
    load_raw_from_crm(crm_db, warehouse)
    run_file_ingest(landing, warehouse, loaded_at=datetime(2025, 3, 31, tzinfo=UTC))
    dbt_vars = policy_vars(AS_OF.isoformat())
    # cautious: tests of other layers that merely touch these models are theirs to run
    result = run_dbt(
        ["build", "--select", *OWN_LAYERS, "--indirect-selection", "cautious"],
        warehouse,
        dbt_vars,
        root,
    )
    return BuiltWorld(crm_db, warehouse, root, dbt_vars, failures(result), summary)
