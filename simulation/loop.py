"""The loop: each simulated day the people act on the twin, its clock moves, and the production
cycle runs on the policy's cadences, through `orchestration.runner.run_cycle` (what `books run`
calls): ingestion, contracts, dbt, decisions and the guarded write-back, against the arm's twin.

A simulated day D:
  05:00-06:00  the distribution/retrieval schedules firing on D run, in cron order (mode
               `distribution`/`retrieval`, as the Dagster schedules launch them);
  09:00        the market and the reps act (simulation.behaviour);
  18:00, 18:01 one tick of each sensor: the signals run for Signal__c rows changed since its
               cursor, the returns run for accounts with a return request (same queries, cursor
               and run ids as orchestration.cadences).
The first cycle of an arm is its launch: run with the guard overridden, as `books demo` does.
The static arm runs no cycle at all; its reps act by the same model on fixed territories.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from local_crm.db import CrmStore
from local_crm.server import faults_for_new_servers
from orchestration.cadences import MAX_IDS_PER_RUN, ModstampCursor, advance, changed_rows
from policy import BooksPaths, Policy, load_policy, policy_version
from policy.paths import temporary_env
from simulation.arms import Reference, assign_static
from simulation.attempt import argv_for
from simulation.behaviour import Behaviour, Calibration, DayActions
from simulation.cadence import fire_times
from simulation.capacity import CapacityAdvice
from simulation.chaos import (
    ChaosDone,
    ChaosPlan,
    cycle_faults,
    kill_attempt,
    kill_point,
    manager_api,
)
from simulation.chaos import act as chaos_act
from simulation.crm_api import twin_api
from simulation.holdout import Uplift, restrict
from simulation.invariants import (
    InvariantViolation,
    applied_writes,
    check_books,
    check_held_out,
    check_moves,
    check_warehouse,
    decided_moves,
    owner_changes_at,
    read_books,
    run_ids,
)
from simulation.kpis import read_snapshot, weekly_kpis

log = logging.getLogger(__name__)

Say = Callable[[str], None]
MORNING = clock_time(9, 0)
NOON = clock_time(12, 0)
EVENING = clock_time(18, 0)
STAMP = "%Y-%m-%dT%H:%M:%S.%f%z"  # a SystemModstamp
GUARD_STEP_SUFFIX = "_write_back_guard"  # orchestration: the blocking blast-radius check
SENSORS = (  # (cadence, object, where): orchestration.cadences.build_cadences' sensors
    ("signals", "Signal__c", ""),
    ("returns", "Account", "Return_Requested__c != null"),
)


class CycleFailed(RuntimeError):
    """A production cycle failed inside the simulation (names the arm, day and steps)."""


@dataclass
class Timings:
    """Where an arm's wall time went (seconds)."""

    behaviour: float = 0.0
    kpis: float = 0.0
    cycles: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cycle_count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    steps: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class ArmRun:
    name: str
    policy_version: str | None
    rows: list[tuple[int, date, date, str, float | None]]  # (week, start, end, kpi, value)
    actions: list[DayActions]
    timings: Timings
    wall_seconds: float = 0.0
    capacity: list[CapacityAdvice] = field(default_factory=list)
    chaos: list[ChaosDone] = field(default_factory=list)
    guard_holds: list[tuple[date, str]] = field(default_factory=list)  # (day, mode) held
    kills: list[tuple[date, str, str | None]] = field(default_factory=list)  # where killed
    targets: dict[str, int] = field(default_factory=dict)  # role -> target_size of the policy
    held_out: frozenset[str] = frozenset()  # a holdout experiment's control accounts
    uplift: list[Uplift] = field(default_factory=list)  # treated vs held out, at the end


def set_clock(crm_db: Path, day: date, at: clock_time) -> None:
    CrmStore(crm_db).clock.set(datetime.combine(day, at, tzinfo=UTC))


