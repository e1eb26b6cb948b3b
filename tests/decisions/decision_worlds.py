"""Small generated worlds for the decision engine: the four input models as polars frames.

Inputs follow CONTRACTS.md ("Decision-engine inputs"); capacity rows are derived from the
generated books with int_reps_capacity's documented split rule, so the inputs are consistent.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import polars as pl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.decisions.compiled_sql import CompiledRunner

SEGMENTS = ("enterprise", "midmarket", "smb", "startup")
REASONS = ("bad_data", "disqualified", "not_now", "get_back_to_me", "no_response", "duplicate")
OWNED_STATES = ("working", "stale", "converted")
POOL_STATES = ("ready", "resting", "review", "retired")

ACCOUNT_SCHEMA = {
    "account_id": pl.String, "account_name": pl.String, "family_id": pl.String,
    "is_family_head": pl.Boolean, "family_size": pl.Int64, "segment_key": pl.String,
    "owner_id": pl.String, "owner_kind": pl.String, "state": pl.String,
    "state_reason": pl.String, "state_entered_date": pl.Date, "fit_score": pl.Float64,
    "fit_tier": pl.String, "timing_score": pl.Float64, "is_in_market": pl.Boolean,
    "is_hot": pl.Boolean, "strongest_signal": pl.String, "priority_score": pl.Float64,
    "has_open_opportunity": pl.Boolean, "is_customer": pl.Boolean,
    "last_meaningful_touch_date": pl.Date, "last_touch_by_owner_date": pl.Date,
    "distribution_date": pl.Date, "rest_until_date": pl.Date, "return_date": pl.Date,
    "return_reason": pl.String, "pending_return_reason": pl.String,
    "return_requested_by_id": pl.String, "get_back_date": pl.Date,
    "has_data_quality_issue": pl.Boolean,
}  # fmt: skip
# Who set the owner, why the owner left the book, the last change made by hand (people policy).
ACCOUNT_SCHEMA |= {
    "owner_source": pl.String, "owner_departure_reason": pl.String,
    "owner_manager_id": pl.String, "manual_change_date": pl.Date,
    "manual_changed_by_id": pl.String, "manual_from_owner_id": pl.String,
}  # fmt: skip
REP_SCHEMA = {
    "rep_slot_id": pl.String, "rep_id": pl.String, "rep_name": pl.String, "role": pl.String,
    "segment_key": pl.String, "slot_kind": pl.String, "is_eligible": pl.Boolean,
    "ineligible_reason": pl.String, "capacity": pl.Int64, "current_count": pl.Int64,
    "open_slots": pl.Int64, "max_new_per_run": pl.Int64,
}  # fmt: skip
USER_SCHEMA = {"user_id": pl.String, "owner_kind": pl.String, "is_active": pl.Boolean}
CRM_SCHEMA = {
    "account_id": pl.String, "owner_id": pl.String, "book_status": pl.String,
    "crm_last_touch_date": pl.Date, "distribution_date": pl.Date,
    "distribution_reason": pl.String, "return_date": pl.Date, "return_reason": pl.String,
    "rest_until_date": pl.Date, "pending_return_reason": pl.String,
    "return_requested_by_id": pl.String,
}  # fmt: skip


OPPORTUNITY_SCHEMA = {
    "opportunity_id": pl.String, "account_id": pl.String, "is_closed": pl.Boolean,
    "close_date_push_count": pl.Int64,
}  # fmt: skip
LEAD_SCHEMA = {
    "lead_id": pl.String, "owner_id": pl.String, "is_converted": pl.Boolean,
    "created_date": pl.Date,
}  # fmt: skip
SIGNAL_SCHEMA = {"signal_id": pl.String, "account_id": pl.String, "signal_type": pl.String}
CYCLE_MODES = ("full", "signals", "returns")
LEAD_MATCH_SCHEMA = {
    "lead_id": pl.String, "match_status": pl.String, "match_method": pl.String,
    "matched_account_id": pl.String,
}  # fmt: skip


@dataclass
class Rep:
    rep_id: str
    segment_key: str
    is_eligible: bool
    fit_capacity: int
    intent_capacity: int
    max_new_per_run: int


@dataclass
class World:
    as_of_date: dt.date
    reps: list[Rep]
    pool_users: list[str]
    accounts: list[dict] = field(default_factory=list)
    opportunities: list[dict] = field(default_factory=list)
    leads: list[dict] = field(default_factory=list)
    signals: list[dict] = field(default_factory=list)

    def rep(self, rep_id: str) -> Rep | None:
        return next((rep for rep in self.reps if rep.rep_id == rep_id), None)

    def frames(self, shuffle_seed: int | None = None) -> dict[str, pl.DataFrame]:
        """The input models (int_accounts_classified, int_reps_capacity, int_users_classified,
        stg_salesforce__accounts, stg_salesforce__opportunities, stg_salesforce__leads,
        int_leads_matched, stg_salesforce__signals); rows shuffled when a seed is given (same rows, another order:
        decisions must not depend on row order)."""
        accounts = pl.DataFrame(self.accounts, schema=ACCOUNT_SCHEMA)
        users = [{"user_id": u, "owner_kind": "pool", "is_active": True} for u in self.pool_users]
        users += [
            {"user_id": rep.rep_id, "owner_kind": "rep", "is_active": True} for rep in self.reps
        ]
        users.append({"user_id": "005AE", "owner_kind": "non_book", "is_active": True})
        crm = [
            {
                "account_id": row["account_id"],
                "owner_id": row["owner_id"],
                "book_status": row["state"],
                "crm_last_touch_date": row["last_meaningful_touch_date"],
                "distribution_date": row["distribution_date"],
                "distribution_reason": None,
                "return_date": row["return_date"],
                "return_reason": row["return_reason"],
                "rest_until_date": row["rest_until_date"],
                "pending_return_reason": row["pending_return_reason"],
                "return_requested_by_id": row["return_requested_by_id"],
            }  # fmt: skip
            for row in self.accounts
        ]
        frames = {
            "int_accounts_classified": accounts,
            "int_reps_capacity": pl.DataFrame(self.capacity_rows(), schema=REP_SCHEMA),
            "int_users_classified": pl.DataFrame(users, schema=USER_SCHEMA),
            "stg_salesforce__accounts": pl.DataFrame(crm, schema=CRM_SCHEMA),
            "stg_salesforce__opportunities": pl.DataFrame(
                self.opportunities, schema=OPPORTUNITY_SCHEMA
            ),
            "stg_salesforce__leads": pl.DataFrame(
                [{key: lead[key] for key in LEAD_SCHEMA} for lead in self.leads], schema=LEAD_SCHEMA
            ),
            "int_leads_matched": pl.DataFrame(
                [{key: lead[key] for key in LEAD_MATCH_SCHEMA} for lead in self.leads],
                schema=LEAD_MATCH_SCHEMA,
            ),
            "stg_salesforce__signals": pl.DataFrame(self.signals, schema=SIGNAL_SCHEMA),
        }
        if shuffle_seed is None:
            return frames
        return {
            name: frame.sample(fraction=1.0, shuffle=True, seed=shuffle_seed)
            for name, frame in frames.items()
        }

    def capacity_rows(self) -> list[dict]:
        """int_reps_capacity rows: in-market owned accounts fill intent first, the rest fill fit,
        then any intent slot still free (the capacity model). The engine recounts books from
        the accounts; only the capacities here decide."""
        rows = []
        for rep in self.reps:
            owned = [
                a for a in self.accounts
                if a["owner_id"] == rep.rep_id and a["state"] in ("working", "stale")
            ]  # fmt: skip
            in_market = sum(1 for a in owned if a["is_in_market"])
            intent_count = min(
                rep.intent_capacity,
                min(in_market, rep.intent_capacity)
                + max(len(owned) - min(in_market, rep.intent_capacity) - rep.fit_capacity, 0),
            )
            counts = {"intent": intent_count, "fit": len(owned) - intent_count}
            nominal = {"intent": rep.intent_capacity, "fit": rep.fit_capacity}
            for kind in ("fit", "intent"):
                capacity = nominal[kind] if rep.is_eligible else 0
                rows.append({
                    "rep_slot_id": f"{rep.rep_id}:{kind}", "rep_id": rep.rep_id,
                    "rep_name": rep.rep_id, "role": "SDR", "segment_key": rep.segment_key,
                    "slot_kind": kind, "is_eligible": rep.is_eligible,
                    "ineligible_reason": None if rep.is_eligible else "inactive",
                    "capacity": capacity, "current_count": counts[kind],
                    "open_slots": max(capacity - counts[kind], 0),
                    "max_new_per_run": rep.max_new_per_run if rep.is_eligible else 0,
                })  # fmt: skip
        return rows


def account_row(account_id: str, **values) -> dict:
    """An int_accounts_classified row with neutral defaults."""
    row = dict.fromkeys(ACCOUNT_SCHEMA)
    row.update(
        account_id=account_id, account_name=account_id, is_family_head=False, family_size=1,
        segment_key=SEGMENTS[0], owner_kind="pool", state="ready", fit_score=50.0,
        timing_score=0.0, is_in_market=False, is_hot=False, priority_score=50.0,
        has_open_opportunity=False, is_customer=False, has_data_quality_issue=False,
    )  # fmt: skip
    row.update(values)
    return row


@st.composite
def worlds(draw) -> World:
    """Any small world (1-4 segments, 2-8 reps, 5-80 accounts): reps (some ineligible), pool
    users, families, every state, return requests (valid and not), hot signals, blocked reps,
    open opportunities."""
    as_of = dt.date(2025, 1, 6) + dt.timedelta(days=7 * draw(st.integers(0, 60)))
    segments = SEGMENTS[: draw(st.integers(1, len(SEGMENTS)))]
    reps = [
        Rep(
            rep_id=f"005R{index:02d}",
            segment_key=draw(st.sampled_from(segments)),
            is_eligible=draw(st.booleans() | st.just(True)),
            fit_capacity=draw(st.integers(0, 6)),
            intent_capacity=draw(st.integers(0, 3)),
            max_new_per_run=draw(st.integers(0, 8)),
        )
        for index in range(draw(st.integers(2, 8)))
    ]
    pool_users = [f"005P{index:02d}" for index in range(draw(st.integers(1, 3)))]
    world = World(as_of_date=as_of, reps=reps, pool_users=pool_users)
    account_count = draw(st.integers(5, 80))
    # Half the worlds have books mostly out of market, so books overflow their fit slots.
    owned_timing = draw(st.sampled_from([100, 40]))
    counter = 0
    family_index = 0
    while counter < account_count:
        family_index += 1
        size = min(draw(st.integers(1, 3)), account_count - counter)
        segment = draw(st.sampled_from(segments))
        family_owner = draw(st.sampled_from([rep.rep_id for rep in reps]))
        family_id = f"001F{family_index:02d}" if size > 1 else None
        for member in range(size):
            counter += 1
            account_id = f"001A{counter:03d}"
            state = draw(st.sampled_from(OWNED_STATES + POOL_STATES + ("excluded",)))
            timing = float(draw(st.integers(0, 100 if state not in OWNED_STATES else owned_timing)))
            if state in OWNED_STATES:
                owner, owner_kind = family_owner, "rep"
            elif state == "excluded":
                owner, owner_kind = "005AE", "non_book"
            else:
                owner, owner_kind = draw(st.sampled_from(pool_users)), "pool"
            pending = draw(st.none() | st.none() | st.sampled_from(REASONS + ("bogus",)))
            requester = None
            if pending is not None:
                requester = draw(st.sampled_from([owner, owner, reps[0].rep_id, None]))
            blocked = state == "ready" and draw(st.integers(0, 9)) == 0
            last_touch = as_of - dt.timedelta(days=draw(st.integers(0, 90)))
            world.accounts.append(
                account_row(
                    account_id,
                    family_id=family_id or account_id,
                    is_family_head=member == 0,
                    family_size=size,
                    segment_key=segment,
                    owner_id=owner,
                    owner_kind=owner_kind,
                    state=state,
                    fit_score=float(timing),  # carried into decision rows, never decides
                    timing_score=timing,
                    is_in_market=timing >= 30,
                    is_hot=timing >= 70,
                    strongest_signal="intent_surge" if timing >= 30 else None,
                    priority_score=float(draw(st.integers(0, 100))),
                    has_open_opportunity=state == "converted"
                    or (state == "stale" and draw(st.integers(0, 4)) == 0),
                    last_touch_by_owner_date=last_touch,
                    last_meaningful_touch_date=last_touch,
                    pending_return_reason=pending,
                    return_requested_by_id=requester
                    if pending
                    else (draw(st.sampled_from([rep.rep_id for rep in reps])) if blocked else None),
                    rest_until_date=as_of + dt.timedelta(days=5) if blocked else None,
                    get_back_date=as_of + dt.timedelta(days=draw(st.integers(-5, 40)))
                    if pending == "get_back_to_me" and draw(st.booleans())
                    else None,
                )
            )
            # Signal__c rows: in-market accounts have one, a few others a weak one.
            if timing >= 30 or draw(st.integers(0, 4)) == 0:
                world.signals.append({
                    "signal_id": f"a01{account_id}", "account_id": account_id,
                    "signal_type": "intent_surge",
                })  # fmt: skip
            if world.accounts[-1]["has_open_opportunity"]:
                world.opportunities.append({
                    "opportunity_id": f"006{account_id}", "account_id": account_id,
                    "is_closed": False, "close_date_push_count": draw(st.integers(0, 5)),
                })  # fmt: skip
            if draw(st.integers(0, 3)) == 0:
                matched = draw(st.integers(0, 3)) > 0
                world.leads.append({
                    "lead_id": f"00Q{account_id}",
                    "owner_id": draw(st.sampled_from([owner, *pool_users])),
                    "is_converted": draw(st.integers(0, 5)) == 0,
                    "created_date": as_of - dt.timedelta(days=draw(st.integers(-3, 40))),
                    "match_status": "matched" if matched else "ambiguous",
                    "match_method": "domain",
                    "matched_account_id": account_id if matched else None,
                })  # fmt: skip
    return world


# >= 500 generated worlds per property in CI, a quick sample locally.
settings.register_profile(
    "decisions-ci",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "decisions-dev",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def property_settings() -> settings:
    """The hypothesis profile for these tests (chosen per test, not globally)."""
    return settings.get_profile("decisions-ci" if os.environ.get("CI") else "decisions-dev")


def run_context_frames(
    as_of_date: dt.date, run_id: str = "run-1", mode: str = "full", cycle_ids: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """dec_run_context (one row) and the ops.run_cycle_ids source for a run in `mode`."""
    context = pl.DataFrame({
        "run_id": [run_id], "as_of_date": [as_of_date], "policy_version": ["p1"],
        "cycle_mode": [mode],
    })  # fmt: skip
    return context, pl.DataFrame({"id": list(cycle_ids)}, schema={"id": pl.String})


def run_world(
    engine: CompiledRunner,
    world: World,
    run_id: str = "run-1",
    shuffle_seed: int | None = None,
    stubs: dict[str, pl.DataFrame] | None = None,
    mode: str = "full",
    cycle_ids: tuple[str, ...] = (),
) -> dict[str, list]:
    """Load the world's inputs (and `stubs` for models given as inputs) and the run context of
    a `mode` run about `cycle_ids`, run the compiled engine, return the rows of its outputs
    (only the distributions for a step-4 runner)."""
    for name, frame in {**world.frames(shuffle_seed), **(stubs or {})}.items():
        engine.load(name, frame)
    context, ids = run_context_frames(world.as_of_date, run_id, mode, cycle_ids)
    engine.load("dec_run_context", context)
    engine.load_source("ops", "run_cycle_ids", ids)
    engine.run()
    if "book_decisions" not in engine.order:
        return {
            "decisions": engine.frame("dec_distributions", "pick_number, account_id").to_dicts()
        }
    return {
        "decisions": engine.frame(
            "book_decisions", "step_number, account_id, decision_kind, lead_id"
        ).to_dicts(),
        "after": engine.frame("dec_accounts_after", "account_id").to_dicts(),
        "sync": engine.frame("sync_salesforce__accounts", "account_id").to_dicts(),
        "candidates": engine.frame("dec_run_candidates", "account_id").to_dicts(),
    }
