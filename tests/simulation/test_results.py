"""The lab's warehouse tables: written per simulation, replaced (never doubled) by a re-run."""

from __future__ import annotations

from pathlib import Path

import duckdb

from simulation.arms import Arm
from simulation.lab import simulate
from simulation.params import load_params
from simulation.results import comparison_table, save


def test_results_are_stored_once_per_simulation(small_twin, hand_reference, tmp_path):
    sim = simulate(
        small_twin, [Arm("static", None)], tmp_path / "run", days=14, params=load_params(),
        reference_policy=Path("books.yml"), reference=hand_reference,
    )  # fmt: skip
    warehouse = tmp_path / "warehouse.duckdb"
    save(sim, warehouse)
    save(sim, warehouse)  # the same simulation again: replaced, not added
    with duckdb.connect(str(warehouse), read_only=True) as con:
        runs = con.execute("select arm, days, cycles from simulation.runs").fetchall()
        weeks = con.execute(
            "select week, count(*), count(distinct kpi) from simulation.weekly_kpis "
            "group by week order by week"
        ).fetchall()
        coverage = con.execute(
            "select value from simulation.weekly_kpis where week = 2 "
            "and kpi = 'ab_worked_30d_share'"
        ).fetchone()[0]
    assert runs == [("static", 14, 0)]
    assert [w for w, _, _ in weeks] == [1, 2]
    assert all(n == distinct for _, n, distinct in weeks)  # one row per kpi and week
    assert 0 < coverage <= 1
    table = comparison_table(sim)
    assert table.splitlines()[0].split()[-1] == "static"
    assert any(line.startswith("ab_worked_30d_share") for line in table.splitlines())
