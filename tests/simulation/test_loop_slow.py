"""The loop with real cycles (each simulated cycle is a full `books run`: minutes here).

Kept to few cycles: the test policies switch off every cadence but the one under test, so a
simulated Monday runs one cycle and other days none."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from local_crm.db import CrmStore
from simulation.arms import Arm
from simulation.lab import simulate
from simulation.params import load_params
from tests.simulation.conftest import START

pytestmark = [pytest.mark.slow, pytest.mark.long_pole]


def _policy(tmp_path: Path, name: str, window: int) -> Path:
    data = yaml.safe_load(Path("books.yml").read_text(encoding="utf-8"))
    data["lifecycle"]["working_window_days"] = window
    for cadence in ("distribution", "signals", "returns"):
        data["cadences"][cadence]["enabled"] = False
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _decisions(warehouse: Path, kind: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select count(*) from decisions.book_decisions where decision_kind = ?", [kind]
        ).fetchone()[0]


def test_a_15_day_working_window_retrieves_more_than_a_90_day_one(
    small_twin, hand_reference, tmp_path
):
    before = CrmStore(small_twin).content_hash()
    arms = [Arm("w15", _policy(tmp_path, "w15", 15)), Arm("w90", _policy(tmp_path, "w90", 90))]
    sim = simulate(
        small_twin, arms, tmp_path / "run", days=1, params=load_params(),
        reference_policy=arms[0].policy, reference=hand_reference,
    )  # fmt: skip
    short = _decisions(tmp_path / "run" / "w15" / "warehouse.duckdb", "retrieve")
    long = _decisions(tmp_path / "run" / "w90" / "warehouse.duckdb", "retrieve")
    assert short > long
    assert all(arm.timings.cycle_count == {"retrieval": 1} for arm in sim.arms)
    assert CrmStore(small_twin).content_hash() == before  # arms write to their own copies


def test_reps_who_never_touch_anything_get_more_retrieved(small_twin, hand_reference, tmp_path):
    """Two Mondays of retrieval with a 15-day window: by the second, idle reps lose more
    accounts to the pool than reps working by the model, on the same world, and cover fewer
    A/B accounts in the first week."""
    from simulation.params import load_params as params_with

    policy = _policy(tmp_path, "w15", 15)
    con = CrmStore(small_twin).connect()
    names = [r[0] for r in con.execute(
        "select \"Username\" from \"User\" where \"Book_Role__c\" in ('SDR', 'BDR')")]  # fmt: skip
    con.close()
    reps = params_with().reps.model_dump()
    idle = params_with(reps={**reps, "overrides": {n: {"style": "idle"} for n in names}})
    retrieved = {}
    for name, params in (("working", params_with()), ("idle", idle)):
        sim = simulate(
            small_twin, [Arm(name, policy)], tmp_path / name, days=8, params=params,
            reference_policy=policy, reference=hand_reference,
        )  # fmt: skip
        retrieved[name] = _decisions(tmp_path / name / name / "warehouse.duckdb", "retrieve")
        assert sim.arms[0].timings.cycle_count == {"retrieval": 2}
        week_one = {r[3]: r[4] for r in sim.arms[0].rows if r[0] == 1}
        retrieved[f"{name}_coverage"] = week_one["ab_worked_30d_share"]
    assert retrieved["idle"] > retrieved["working"]
    assert retrieved["idle_coverage"] < retrieved["working_coverage"]


def _tight_policy(tmp_path: Path, sdr: tuple[int, int, int] = (9, 3, 12)) -> Path:
    """Targets far below the world's books and a 15-day window; no cadence, so the launch is
    the one cycle of a simulated day (mode full: retrieval, then distribution). `sdr`: the
    SDRs' fit slots, intent slots and max_new_per_run."""
    data = yaml.safe_load(Path("books.yml").read_text(encoding="utf-8"))
    data["lifecycle"]["working_window_days"] = 15
    fit, intent, new = sdr
    data["books"]["SDR"] = {"target_size": fit + intent, "slots": {"fit": fit, "intent": intent},
                            "max_new_per_run": new}  # fmt: skip
    data["books"]["BDR"] = {"target_size": 8, "slots": {"fit": 6, "intent": 2},
                            "max_new_per_run": 8}  # fmt: skip
    for cadence in ("distribution", "retrieval", "signals", "returns"):
        data["cadences"][cadence]["enabled"] = False
    policy = tmp_path / "tight.yml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return policy


