"""A write is never lost to a stamp that did not move: the CRM's SystemModstamp advances on
every write even when its clock stands still, and ingestion loads a new version of a record
even when it carries the stamp of the version already loaded."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingest.salesforce import run_salesforce_ingest


def _raw_account(warehouse: Path, account_id: str) -> tuple:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select book_status_c, distribution_reason_c from raw_salesforce.account where id = ?",
            [account_id],
        ).fetchone()
    finally:
        con.close()


def test_frozen_clock_write_back_is_loaded_by_the_next_extract(world):
    """The clock never moves: a write-back through the API, then the next extract."""
    run_salesforce_ingest(world.conn, world.warehouse)
    target = world.accounts[7]
    before = world.store.get("Account", target)["SystemModstamp"]
    resp = world.conn.request(
        "PATCH",
        "composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Id": target,
                 "Book_Status__c": "working", "Distribution_Reason__c": "rotation"}
            ],
        },
    )  # fmt: skip
    assert resp.json()[0]["success"]
    assert world.store.get("Account", target)["SystemModstamp"] > before

    run_salesforce_ingest(world.conn, world.warehouse)
    assert _raw_account(world.warehouse, target) == ("working", "rotation")


def test_a_new_version_with_the_loaded_stamp_is_still_loaded(world):
    """Below the API (as a CRM whose stamps have a coarse resolution would): the value changes,
    the stamp does not. Ingestion must load it, and must not reload unchanged rows."""
    run_salesforce_ingest(world.conn, world.warehouse)
    target = world.accounts[3]
    with world.store.connection() as con, con:
        con.execute('UPDATE "Account" SET "Book_Status__c" = ? WHERE "Id" = ?', ("resting", target))
    stats = run_salesforce_ingest(world.conn, world.warehouse)
    assert _raw_account(world.warehouse, target)[0] == "resting"
    assert {n: s.rows_loaded for n, s in stats.items() if s.rows_loaded} == {"Account": 1}
