"""The incremental activity history (base_salesforce__tasks / __events) equals a full rebuild.

A changed world is written into raw the way a merge load would (new load id): a new version, a
tombstone, a replayed version, an older version arriving late, a new record. The incremental run
must leave exactly what `--full-refresh` builds from the same raw rows, and the live staging
views must drop deletes and the ids the latest contract run quarantined.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.conftest import BuiltWorld
from tests.dbt.dbt_helpers import failures, run_dbt

pytestmark = pytest.mark.slow

MODELS = ["base_salesforce__tasks", "base_salesforce__events"]
VIEWS = ["stg_salesforce__tasks", "stg_salesforce__events"]
NEW_LOAD = "9999999999.000001"  # after every load of the built world


def _change_raw(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """One raw row per kind of change; returns the task ids by role."""
    ids = [
        r[0]
        for r in con.execute(
            "select id from raw_salesforce.task where not is_deleted order by id limit 5"
        ).fetchall()
    ]
    role = dict(zip(["edited", "deleted", "replayed", "late", "copied"], ids, strict=True))
    role["new"] = "00T" + "N" * 15

    def add(table: str, record: str, replace: str) -> None:
        con.execute(
            f"insert into raw_salesforce.{table} select * replace ({replace}, "
            f"'{NEW_LOAD}' as _dlt_load_id, md5(random()::varchar) as _dlt_id) "
            f"from raw_salesforce.{table} where id = ?",
            [record],
        )

    later = "system_modstamp + interval 1 hour as system_modstamp"
    add("task", role["edited"], f"'Meeting' as type, {later}")
    add("task", role["deleted"], f"true as is_deleted, {later}")
    add("task", role["replayed"], "subject || ' (replayed)' as subject")  # same modstamp
    add(
        "task", role["late"], "'Other' as type, system_modstamp - interval 1 day as system_modstamp"
    )
    add("task", role["copied"], f"'{role['new']}' as id")
    event = con.execute("select min(id) from raw_salesforce.event").fetchone()[0]
    add("event", event, f"'Call' as type, {later}")
    # the latest contract run quarantines the edited task
    con.execute(
        "insert into ops.contract_runs select 'incremental-test', coalesce(max(seq), 0) + 1, "
        "true, [], now() from ops.contract_runs"
    )
    con.execute(
        "insert into ops.quarantine (object, record_id, rule, value, reason, run_id, "
        "detected_at, dlt_id) values ('Task', ?, 'type.picklist', 'Meeting', 'test', "
        "'incremental-test', now(), 'x')",
        [role["edited"]],
    )
    return role


def _table(warehouse: Path, relation: str) -> set[tuple]:
    with duckdb.connect(str(warehouse)) as con:
        # the replaced version's account and load exist only in an incremental run
        rows = con.execute(
            f"select * exclude (previous_account_id, previous_raw_load_id) from staging.{relation}"
            if relation in MODELS
            else f"select * from staging.{relation}"
        ).fetchall()
    assert len(rows) == len(set(rows)), f"{relation} has duplicate rows"
    return set(rows)


def test_incremental_run_equals_full_rebuild(built_world: BuiltWorld, tmp_path: Path) -> None:
    with duckdb.connect(str(built_world.warehouse)) as con:
        con.execute("checkpoint")  # the copy must hold the built models, not only the WAL
    wh = tmp_path / built_world.warehouse.name  # same file name: views name their catalog
    shutil.copy(built_world.warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        role = _change_raw(con)
        tasks_before = con.execute("select count(*) from staging.base_salesforce__tasks").fetchone()

    def build(*extra: str) -> dict[str, set[tuple]]:
        result = run_dbt(
            ["run", "--select", *MODELS, *VIEWS, *extra], wh, built_world.dbt_vars, tmp_path
        )
        assert failures(result) == []
        return {name: _table(wh, name) for name in MODELS + VIEWS}

    incremental = build()
    again = build()  # nothing new loaded: an incremental run changes nothing
    full = build("--full-refresh")
    assert incremental == full
    assert again == full

    tasks = {row[0]: row for row in _table(wh, "base_salesforce__tasks")}
    assert len(tasks) == tasks_before[0] + 1
    with duckdb.connect(str(wh)) as con:
        by_id = dict(
            con.execute(
                "select task_id, (activity_type, subject, is_deleted, raw_load_id) "
                "from staging.base_salesforce__tasks where task_id in ?",
                [list(role.values())],
            ).fetchall()
        )
        live = {
            r[0]
            for r in con.execute("select task_id from staging.stg_salesforce__tasks").fetchall()
        }
        event_types = con.execute(
            "select activity_type, raw_load_id from staging.base_salesforce__events "
            "where raw_load_id = ?",
            [NEW_LOAD],
        ).fetchall()
    assert by_id[role["edited"]][0] == "Meeting"
    assert by_id[role["deleted"]][2] is True
    assert by_id[role["replayed"]][1].endswith("(replayed)")  # same modstamp: newest load wins
    assert by_id[role["late"]][0] != "Other"  # an older version never replaces a newer one
    assert by_id[role["late"]][3] != NEW_LOAD
    assert by_id[role["new"]][3] == NEW_LOAD
    assert event_types == [("Call", NEW_LOAD)]
    assert role["deleted"] not in live and role["edited"] not in live  # delete, quarantine
    assert {role["replayed"], role["late"], role["new"]} <= live
