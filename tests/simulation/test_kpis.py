"""KPI definitions on a world small enough to work out by hand (3 reps, 30 accounts, 2 weeks).

Every expected figure below is counted in the comments from the world, not from the code.
"""

from __future__ import annotations

from datetime import date

import pytest

from simulation.kpis import Snapshot, gini, weekly_kpis

D = date.fromisoformat
START = D("2025-06-02")  # a Monday: week 1 = 06-02..06-08, week 2 = 06-09..06-15
W1 = (D("2025-06-02"), D("2025-06-08"))
W2 = (D("2025-06-09"), D("2025-06-15"))


def acc(i: int) -> str:
    return f"a{i:02d}"


def world() -> Snapshot:
    owners = {acc(i): "r1" for i in range(1, 11)}  # r1: a01-a10 (10)
    owners |= {acc(i): "r2" for i in range(11, 19)}  # r2: a11-a18 (8)
    owners |= {acc(i): "r3" for i in range(19, 21)}  # r3: a19-a20 (2)
    owners |= {acc(i): "pool" for i in range(21, 31)}  # pool: a21-a30 (10)
    tiers = {acc(i): "A" for i in range(1, 7)} | {acc(i): "B" for i in range(7, 11)}
    tiers |= {acc(i): "A" for i in range(11, 15)} | {acc(i): "C" for i in range(15, 19)}
    tiers |= {acc(19): "B", acc(20): "B"}
    tiers |= {acc(i): "A" for i in range(21, 25)} | {acc(i): "D" for i in range(25, 31)}
    values = {a: 100.0 for a in owners} | {acc(19): 1000.0}
    touches = [(acc(i), "r1", D("2025-06-03")) for i in range(1, 6)]
    touches += [
        (acc(1), "r1", D("2025-06-10")),
        (acc(2), "r1", D("2025-06-10")),
        (acc(6), "r1", D("2025-06-12")),
        (acc(25), "r1", D("2025-06-13")),
        (acc(11), "r2", D("2025-06-04")),
        (acc(15), "r2", D("2025-06-11")),
        (acc(16), "r2", D("2025-06-11")),
        (acc(14), "r2", D("2025-06-10")),  # s6's first touch, exactly 7 days after it
        (acc(21), "r2", D("2025-05-20")),  # before the period, within 30 days of week 2's end
        (acc(22), "r2", D("2025-05-16")),  # 31 days before week 2's end: not "worked"
    ]
    return Snapshot(
        owners=owners,
        values=values,
        tiers=tiers,
        reps={"r1": 4.0, "r2": 4.0, "r3": 2.0},
        pool_users={"pool"},
        touches=touches,
        signals=[
            ("s1", acc(3), D("2025-06-02")),  # touched 06-03: 1 day
            ("s2", acc(12), D("2025-06-05")),  # never touched
            ("s3", acc(6), D("2025-06-09")),  # touched 06-12: 3 days, not 7 days old by 06-15
            ("s4", acc(25), D("2025-06-12")),  # touched 06-13: 1 day
            ("s6", acc(14), D("2025-06-03")),  # touched 06-10: 7 days, still "within 7"
            ("s0", acc(1), D("2025-05-25")),  # before the period: not counted
        ],
        opportunities=[
            (acc(1), D("2025-06-04"), 1000.0),
            (acc(11), D("2025-06-10"), 500.0),
            (acc(15), D("2025-06-14"), 250.0),
        ],
        returns=[
            (acc(21), "no_response", D("2025-06-02")),
            (acc(22), "bad_data", D("2025-06-10")),
            (acc(23), "bad_data", D("2025-06-11")),
        ],
        moves=[
            (acc(21), D("2025-06-02"), "r1", "pool"),  # retrieved: to the pool in week 1
            (acc(5), D("2025-06-09"), "pool", "r1"),  # distributed: from the pool in week 2
            (acc(6), D("2025-06-10"), "r2", "r1"),  # rep to rep: neither
        ],
        period_start=START,
        book_reps={"r1", "r2", "r3"},
    )


def test_week_two_by_hand() -> None:
    k = weekly_kpis(world(), *W2)
    # A/B accounts: a01-a10, a11-a14, a19-a20, a21-a24 = 20; touched since 05-17: a01-a06,
    # a11, a14, a21 = 9 (a22's touch on 05-16 is 31 days old).
    assert k["ab_worked_30d_share"] == pytest.approx(9 / 20)
    # In books: 10 + 8 + 2 = 20; touched in 30 days: a01-a06, a11, a14, a15, a16 = 10.
    assert k["book_productivity"] == pytest.approx(10 / 20)
    # Untouched since 06-02 in books: a07-a10 (4), a12, a13, a17, a18 (4), a19, a20 (2).
    assert k["never_touched"] == 10
    # Book sizes 10, 8, 2: sum of |xi - xj| over ordered pairs 32, n^2 * mean * 2 = 120.
    assert k["gini_book_size"] == pytest.approx(32 / 120)
    # Book values 1000, 800, 1100: ordered-pair differences 1200, 2 * 9 * 2900/3 = 17400.
    assert k["gini_book_value"] == pytest.approx(1200 / 17400)
    # Signals at least 7 days old by 06-15: s1 (touched after 1 day), s2 (never), s6 (after
    # 7 days) -> 2 of 3.
    assert k["hot_touched_7d_share"] == pytest.approx(2 / 3)
    # Days to first touch of touched signals: s1 1, s3 3, s4 1, s6 7 -> median 2.
    assert k["median_days_to_first_touch"] == 2
    assert k["opportunities_created"] == 2
    assert k["pipeline_created"] == 750
    assert (k["to_pool"], k["from_pool"]) == (0, 1)
    assert k["returns.bad_data"] == 2
    assert "returns.no_response" not in k
    # Distinct accounts touched in week 2 / capacity: r1 4/4, r2 3/4, r3 0/2.
    assert k["rep_utilisation"] == pytest.approx((1.0 + 0.75 + 0.0) / 3)


def test_week_one_by_hand() -> None:
    k = weekly_kpis(world(), *W1)
    assert k["hot_touched_7d_share"] is None  # no signal of the period is 7 days old yet
    assert k["median_days_to_first_touch"] == 1  # s1 only (s2 untouched, s6 touched later)
    assert (k["opportunities_created"], k["pipeline_created"]) == (1, 1000)
    assert (k["to_pool"], k["from_pool"]) == (1, 0)
    assert k["returns.no_response"] == 1
    # r1 a01-a05: 5 of a capacity of 4 counts as fully used; r2 a11 1/4; r3 0/2.
    assert k["rep_utilisation"] == pytest.approx((1.0 + 0.25 + 0.0) / 3)


def test_gini_extremes() -> None:
    assert gini([5, 5, 5]) == 0
    assert gini([0, 0, 9]) == pytest.approx(2 / 3)  # one of three holds everything: (n-1)/n
    assert gini([]) == 0
