"""The out-of-cycle run a hot-signal sensor starts decides its accounts as the full cycle would.

The sensor's run is the fast path for speed to lead: it routes the accounts of its new signals
without waiting for the weekly cycle. Routing them in seconds must not route them differently:
on a world where the cycle's earlier steps (returns, retrievals, releases) have nothing to do, a
'signals' run about every signal routes and flags exactly the accounts the full cycle routes
and flags, to the same reps and slots. The compiled dbt SQL runs directly in DuckDB (conftest).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, event, given, settings

from tests.decisions.compiled_sql import CompiledRunner
from tests.decisions.decision_worlds import World, property_settings, run_world, worlds

# What the signal step decides; the full cycle's top-off (distribute) comes after it.
SIGNAL_STEP = ("signal_route", "signal_flag")
# What runs before the signal step in a full cycle only, and changes the reps' room if it acts.
EARLIER_STEPS = (
    "return",
    "return_rejected",
    "retrieve",
    "release",
    "manual_assign",
    "manual_release",
)


def _quiet_before_signals(world: World) -> World:
    """The world with no return request pending and no stale book: the cycle's steps before
    the signal step have nothing to do, so both runs start from the same room."""
    accounts = []
    for row in world.accounts:
        row = dict(row)
        if row["pending_return_reason"]:
            row.update(pending_return_reason=None, return_requested_by_id=None, get_back_date=None)
        if row["state"] == "stale":
            row["state"] = "working"
        accounts.append(row)
    return replace(world, accounts=accounts)


def _signal_step(decisions: list[dict]) -> list[tuple]:
    return sorted(
        (d["account_id"], d["decision_kind"], d["to_owner_id"], d["slot_kind"])
        for d in decisions
        if d["decision_kind"] in SIGNAL_STEP
    )


# Each example runs the engine twice; 150 worlds in CI keep this file near two minutes there.
@settings(property_settings(), max_examples=min(150, property_settings().max_examples))
@given(world=worlds())
def test_a_signals_run_routes_its_accounts_as_the_full_cycle_does(
    engine: CompiledRunner, world: World
) -> None:
    world = _quiet_before_signals(world)
    cycle = run_world(engine, world)["decisions"]
    assume(not any(d["decision_kind"] in EARLIER_STEPS for d in cycle))

    every_signal = tuple(sorted(s["signal_id"] for s in world.signals))
    fast = run_world(engine, world, run_id="run-signals", mode="signals", cycle_ids=every_signal)

    assert _signal_step(fast["decisions"]) == _signal_step(cycle)
    event(f"signal routes: {min(sum(d[1] == 'signal_route' for d in _signal_step(cycle)), 3)}+")
