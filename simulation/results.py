"""The lab's results in the warehouse: `simulation.runs`, `simulation.weekly_kpis`,
`simulation.capacity_advice` and (holdout experiments) `simulation.holdout_uplift`.

One simulation has a deterministic id (a hash of the world, the policies, the behaviour and
the period), so running it again replaces its rows instead of adding a second copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from simulation.loop import ArmRun
from warehouse.lease import acquire

DDL = (
    "create schema if not exists simulation",
    """create table if not exists simulation.runs (
        simulation_id varchar, arm varchar, policy_path varchar, policy_version varchar,
        start_date date, days integer, seed bigint, behaviour_hash varchar, twin_hash varchar,
        cycles integer, wall_seconds double, days_per_minute double, timings_json varchar,
        primary key (simulation_id, arm))""",
    """create table if not exists simulation.weekly_kpis (
        simulation_id varchar, arm varchar, week integer, week_start date, week_end date,
        kpi varchar, value double, primary key (simulation_id, arm, week, kpi))""",
    """create table if not exists simulation.capacity_advice (
        simulation_id varchar, arm varchar, role varchar, segment varchar, reps integer,
        worked_per_30_days double, book_now double, advised_book_size integer,
        advised_is_lower_bound boolean, target_size integer,
        primary key (simulation_id, arm, role, segment))""",
    """create table if not exists simulation.holdout_uplift (
        simulation_id varchar, arm varchar, kpi varchar, treated double, held_out double,
        uplift double, ci_low double, ci_high double, treated_accounts integer,
        held_out_accounts integer, primary key (simulation_id, arm, kpi))""",
)


@dataclass(frozen=True)
class Simulation:
    simulation_id: str
    start: date
    days: int
    seed: int
    behaviour_hash: str
    twin_hash: str
    arms: list[ArmRun]
    policies: dict[str, str]  # arm -> policy path ("" for static)


def simulation_id(*parts: object) -> str:
    text = json.dumps([str(p) for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def kpi_rows(sim: Simulation) -> list[tuple]:
    """The weekly KPI rows of every arm, in a stable order (what the hash test compares)."""
    rows = [
        (sim.simulation_id, arm.name, week, start, end, kpi, value)
        for arm in sim.arms
        for week, start, end, kpi, value in arm.rows
    ]
    return sorted(rows, key=lambda r: (r[1], r[2], r[5]))


def kpi_hash(sim: Simulation) -> str:
    rows = [(r[1], r[2], str(r[3]), str(r[4]), r[5], r[6]) for r in kpi_rows(sim)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def save(sim: Simulation, warehouse: Path, wait_seconds: float = 60.0) -> None:
    """Replace this simulation's rows in the warehouse (under the warehouse's lease)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with acquire(warehouse, f"books simulate {sim.simulation_id}", wait_seconds=wait_seconds):
        with duckdb.connect(str(warehouse)) as con:
            for statement in DDL:
                con.execute(statement)
            con.execute("begin")
            for table in ("runs", "weekly_kpis", "capacity_advice", "holdout_uplift"):
                con.execute(
                    f"delete from simulation.{table} where simulation_id = ?", [sim.simulation_id]
                )
            con.executemany(
                "insert into simulation.runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_run_row(sim, arm) for arm in sim.arms],
            )
            if rows := kpi_rows(sim):
                con.executemany(
                    "insert into simulation.weekly_kpis values (?, ?, ?, ?, ?, ?, ?)", rows
                )
            if advice := capacity_rows(sim):
                con.executemany(
                    "insert into simulation.capacity_advice values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    advice,
                )
            if uplift := uplift_rows(sim):
                con.executemany(
                    "insert into simulation.holdout_uplift values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    uplift,
                )
            con.execute("commit")


def capacity_rows(sim: Simulation) -> list[tuple]:
    return [
        (sim.simulation_id, arm.name, c.role, c.segment, c.reps, c.worked_per_30_days,
         c.book_now, c.advised_book_size, c.lower_bound, arm.targets.get(c.role))
        for arm in sim.arms
        for c in arm.capacity
    ]  # fmt: skip


