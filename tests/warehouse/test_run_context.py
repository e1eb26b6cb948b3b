"""ops.run_context / ops.run_cycle_ids: one row per run, replaced whole, validated on write."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from warehouse.run_context import RunContext, read_run_context, write_run_context


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def test_missing_tables_read_as_no_context(con: duckdb.DuckDBPyConnection) -> None:
    assert read_run_context(con) is None


def test_each_write_replaces_the_previous_run_whole(con: duckdb.DuckDBPyConnection) -> None:
    write_run_context(con, "r1", date(2025, 6, 2), "v1", "signals", ["a0Z2", "a0Z1", "a0Z1"])
    write_run_context(con, "r2", date(2025, 6, 3), "v1", "returns", ["001B"])
    assert read_run_context(con) == RunContext("r2", date(2025, 6, 3), "v1", "returns", ("001B",))
    assert con.execute("select count(*) from ops.run_context").fetchone() == (1,)
    write_run_context(con, "r3", date(2025, 6, 4), "v2")
    assert read_run_context(con) == RunContext("r3", date(2025, 6, 4), "v2", "full", ())
    assert con.execute("select count(*) from ops.run_cycle_ids").fetchone() == (0,)


def test_ids_are_deduplicated_and_sorted(con: duckdb.DuckDBPyConnection) -> None:
    stored = write_run_context(con, "r1", date(2025, 6, 2), "v1", "signals", ["b", "a", "b"])
    assert stored.cycle_ids == ("a", "b")
    assert con.execute("select id from ops.run_cycle_ids order by id").fetchall() == [
        ("a",),
        ("b",),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": ""}, "run_id"),
        ({"policy_version": ""}, "policy_version"),
        ({"as_of_date": "2025-06-02"}, "as_of_date"),
        ({"cycle_mode": "distribution"}, "cycle_mode"),
        ({"cycle_ids": ["001A"]}, "'full' run carries no cycle ids"),
        ({"cycle_mode": "signals", "cycle_ids": [""]}, "empty ids"),
    ],
)
def test_invalid_values_are_refused_and_nothing_is_replaced(
    con: duckdb.DuckDBPyConnection, kwargs: dict, message: str
) -> None:
    write_run_context(con, "kept", date(2025, 6, 2), "v1")
    args = {"run_id": "r", "as_of_date": date(2025, 6, 3), "policy_version": "v", **kwargs}
    with pytest.raises(ValueError, match=message):
        write_run_context(con, **args)
    assert read_run_context(con).run_id == "kept"
