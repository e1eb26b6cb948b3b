"""A small generated world ingested by the production path into DuckDB and built with dbt, once
per session.

The raw layer is written by the real ingestion (`ingest.run_salesforce_ingest` over the local CRM
served in-process, `ingest.run_file_ingest` for the landing files), so the dbt models are tested
against exactly what production writes: no second copy of the raw contract lives in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from contracts import ensure_contract_tables
from crm.salesforce import CrmSettings, connect
from ingest.files import run_file_ingest
from ingest.salesforce import run_salesforce_ingest
from local_crm.generator import WorldSummary, generate_world
from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, start_in_process
from tests.dbt.dbt_helpers import REPO_ROOT, failures, policy_vars, run_dbt

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


def ingest_world(crm_db: Path, landing: Path, warehouse: Path) -> None:
    """Load a local CRM file and its landing files into `warehouse` the way a run does."""
    server = start_in_process(crm_db)
    try:
        settings = CrmSettings(
            kind="local",
            base_url=server.url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        )
        run_salesforce_ingest(connect(settings), warehouse)
    finally:
        server.stop()
    run_file_ingest(landing, warehouse, loaded_at=datetime(2025, 3, 31, tzinfo=UTC))
    with duckdb.connect(str(warehouse)) as con:
        ensure_contract_tables(con)  # staging anti-joins ops.quarantined_ids


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
    ingest_world(crm_db, landing, warehouse)
    dbt_vars = policy_vars(AS_OF.isoformat())
    # cautious: tests of other layers that merely touch these models are theirs to run
    result = run_dbt(
        ["build", "--select", *OWN_LAYERS, "--indirect-selection", "cautious"],
        warehouse,
        dbt_vars,
        root,
    )
    return BuiltWorld(crm_db, warehouse, root, dbt_vars, failures(result), summary)
