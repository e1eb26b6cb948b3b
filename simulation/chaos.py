"""Chaos mode (`books simulate --chaos`): people who do not follow the rules, a CRM that fails,
and cycles that die.

- Each simulated workday a manager may move an account from one rep to another rep of the same
  segment by hand, and on a given day a rep leaves (deactivated). Both go through the CRM API
  logged in as the manager (password flow), so the CRM records them as a person's changes, not
  the write-back's: the engine must respect the manual assignment and release the leaver's book.
- Every cycle's CRM answers with the faults the local CRM can inject (row locks, 429s, an
  expired session, silent drops) on the write-back's calls (`cycle_faults`).
- A share of the cycles is first started in a child process and killed (SIGKILL) at a random
  point (`kill_attempt`); the cycle is then run again for the same date, as an operator would.
  A cycle that fails under the faults is re-run once for the same date, without them.
The per-cycle invariants (simulation.invariants) must hold after all of it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from local_crm.db import CrmStore
from simulation.behaviour import rng_for
from simulation.crm_api import TwinApi, twin_api

WRITE_PATHS = ("composite/sobjects*", "jobs/ingest*")  # the write-back's CRM calls


@dataclass(frozen=True)
class ChaosPlan:
    manual_moves_per_week: float = 3.0
    leave_on_day: int | None = 10  # simulated day (0-based) on which one rep leaves
    fault_share: float = 0.1  # share of write calls/records hit by each fault kind
    kill_share: float = 0.2  # share of cycles first killed at a random point
    kill_steps: int = 12  # the kill follows one of the first N finished steps (at random)


def cycle_faults(plan: ChaosPlan, seed: int, day: date, mode: str) -> list[tuple[str, dict]]:
    """The CRM faults of one cycle's write-back (kind, options of `FaultInjector.add`): locks
    that clear on retry, 429s with Retry-After, one expired session, silent drops."""
    if plan.fault_share <= 0:
        return []
    rng = rng_for(seed, "chaos-faults", day, mode)
    share = plan.fault_share
    faults: list[tuple[str, dict]] = []
    for path in WRITE_PATHS:
        faults += [
            ("lock_rows", {"path": path, "share": share}),
            ("rate_limit", {"path": path, "share": share, "retry_after": 1}),
            ("silent_drop", {"path": path, "method": "PATCH", "share": share / 2}),
        ]
    after = int(rng.integers(0, 3))
    faults.append(("expired_session", {"path": "composite*", "after": after, "times": 1}))
    return faults


@dataclass(frozen=True)
class KillPoint:
    """Kill the attempt `delay` seconds after its `after_steps`-th finished step."""

    after_steps: int
    delay: float

    def __str__(self) -> str:
        return f"{self.delay:.1f}s after step {self.after_steps} finished"


def kill_point(plan: ChaosPlan, seed: int, day: date, mode: str) -> KillPoint | None:
    """Where this cycle's first attempt is killed; None: not killed."""
    rng = rng_for(seed, "chaos-kill", day, mode)
    if rng.random() >= plan.kill_share:
        return None
    return KillPoint(int(rng.integers(1, plan.kill_steps + 1)), float(rng.uniform(0, 2)))


def kill_attempt(env: dict[str, str], argv: list[str], point: KillPoint) -> int | None:
    """Start the cycle (`python -m simulation.attempt ARGV`) in a child process, read its
    progress lines and SIGKILL it (with the processes it started) at `point`; its exit code when it ended first, else None."""
    child = subprocess.Popen(
        [sys.executable, "-m", "simulation.attempt", *argv],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: the kill takes dbt's child with it
    )
    finished = 0
    assert child.stdout is not None
    for line in child.stdout:
        words = line.split()
        finished += len(words) >= 3 and words[0] == "step" and words[2] in ("done", "FAILED")
        if finished >= point.after_steps:
            try:
                return child.wait(timeout=point.delay)
            except subprocess.TimeoutExpired:
                # The whole group, as a service manager stops a job: a dbt build the attempt
                # started would otherwise live on and hold the warehouse's lock.
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                return None
    return child.wait()


@dataclass
class ChaosDone:
    manual_moves: int = 0
    departures: int = 0


@contextmanager
def manager_api(crm_db: Path) -> Iterator[TwinApi]:
    """The twin's API logged in as its first active manager (a password set for the lab)."""
    store = CrmStore(crm_db)
    with store.connection() as con:
        row = con.execute(
            'select "Username" from "User" where "Book_Role__c" = \'Manager\' '
            'and "IsActive" = 1 order by "Id" limit 1'
        ).fetchone()
    if row is None:
        raise ValueError(f"{crm_db} has no active Manager user for chaos mode's manual edits")
    password = secrets.token_hex(12)
    store.set_password(row[0], password)
    with twin_api(crm_db, username=row[0], password=password) as api:
        yield api


def act(api: TwinApi, plan: ChaosPlan, seed: int, start: date, day: date) -> ChaosDone:
    """Today's manual moves (workdays) and, on the planned day, one rep's departure."""
    done = ChaosDone()
    reps = sorted(
        (u for u in api.query("SELECT Id, IsActive, Book_Role__c, Book_Segments__c FROM User")
         if u["Book_Role__c"] in ("SDR", "BDR") and u["IsActive"]),
        key=lambda u: u["Id"],
    )  # fmt: skip
    if len(reps) < 2:
        return done
    rng = rng_for(seed, "chaos", day)
    if plan.leave_on_day is not None and (day - start).days == plan.leave_on_day:
        leaver = reps[int(rng.integers(len(reps)))]
        done.departures = len(api.update("User", [{"Id": leaver["Id"], "IsActive": False}]))
        reps = [r for r in reps if r["Id"] != leaver["Id"]]
    if day.weekday() >= 5:
        return done
    by_segment: dict[str, list[str]] = defaultdict(list)
    for r in reps:
        by_segment[r["Book_Segments__c"] or ""].append(r["Id"])
    owned = sorted(
        (a["Id"], a["OwnerId"])
        for a in api.query("SELECT Id, OwnerId FROM Account")
        if a["OwnerId"] in {r["Id"] for r in reps}
    )
    segment_of = {r["Id"]: r["Book_Segments__c"] or "" for r in reps}
    moves: dict[str, str] = {}
    for _ in range(int(rng.poisson(plan.manual_moves_per_week / 5))):
        if not owned:
            break
        account, owner = owned[int(rng.integers(len(owned)))]
        others = [r for r in by_segment[segment_of[owner]] if r != owner]
        if others:
            moves[account] = others[int(rng.integers(len(others)))]
    records = [{"Id": a, "OwnerId": o} for a, o in sorted(moves.items())]
    done.manual_moves = len(api.update("Account", records)) if records else 0
    return done
