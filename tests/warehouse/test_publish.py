"""Readers while the cycle writes: atomic analytics file, one run per read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from warehouse.publish import DEFAULT_TABLES, RUN_COLUMN, publish, published_run

ROOT = Path(__file__).resolve().parents[2]
READER = Path(__file__).with_name("reader_worker.py")


def _write_run(warehouse: Path, run: int) -> None:
    """A cycle's public state: marts rebuilt, decisions and sync_log appended."""
    rows = 2000 + 500 * run
    with duckdb.connect(str(warehouse)) as con:
        for schema in ("marts", "decisions", "ops", "staging"):
            con.execute(f"create schema if not exists {schema}")
        con.execute(
            f"create or replace table marts.accounts as select range as account_id, "
            f"{run} as built_in_run from range({rows})"
        )
        con.execute(
            f"create or replace table marts.reps as select range as rep_id from range({run + 5})"
        )
        con.execute(
            "create or replace view marts.account_count as select count(*) as n from marts.accounts"
        )
        for history in ("book_decisions", "run_candidates", "run_rep_capacity"):
            con.execute(
                f"create table if not exists decisions.{history} (run_id varchar, key bigint)"
            )
            con.execute(
                f"insert into decisions.{history} select 'run-{run}', range from range(300)"
            )
        con.execute(
            "create or replace view decisions.book_decision_outcomes as "
            "select *, 'applied' as outcome from decisions.book_decisions"
        )
        con.execute("create table if not exists ops.sync_log (run_id varchar, outcome varchar)")
        con.execute(f"insert into ops.sync_log select 'run-{run}', 'applied' from range(100)")
        con.execute("create or replace table staging.internal as select 1 as x")  # fmt: skip


def test_publish_stamps_every_public_table_and_nothing_else(tmp_path: Path) -> None:
    warehouse, analytics = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    _write_run(warehouse, 1)
    report = publish(warehouse, analytics, "run-1")
    assert set(report.tables) == {
        "marts.accounts", "marts.reps", "marts.account_count",
        "decisions.book_decisions", "decisions.book_decision_outcomes",
        "decisions.run_candidates", "decisions.run_rep_capacity", "ops.sync_log",
    }  # fmt: skip
    assert report.tables["marts.accounts"] == 2500 and report.missing == ()
    with duckdb.connect(str(analytics), read_only=True) as con:
        for qualified in report.tables:
            assert con.execute(f"select distinct {RUN_COLUMN} from {qualified}").fetchall() == [
                ("run-1",)
            ]
        schemas = {
            r[0]
            for r in con.execute("select schema_name from information_schema.schemata").fetchall()
        }
    assert "staging" not in schemas and "raw_salesforce" not in schemas
    assert published_run(analytics) == "run-1"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_extra_tables_are_reported_and_empty_publish_refused(tmp_path: Path) -> None:
    warehouse, analytics = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.reps as select 1 as rep_id")
    report = publish(warehouse, analytics, "r1")
    assert report.missing == DEFAULT_TABLES
    with pytest.raises(ValueError, match="nothing to publish"):
        publish(warehouse, analytics, "r2", schemas=("nope",), tables=())
    assert published_run(analytics) == "r1"  # a failed publish leaves the old file in place


def test_four_readers_never_error_and_never_see_a_mix(tmp_path: Path) -> None:
    warehouse, analytics = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    stop = tmp_path / "stop"
    _write_run(warehouse, 0)
    publish(warehouse, analytics, "run-0")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [tmp_path / f"reader{i}.json" for i in range(4)]
    readers = [
        subprocess.Popen(
            [sys.executable, str(READER), str(analytics), str(stop), str(out)], env=env
        )
        for out in outs
    ]
    try:
        time.sleep(1.0)
        for run in range(1, 7):
            # the cycle writes the warehouse while readers read the published file
            _write_run(warehouse, run)
            publish(warehouse, analytics, f"run-{run}")
            time.sleep(0.4)
    finally:
        stop.touch()
        for proc in readers:
            proc.wait(timeout=60)
    tallies = [json.loads(out.read_text()) for out in outs]
    reads = sum(t["reads"] for t in tallies)
    errors = [e for t in tallies for e in t["errors"]]
    mixes = sum(t["mixes"] for t in tallies)
    seen = set().union(*(t["runs"] for t in tallies))
    print(
        f"\n4 readers: {reads} reads, {len(errors)} errors, {mixes} mixed reads, runs seen {sorted(seen)}"
    )
    assert errors == [] and mixes == 0
    assert all(t["reads"] > 0 for t in tallies)
    assert len(seen) >= 3  # readers really read across several publishes
    assert published_run(analytics) == "run-6"
