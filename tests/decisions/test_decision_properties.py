"""Property-based tests of the decision engine: the compiled dbt SQL of
models/decisions and models/sync, run directly in DuckDB on generated worlds, in every cycle
mode (a weekly 'full' run and the sensors' out-of-cycle 'signals' and 'returns' runs)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.decisions.compiled_sql import CompiledRunner
from tests.decisions.conftest import DISTRIBUTION_STUBS
from tests.decisions.decision_worlds import (
    SEGMENTS,
    Rep,
    World,
    account_row,
    property_settings,
    run_world,
    worlds,
)

APPLIED = ("return", "retrieve", "signal_route", "distribute")
NEW_TO_BOOK = ("signal_route", "distribute")
BOOK_STATES = ("working", "stale")
SIGNALS_KINDS = {"signal_route", "signal_flag", "lead_route"}
RETURNS_KINDS = {"return", "return_rejected", "distribute", "swap"}

# ~10 minutes in CI (500 worlds per property): queued first (tests/conftest.py)
pytestmark = pytest.mark.long_pole


@st.composite
def out_of_cycle_runs(draw, world: World) -> tuple[str, tuple[str, ...]]:
    """A sensor's run on `world`: 'signals' with some of its Signal__c ids, or 'returns' with
    some account ids (mostly ones with a pending request)."""
    if draw(st.booleans()):
        ids = sorted(signal["signal_id"] for signal in world.signals)
        return "signals", tuple(draw(st.lists(st.sampled_from(ids), unique=True)) if ids else ())
    requested = [a["account_id"] for a in world.accounts if a["pending_return_reason"]]
    others = [a["account_id"] for a in world.accounts]
    picks = draw(st.lists(st.sampled_from(requested), unique=True)) if requested else []
    picks += draw(st.lists(st.sampled_from(others), max_size=3, unique=True))
    return "returns", tuple(sorted(set(picks)))


@property_settings()
@given(world=worlds(), shuffle_seed=st.integers(0, 2**16), data=st.data())
def test_engine_invariants(
    engine: CompiledRunner, world: World, shuffle_seed: int, data: st.DataObject
) -> None:
    """Every world runs in full mode (invariants + determinism) and once more as one of the
    sensors' out-of-cycle runs (invariants + it decides nothing outside its ids)."""
    result = run_world(engine, world)
    assert_invariants(world, result, "full", set())
    # Determinism: the same inputs, loaded in another row order, give identical rows.
    assert run_world(engine, world, shuffle_seed=shuffle_seed) == result

    mode, cycle_ids = data.draw(out_of_cycle_runs(world), label="out-of-cycle run")
    if mode == "signals":
        scope = {s["account_id"] for s in world.signals if s["signal_id"] in cycle_ids}
    else:
        scope = set(cycle_ids)
    narrow = run_world(engine, world, run_id="run-oc", mode=mode, cycle_ids=cycle_ids)
    assert_invariants(world, narrow, mode, scope)
    assert_scoped(world, narrow["decisions"], mode, scope)
    moved = sum(d["decision_kind"] in APPLIED for d in narrow["decisions"])
    event(f"{mode} run moves accounts: {moved > 0}")


def assert_scoped(world: World, decisions: list[dict], mode: str, scope: set[str]) -> None:
    """A 'signals' run only routes/flags its signals' accounts (a routed family holds one) and
    never retrieves, returns or tops off; a 'returns' run only decides its listed accounts'
    requests and replaces accepted returns one for one (each replacement is a swap)."""
    inputs = {row["account_id"]: row for row in world.accounts}
    kinds = {d["decision_kind"] for d in decisions}
    if mode == "signals":
        assert kinds <= SIGNALS_KINDS, kinds
        for d in decisions:
            if d["decision_kind"] == "signal_route":
                family = inputs[d["account_id"]]["family_id"]
                assert any(inputs[a]["family_id"] == family for a in scope), d
            else:
                assert d["account_id"] in scope, d
        flagged = {d["account_id"] for d in decisions if d["decision_kind"] == "signal_flag"}
        assert flagged == {
            a for a in scope if inputs[a]["is_hot"] and inputs[a]["owner_kind"] == "rep"
        }
        return
    assert kinds <= RETURNS_KINDS, kinds
    returned = Counter(d["from_owner_id"] for d in decisions if d["decision_kind"] == "return")
    replaced = Counter(d["to_owner_id"] for d in decisions if d["decision_kind"] == "distribute")
    for d in decisions:
        if d["decision_kind"].startswith("return"):
            assert d["account_id"] in scope, d
    assert all(n <= returned[rep] for rep, n in replaced.items()), (replaced, returned)
    swaps = {d["account_id"] for d in decisions if d["decision_kind"] == "swap"}
    assert swaps == {d["account_id"] for d in decisions if d["decision_kind"] == "distribute"}


