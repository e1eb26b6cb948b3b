"""Regression tests on small hand-built worlds: a rep who leaves a book no longer strands it,
and an account a person assigned by hand is not taken back within the grace period."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tests.decisions.compiled_sql import CompiledRunner
from tests.decisions.decision_worlds import (
    USER_SCHEMA,
    Rep,
    World,
    account_row,
    run_context_frames,
)

AS_OF = dt.date(2025, 3, 3)
POOL = ["005P00", "005P01"]


def run(engine: CompiledRunner, world: World, inactive: tuple[str, ...] = ()) -> dict:
    """Run a full cycle on `world`, its reps in `inactive` being inactive users; return the
    decisions by (account, kind) and the accounts after the run by account."""
    frames = world.frames()
    frames["int_users_classified"] = pl.DataFrame(
        [
            {**user, "owner_kind": "inactive", "is_active": False}
            if user["user_id"] in inactive
            else user
            for user in frames["int_users_classified"].to_dicts()
        ],
        schema=USER_SCHEMA,
    )
    for name, frame in frames.items():
        engine.load(name, frame)
    context, ids = run_context_frames(world.as_of_date)
    engine.load("dec_run_context", context)
    engine.load_source("ops", "run_cycle_ids", ids)
    engine.run()
    decisions = engine.frame("book_decisions").to_dicts()
    return {
        "decisions": {(d["account_id"], d["decision_kind"]): d for d in decisions},
        "after": {a["account_id"]: a for a in engine.frame("dec_accounts_after").to_dicts()},
    }


def owned(account_id: str, owner: str, **values) -> dict:
    """A rep-owned account, stale unless said otherwise (last touch 50 days ago)."""
    touch = AS_OF - dt.timedelta(days=50)
    defaults = {
        "family_id": account_id, "is_family_head": True, "segment_key": "smb",
        "owner_id": owner, "owner_kind": "rep", "state": "stale",
        "last_touch_by_owner_date": touch, "last_meaningful_touch_date": touch,
    }  # fmt: skip
    return account_row(account_id, **{**defaults, **values})


def test_departed_rep_book_returns_to_the_pool(engine: CompiledRunner) -> None:
    """R2 left (inactive): its plain account goes back to the pool at once, ready, without rest;
    its account with an open opportunity stays and is flagged for its manager. An account
    dynamic-books gave a rep who is now an AE goes back too (role_change), and so does one of
    R1's accounts outside R1's new segment; an AE's own account is not touched."""
    world = World(
        as_of_date=AS_OF,
        reps=[Rep("005R01", "smb", True, 5, 2, 5), Rep("005R02", "smb", False, 5, 2, 5)],
        pool_users=POOL,
    )
    left = {"owner_kind": "inactive", "owner_departure_reason": "owner_inactive"}
    world.accounts = [
        owned("001A1", "005R02", state="excluded", state_reason="inactive_owner", **left),
        owned(
            "001A2", "005R02", state="converted", has_open_opportunity=True,
            owner_manager_id="005MGR", **left,
        ),
        owned(
            "001A3", "005AE", owner_kind="non_book", state="excluded", owner_source="dynamic_books",
            owner_departure_reason="role_change",
        ),
        owned("001A4", "005AE", owner_kind="non_book", state="excluded"),
        owned(
            "001A5", "005R01", segment_key="enterprise", state="working",
            last_touch_by_owner_date=AS_OF, owner_source="dynamic_books",
            owner_departure_reason="segment_change",
        ),
    ]  # fmt: skip
    world.opportunities = [
        {"opportunity_id": "006A2", "account_id": "001A2", "is_closed": False,
         "close_date_push_count": 0},
    ]  # fmt: skip
    result = run(engine, world, inactive=("005R02",))
    after, decisions = result["after"], result["decisions"]

    for account_id, reason in (
        ("001A1", "owner_inactive"),
        ("001A3", "role_change"),
        ("001A5", "segment_change"),
    ):
        assert after[account_id]["owner_id"] in POOL, account_id
        assert after[account_id]["state"] == "ready", account_id
        assert after[account_id]["rest_until_date"] is None, account_id
        release = decisions[(account_id, "release")]
        assert release["reason"] == reason
        assert release["to_owner_id"] == after[account_id]["owner_id"]

    assert after["001A2"]["owner_id"] == "005R02"
    flag = decisions[("001A2", "departure_flag")]
    assert flag["reason"] == "owner_inactive" and "005MGR" in flag["rule"]

    assert after["001A4"]["owner_id"] == "005AE"
    assert not [key for key in decisions if key[0] == "001A4"]


def test_manual_assignment_is_respected_within_the_grace_period(engine: CompiledRunner) -> None:
    """A manager gave 001M1 to R1 by hand 5 days ago (grace 14): the run does not take it back
    and records the manual assignment with who made it. 001M2, assigned by hand 40 days ago
    and untouched since, is retrieved as usual."""
    world = World(as_of_date=AS_OF, reps=[Rep("005R01", "smb", True, 5, 2, 5)], pool_users=POOL)
    world.accounts = [
        owned(
            "001M1", "005R01", owner_source="manual", manual_change_date=AS_OF - dt.timedelta(5),
            manual_changed_by_id="005MGR", manual_from_owner_id="005P00",
        ),
        owned(
            "001M2", "005R01", owner_source="manual", manual_change_date=AS_OF - dt.timedelta(40),
            manual_changed_by_id="005MGR", manual_from_owner_id="005P00",
        ),
    ]  # fmt: skip
    result = run(engine, world)
    after, decisions = result["after"], result["decisions"]

    assert after["001M1"]["owner_id"] == "005R01"
    assert ("001M1", "retrieve") not in decisions
    manual = decisions[("001M1", "manual_assign")]
    assert manual["changed_by_id"] == "005MGR"
    assert (manual["from_owner_id"], manual["to_owner_id"]) == ("005P00", "005R01")

    assert after["001M2"]["owner_id"] in POOL
    assert ("001M2", "retrieve") in decisions
    assert ("001M2", "manual_assign") not in decisions
