"""A CRM record ingestion cannot load (a value longer than its field allows, or not parseable as
its type) is held back in ops.quarantine with its id and reason; the rest of the object loads.

The bad values are written below the API, straight into the local CRM's store: the API itself
refuses them (STRING_TOO_LONG), as a real org would, but a CRM that let one through must not
stop ingestion."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from ingest.salesforce import run_salesforce_ingest
from local_crm.db import CrmStore, format_datetime

TEN_MB = "x" * (10 * 1024 * 1024)


def set_below_api(store: CrmStore, account_id: str, field: str, value: object) -> None:
    """Write a value the API would refuse, stamped now (as a CRM write would be)."""
    with store.connection() as con, con:
        con.execute(
            f'UPDATE "Account" SET "{field}" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
            (value, format_datetime(store.clock.now()), account_id),
        )


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_10_mb_value_holds_back_its_record_and_the_other_2999_load(world):
    world.store.insert(
        "Account",
        [{"Name": f"Extra {i}", "OwnerId": world.users[i % 4]} for i in range(3_000 - 120)],
    )
    bad = world.accounts[17]
    set_below_api(world.store, bad, "Name", TEN_MB)

    stats = run_salesforce_ingest(world.conn, world.warehouse, run_id="run-1")
    ids = {r[0] for r in _rows(world.warehouse, "select id from raw_salesforce.account")}
    assert len(ids) == 2_999 and bad not in ids
    assert stats["Account"].rows_loaded == 2_999
    assert [(r.record_id, r.column) for r in stats["Account"].quarantined] == [(bad, "Name")]
    (row,) = _rows(
        world.warehouse,
        "select stage, object, record_id, column_name, reason, run_id, length(value), rule "
        "from ops.quarantine",
    )
    assert row[:4] == ("extract", "Account", bad, "Name") and row[5] == "run-1"
    assert "10485760 characters" in row[4] and row[6] < 300 and row[7] == "Name.too_long"
    # every other object loaded in full
    contacts = _rows(world.warehouse, "select count(*) from raw_salesforce.contact")
    assert contacts == [(world.store.count("Contact", include_deleted=True),)]

    # fixed in the CRM: the next extract loads it
    world.store.clock.advance(timedelta(minutes=5))
    world.store.update("Account", [{"Id": bad, "Name": "Fixed"}])
    run_salesforce_ingest(world.conn, world.warehouse, run_id="run-2")
    fixed = _rows(world.warehouse, f"select name from raw_salesforce.account where id = '{bad}'")
    assert fixed == [("Fixed",)]


def test_an_unparseable_value_in_an_incremental_pull_keeps_the_loaded_version(world):
    run_salesforce_ingest(world.conn, world.warehouse)
    world.store.clock.advance(timedelta(hours=1))
    target, other = world.accounts[5], world.accounts[6]
    set_below_api(world.store, target, "Last_Touch_Date__c", "next week")
    world.store.update("Account", [{"Id": other, "Industry": "Retail"}])

    stats = run_salesforce_ingest(world.conn, world.warehouse, run_id="run-2")
    assert stats["Account"].method == "rest" and stats["Account"].rows_loaded == 1
    (held,) = stats["Account"].quarantined
    assert (held.record_id, held.column, held.value) == (target, "Last_Touch_Date__c", "next week")
    assert "not parseable as date" in held.reason
    kept = _rows(
        world.warehouse,
        "select id, cast(last_touch_date_c as varchar), industry from raw_salesforce.account "
        f"where id in ('{target}', '{other}') order by id",
    )
    today = world.store.clock.today()
    assert sorted(kept) == sorted(
        [(target, str(today - timedelta(days=5)), "Software"),
         (other, str(today - timedelta(days=6)), "Retail")]
    )  # fmt: skip
