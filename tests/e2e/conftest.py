"""Fixtures for the 8-week end-to-end test: a generated world, a short-rest policy, and the
history of eight weekly `books_cycle` runs with reps touching accounts in between.

The simulation is expensive (eight full cycles), so it runs once per module and the tests read
the snapshots it took after each run: the CRM (SQLite) and the warehouse (DuckDB, opened
read-only and closed before the next run).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from local_crm.db import CrmStore
from local_crm.generator import generate_world
from orchestration.runner import CycleSummary, run_cycle
from policy import BooksPaths, resolve_paths
from tests.e2e.simulate import advance_week, assign_habits, book_reps
from tests.homes import home_env

AS_OF = date(2025, 6, 2)  # a Monday: the first weekly run
WEEKS = 8
ACCOUNTS = 1_200
REPS = 8
SEED = 11
REST_DAYS_RETRIEVED = 14
WORKING_WINDOW_DAYS = 15
INTEGRATION_USERNAME = "integration@books.local"


@dataclass
class WeekSnapshot:
    """What one run decided (warehouse) and what the CRM holds right after it."""

    week: int
    as_of: date
    summary: CycleSummary
    decisions: list[dict[str, Any]]
    accounts_after: dict[str, dict[str, Any]]
    capacity: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    crm_accounts: dict[str, dict[str, Any]]
    tasks_logged: int = 0
    seconds: float = 0.0

    def kinds(self, *kinds: str) -> list[dict[str, Any]]:
        return [d for d in self.decisions if d["decision_kind"] in kinds]


@dataclass
class Simulation:
    paths: BooksPaths
    weeks: list[WeekSnapshot]
    pool_user_ids: set[str]
    integration_user_id: str
    owner_history: list[dict[str, Any]]
    rerun: CycleSummary | None = None
    rerun_crm_changed: bool | None = None
    rerun_history_rows: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


def write_test_policy(source: Path, target: Path) -> Path:
    """books.yml with rests and working window short enough to cycle inside 8 weeks."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["lifecycle"]["rest_days"]["retrieved"] = REST_DAYS_RETRIEVED
    data["lifecycle"]["working_window_days"] = WORKING_WINDOW_DAYS
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def read_warehouse(warehouse: Path, run_id: str) -> dict[str, Any]:
    """This run's decisions and the decision engine's working tables (read-only, then closed)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        decisions = _rows(
            con,
            "select account_id, decision_kind, from_owner_id, to_owner_id, from_state, "
            "to_state, reason, segment_key, slot_kind, rest_until_date, as_of_date "
            "from decisions.book_decisions where run_id = ?",
            [run_id],
        )
        after = _rows(
            con,
            "select account_id, family_id, segment_key, owner_id, state, state_before, "
            "applied_decision_kind, rest_until_date from decisions.dec_accounts_after",
            [],
        )
        capacity = _rows(
            con,
            "select rep_id, slot_kind, segment_key, capacity, open_slots, max_new_per_run "
            "from decisions.dec_rep_capacity",
            [],
        )
        candidates = _rows(
            con,
            "select account_id, unit_id, segment_key, unit_weight, is_unit_in_market, blocked_rep_id "
            "from decisions.dec_candidate_units",
            [],
        )
    return {
        "decisions": decisions,
        "accounts_after": {r["account_id"]: r for r in after},
        "capacity": capacity,
        "candidates": candidates,
    }


def read_crm_accounts(crm_db: Path) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            'SELECT "Id", "OwnerId", "Book_Status__c", "Rest_Until__c", "Distribution_Date__c" '
            'FROM "Account" WHERE "IsDeleted" = 0'
        ).fetchall()
    finally:
        con.close()
    return {
        r[0]: {"owner_id": r[1], "book_status": r[2], "rest_until": r[3], "distributed": r[4]}
        for r in rows
    }


def read_owner_history(crm_db: Path, actor_id: str) -> list[dict[str, Any]]:
    """Every OwnerId change the integration user made (the write-back's changes)."""
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            'SELECT "AccountId", "OldValue", "NewValue", "CreatedDate" FROM "AccountHistory" '
            'WHERE "Field" = ? AND "CreatedById" = ? ORDER BY "CreatedDate", "Id"',
            ("OwnerId", actor_id),
        ).fetchall()
    finally:
        con.close()
    return [
        {"account_id": r[0], "old": r[1], "new": r[2], "day": date.fromisoformat(r[3][:10])}
        for r in rows
    ]