def assert_invariants(world: World, result: dict[str, list], mode: str, scope: set[str]) -> None:
    """The engine's invariants; what a run must report depends on its mode and scope."""
    decisions, after = result["decisions"], result["after"]
    inputs = {row["account_id"]: row for row in world.accounts}
    reps = {rep.rep_id: rep for rep in world.reps}

    # One row per account after the run, and at most one applied move per account.
    assert sorted(row["account_id"] for row in after) == sorted(inputs)
    applied = Counter(d["account_id"] for d in decisions if d["decision_kind"] in APPLIED)
    assert not [a for a, n in applied.items() if n > 1], "an account moved twice in one run"
    keys = Counter(
        (d["run_id"], d["account_id"], d["decision_kind"], d["lead_id"]) for d in decisions
    )
    assert max(keys.values(), default=1) == 1

    for d in decisions:
        source = inputs[d["account_id"]]
        if d["decision_kind"] in NEW_TO_BOOK:
            # Only ready accounts are distributed: never resting, review, retired or owned ones.
            assert source["state"] == "ready" and d["from_state"] == "ready", d
            rep = reps[d["to_owner_id"]]
            assert rep.is_eligible, d
            assert rep.segment_key == source["segment_key"], "segment not respected"
            if source["rest_until_date"] and source["rest_until_date"] > world.as_of_date:
                assert d["to_owner_id"] != source["return_requested_by_id"], "back to returner"
        if d["decision_kind"] == "retrieve":
            assert source["state"] == "stale" and not source["has_open_opportunity"], d
            assert d["to_owner_id"] in world.pool_users
        if d["decision_kind"] == "return":
            assert source["return_requested_by_id"] == source["owner_id"], d
            assert source["pending_return_reason"] in (
                "bad_data", "disqualified", "not_now", "no_response", "duplicate",
                "get_back_to_me",
            )  # fmt: skip
            assert d["to_owner_id"] in world.pool_users
            expected = {"bad_data": "review", "disqualified": "retired"}.get(
                source["pending_return_reason"], "resting"
            )
            assert d["to_state"] == expected
    # Hoarding: exactly the rep-owned accounts with an open opportunity pushed >= 3 times and no
    # owner touch within the 30-day working window are flagged.
    pushes = defaultdict(int)
    for opportunity in world.opportunities:
        if not opportunity["is_closed"]:
            pushes[opportunity["account_id"]] = max(
                pushes[opportunity["account_id"]], opportunity["close_date_push_count"]
            )
    window_start = world.as_of_date - dt.timedelta(days=30)
    hoarded = {
        a for a, row in inputs.items()
        if mode == "full"
        and row["owner_kind"] == "rep" and row["has_open_opportunity"] and pushes[a] >= 3
        and (row["last_touch_by_owner_date"] is None
             or row["last_touch_by_owner_date"] < window_start)
    }  # fmt: skip
    assert {d["account_id"] for d in decisions if d["decision_kind"] == "hoarding_flag"} == hoarded

    # Lead routing: each recent, unconverted lead matched to an account a rep owns after the run
    # goes to that owner (once), unless that rep already owns the lead.
    owner_after = {row["account_id"]: row["owner_id"] for row in after}
    lead_window_start = world.as_of_date - dt.timedelta(days=30)  # inbound_lead window_days
    expected_routes = {
        (lead["lead_id"], lead["matched_account_id"], owner_after[lead["matched_account_id"]])
        for lead in world.leads
        if lead["match_status"] == "matched" and not lead["is_converted"]
        and owner_after[lead["matched_account_id"]] in reps
        and lead["owner_id"] != owner_after[lead["matched_account_id"]]
        and lead_window_start < lead["created_date"] <= world.as_of_date
        and (mode == "full" or (mode == "signals" and lead["matched_account_id"] in scope))
    }  # fmt: skip
    routes = {
        (d["lead_id"], d["account_id"], d["to_owner_id"])
        for d in decisions if d["decision_kind"] == "lead_route"
    }  # fmt: skip
    assert routes == expected_routes

    rejected = {d["account_id"] for d in decisions if d["decision_kind"] == "return_rejected"}
    returned = {d["account_id"] for d in decisions if d["decision_kind"] == "return"}
    assert not rejected & returned, "a rejected return was applied"

    # Every processed return request is reported once (accepted or rejected).
    requested = {
        a for a, row in inputs.items() if row["pending_return_reason"] is not None
        and (mode == "full" or (mode == "returns" and a in scope))
    }  # fmt: skip
    reported = {d["account_id"] for d in decisions if d["decision_kind"].startswith("return")}
    assert reported == requested

    # One capacity model: a rep's whole book (working or stale accounts, whatever slot kind they
    # fill) never ends a run above its target, by any route; a rep at or above its target
    # receives nothing; ineligible reps receive nothing; the per-run budget holds; an account takes
    # an intent slot only when it is in market, or (a family moves as one unit) when a member of
    # its family is.
    families = defaultdict(list)
    for row in world.accounts:
        families[row["family_id"]].append(row)
    received = Counter()
    for d in decisions:
        if d["decision_kind"] in NEW_TO_BOOK:
            received[d["to_owner_id"]] += 1
            if d["slot_kind"] == "intent":
                family = inputs[d["account_id"]]["family_id"]
                assert any(a["is_in_market"] for a in families[family]), d
    for rep in world.reps:
        if not rep.is_eligible:
            assert not received[rep.rep_id], f"ineligible rep {rep.rep_id} received accounts"
            continue
        if not received[rep.rep_id]:
            continue
        target = rep.fit_capacity + rep.intent_capacity
        book = sum(
            1 for row in after if row["owner_id"] == rep.rep_id and row["state"] in BOOK_STATES
        )
        assert book <= target, (rep, book, received[rep.rep_id])
        assert received[rep.rep_id] <= rep.max_new_per_run, (rep, received[rep.rep_id])

    assert_candidates_explained(world, result, mode, scope)

    # Family members in books end with one rep.
    rep_owners = defaultdict(set)
    for row in after:
        if row["owner_id"] in reps and row["state"] in ("working", "stale", "converted"):
            rep_owners[inputs[row["account_id"]]["family_id"]].add(row["owner_id"])
    assert all(len(owners) <= 1 for owners in rep_owners.values()), rep_owners

    # The sync payload holds only rows that change, and every applied move is in it.
    for row in result["sync"]:
        assert any(
            row[f] != row[f"before_{f}"]
            for f in ("owner_id", "book_status_c", "rest_until_c", "return_requested_c",
                      "distribution_date_c", "return_date_c", "last_touch_date_c",
                      "distribution_reason_c", "return_reason_c", "return_requested_by_c")
        )  # fmt: skip
    synced = {row["account_id"]: row for row in result["sync"]}
    for d in decisions:
        if d["decision_kind"] in APPLIED and d["to_owner_id"] != d["from_owner_id"]:
            assert synced[d["account_id"]]["owner_id"] == d["to_owner_id"]