def uplift_rows(sim: Simulation) -> list[tuple]:
    return [
        (sim.simulation_id, arm.name, u.kpi, u.treated, u.held_out, u.uplift, u.low, u.high,
         u.treated_accounts, u.held_out_accounts)
        for arm in sim.arms
        for u in arm.uplift
    ]  # fmt: skip


def uplift_table(sim: Simulation) -> str:
    """Per policy arm with a holdout: each KPI treated vs held out, the uplift and its 95%
    bootstrap interval ("" when no arm had a holdout)."""
    lines = []
    for arm in sim.arms:
        if not arm.uplift:
            continue
        u0 = arm.uplift[0]
        lines.append(f"holdout uplift, {arm.name} ({u0.treated_accounts} treated vs "
                     f"{u0.held_out_accounts} held-out accounts, whole period, 95% bootstrap):")  # fmt: skip
        for u in arm.uplift:
            interval = f"[{_cell(u.low)}, {_cell(u.high)}]" if u.low is not None else "-"
            lines.append(f"  {u.kpi:<27}{_cell(u.treated):>10}{_cell(u.held_out):>10}"
                         f"{_cell(u.uplift):>10}  {interval}")  # fmt: skip
    return "\n".join(lines)


def capacity_table(sim: Simulation) -> str:
    """Advised book sizes per arm, role and segment beside the policy's target."""
    lines = ["capacity (book size keeping >= 90% worked in 30 days, from observed throughput):"]
    for arm in sim.arms:
        for c in arm.capacity:
            bound = ">= " if c.lower_bound else ""
            lines.append(
                f"  {arm.name:<14} {c.role:<4} {c.segment:<12} {c.reps} reps: advised "
                f"{bound}{c.advised_book_size} (target {arm.targets.get(c.role, '-')}, "
                f"worked {c.worked_per_30_days:.0f}/30 days, book {c.book_now:.0f})"
            )
    return "\n".join(lines)


def _run_row(sim: Simulation, arm: ArmRun) -> tuple:
    t = arm.timings
    cycles = sum(t.cycle_count.values())
    timings = {
        "behaviour_s": round(t.behaviour, 1),
        "kpis_s": round(t.kpis, 1),
        "cycles_s": {k: round(v, 1) for k, v in sorted(t.cycles.items())},
        "cycle_count": dict(sorted(t.cycle_count.items())),
        "steps_s": {k: round(v, 1) for k, v in sorted(t.steps.items())},
        "guard_holds": [f"{day} {mode}" for day, mode in arm.guard_holds],
    }
    per_minute = sim.days / (arm.wall_seconds / 60) if arm.wall_seconds else None
    return (
        sim.simulation_id, arm.name, sim.policies.get(arm.name, ""), arm.policy_version or "",
        sim.start, sim.days, sim.seed, sim.behaviour_hash, sim.twin_hash, cycles,
        arm.wall_seconds, per_minute, json.dumps(timings, sort_keys=True),
    )  # fmt: skip


def comparison_table(sim: Simulation, kpis: Sequence[str] | None = None) -> str:
    """The last week's KPIs side by side, one column per arm (what `books simulate` prints)."""
    if not sim.arms or not any(arm.rows for arm in sim.arms):
        return "no complete simulated week: nothing to compare (simulate at least 7 days)"
    last = {arm.name: {r[3]: r[4] for r in arm.rows if r[0] == max(x[0] for x in arm.rows)}
            for arm in sim.arms}  # fmt: skip
    names = kpis or sorted({k for values in last.values() for k in values})
    width = max(len(n) for n in names) + 2
    header = "kpi".ljust(width) + "".join(a.name[:18].rjust(20) for a in sim.arms)
    lines = [header, "-" * len(header)]
    for kpi in names:
        cells = "".join(_cell(last[a.name].get(kpi)).rjust(20) for a in sim.arms)
        lines.append(kpi.ljust(width) + cells)
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.3f}"
