"""Fourteen simulated days: the incremental account touches equal a full rebuild every day.

A changing world is written into raw the way merge loads would (a new load id a day): new,
edited, moved, deleted and future-dated activities, touches loaded late, new, re-owned and
deleted accounts, engagement-file activities, a web domain two accounts then share, a task
quarantined and released, and a policy change on day 10. Time passing alone moves touches out
of their 30/60/90-day windows. Each day the incremental build runs through dbt and its rows must
equal what `--full-refresh` computes from the same raw rows and as-of date; a crash in the
middle of day 7 (activity history merged, touches not built) must not lose that day's changes,
and a re-run of a day and a run back in time must give the full rebuild's rows too.
Only the bookkeeping of the incremental build (the as-of date and load a row was computed at)
is left out of the comparison. Every other as-of model is still rebuilt in full each run, so
equal touches mean equal downstream tables.
"""

from __future__ import annotations

import copy
import random
import re
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dbt.conftest import AS_OF, BuiltWorld
from tests.dbt.dbt_helpers import failures, run_dbt
from warehouse.run_context import write_run_context

pytestmark = pytest.mark.slow

MODEL = "int_account_touches_aggregated"
# what a day's raw load or as-of date changes upstream of the model (views without the as-of
# date or the policy need no rebuild): fewer nodes, a shorter test
DAILY = [
    "base_salesforce__tasks",
    "base_salesforce__events",
    "stg_salesforce__accounts",
    "int_web_domains_mapped",
    "int_engagement_activities_resolved",
    "int_activities_classified",
]
RUN_BOOKKEEPING = ("computed_as_of_date", "inputs_load_id")  # differ by design
POLICY_CHANGE_DAY = 10
CRASH_DAY = 7