def assert_candidates_explained(
    world: World, result: dict[str, list], mode: str, scope: set[str]
) -> None:
    """Every pool account the run considered is either given to a rep or held for exactly one
    reason, and the reason is true of the world after the run."""
    inputs = {row["account_id"]: row for row in world.accounts}
    candidates = {row["account_id"]: row for row in result["candidates"]}
    assert len(candidates) == len(result["candidates"]), "a candidate listed twice"
    given = {d["account_id"]: d for d in result["decisions"] if d["decision_kind"] in NEW_TO_BOOK}
    # A signals run considers its signals' pool accounts, and the family members routed with them.
    considered = {
        a for a, row in inputs.items()
        if row["owner_kind"] == "pool" and row["state"] in ("ready", "resting")
        and (mode != "signals" or a in scope or a in given)
    }  # fmt: skip
    assert set(candidates) == considered
    assert {a for a, row in candidates.items() if row["is_chosen"]} == set(given)

    received = Counter(d["to_owner_id"] for d in given.values())
    book = Counter(row["owner_id"] for row in result["after"] if row["state"] in BOOK_STATES)
    eligible = defaultdict(list)
    for rep in world.reps:
        if rep.is_eligible:
            eligible[rep.segment_key].append(rep)

    def has_room(rep: Rep) -> bool:
        target = rep.fit_capacity + rep.intent_capacity
        return book[rep.rep_id] < target and received[rep.rep_id] < rep.max_new_per_run

    for account_id, row in candidates.items():
        reason = row["exclusion_reason"]
        if row["is_chosen"]:
            assert reason is None, row
            continue
        assert reason is not None, row
        source = inputs[account_id]
        assert (reason == "resting") == (source["state"] == "resting"), row
        reps = eligible.get(row["segment_key"], [])
        if reason == "outside_segment":
            assert not reps, row
        elif reason == "no_capacity":
            assert not any(has_room(rep) for rep in reps), (row, reps)
        elif reason in ("returned_by_rep", "family_too_large", "lower_rank"):
            assert any(has_room(rep) for rep in reps), (row, reps)
        if reason == "returned_by_rep":
            # Only reps who returned a member of its family within the member's rest have room.
            family = [a for a in world.accounts if a["family_id"] == source["family_id"]]
            returners = {
                a["return_requested_by_id"] for a in family
                if a["rest_until_date"] and a["rest_until_date"] > world.as_of_date
            }  # fmt: skip
            with_room = {rep.rep_id for rep in reps if has_room(rep)}
            assert with_room and with_room <= returners, (row, with_room, returners)
        if reason == "not_hot":
            assert mode == "signals", row
        if reason == "family_held":
            family = [a for a in world.accounts if a["family_id"] == source["family_id"]]
            assert any(
                a["owner_kind"] == "rep" or a["has_open_opportunity"] or a["is_customer"]
                for a in family
            ), row


