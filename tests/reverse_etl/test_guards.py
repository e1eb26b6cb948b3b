"""The per-book blast-radius guard against the local CRM: one rep over its share is held back,
the rest of the plan writes; an override releases the held moves."""

from __future__ import annotations

import logging

import duckdb
import pytest

from reverse_etl import WritePolicy, apply_plan, ledger, plan_write_back
from tests.reverse_etl.wb_world import POOL_USERNAME, World, fixed_clock

POLICY = WritePolicy(pool_users=(POOL_USERNAME,))


def _plan_one_stale_book(world: World) -> tuple[list[str], list[str], list[str]]:
    """Rep 0 loses 6 of its 10 accounts (60% > 50%); reps 1 and 2 lose one each; two accounts
    of rep 3 get a status change only. 8 moves of 100 owned accounts: under the global 25%."""
    book = lambda rep: [a for i, a in enumerate(world.accounts) if i % len(world.reps) == rep]  # noqa: E731
    stale = book(0)[:6]
    others = book(1)[:1] + book(2)[:1]
    touched = book(3)[:2]
    wanted = {a: {"OwnerId": world.pool, "Book_Status__c": "resting"} for a in stale + others}
    wanted |= {a: {"Book_Status__c": "stale"} for a in touched}
    world.sync_changes("run-1", wanted)
    return stale, others, touched


def _holds(world: World) -> list[tuple]:
    with duckdb.connect(str(world.warehouse)) as con:
        return con.execute(
            "select record_id, owner_id, reason, released_at from ops.write_holds "
            "where run_id = 'run-1' order by record_id"
        ).fetchall()


def test_one_rep_over_its_share_is_held_and_the_rest_writes(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    stale, others, touched = _plan_one_stale_book(world)
    with caplog.at_level(logging.WARNING, logger="reverse_etl.guards"):
        plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    assert not plan.is_blocked, plan.blocked_reasons
    assert plan.moves == 8 and sorted(h.record_id for h in plan.held) == sorted(stale)
    held_lines = [r.getMessage() for r in caplog.records if "held:" in r.getMessage()]
    assert held_lines == [f"write-back run-1: 6 changes {plan.held[0].reason}"]  # one per book

    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert not report.is_blocked
    assert report.held == 6
    assert report.held_reasons == (
        f"held: plan takes 6 of the 10 accounts of owner {world.reps[0]} (60% > "
        "guards.max_share_of_one_book 50%); review that book, or override the run",
    )
    assert report.outcomes == {"applied": 4, "planned": 6}
    assert all(world.crm_values(a)["OwnerId"] == world.reps[0] for a in stale)
    assert all(world.crm_values(a)["OwnerId"] == world.pool for a in others)
    assert all(world.crm_values(a)["Book_Status__c"] == "stale" for a in touched)
    holds = _holds(world)
    assert [h[0] for h in holds] == sorted(stale)
    assert {h[1] for h in holds} == {world.reps[0]} and all(h[3] is None for h in holds)
    assert ledger.plan_status(world.warehouse, "run-1") == "planned"

    # Re-running the same run sends nothing: the held moves stay held, the rest is done.
    seq = world.server.last_request_seq()
    again = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert again.outcomes == {"applied": 4, "planned": 6} and again.write_calls == 0
    assert world.server.write_calls(seq) == 0


def test_override_releases_the_held_moves(world: World) -> None:
    stale, _, _ = _plan_one_stale_book(world)
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)

    report = apply_plan(
        world.connect(), world.warehouse, plan, override_guard=True, clock=fixed_clock
    )
    assert report.held == 0 and report.held_reasons == ()
    assert report.outcomes == {"applied": 10}
    assert all(world.crm_values(a)["OwnerId"] == world.pool for a in stale)
    assert all(h[3] is not None for h in _holds(world))  # the release is recorded


def test_a_rule_bug_over_the_global_share_still_blocks_everything(world: World) -> None:
    """60% of all owned accounts retrieved: every book is over its share too, but the plan is
    blocked whole - not one write, held or otherwise."""
    world.sync_changes(
        "run-1",
        {a: {"OwnerId": world.pool, "Book_Status__c": "resting"} for a in world.accounts[:60]}
        | {a: {"Book_Status__c": "stale"} for a in world.accounts[60:62]},
    )
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    assert plan.is_blocked and "max_move_share_of_owned" in plan.blocked_reasons[0]
    seq = world.server.last_request_seq()
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.is_blocked and report.outcomes == {"planned": 62}
    assert [r for r in world.server.request_log(seq) if "/services/data" in r["path"]] == []
    assert ledger.plan_status(world.warehouse, "run-1") == "blocked"
