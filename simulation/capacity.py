"""Capacity advice from the simulated reps' observed throughput.

Per rep role and segment: the book size at which the simulated reps would keep at least 90%
of their book worked in 30 days, i.e. the distinct accounts they actually touched per 30 days
divided by 0.9 (median over the reps). When the reps worked nearly all of their book, their
throughput was capped by the book, not by them: the advice is then a lower bound.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

WORKED_SHARE = 0.9
WINDOW_DAYS = 30


@dataclass(frozen=True)
class CapacityAdvice:
    role: str
    segment: str
    reps: int
    worked_per_30_days: float  # median distinct accounts a rep touched per 30 days
    book_now: float  # median book size at the end
    advised_book_size: int
    lower_bound: bool  # the reps worked (almost) their whole book: they could take more


def capacity_advice(crm_db: Path, start: date, until: date) -> list[CapacityAdvice]:
    """Advice per (role, segment) from the twin after a simulation of [start, until]."""
    days = min(WINDOW_DAYS, (until - start).days + 1)
    since = until - timedelta(days=days - 1)
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        reps = {
            uid: (role, segments or "")
            for uid, role, segments, active in con.execute(
                'select "Id", "Book_Role__c", "Book_Segments__c", "IsActive" from "User"'
            )
            if active and role in ("SDR", "BDR")
        }
        worked: dict[str, set[str]] = defaultdict(set)
        for table in ("Task", "Event"):
            for account, owner in con.execute(
                f'select "AccountId", "OwnerId" from "{table}" where "IsDeleted" = 0 '
                'and "ActivityDate" between ? and ? and coalesce("Is_Automated__c", 0) = 0 '
                "and coalesce(\"Source__c\", 'Manual') not in ('Sequence', 'Marketing')",
                (since.isoformat(), until.isoformat()),
            ):
                if owner in reps and account:
                    worked[owner].add(account)
        books: dict[str, int] = defaultdict(int)
        for (owner,) in con.execute(
            'select "OwnerId" from "Account" where "IsDeleted" = 0 '
            "and coalesce(\"Book_Status__c\", '') not in ('converted', 'excluded', 'retired')"
        ):
            books[owner] += 1
    finally:
        con.close()
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for uid, key in sorted(reps.items()):
        groups[key].append(uid)
    out = []
    for (role, segment), members in sorted(groups.items()):
        per_30 = statistics.median(len(worked[u]) * WINDOW_DAYS / days for u in members)
        book = statistics.median(books[u] for u in members)
        advised = int(per_30 / WORKED_SHARE)
        out.append(CapacityAdvice(role, segment, len(members), per_30, book, advised,
                                  per_30 >= WORKED_SHARE * book))  # fmt: skip
    return out
