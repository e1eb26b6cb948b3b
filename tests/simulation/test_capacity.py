"""Capacity advice follows what the simulated reps managed to work."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from simulation.arms import Arm
from simulation.lab import simulate
from simulation.params import load_params


def _advice(twin, reference, workdir, per_week: float | None, style: str | None = None):
    con = sqlite3.connect(twin)
    names = [r[0] for r in con.execute(
        "select \"Username\" from \"User\" where \"Book_Role__c\" in ('SDR', 'BDR')")]  # fmt: skip
    con.close()
    override = {"accounts_per_week": per_week} if per_week is not None else {"style": style}
    reps = {**load_params().reps.model_dump(), "overrides": {n: override for n in names}}
    sim = simulate(
        twin, [Arm("static", None)], workdir, days=14, params=load_params(reps=reps),
        reference_policy=Path("books.yml"), reference=reference,
    )  # fmt: skip
    return {(c.role, c.segment): c for c in sim.arms[0].capacity}


def test_faster_reps_get_bigger_advised_books_idle_reps_none(small_twin, hand_reference, tmp_path):
    slow = _advice(small_twin, hand_reference, tmp_path / "slow", 2)
    fast = _advice(small_twin, hand_reference, tmp_path / "fast", 6)
    idle = _advice(small_twin, hand_reference, tmp_path / "idle", None, "idle")
    assert slow.keys() == fast.keys() == idle.keys() and slow
    for group in slow:
        assert fast[group].advised_book_size > slow[group].advised_book_size, group
        assert idle[group].advised_book_size == 0
        assert not slow[group].lower_bound  # 2 a week never exhausts a book of ~30