def _engine_moves(crm_db: Path, since: str) -> dict[str, int]:
    """Owner changes the write-back user made since `since`, per account."""
    con = CrmStore(crm_db).connect()
    try:
        rows = con.execute(
            'select h."AccountId", count(*) from "AccountHistory" as h join "User" as u '
            'on h."CreatedById" = u."Id" where h."Field" = \'OwnerId\' '
            'and u."Username" = \'integration@books.local\' and h."CreatedDate" >= ? '
            "group by 1",
            (since,),
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def test_an_engine_giving_a_rep_one_account_too_many_is_caught_and_named(
    small_twin, hand_reference, tmp_path, monkeypatch
):
    """A deliberately broken engine: dbt reads every role's target (and fit slots) one higher
    than the policy says, so the launch fills reps one account past their target. The world
    makes it bite: the small-business SDRs' books sit under a target of 25 (all fit slots, so
    few in-market accounts cannot leave slots open) and their segment's pool has dozens of
    ready accounts. The lab's invariants stop the run
    naming the day, the rep and the rule."""
    import orchestration.cycle
    from policy import policy_dbt_env
    from simulation.invariants import InvariantViolation

    def one_too_many(policy):
        data = policy.model_dump(mode="json")
        for design in data["books"].values():
            if isinstance(design, dict) and "target_size" in design:
                design["target_size"] += 1
                design["slots"]["fit"] += 1
        return policy_dbt_env(data)

    monkeypatch.setattr(orchestration.cycle, "policy_dbt_env", one_too_many)
    policy = _tight_policy(tmp_path, sdr=(25, 0, 25))
    with pytest.raises(InvariantViolation) as caught:
        simulate(
            small_twin, [Arm("broken", policy)], tmp_path / "run", days=1, params=load_params(),
            reference_policy=policy, reference=hand_reference,
        )  # fmt: skip
    violations = caught.value.violations
    assert {(v.rule, v.day) for v in violations} == {("book_above_target", START)}
    con = CrmStore(tmp_path / "run" / "broken" / "crm.sqlite").connect()
    roles = dict(con.execute('select "Id", "Book_Role__c" from "User"').fetchall())
    con.close()
    for v in violations:
        target = {"SDR": 25, "BDR": 8}[roles[v.subject]]  # the rep is named
        assert f"book {target + 1} > target {target}" in v.detail
    assert "book_above_target" in str(caught.value) and str(START) in str(caught.value)


def test_a_chaos_day_with_a_holdout_keeps_every_invariant(small_twin, hand_reference, tmp_path):
    """Chaos mode on a launch day with a 20% holdout and tight targets: the launch is first
    killed at a random point in a child process, then run again with the CRM failing its
    writes (row locks, 429s, an expired session, silent drops); a manager moves accounts by
    hand and a rep leaves afterwards. The lab's invariants around the cycle (books within
    target, every owner change decided and written once, no held-out account moved, the ledger
    equal to the twin) stop the run on any violation; none does. Held-out accounts were stale
    like the others, yet the engine moved none of them while it moved treated ones."""
    from simulation.chaos import ChaosPlan

    policy = _tight_policy(tmp_path)
    plan = ChaosPlan(manual_moves_per_week=25, leave_on_day=0, fault_share=0.3, kill_share=1.0,
                     kill_steps=8)  # fmt: skip
    sim = simulate(
        small_twin, [Arm("chaos", policy)], tmp_path / "run", days=1, params=load_params(),
        reference_policy=policy, reference=hand_reference, chaos=plan, holdout=0.2,
    )  # fmt: skip
    arm = sim.arms[0]
    [(day, mode, point)] = arm.kills
    assert (day, mode) == (START, "full") and point is not None  # killed inside the cycle
    assert arm.chaos[0].departures == 1 and arm.chaos[0].manual_moves > 0
    with duckdb.connect(str(tmp_path / "run" / "chaos" / "warehouse.duckdb")) as con:
        faulted = con.execute(
            "select count(*) from ops.sync_log where attempts > 1 or error_code is not null "
            "or readback_mismatches > 0"
        ).fetchone()[0]
    assert faulted > 0  # the CRM really failed some writes
    warehouse = tmp_path / "run" / "chaos" / "warehouse.duckdb"
    assert _decisions(warehouse, "distribute") > 0 and _decisions(warehouse, "retrieve") > 0
    moved = _engine_moves(tmp_path / "run" / "chaos" / "crm.sqlite", "2025-06-02")
    held = arm.held_out
    assert len(held) == round(0.2 * len(hand_reference.segments))
    assert not held & moved.keys()
    assert moved.keys() - held  # the engine was busy around them
    assert {u.kpi for u in arm.uplift} >= {"ab_worked_30d_share", "worked_30d_share"}
