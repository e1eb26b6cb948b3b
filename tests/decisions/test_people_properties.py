"""Properties of the engine about people (hypothesis, on the generated decision worlds): a rep
who leaves keeps nothing that can go back to the pool, and a person's assignment is respected
for the grace period."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from policy import load_policy
from tests.dbt.dbt_helpers import POLICY_FILE
from tests.decisions.compiled_sql import CompiledRunner
from tests.decisions.decision_worlds import (
    World,
    property_settings,
    run_context_frames,
    worlds,
)

GRACE_DAYS = load_policy(POLICY_FILE).lifecycle.grace_period_days

# 500 worlds per property in CI: queued first with the other decision properties
pytestmark = pytest.mark.long_pole


@st.composite
def people_worlds(draw) -> tuple[World, set[str]]:
    """A generated world where some reps became inactive (their accounts classified as the
    lifecycle models do: excluded unless converted, departure reason owner_inactive) and some
    owned accounts were assigned by hand 0-40 days ago, whatever state they are in."""
    world = draw(worlds())
    inactive = {rep.rep_id for rep in world.reps if draw(st.integers(0, 2)) == 0}
    for rep in world.reps:
        if rep.rep_id in inactive:
            rep.is_eligible = False
    for account in world.accounts:
        if account["owner_id"] in inactive:
            account["owner_kind"] = "inactive"
            account["owner_departure_reason"] = "owner_inactive"
            if account["state"] != "converted":
                account["state"], account["state_reason"] = "excluded", "inactive_owner"
        elif account["owner_kind"] == "rep" and draw(st.booleans()):
            account["owner_source"] = "manual"
            # the grace period's last day and the day after, often: its edge matters
            age = draw(st.sampled_from((GRACE_DAYS, GRACE_DAYS + 1)) | st.integers(0, 40))
            account["manual_change_date"] = world.as_of_date - dt.timedelta(days=age)
            account["manual_changed_by_id"] = "005MGR"
            account["manual_from_owner_id"] = world.pool_users[0]
    return world, inactive


def run_people_world(engine: CompiledRunner, world: World, inactive: set[str]) -> dict[str, list]:
    """One full run; only the models these properties read (the decisions, accounts after)."""
    frames = world.frames()
    frames["int_users_classified"] = frames["int_users_classified"].with_columns(
        owner_kind=pl.when(pl.col("user_id").is_in(list(inactive)))
        .then(pl.lit("inactive"))
        .otherwise(pl.col("owner_kind")),
        is_active=~pl.col("user_id").is_in(list(inactive)),
    )
    for name, frame in frames.items():
        engine.load(name, frame)
    context, ids = run_context_frames(world.as_of_date)
    engine.load("dec_run_context", context)
    engine.load_source("ops", "run_cycle_ids", ids)
    engine.run(("dec_run_decisions", "dec_accounts_after"))
    return {
        "decisions": engine.frame("dec_run_decisions").to_dicts(),
        "after": engine.frame("dec_accounts_after").to_dicts(),
    }


@property_settings()
@given(case=people_worlds())
def test_inactive_rep_owns_no_releasable_account(
    engine: CompiledRunner, case: tuple[World, set[str]]
) -> None:
    """After the run, every account an inactive rep still owns has an open opportunity or is a
    customer (it stays for the manager); everything else went back to the pool."""
    world, inactive = case
    inputs = {row["account_id"]: row for row in world.accounts}
    result = run_people_world(engine, world, inactive)
    kept = [a for a in result["after"] if a["owner_id"] in inactive]
    for account in kept:
        source = inputs[account["account_id"]]
        assert source["has_open_opportunity"] or source["is_customer"], account
    for account in result["after"]:
        if inputs[account["account_id"]]["owner_id"] in inactive and account not in kept:
            assert account["owner_id"] in world.pool_users, account
    event(
        f"an inactive rep owned accounts: {any(a['owner_id'] in inactive for a in inputs.values())}"
    )


@property_settings()
@given(case=people_worlds())
def test_manual_assignment_within_grace_is_never_retrieved(
    engine: CompiledRunner, case: tuple[World, set[str]]
) -> None:
    """No account a person assigned by hand within the grace period is retrieved, whatever
    state it is in."""
    world, inactive = case
    inputs = {row["account_id"]: row for row in world.accounts}
    result = run_people_world(engine, world, inactive)
    young = {
        account_id
        for account_id, row in inputs.items()
        if row["manual_change_date"] is not None
        and (world.as_of_date - row["manual_change_date"]).days <= GRACE_DAYS
    }
    retrieved = {d["account_id"] for d in result["decisions"] if d["decision_kind"] == "retrieve"}
    assert not (young & retrieved), sorted(young & retrieved)
    event(f"young manual stale accounts: {any(inputs[a]['state'] == 'stale' for a in young)}")
