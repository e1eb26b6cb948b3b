"""Chaos mode's human edits (`books simulate --chaos`): what managers do between cycles.

Each simulated workday a manager may move an account from one rep to another rep of the same
segment by hand, and on a given day a rep leaves (deactivated). Both go through the CRM API
logged in as the manager (password flow), so the CRM records them as a person's changes, not
the write-back's: the engine must respect the manual assignment and release the leaver's book,
and the per-cycle invariants still hold around every cycle.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from local_crm.db import CrmStore
from simulation.behaviour import rng_for
from simulation.crm_api import TwinApi, twin_api


@dataclass(frozen=True)
class ChaosPlan:
    manual_moves_per_week: float = 3.0
    leave_on_day: int | None = 10  # simulated day (0-based) on which one rep leaves


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
