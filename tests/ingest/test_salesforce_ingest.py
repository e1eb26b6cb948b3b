"""End-to-end ingestion against the in-process local CRM: first, incremental and idle runs,
types, and personal fields left out."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import duckdb

from ingest.fields import object_specs
from ingest.salesforce import IngestConfig, run_salesforce_ingest
from local_crm.schema import OBJECTS


def raw_hash(warehouse: Path) -> dict[str, str]:
    """SHA-256 of each raw table's ordered contents, dlt columns included."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        for spec in object_specs().values():
            h = hashlib.sha256()
            for row in con.execute(
                f'select * from raw_salesforce."{spec.table}" order by all'
            ).fetchall():
                h.update(repr(row).encode())
            out[spec.table] = h.hexdigest()
        return out
    finally:
        con.close()


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def loaded(stats) -> dict[str, int]:
    return {name: s.rows_loaded for name, s in stats.items() if s.rows_loaded}


def test_first_run_incremental_run_and_idle_run(world):
    first = run_salesforce_ingest(world.conn, world.warehouse)
    for name, spec in object_specs().items():
        crm_rows = world.store.count(name, include_deleted=True)
        assert first[name].rows_loaded == crm_rows, name
        (raw_rows,) = query(world.warehouse, f'select count(*) from raw_salesforce."{spec.table}"')
        assert raw_rows == (crm_rows,), name
    assert first["Account"].method == "bulk"

    # 10 accounts modified and 5 activities added, an hour later
    world.store.clock.advance(timedelta(hours=1))
    changed = world.accounts[:10]
    world.store.update("Account", [{"Id": a, "Industry": "Retail"} for a in changed])
    today = world.store.clock.today()
    new_tasks = world.store.insert(
        "Task", [world.activity(world.accounts[i], today) for i in range(5)], world.users[0]
    )
    second = run_salesforce_ingest(world.conn, world.warehouse)
    assert loaded(second) == {"Account": 10, "Task": 5}
    assert sum(s.rows_loaded for s in second.values()) == 15
    assert second["Account"].method == "rest"
    retail = query(
        world.warehouse, "select id from raw_salesforce.account where industry = 'Retail'"
    )
    assert sorted(r[0] for r in retail) == sorted(changed)
    task_ids = {r[0] for r in query(world.warehouse, "select id from raw_salesforce.task")}
    assert set(new_tasks) <= task_ids

    before = raw_hash(world.warehouse)
    third = run_salesforce_ingest(world.conn, world.warehouse)
    assert loaded(third) == {}
    assert raw_hash(world.warehouse) == before