def run_policy_arm(
    name: str,
    paths: BooksPaths,
    behaviour: Behaviour,
    calibration: Calibration,
    reference: Reference,
    start: date,
    days: int,
    say: Say,
    chaos: ChaosPlan | None = None,
    held_out: frozenset[str] = frozenset(),
) -> ArmRun:
    """Simulate `days` days from `start` with the production cycle on the arm's cadences;
    with `chaos`, managers' manual moves and a departure happen at noon (simulation.chaos);
    `held_out` accounts (listed in the arm's policy) get static territories the day before."""
    policy = load_policy(paths.policy)
    result = ArmRun(name, policy_version(policy), [], [], Timings(), held_out=held_out)
    began = time.monotonic()
    cursors: dict[str, ModstampCursor] = {}
    launched = False
    seeded_chaos = (chaos, behaviour.params.seed) if chaos is not None else None
    if held_out:
        set_clock(paths.crm_db, start - timedelta(days=1), EVENING)
        with twin_api(paths.crm_db) as api:
            assign_static(api, restrict(reference, held_out))
    with temporary_env(paths.as_env()):
        instance = _instance(paths)
        for i in range(days):
            day = start + timedelta(days=i)
            scheduled = _scheduled(policy, day)
            if not launched and not scheduled:
                scheduled = [(clock_time(5, 0), "full")]
            for at, mode in scheduled:
                set_clock(paths.crm_db, day, at)
                _cycle(
                    name,
                    paths,
                    instance,
                    day,
                    mode,
                    (),
                    "",
                    not launched,
                    result,
                    say,
                    seeded_chaos,
                )
                launched = True
            if not cursors:
                cursors = _start_cursors(paths)
            set_clock(paths.crm_db, day, MORNING)
            result.actions.append(_act(paths, behaviour, day, result.timings))
            if chaos is not None:
                set_clock(paths.crm_db, day, NOON)
                with manager_api(paths.crm_db) as api:
                    human = chaos_act(api, chaos, behaviour.params.seed, start, day)
                result.chaos.append(human)
            for k, (mode, obj, where) in enumerate(SENSORS):
                # One CRM minute per sensor: each run's writes carry their own time.
                set_clock(paths.crm_db, day, clock_time(EVENING.hour, k))
                if getattr(policy.cadences, mode).enabled:
                    cursors[mode] = _sensor_tick(
                        name,
                        paths,
                        instance,
                        mode,
                        obj,
                        where,
                        cursors[mode],
                        result,
                        say,
                        seeded_chaos,
                    )
            set_clock(paths.crm_db, day + timedelta(days=1), clock_time(0, 0))
            _maybe_week(result, paths, calibration, reference, start, i)
    result.wall_seconds = time.monotonic() - began
    return result


def run_static_arm(
    name: str,
    crm_db: Path,
    behaviour: Behaviour,
    calibration: Calibration,
    reference: Reference,
    start: date,
    days: int,
    *,
    assign: bool = True,
) -> ArmRun:
    """Static territories: assigned once (the day before the start), never retrieved or
    refilled; the same behaviour acts every day and no cycle runs. `assign=False` keeps the
    twin's owners as they are (the frozen world the calibration is checked against)."""
    result = ArmRun(name, None, [], [], Timings())
    began = time.monotonic()
    if assign:
        set_clock(crm_db, start - timedelta(days=1), EVENING)
        with twin_api(crm_db) as api:
            assign_static(api, reference)
    for i in range(days):
        day = start + timedelta(days=i)
        set_clock(crm_db, day, MORNING)
        result.actions.append(_act_on(crm_db, behaviour, day, result.timings))
        set_clock(crm_db, day + timedelta(days=1), clock_time(0, 0))
        _maybe_week(result, crm_db, calibration, reference, start, i)
    result.wall_seconds = time.monotonic() - began
    return result


def _scheduled(policy: Policy, day: date) -> list[tuple[clock_time, str]]:
    runs = []
    for mode in ("distribution", "retrieval"):
        cadence = getattr(policy.cadences, mode)
        if cadence.enabled:
            runs += [(at, mode) for at in fire_times(cadence.cron, day)]
    return sorted(runs)


def _act(paths: BooksPaths, behaviour: Behaviour, day: date, timings: Timings) -> DayActions:
    return _act_on(paths.crm_db, behaviour, day, timings)


def _act_on(crm_db: Path, behaviour: Behaviour, day: date, timings: Timings) -> DayActions:
    began = time.monotonic()
    with twin_api(crm_db) as api:
        done = behaviour.act(api, day)
    timings.behaviour += time.monotonic() - began
    return done