class World:
    """Raw-layer edits of one warehouse, each day a new merge load."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seed: int) -> None:
        self.con = con
        self.rng = random.Random(seed)
        self.load = 0

    def ids(self, table: str, where: str = "not is_deleted") -> list[str]:
        return [
            r[0]
            for r in self.con.execute(
                f"select distinct id from raw_salesforce.{table} where {where} order by id"
            ).fetchall()
        ]

    def _add(self, table: str, record: str, replace: str) -> None:
        """A new version of `record` (its latest one, with `replace`) in today's load, merged
        on id as ingestion does: the version it replaces leaves raw."""
        self.con.execute(
            f"create or replace temp table version as select * replace ({replace}, "
            f"'{self.load_id}' as _dlt_load_id, md5(random()::varchar) as _dlt_id, "
            f"timestamptz '2026-01-01' + to_minutes({self.load}) as system_modstamp) "
            f"from raw_salesforce.{table} where id = ? "
            "order by system_modstamp desc, _dlt_load_id desc limit 1",
            [record],
        )
        self.con.execute(f"delete from raw_salesforce.{table} where id in (select id from version)")
        self.con.execute(f"insert into raw_salesforce.{table} select * from version")

    @property
    def load_id(self) -> str:
        return f"1900000000.{self.load:06d}"

    def day(self, as_of: date) -> None:
        """One day of CRM and file changes, all in one new load."""
        self.load += 1
        pick = self.rng.choice
        accounts, tasks, events = self.ids("account"), self.ids("task"), self.ids("event")
        for n in range(4):  # touches logged today, and one from weeks ago loaded late
            back = 0 if n else self.rng.randint(20, 100)
            new_id = f"00TZZ{self.load:05d}{n:08d}"
            self._add(
                "task",
                pick(tasks),
                f"'{new_id}' as id, '{pick(accounts)}' as account_id, 'Call' as type, "
                f"'Outbound' as direction_c, 'Completed' as status, false as is_automated_c, "
                f"'Manual' as source_c, date '{as_of - timedelta(days=back)}' as activity_date",
            )
        self._add("task", pick(tasks), f"'{pick(accounts)}' as account_id")  # moved
        self._add("task", pick(tasks), "'Other' as type")  # no longer meaningful
        self._add("task", pick(tasks), "true as is_deleted")
        self._add(  # future-dated: counts once its day comes
            "task",
            pick(tasks),
            f"'00TZF{self.load:05d}00000000' as id, 'Meeting' as type, 'Completed' as status, "
            f"'Outbound' as direction_c, date '{as_of + timedelta(days=2)}' as activity_date",
        )
        self._add("event", pick(events), f"'{pick(accounts)}' as account_id")
        owners = [
            r[0]
            for r in self.con.execute(
                "select distinct owner_id from raw_salesforce.account order by 1"
            ).fetchall()
        ]
        self._add("account", pick(accounts), f"'{pick(owners)}' as owner_id")  # re-owned
        self._add(  # a new account, with touches logged on it later
            "account",
            pick(accounts),
            f"'001ZZ{self.load:05d}00000000' as id, 'new-{self.load}.example' as website",
        )
        if self.load % 4 == 0:
            self._add("account", pick(accounts), "true as is_deleted")
        self._file_activity(as_of)

    def _file_activity(self, as_of: date) -> None:
        row = self.con.execute(
            "select account_domain, contact_email, rep_email from raw_files.engagement_activities "
            "order by activity_id limit 1 offset ?",
            [self.rng.randint(0, 50)],
        ).fetchone()
        self.con.execute(
            "insert into raw_files.engagement_activities values "
            "(?, ?, ?, ?, 'call', 'outbound', false, ?, 'engagement/day.csv', "
            "timestamptz '2026-01-01' + to_minutes(?))",
            [f"FZ{self.load}", *row, as_of - timedelta(days=1), self.load],
        )

    def share_domain(self) -> None:
        """Give an account the web domain of an account with file activities: the domain maps
        to neither any more, so the other account loses its file touches."""
        with_files = self.con.execute(
            "select min(web_domain) from intermediate.int_web_domains_mapped "
            "where web_domain in (select web_domain from staging.stg_files__engagement_activities)"
        ).fetchone()[0]
        website = self.con.execute(
            "select min(website) from staging.stg_salesforce__accounts where web_domain = ?",
            [with_files],
        ).fetchone()[0]
        other = self.con.execute(
            "select min(account_id) from staging.stg_salesforce__accounts where web_domain <> ?",
            [with_files],
        ).fetchone()[0]
        self._add("account", other, f"'{website}' as website")

    def quarantine(self, run_id: str, task_ids: list[str]) -> None:
        """A contract run that quarantines `task_ids` (and releases what the last one held)."""
        self.con.execute(
            "insert into ops.contract_runs select ?, coalesce(max(seq), 0) + 1, true, [], now() "
            "from ops.contract_runs",
            [run_id],
        )
        for task_id in task_ids:
            self.con.execute(
                "insert into ops.quarantine (object, record_id, rule, value, reason, run_id, "
                "detected_at, dlt_id) values ('Task', ?, 'type.picklist', 'x', 'test', ?, "
                "now(), 'x')",
                [task_id, run_id],
            )


def _full_refresh_sql(wh: Path, dbt_vars: dict[str, Any], work: Path) -> str:
    """The model's `--full-refresh` SQL as dbt compiles it; its as-of date is the one literal
    `cast('YYYY-MM-DD' as date)` of the SQL, so one compile serves every day of a policy."""
    result = run_dbt(["compile", "--select", MODEL, "--full-refresh"], wh, dbt_vars, work)
    assert failures(result) == []
    return result.result.results[0].node.compiled_code


def _rows(con: duckdb.DuckDBPyConnection, sql: str, columns: list[str]) -> list[tuple]:
    return sorted(
        con.execute(f"select {', '.join(columns)} from ({sql}) as t").fetchall(),
        key=repr,
    )


def _compare(wh: Path, full_sql: str, as_of: date, label: str) -> int:
    """Assert the built table equals the full rebuild's rows; return the rows compared."""
    with duckdb.connect(str(wh)) as con:
        columns = [
            r[0]
            for r in con.execute(f"describe intermediate.{MODEL}").fetchall()
            if r[0] not in RUN_BOOKKEEPING
        ]
        built = _rows(con, f"select * from intermediate.{MODEL}", columns)
        dated = re.sub(r"cast\('\d{4}-\d{2}-\d{2}' as date\)", f"cast('{as_of}' as date)", full_sql)
        full = _rows(con, dated, columns)
    missing = set(full) - set(built)
    extra = set(built) - set(full)
    assert not missing and not extra, (
        f"{label}: incremental != full rebuild: {len(missing)} rows missing, e.g. "
        f"{sorted(missing, key=repr)[:2]}; {len(extra)} rows not in the full rebuild, e.g. "
        f"{sorted(extra, key=repr)[:2]}"
    )
    assert len(built) == len(full)
    return len(built)


