"""Silent drops: the CRM answers "success" for 0.5% of writes but does not save them.

Checked from the user's side, on the Collections and the Bulk path: the run that met the drops
notices every one (read-back), says how many a retry fixed and how many still fail, and a
re-run of the same date - or the next date's run - leaves no wanted value missing in the CRM,
whatever the dropped changes' attempt counts.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import duckdb
import pytest

from reverse_etl import WritePolicy, apply_plan, plan_write_back
from tests.reverse_etl.wb_world import POOL_USERNAME, World, build_world, fixed_clock
from warehouse.run_context import write_run_context

ACCOUNTS = 1_000
DROP_SHARE = 0.005
# Records the CRM drops on every write while the fault is on: still failing at the run's end.
STICKY = 2
# Bulk: the first write is one Bulk 2.0 job; its few retries go by Collections, dropped too.
PATHS = {"collections": ("composite/sobjects", 2000), "bulk": ("*", 100)}


def wanted_changes(world: World, seed: int) -> dict[str, dict[str, str | None]]:
    rng = random.Random(seed)
    wanted = {}
    for acc in world.accounts:
        owner = world.crm_values(acc)["OwnerId"]
        shift = rng.randint(1, len(world.reps) - 1)
        wanted[acc] = {
            "OwnerId": world.reps[(world.reps.index(owner) + shift) % len(world.reps)],
            "Book_Status__c": "working",
        }
    return wanted


def missing_values(world: World, wanted: dict[str, dict[str, str | None]]) -> list[str]:
    return sorted(
        acc
        for acc, fields in wanted.items()
        if any(world.crm_values(acc)[f] != v for f, v in fields.items())
    )


def write_changes(world: World, run_id: str, wanted: dict, threshold: int):
    world.sync_changes(run_id, wanted)
    policy = WritePolicy(pool_users=(POOL_USERNAME,), bulk_threshold=threshold)
    plan = plan_write_back(world.warehouse, run_id, policy=policy, clock=fixed_clock)
    return apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock,
                      sleep=world.time.sleep)  # fmt: skip


def dropped_run(tmp_path: Path, path: str, threshold: int, accounts: int = ACCOUNTS):
    """A world whose first run meets silent drops; returns the world, its wants and report
    (also run by benchmarks/reliability.py)."""
    world = build_world(tmp_path, n_accounts=accounts, n_leads=0)
    wanted = wanted_changes(world, seed=5)
    sticky = random.Random(9).sample(world.accounts, STICKY)
    fault = world.server.faults.add(
        "silent_drop", path=path, method="PATCH", share=DROP_SHARE, ids=sticky
    )
    report = write_changes(world, "run-1", wanted, threshold)
    world.server.faults.remove(fault)
    return world, wanted, sticky, fault, report


@pytest.mark.parametrize("route", sorted(PATHS))
def test_the_run_detects_every_silent_drop_and_a_same_date_rerun_repairs_all(
    tmp_path: Path, route: str
) -> None:
    path, threshold = PATHS[route]
    world, wanted, sticky, fault, report = dropped_run(tmp_path, path, threshold)
    try:
        missing = missing_values(world, wanted)
        assert sorted(missing) == sorted(sticky), "only the sticky records may still be missing"
        random_drops = fault.fired - report.readback_mismatches
        assert random_drops == 0, f"{fault.fired} drops, {report.readback_mismatches} detected"
        with duckdb.connect(str(world.warehouse), read_only=True) as con:
            hit = con.execute(
                "select count(*) filter (where readback_mismatches > 0 and state = 'applied'), "
                "count(*) filter (where readback_mismatches > 0 and state <> 'applied') "
                "from ops.write_ledger"
            ).fetchall()[0]
            logged = con.execute(
                "select count(*) from ops.sync_log where outcome = 'applied' "
                "and readback_mismatches > 0"
            ).fetchall()[0][0]
        fixed, failing = hit
        assert fixed > 0, "0.5% of 1,000 writes: some drops must be met and fixed by a retry"
        assert report.summary["fixed_by_retry"] == fixed == logged
        assert report.summary["still_failing"] == failing == STICKY
        assert report.still_failing_codes == {"READBACK_MISMATCH": STICKY}
        assert report.summary["applied"] == ACCOUNTS - STICKY

        again = write_changes(
            world, "run-1", wanted, threshold
        )  # the documented recovery: same date
        assert missing_values(world, wanted) == []
        assert again.summary["still_failing"] == 0
        assert again.summary["applied"] == ACCOUNTS
        assert again.summary["fixed_by_retry"] == fixed + STICKY
    finally:
        world.server.stop()


@pytest.mark.parametrize("route", sorted(PATHS))
def test_the_next_dates_run_leaves_no_silent_drop_missing(tmp_path: Path, route: str) -> None:
    path, threshold = PATHS[route]
    world, wanted, sticky, _fault, _report = dropped_run(tmp_path, path, threshold)
    try:
        assert missing_values(world, wanted) == sorted(sticky)
        nxt = write_changes(world, "run-2", wanted, threshold)  # the engine decides the same again
        assert missing_values(world, wanted) == []
        assert nxt.summary["applied"] == STICKY
        with duckdb.connect(str(world.warehouse), read_only=True) as con:
            states = dict(
                con.execute(
                    "select state, count(*) from ops.write_ledger where run_id = 'run-1' "
                    "group by all"
                ).fetchall()
            )
        assert states == {"applied": ACCOUNTS - STICKY, "superseded": STICKY}
    finally:
        world.server.stop()


def test_an_out_of_cycle_run_sends_what_an_earlier_run_left_failing(tmp_path: Path) -> None:
    """A signals or returns run decides only its own accounts: it must not drop (supersede)
    the changes an earlier run left failing, and sends them."""
    path, threshold = PATHS["collections"]
    world, wanted, sticky, _fault, _report = dropped_run(tmp_path, path, threshold)
    try:
        with duckdb.connect(str(world.warehouse)) as con:
            write_run_context(con, "signals-1", date(2025, 3, 3), "v", cycle_mode="signals")
        other = next(a for a in world.accounts if a not in sticky)
        signals = write_changes(world, "signals-1", {other: {"Book_Status__c": "stale"}}, threshold)
        assert missing_values(world, {a: wanted[a] for a in sticky}) == []
        assert signals.summary["applied"] == 1  # its own change; run-1's are run-1's
        with duckdb.connect(str(world.warehouse), read_only=True) as con:
            states = dict(
                con.execute(
                    "select state, count(*) from ops.write_ledger where run_id = 'run-1' "
                    "group by all"
                ).fetchall()
            )
        assert states == {"applied": ACCOUNTS}
    finally:
        world.server.stop()
