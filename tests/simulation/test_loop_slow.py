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
    """Three Mondays of retrieval with a 15-day window: idle reps lose more accounts to the
    pool than reps working by the model, on the same world."""
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
            small_twin, [Arm(name, policy)], tmp_path / name, days=15, params=params,
            reference_policy=policy, reference=hand_reference,
        )  # fmt: skip
        retrieved[name] = _decisions(tmp_path / name / name / "warehouse.duckdb", "retrieve")
        assert sim.arms[0].timings.cycle_count == {"retrieval": 3}
        week_two = {r[3]: r[4] for r in sim.arms[0].rows if r[0] == 2}
        retrieved[f"{name}_coverage"] = week_two["ab_worked_30d_share"]
    assert retrieved["idle"] > retrieved["working"]
    assert retrieved["idle_coverage"] < retrieved["working_coverage"]


def test_the_invariants_hold_around_a_launch_with_tight_targets(
    small_twin, hand_reference, tmp_path
):
    """Targets far below the world's books: every rep with room is topped off to exactly its
    target and reps above it get nothing; the lab checks both invariants around the cycle (an
    engine that gives a rep one account too many stops the run with InvariantViolation)."""
    data = yaml.safe_load(Path("books.yml").read_text(encoding="utf-8"))
    data["books"]["SDR"] = {"target_size": 12, "slots": {"fit": 9, "intent": 3},
                            "max_new_per_run": 12}  # fmt: skip
    data["books"]["BDR"] = {"target_size": 8, "slots": {"fit": 6, "intent": 2},
                            "max_new_per_run": 8}  # fmt: skip
    for cadence in ("retrieval", "signals", "returns"):
        data["cadences"][cadence]["enabled"] = False
    policy = tmp_path / "tight.yml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    sim = simulate(
        small_twin, [Arm("tight", policy)], tmp_path / "run", days=1, params=load_params(),
        reference_policy=policy, reference=hand_reference,
    )  # fmt: skip
    assert sim.arms[0].timings.cycle_count == {"distribution": 1}
    assert _decisions(tmp_path / "run" / "tight" / "warehouse.duckdb", "distribute") > 0