def _maybe_week(
    result: ArmRun,
    paths_or_db: BooksPaths | Path,
    calibration: Calibration,
    reference: Reference,
    start: date,
    i: int,
) -> None:
    """At the end of each 7th day: that week's KPIs, from the twin."""
    if (i + 1) % 7:
        return
    began = time.monotonic()
    crm_db = paths_or_db.crm_db if isinstance(paths_or_db, BooksPaths) else paths_or_db
    week_end = start + timedelta(days=i)
    week_start = week_end - timedelta(days=6)
    capacity = {uid: rep.accounts_per_week for uid, rep in calibration.reps.items()}
    snap = read_snapshot(crm_db, reference.tiers, capacity, start, week_end)
    for kpi, value in sorted(weekly_kpis(snap, week_start, week_end).items()):
        result.rows.append(((i + 1) // 7, week_start, week_end, kpi, value))
    result.timings.kpis += time.monotonic() - began


def _cycle(
    arm: str,
    paths: BooksPaths,
    instance: object,
    day: date,
    mode: str,
    ids: tuple[str, ...],
    key: str,
    launch: bool,
    result: ArmRun,
    say: Say,
    chaos: tuple[ChaosPlan, int] | None = None,
) -> None:
    """One production cycle, with the invariants checked on the twin around it; with `chaos`
    (plan, seed), under CRM faults and perhaps after a killed attempt (simulation.chaos)."""
    from orchestration.runner import run_cycle

    policy = load_policy(paths.policy)
    before = read_books(paths.crm_db, policy)
    moment = CrmStore(paths.crm_db).clock.now()  # the clock stands still during the cycle

    steps: dict[str, float] = {}

    def progress(message: str, *_: object, **__: object) -> None:
        words = message.split()
        if len(words) == 3 and words[0] == "step" and words[2] in ("started", "done"):
            now = time.monotonic()
            if words[2] == "started":
                steps[words[1]] = now
            elif words[1] in steps:
                result.timings.steps[words[1]] += now - steps.pop(words[1])

    began = time.monotonic()
    known_runs = run_ids(paths.warehouse)
    faults: list[tuple[str, dict]] = []
    if chaos is not None:
        plan, seed = chaos
        faults = cycle_faults(plan, seed, day, mode)
        point = kill_point(plan, seed, day, mode)
        if point is not None:
            argv = argv_for(day, mode, ids, key, launch)
            ended = kill_attempt(paths.as_env(), argv, point)
            result.kills.append((day, mode, str(point) if ended is None else None))
            say(f"{arm}: {day} {mode} attempt " + (f"killed {point}" if ended is None
                else f"ended ({ended}) before its kill"))  # fmt: skip
    with faults_for_new_servers(faults):
        summary = run_cycle(
            day, mode=mode, ids=ids, key=key, override_guard=launch, paths=paths,
            instance=instance, progress=progress,  # type: ignore[arg-type]
        )  # fmt: skip
    if chaos is not None and not summary.success and not _held(summary):
        say(f"{arm}: {day} {mode} cycle failed under CRM faults; run again for the same date")
        summary = run_cycle(
            day, mode=mode, ids=ids, key=key, override_guard=launch, paths=paths,
            instance=instance, progress=progress,  # type: ignore[arg-type]
        )  # fmt: skip
    seconds = time.monotonic() - began
    result.timings.cycles[mode] += seconds
    result.timings.cycle_count[mode] += 1
    held = _held(summary)
    outcome = "ok" if summary.success else ("HELD by the write guard" if held else "FAILED")
    say(f"{arm}: {day} {mode} cycle {outcome} ({seconds:.0f}s)")
    if held:
        # The guard stopped the write, as in production: the moves wait for a person's review
        # (`books run --override-guard`); the simulation goes on without them.
        result.guard_holds.append((day, mode))
        return
    if not summary.success:
        raise CycleFailed(
            f"arm {arm}, {day}: the {mode} cycle failed: "
            + "; ".join(f"{k}: {v}" for k, v in summary.failure_reasons.items())
        )
    runs = run_ids(paths.warehouse) - known_runs  # this cycle's attempts
    violations = check_books(day, before, read_books(paths.crm_db, policy))
    changes = owner_changes_at(paths.crm_db, moment, _write_back_user(paths.crm_db, policy))
    violations += check_moves(day, changes, decided_moves(paths.warehouse, runs))
    violations += check_held_out(day, changes, result.held_out)
    applied = applied_writes(paths.warehouse, runs)
    violations += check_warehouse(day, paths.crm_db, applied, changes)
    if violations:
        raise InvariantViolation(arm, violations)


def _held(summary: object) -> bool:
    """The cycle failed only at the blast-radius guard: its moves wait for review."""
    failed = getattr(summary, "failed_steps", ())
    return not getattr(summary, "success", True) and all(
        step.endswith(GUARD_STEP_SUFFIX) for step in failed
    )


def _write_back_user(crm_db: Path, policy: Policy) -> str:
    """The Id of the CRM user the write-back acts as (the policy's first write_back_users)."""
    name = policy.people.manual_changes.write_back_users[0]
    with CrmStore(crm_db).connection() as con:
        row = con.execute('select "Id" from "User" where "Username" = ?', (name,)).fetchone()
    return row[0] if row else ""


def _start_cursors(paths: BooksPaths) -> dict[str, ModstampCursor]:
    """Each sensor's first tick: start from now (what exists is the launch cycle's job)."""
    cursors = {}
    with twin_api(paths.crm_db) as api:
        for mode, obj, where in SENSORS:
            cursors[mode] = advance(
                ModstampCursor(), changed_rows(api.conn, obj, where, ModstampCursor())
            )
    return cursors


def _sensor_tick(
    arm: str,
    paths: BooksPaths,
    instance: object,
    mode: str,
    obj: str,
    where: str,
    cursor: ModstampCursor,
    result: ArmRun,
    say: Say,
    chaos: tuple[ChaosPlan, int] | None = None,
) -> ModstampCursor:
    """One sensor evaluation: a run for the rows changed since the cursor (if any)."""
    with twin_api(paths.crm_db) as api:
        rows = changed_rows(api.conn, obj, where, cursor)
    if not rows:
        return cursor
    batch = rows[:MAX_IDS_PER_RUN]
    new_cursor = advance(cursor, batch)
    as_of = datetime.strptime(new_cursor.modstamp or "", STAMP).date()  # the sensor's as-of
    ids = tuple(sorted({r["Id"] for r in batch}))
    _cycle(arm, paths, instance, as_of, mode, ids, new_cursor.dumps(), False, result, say, chaos)
    return new_cursor


def _instance(paths: BooksPaths) -> object:
    from orchestration.runner import open_instance

    return open_instance(paths.dagster_home)
