"""The behaviour on the static arm (no cycle): determinism, fixed territories, the effect of
idle reps, and the calibration reproducing the reps' own weekly touches."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from simulation.arms import Arm
from simulation.behaviour import calibrate
from simulation.crm_api import twin_api
from simulation.lab import simulate
from simulation.loop import run_static_arm
from simulation.params import BehaviourError, load_params
from simulation.results import kpi_hash
from simulation.twin import copy_twin
from tests.simulation.conftest import START

STATIC = [Arm("static", None)]


def _simulate(twin, reference, workdir, days=14, **params):
    return simulate(
        twin, STATIC, workdir, days=days, params=load_params(**params),
        reference_policy=Path("books.yml"), reference=reference,
    )  # fmt: skip


def _last_week(sim) -> dict[str, float | None]:
    rows = sim.arms[0].rows
    week = max(r[0] for r in rows)
    return {r[3]: r[4] for r in rows if r[0] == week}


def test_same_seed_same_world_gives_identical_kpi_tables(small_twin, hand_reference, tmp_path):
    first = _simulate(small_twin, hand_reference, tmp_path / "a", seed=3)
    again = _simulate(small_twin, hand_reference, tmp_path / "b", seed=3)
    other = _simulate(small_twin, hand_reference, tmp_path / "c", seed=4)
    assert kpi_hash(first) == kpi_hash(again)
    assert kpi_hash(first) != kpi_hash(other)  # the hash does see the behaviour's draws


def test_static_arm_never_moves_an_account_and_splits_segments_evenly(
    small_twin, hand_reference, tmp_path
):
    sim = _simulate(small_twin, hand_reference, tmp_path)
    con = sqlite3.connect(tmp_path / "static" / "crm.sqlite")
    moves = con.execute(
        'select substr("CreatedDate", 1, 10) from "AccountHistory" where "Field" = \'OwnerId\''
    ).fetchall()
    owners = dict(con.execute('select "Id", "OwnerId" from "Account"').fetchall())
    users = {
        u: s
        for u, s, active, role in con.execute(
            'select "Id", "Book_Segments__c", "IsActive", "Book_Role__c" from "User"'
        )
        if active and role in ("SDR", "BDR")
    }
    con.close()
    assert moves, "the static territories are assigned once, before the start"
    assert all(day < START.isoformat() for (day,) in moves)
    assert all(sim.arms[0].rows) and _last_week(sim)["to_pool"] == 0
    per_rep: dict[str, Counter] = defaultdict(Counter)
    for account, segment in hand_reference.segments.items():
        if owners[account] in users:
            per_rep[segment][owners[account]] += 1
    for segment, counts in per_rep.items():
        reps = [u for u, s in users.items() if s == segment]
        sizes = [counts.get(u, 0) for u in reps]
        assert max(sizes) - min(sizes) <= 1, (segment, sizes)


def test_reps_who_never_touch_anything_leave_coverage_falling(small_twin, hand_reference, tmp_path):
    con = sqlite3.connect(small_twin)
    names = [
        r[0]
        for r in con.execute(
            'select "Username" from "User" where "Book_Role__c" in (\'SDR\', \'BDR\')'
        )
    ]  # noqa: E501
    con.close()
    idle = {
        "reps": {
            **load_params().reps.model_dump(),
            "overrides": {n: {"style": "idle"} for n in names},
        }
    }  # noqa: E501
    working = _last_week(_simulate(small_twin, hand_reference, tmp_path / "w"))
    lazy = _last_week(_simulate(small_twin, hand_reference, tmp_path / "i", **idle))
    assert lazy["ab_worked_30d_share"] < working["ab_worked_30d_share"]
    assert lazy["never_touched"] > working["never_touched"]
    assert lazy["rep_utilisation"] == 0


def test_frozen_books_reproduce_each_reps_weekly_touches(warehouse_twin, hand_reference, tmp_path):
    """A twin copied from a warehouse, owners unchanged for 4 weeks, no decisions: each
    calibrated rep's simulated touches per week are within 15% of their own history's."""
    params = load_params()
    crm = copy_twin(warehouse_twin, tmp_path / "frozen.sqlite")
    with twin_api(crm) as api:
        cal = calibrate(api, params, hand_reference.tiers, START)
    from simulation.behaviour import Behaviour

    run_static_arm("frozen", crm, Behaviour(params, cal, hand_reference.tiers), cal,
                   hand_reference, START, 28, assign=False)  # fmt: skip
    con = sqlite3.connect(crm)

    def weekly(since, until, weeks):
        rows = con.execute(
            'select "OwnerId", count(*) from (select "OwnerId", "ActivityDate", "Is_Automated__c",'
            ' "Source__c" from "Task" union all select "OwnerId", "ActivityDate", '
            '"Is_Automated__c", "Source__c" from "Event") where "ActivityDate" >= ? '
            'and "ActivityDate" < ? and coalesce("Is_Automated__c", 0) = 0 '
            "and coalesce(\"Source__c\", 'Manual') not in ('Sequence', 'Marketing') group by 1",
            (since.isoformat(), until.isoformat()),
        ).fetchall()
        return {owner: n / weeks for owner, n in rows}

    history = weekly(START - timedelta(weeks=params.history_weeks), START, params.history_weeks)
    simulated = weekly(START, START + timedelta(days=28), 4)
    con.close()
    checked = 0
    for uid, rep in cal.reps.items():
        if rep.calibrated and rep.style == "diligent":
            assert simulated.get(uid, 0) == pytest.approx(history[uid], rel=0.15), rep.username
            checked += 1
    assert checked >= 3


def test_a_bad_behaviour_file_names_the_field(tmp_path):
    bad = tmp_path / "behaviour.yml"
    bad.write_text("reps:\n  return_propensity: 2\n", encoding="utf-8")
    with pytest.raises(BehaviourError, match=r"behaviour.yml: reps.return_propensity"):
        load_params(bad)
    bad.write_text("reps:\n  hoarders: 1\n", encoding="utf-8")
    with pytest.raises(BehaviourError, match=r"reps.hoarders: Extra inputs"):
        load_params(bad)
