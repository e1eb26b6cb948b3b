"""Credentials never leak (issue 7, item 9): a canary client secret appears 0 times anywhere.

The production login path (`crm.salesforce.connect`) logs in to the in-process local CRM with a
canary secret, queries, fails a login with a wrong secret, and ingests into a warehouse; then
logs (caplog at DEBUG + every log file), the CRM's request log, dlt's pipeline folder and every
text column of every warehouse table are scanned for the canary.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from crm.salesforce import CrmError, CrmSettings, connect
from ingest.salesforce import default_pipelines_dir, run_salesforce_ingest
from local_crm.db import CrmStore
from local_crm.server import start_in_process
from tests.ingest.conftest import seed_world

CANARY = "CANARY-5f1e9b7c-do-not-leak"
ROOT = Path(__file__).resolve().parents[2]


def _occurrences_in_files(folder: Path) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and CANARY.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def _occurrences_in_warehouse(path: Path) -> list[str]:
    hits = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_catalog = current_database()"
        ).fetchall()
        assert columns, "the scan must see the warehouse tables"
        for schema, table, column in columns:
            n = con.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where position(? in cast("{column}" as varchar)) > 0',
                [CANARY],
            ).fetchone()[0]
            if n:
                hits.append(f"{schema}.{table}.{column}")
    return hits


def test_canary_secret_appears_nowhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "logs" / "books.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    crm_db, warehouse = tmp_path / "crm.sqlite", tmp_path / "warehouse.duckdb"
    store = CrmStore(crm_db)
    users, _accounts, _contacts = seed_world(store, n_accounts=120)
    store.add_connected_app("canary-client", CANARY, users[0])
    server = start_in_process(crm_db, default_credentials=False)
    try:
        settings = CrmSettings(
            kind="local", base_url=server.url, client_id="canary-client", client_secret=CANARY
        )
        assert CANARY not in repr(settings)
        conn = connect(settings)
        stats = run_salesforce_ingest(conn, warehouse, objects=["User", "Account", "Contact"])
        assert stats["Account"].rows_loaded == 120
        wrong = CrmSettings(
            kind="local", base_url=server.url, client_id="canary-client", client_secret="nope"
        )
        with pytest.raises(CrmError) as failed:
            connect(wrong)
        assert CANARY not in str(failed.value)
        request_log = server.request_log()
    finally:
        server.stop()
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert any("/oauth2/token" in r["path"] for r in request_log)
    leaks = {
        "caplog": caplog.text.count(CANARY),
        "log files": _occurrences_in_files(log_file.parent),
        "crm request log": [r for r in request_log if CANARY in repr(r)],
        "warehouse": _occurrences_in_warehouse(warehouse),
        "dlt pipelines": _occurrences_in_files(default_pipelines_dir(warehouse)),
        "dbt target/logs": [
            hit
            for folder in ("target", "logs")
            if (ROOT / "dbt_project" / folder).exists()
            for hit in _occurrences_in_files(ROOT / "dbt_project" / folder)
        ],
        "other files next to the warehouse": [
            # the CRM's own store (crm.sqlite*) legitimately holds its connected app's secret
            p
            for p in _occurrences_in_files(tmp_path)
            if not Path(p).name.startswith("crm.sqlite")
        ],
    }
    print(f"\ncanary occurrences: {leaks}; log lines captured: {len(caplog.records)}")
    assert len(caplog.records) > 0  # the scan saw real logging
    assert default_pipelines_dir(warehouse).exists()
    assert leaks == {
        "caplog": 0,
        "log files": [],
        "crm request log": [],
        "warehouse": [],
        "dlt pipelines": [],
        "dbt target/logs": [],
        "other files next to the warehouse": [],
    }