def count_history(crm_db: Path) -> int:
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        return int(con.execute('SELECT count(*) FROM "AccountHistory"').fetchone()[0])
    finally:
        con.close()


def _users(store: CrmStore) -> tuple[set[str], str]:
    with store.connection() as con:
        pool = {r[0] for r in con.execute('SELECT "Id" FROM "User" WHERE "Book_Role__c" = ?',
                                          ("Pool",))}  # fmt: skip
        row = con.execute(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (INTEGRATION_USERNAME,)
        ).fetchone()
    if row is None:
        raise AssertionError(f"generated world has no integration user {INTEGRATION_USERNAME}")
    return pool, row[0]


def _cycle(paths: BooksPaths, as_of: date, *, first: bool) -> CycleSummary:
    summary = run_cycle(
        as_of,
        dry_run=False,
        override_guard=first,
        paths=paths,
        instance=dg.DagsterInstance.ephemeral(),
    )
    if not summary.success:
        raise AssertionError(f"books_cycle as of {as_of} failed:\n{summary.render()}")
    return summary


@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    """Generate the world, then run the weekly cycle 8 times with rep work in between."""
    home = tmp_path_factory.mktemp("e2e")
    default_policy = resolve_paths({}).policy
    policy = write_test_policy(default_policy, home / "books.yml")
    paths = resolve_paths({**home_env(home), "BOOKS_POLICY": str(policy)})
    paths.landing.mkdir(parents=True)
    started = time.monotonic()
    generate_world(
        paths.crm_db,
        accounts=ACCOUNTS,
        reps=REPS,
        seed=SEED,
        as_of=AS_OF,
        landing_dir=paths.landing,
        policy_path=policy,
    )
    store = CrmStore(paths.crm_db)
    pool_ids, integration_id = _users(store)
    habits = assign_habits(book_reps(store), SEED)
    sim = Simulation(paths, [], pool_ids, integration_id, [])
    sim.timings["generate"] = time.monotonic() - started

    for week in range(WEEKS):
        tasks = 0
        if week:
            work = advance_week(store, habits, seed=SEED, week=week)
            tasks = work.tasks
        as_of = AS_OF + timedelta(days=7 * week)
        if store.clock.today() != as_of:
            raise AssertionError(f"CRM clock {store.clock.today()} != run date {as_of}")
        t0 = time.monotonic()
        summary = _cycle(paths, as_of, first=week == 0)
        seconds = time.monotonic() - t0
        wh = read_warehouse(paths.warehouse, summary.run_id)
        sim.weeks.append(
            WeekSnapshot(
                week=week,
                as_of=as_of,
                summary=summary,
                crm_accounts=read_crm_accounts(paths.crm_db),
                tasks_logged=tasks,
                seconds=seconds,
                **wh,
            )
        )

    sim.owner_history = read_owner_history(paths.crm_db, integration_id)
    # Determinism: the last week's cycle again (same as-of, same run id) writes nothing.
    before_hash = store.content_hash()
    sim.rerun_history_rows = count_history(paths.crm_db)
    sim.rerun = _cycle(paths, sim.weeks[-1].as_of, first=False)
    sim.rerun_crm_changed = store.content_hash() != before_hash
    sim.rerun_history_rows = count_history(paths.crm_db) - sim.rerun_history_rows
    store.close()
    sim.timings["total"] = time.monotonic() - started
    yield sim