def test_types_and_pii_exclusion(world):
    run_salesforce_ingest(world.conn, world.warehouse, objects=["Account", "Contact", "Lead"])
    types = dict(
        query(
            world.warehouse,
            "select table_name || '.' || column_name, data_type from information_schema.columns "
            "where table_schema = 'raw_salesforce'",
        )
    )
    assert types["account.last_touch_date_c"] == "DATE"
    assert types["account.system_modstamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["account.is_deleted"] == "BOOLEAN"
    assert types["account.number_of_employees"] == "BIGINT"
    assert types["account.annual_revenue"] == "DOUBLE"
    assert types["account.book_status_c"] == "VARCHAR"
    assert {"account._dlt_load_id", "account._dlt_id"} <= set(types)
    for table in ("contact", "lead"):
        assert f"{table}.first_name" not in types and f"{table}.last_name" not in types
        assert f"{table}.email" in types
    # values survive the round trip
    (row,) = query(
        world.warehouse,
        "select number_of_employees, annual_revenue, book_status_c from raw_salesforce.account "
        f"where id = '{world.accounts[3]}'",
    )
    assert row == (13, 3001.5, "ready")
    # every schema object has a spec and a cursor field it really has
    for name, spec in object_specs().items():
        assert spec.cursor in OBJECTS[name].field_names


def test_deletes_and_archived_activities_are_ingested(world):
    run_salesforce_ingest(world.conn, world.warehouse, objects=["Contact", "Task"])
    world.store.clock.advance(timedelta(minutes=30))
    gone = world.contacts[:3]
    world.store.delete("Contact", gone)
    old_day = world.store.clock.today() - timedelta(days=500)
    archived = world.store.insert(
        "Task", [world.activity(world.accounts[0], old_day) for _ in range(4)], world.users[0]
    )
    # plain `query` hides archived tasks (so queryAll is what makes them arrive)
    visible = [r["Id"] for page in world.conn.query_all_pages("SELECT Id FROM Task") for r in page]
    assert not set(archived) & set(visible)

    stats = run_salesforce_ingest(world.conn, world.warehouse, objects=["Contact", "Task"])
    assert stats["Contact"].rows_loaded == 3 and stats["Contact"].deleted_rows == 3
    deleted = query(world.warehouse, "select id from raw_salesforce.contact where is_deleted")
    assert sorted(r[0] for r in deleted) == sorted(gone)
    assert query(world.warehouse, "select count(*) from raw_salesforce.contact") == [(40,)]
    rows = query(
        world.warehouse,
        "select id, is_archived from raw_salesforce.task where id in "
        f"({', '.join(repr(a) for a in archived)})",
    )
    assert sorted(rows) == sorted((a, True) for a in archived)


def test_late_committed_row_within_lookback_is_picked_up_once(world):
    cfg = IngestConfig(lookback=timedelta(minutes=15))
    run_salesforce_ingest(world.conn, world.warehouse, objects=["Account"], config=cfg)
    clock = world.store.clock
    clock.advance(timedelta(hours=1))
    t1 = clock.now()
    world.store.update("Account", [{"Id": world.accounts[0], "Industry": "Retail"}])
    assert (
        run_salesforce_ingest(world.conn, world.warehouse, objects=["Account"], config=cfg)[
            "Account"
        ].rows_loaded
        == 1
    )
    # a transaction that started 5 minutes before our cursor commits only now
    clock.set(t1 - timedelta(minutes=5))
    world.store.update("Account", [{"Id": world.accounts[1], "Industry": "Banking"}])
    clock.set(t1 + timedelta(minutes=1))
    stats = run_salesforce_ingest(world.conn, world.warehouse, objects=["Account"], config=cfg)
    assert stats["Account"].rows_loaded == 1
    assert stats["Account"].rows_fetched >= 2  # the look-back re-read the row already loaded
    (row,) = query(
        world.warehouse,
        "select count(*), count(distinct id), count(*) filter (where industry = 'Banking') "
        "from raw_salesforce.account",
    )
    assert row == (120, 120, 1)


def test_large_incremental_pull_switches_to_bulk(world):
    cfg = IngestConfig(bulk_threshold=5, lookback=timedelta(0))
    run_salesforce_ingest(world.conn, world.warehouse, objects=["Account"], config=cfg)
    world.store.clock.advance(timedelta(hours=1))
    world.store.update("Account", [{"Id": a, "Industry": "Retail"} for a in world.accounts[:10]])
    stats = run_salesforce_ingest(world.conn, world.warehouse, objects=["Account"], config=cfg)
    assert stats["Account"].method == "bulk" and stats["Account"].rows_loaded == 10


def test_only_changed_objects_reach_dlt_and_an_idle_run_skips_it(world, monkeypatch):
    import ingest.salesforce as sf

    run_salesforce_ingest(world.conn, world.warehouse)
    world.store.clock.advance(timedelta(hours=1))
    world.store.update("Account", [{"Id": world.accounts[0], "Industry": "Retail"}])
    real_source = sf.salesforce_source
    given: list[list[str]] = []

    def spy(batches):
        given.append(sorted(batches))
        return real_source(batches)

    monkeypatch.setattr(sf, "salesforce_source", spy)
    changed = run_salesforce_ingest(world.conn, world.warehouse)
    # the other eight objects never reach dlt
    # AccountHistory stays empty in the CRM (no tracked field changed): it is not reloaded
    assert loaded(changed) == {"Account": 1}
    assert given == [["Account"]]

    def no_dlt(*args, **kwargs):
        raise AssertionError("dlt pipeline built although nothing changed")

    monkeypatch.setattr(sf, "make_pipeline", no_dlt)
    before = raw_hash(world.warehouse)
    idle = run_salesforce_ingest(world.conn, world.warehouse)
    assert loaded(idle) == {} and idle["Account"].rows_fetched >= 1  # look-back re-read
    assert raw_hash(world.warehouse) == before
