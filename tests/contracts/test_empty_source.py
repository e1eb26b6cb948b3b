"""A CRM with no accounts fails the contract with one clear line, unless a person accepts it
for that run (as a row-count drop is accepted)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from contracts import record_overrides, run_contracts
from ingest.salesforce import run_salesforce_ingest
from local_crm.db import CrmStore
from local_crm.server import start_in_process
from tests.ingest.conftest import local_connection

RUN_AT = datetime(2025, 1, 6, tzinfo=UTC)


def _ingest_empty_crm(tmp_path: Path) -> Path:
    """A first extract from a local CRM that holds only its integration user."""
    db = tmp_path / "crm.sqlite"
    CrmStore(db)
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    with start_in_process(db) as server:
        stats = run_salesforce_ingest(local_connection(server), warehouse)
    assert stats["Account"].rows_loaded == 0 and stats["User"].rows_loaded >= 1
    return warehouse


def test_a_cycle_against_an_empty_crm_fails_the_contract_saying_so(tmp_path: Path) -> None:
    warehouse = _ingest_empty_crm(tmp_path)
    report = run_contracts(warehouse, "r1", detected_at=RUN_AT)
    assert not report.passed
    (failure,) = report.failures
    assert failure.startswith("account: no live Account rows: the CRM returned none")
    assert "--accept-row-drop Account" in failure and "\n" not in failure
    assert "FAILED (account: no live Account rows" in report.summary()


def test_an_accepted_empty_crm_passes_that_run_only(tmp_path: Path) -> None:
    warehouse = _ingest_empty_crm(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        record_overrides(con, "r1", ["Account"], accepted_by="revops@acme.test",
                         reason="new org, accounts arrive next week",
                         requested_via="books run", requested_at=RUN_AT)  # fmt: skip
    accepted = run_contracts(warehouse, "r1", detected_at=RUN_AT)
    assert accepted.passed, accepted.failures
    assert accepted.tables["Account"].accepted_drop == "revops@acme.test"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        audit = con.execute(
            "select run_id, object, observed_rows from ops.row_drop_overrides"
        ).fetchall()
    assert audit == [("r1", "Account", 0)]