def _changed_policy(dbt_vars: dict[str, Any]) -> dict[str, Any]:
    """E-mails stop counting as meaningful: many accounts' figures change at once."""
    changed = copy.deepcopy(dbt_vars)
    changed["policy"]["meaningful_activity"]["types"] = ["Call", "Meeting", "LinkedIn"]
    return changed


def test_fourteen_days_incremental_equals_full_rebuild(
    built_world: BuiltWorld, tmp_path: Path
) -> None:
    with duckdb.connect(str(built_world.warehouse)) as con:
        con.execute("checkpoint")
    wh = tmp_path / built_world.warehouse.name  # same file name: views name their catalog
    shutil.copy(built_world.warehouse, wh)
    # the run's values go through ops.run_context, as in a cycle: unchanged vars keep dbt's
    # partial parse from day to day
    dbt_vars = {"policy": built_world.dbt_vars["policy"]}
    policy_version = "books"
    recomputed_per_day = []
    steps = [(d, AS_OF + timedelta(days=d)) for d in range(1, 15)]
    steps += [(14, AS_OF + timedelta(days=14)), (13, AS_OF + timedelta(days=12))]  # again; back
    full_sql = ""
    for step, (day, as_of) in enumerate(steps):
        new_day = step == day - 1  # not a re-run
        with duckdb.connect(str(wh)) as con:
            if day == POLICY_CHANGE_DAY and new_day:
                dbt_vars, policy_version, full_sql = _changed_policy(dbt_vars), "changed", ""
            write_run_context(con, f"day-{step}", as_of, policy_version)
            if new_day:
                world = World(con, seed=day)
                world.load = day * 10
                world.day(as_of)
                if day == 3:
                    world.share_domain()
                if day == 5:
                    world.quarantine("contracts-day-5", world.ids("task")[:3])
                if day == 8:
                    world.quarantine("contracts-day-8", [])
        if not full_sql:
            full_sql = _full_refresh_sql(wh, dbt_vars, tmp_path)
        if day == CRASH_DAY and new_day:
            # the cycle dies after the activity history merged today's load
            crashed = run_dbt(["run", "--select", *DAILY], wh, dbt_vars, tmp_path)
            assert failures(crashed) == []
        result = run_dbt(["run", "--select", *DAILY, MODEL], wh, dbt_vars, tmp_path)
        assert failures(result) == []
        with duckdb.connect(str(wh)) as con:
            recomputed_per_day.append(
                con.execute(
                    f"select count(*) from intermediate.{MODEL} where computed_as_of_date = ?",
                    [as_of],
                ).fetchone()[0]
            )
        rows = _compare(wh, full_sql, as_of, f"step {step} (day {day}, as of {as_of})")
    # the incremental build did recompute only part of the accounts on ordinary days
    assert min(recomputed_per_day) < rows / 2, recomputed_per_day
