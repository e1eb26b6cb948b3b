"""Rows committed late (stamped before the extract's cursor) reach the warehouse through the
reconciliation, once each; the count check flags the gap before it and not after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.reconcile import count_gaps, reconcile
from ingest.salesforce import IngestConfig, run_salesforce_ingest
from local_crm.db import CrmStore
from local_crm.server import start_in_process
from tests.ingest.conftest import local_connection, seed_world

OBJECTS = ["User", "Account"]
LAGS = {"5 minutes": timedelta(minutes=5), "2 hours": timedelta(hours=2),
        "3 days": timedelta(days=3)}  # fmt: skip


def _warehouse_accounts(warehouse: Path) -> dict[str, list[str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select id, name from raw_salesforce.account").fetchall()
    out: dict[str, list[str]] = {}
    for account_id, name in rows:
        out.setdefault(account_id, []).append(name)
    return out


@dataclass
class LateRows:
    """What the extract and the reconciliation made of rows committed late."""

    expected: dict[str, str]  # account id: the name it must have in the warehouse
    loaded: dict[str, list[str]]  # account id: its names in the warehouse (one, if no double)
    gaps_before: dict[str, Any]  # objects the count check flags before the reconciliation
    gaps_after: dict[str, Any]  # ... and after it
    stats: dict[str, Any]


def late_rows(
    tmp_path: Path, lookback_minutes: int, bulk_threshold: int, n_accounts: int = 80
) -> LateRows:
    """Rows created and updated 5 minutes, 2 hours and 3 days before the cursor, an extract,
    then a reconciliation (also run by benchmarks/reliability.py)."""
    db = tmp_path / "crm.sqlite"
    store = CrmStore(db)
    cursor_time = store.clock.now()
    store.clock.set(cursor_time - timedelta(days=10))
    users, accounts, _ = seed_world(store, n_accounts=n_accounts)
    store.clock.set(cursor_time)
    store.insert("Account", [{"Name": "Newest", "OwnerId": users[0]}])  # the cursor
    warehouse = tmp_path / "warehouse.duckdb"
    cfg = IngestConfig(lookback=timedelta(minutes=lookback_minutes), bulk_threshold=bulk_threshold)
    server = start_in_process(db)
    try:
        conn = local_connection(server)
        run_salesforce_ingest(conn, warehouse, objects=OBJECTS, config=cfg)

        # Commits that land late: stamped 5 minutes, 2 hours and 3 days before the cursor.
        expected: dict[str, str] = {}
        for n, (label, lag) in enumerate(LAGS.items()):
            store.clock.set(cursor_time - lag)
            (created,) = store.insert(
                "Account", [{"Name": f"created {label}", "OwnerId": users[0]}]
            )
            expected[created] = f"created {label}"
            store.update("Account", [{"Id": accounts[n], "Name": f"updated {label}"}])
            expected[accounts[n]] = f"updated {label}"
        store.clock.set(cursor_time + timedelta(hours=1))

        run_salesforce_ingest(conn, warehouse, objects=OBJECTS, config=cfg)
        gaps_before = count_gaps(conn, warehouse, OBJECTS)
        stats = reconcile(conn, warehouse, run_id="r1", objects=OBJECTS, config=cfg)
        gaps_after = count_gaps(conn, warehouse, OBJECTS)
    finally:
        server.stop()
    return LateRows(expected, _warehouse_accounts(warehouse), gaps_before, gaps_after, stats)


@pytest.mark.parametrize(
    ("lookback_minutes", "bulk_threshold"),
    [(15, 10_000), (0, 10)],  # 10: the CRM's ids and stamps come through Bulk 2.0
)
def test_late_rows_are_loaded_by_the_next_reconciliation(
    tmp_path: Path, lookback_minutes: int, bulk_threshold: int
) -> None:
    late = late_rows(tmp_path, lookback_minutes, bulk_threshold)
    assert "Account" in late.gaps_before  # the warning fires
    assert late.gaps_after == {}  # and no longer after the reconciliation
    expected, loaded, stats = late.expected, late.loaded, late.stats
    assert {i: loaded.get(i) for i in expected} == {i: [name] for i, name in expected.items()}
    assert all(len(names) == 1 for names in loaded.values())  # no duplicates
    assert stats["Account"].found == stats["Account"].fixed > 0
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        recorded = con.execute(
            "select object, missing + older, fixed from ops.reconciliation where run_id = 'r1'"
        ).fetchall()
    assert ("Account", stats["Account"].found, stats["Account"].fixed) in recorded


def test_a_second_reconciliation_finds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite"
    store = CrmStore(db)
    seed_world(store, n_accounts=80)
    warehouse = tmp_path / "warehouse.duckdb"
    server = start_in_process(db)
    try:
        conn = local_connection(server)
        run_salesforce_ingest(conn, warehouse, objects=OBJECTS)
        stats = reconcile(conn, warehouse, run_id="r1", objects=OBJECTS)
    finally:
        server.stop()
    assert {s.found for s in stats.values()} == {0}
    assert {s.crm_rows - s.warehouse_rows_after for s in stats.values()} == {0}
