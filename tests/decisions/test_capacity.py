"""One capacity model for every route, on small hand-built worlds whose outcome is written first.

A rep's book counts against its total target (fit + intent slots); the slot kinds only
partition it. So a rep whose book is full receives nothing by any route (signal route or
top-off), hot accounts go to reps with room, and when nobody in the segment has room a hot
account stays in the pool."""

from __future__ import annotations

import datetime as dt

from tests.decisions.compiled_sql import CompiledRunner
from tests.decisions.decision_worlds import Rep, World, account_row, run_world

MONDAY = dt.date(2025, 3, 3)
FULL_REP = "005R00"  # BDR: target 60 = 40 fit + 20 intent, 60 worked accounts, none in market
ROOMY_REP = "005R01"  # target 100, 11 accounts: 89 open slots


def bdr_world(as_of: dt.date, *, with_roomy_rep: bool, hot_accounts: int = 1) -> World:
    reps = [Rep(FULL_REP, "smb", True, 40, 20, 10)]
    if with_roomy_rep:
        reps.append(Rep(ROOMY_REP, "smb", True, 80, 20, 10))
    world = World(as_of_date=as_of, reps=reps, pool_users=["005P00"])
    books = {FULL_REP: 60, ROOMY_REP: 11 if with_roomy_rep else 0}
    for rep_id, size in books.items():
        for index in range(size):
            world.accounts.append(
                account_row(
                    account_id := f"001{rep_id[-2:]}{index:04d}",
                    family_id=account_id,
                    segment_key="smb",
                    owner_id=rep_id,
                    owner_kind="rep",
                    state="working",
                    last_touch_by_owner_date=as_of - dt.timedelta(days=3),
                    last_meaningful_touch_date=as_of - dt.timedelta(days=3),
                )
            )
    for index in range(hot_accounts):
        world.accounts.append(
            account_row(
                account_id := f"001HOT{index:03d}",
                family_id=account_id,
                segment_key="smb",
                owner_id="005P00",
                timing_score=90.0,
                is_in_market=True,
                is_hot=True,
                strongest_signal="intent_surge",
                priority_score=95.0,
            )
        )
        world.signals.append(
            {
                "signal_id": f"a01{account_id}",
                "account_id": account_id,
                "signal_type": "intent_surge",
            }
        )
    return world


def book_after(result: dict[str, list], rep_id: str) -> int:
    return sum(
        1
        for row in result["after"]
        if row["owner_id"] == rep_id and row["state"] in ("working", "stale")
    )


def received_by(result: dict[str, list], rep_id: str) -> list[str]:
    return [
        d["account_id"]
        for d in result["decisions"]
        if d["decision_kind"] in ("signal_route", "distribute") and d["to_owner_id"] == rep_id
    ]


def test_hot_account_goes_to_the_rep_with_room_whoever_picks_first(
    engine: CompiledRunner,
) -> None:
    """Over a full rotation (two weekly runs, each rep picking first once) the full BDR never
    receives the hot account; the rep with 89 open slots does."""
    for week in range(2):
        world = bdr_world(MONDAY + dt.timedelta(weeks=week), with_roomy_rep=True)
        result = run_world(engine, world, run_id=f"run-{week}")
        assert received_by(result, FULL_REP) == [], f"week {week}"
        assert book_after(result, FULL_REP) == 60
        assert received_by(result, ROOMY_REP) == ["001HOT000"], f"week {week}"


def test_full_rep_alone_in_its_segment_receives_no_hot_account_run_after_run(
    engine: CompiledRunner,
) -> None:
    """Three hot accounts, the only rep of the segment is full: they stay in the pool in the
    weekly run and in a signals run, on several dates."""
    for day in range(3):
        world = bdr_world(MONDAY + dt.timedelta(days=day), with_roomy_rep=False, hot_accounts=3)
        for mode, ids in (("full", ()), ("signals", tuple(s["signal_id"] for s in world.signals))):
            result = run_world(engine, world, run_id=f"run-{day}-{mode}", mode=mode, cycle_ids=ids)
            assert received_by(result, FULL_REP) == [], (day, mode)
            assert book_after(result, FULL_REP) == 60, (day, mode)
            hot_after = {
                row["account_id"]: row["owner_id"]
                for row in result["after"]
                if row["account_id"].startswith("001HOT")
            }
            assert set(hot_after.values()) == {"005P00"}, (day, mode)