@st.composite
def fair_worlds(draw) -> World:
    """One segment, empty books, equal capacities, singleton ready accounts (none hot), at least
    one account per rep (so every rep picks in round 1)."""
    rep_count = draw(st.integers(2, 8))
    slots = draw(st.integers(1, 5))
    reps = [Rep(f"005R{i:02d}", SEGMENTS[0], True, slots, 0, 100) for i in range(rep_count)]
    world = World(dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 3000))),
                  reps, ["005P00"])  # fmt: skip
    priorities = draw(st.lists(st.integers(0, 1000), unique=True, min_size=rep_count, max_size=80))
    for index, priority in enumerate(priorities):
        world.accounts.append(
            account_row(
                f"001A{index:03d}",
                family_id=f"001A{index:03d}",
                owner_id="005P00",
                priority_score=float(priority),
            )  # fmt: skip
        )
    return world


def assert_fair(world: World, decisions: list[dict]) -> None:
    """Counts differ by at most 1 and rank sums (among reps with equal counts) by at most n;
    exactly the best accounts are distributed."""
    ranked = sorted(world.accounts, key=lambda a: (-a["priority_score"], a["account_id"]))
    rank = {a["account_id"]: position + 1 for position, a in enumerate(ranked)}
    counts = Counter({rep.rep_id: 0 for rep in world.reps})
    rank_sums = Counter({rep.rep_id: 0 for rep in world.reps})
    for d in decisions:
        counts[d["to_owner_id"]] += 1
        rank_sums[d["to_owner_id"]] += rank[d["account_id"]]
    n = len(world.reps)
    total_slots = sum(rep.fit_capacity for rep in world.reps)
    assert len(decisions) == min(total_slots, len(world.accounts))
    assert sorted(rank[d["account_id"]] for d in decisions) == list(range(1, len(decisions) + 1))
    assert max(counts.values()) - min(counts.values()) <= 1
    by_count = defaultdict(list)
    for rep_id, count in counts.items():
        by_count[count].append(rank_sums[rep_id])
    for sums in by_count.values():
        assert max(sums) - min(sums) <= n, (counts, rank_sums)


def first_round_order(decisions: list[dict]) -> list[str]:
    """The reps in the order they picked in round 1."""
    first_round = sorted(
        (d for d in decisions if d["round_number"] == 1), key=lambda d: d["pick_number"]
    )
    return [d["to_owner_id"] for d in first_round]


@pytest.fixture(scope="module")
def distribution_stubs(engine: CompiledRunner) -> dict[str, pl.DataFrame]:
    """What steps 1-3 decide on a fairness world (nothing), from the full engine, as the
    step-4 runners' inputs."""
    world = World(dt.date(2025, 1, 6), [Rep("005R00", SEGMENTS[0], True, 2, 0, 100)], ["005P00"])
    world.accounts.append(account_row("001A000", owner_id="005P00"))
    run_world(engine, world)
    stubs = {name: engine.frame(name) for name in DISTRIBUTION_STUBS}
    assert all(frame.is_empty() for frame in stubs.values()), stubs
    return stubs


@property_settings()
@given(world=fair_worlds())
def test_fair_rounds_and_rotation(
    distribution_engine: CompiledRunner, distribution_stubs: dict[str, pl.DataFrame], world: World
) -> None:
    """Fairness on two consecutive runs of a world from empty books; rotation across them.

    Rotation: run k+1's round-1 order is run k's rotated left by one, so over any n consecutive
    runs each of the n reps picks first exactly once (no rep twice before all have had it).
    Checking one consecutive pair per world, at a random run index, covers that with 2 runs
    instead of n."""
    runs = []
    for run in range(2):
        if run:
            world.as_of_date += dt.timedelta(weeks=1)
        runs.append(
            run_world(distribution_engine, world, run_id=f"run-{run}", stubs=distribution_stubs)
        )
    orders = []
    for run in runs:
        assert_fair(world, run["decisions"])
        orders.append(first_round_order(run["decisions"]))
    rep_ids = sorted(rep.rep_id for rep in world.reps)
    assert sorted(orders[0]) == rep_ids, "every rep picks once in round 1"
    assert orders[1] == orders[0][1:] + orders[0][:1], orders
