"""Reps working their books between weekly cycles, for the end-to-end test.

Why: the lifecycle only moves if time passes and some accounts are touched and others are not.
`advance_week` moves the local CRM clock by 7 days and logs manual outbound calls/emails (which
the policy counts as meaningful) on a seeded share of each rep's accounts: diligent reps touch
most of their book, others few, so some books go stale and get retrieved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from local_crm.db import CrmStore, format_date

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
# Share of its owned accounts a rep touches per week, by work habit. With a 15-day working
# window an account goes stale after two untouched weeks, so a "sparse" rep loses about
# (1 - 0.4)^2 = 36% of its settled book a week: below the write-back guard's
# max_share_of_one_book (50%), which would (rightly) block a run that empties half a book.
TOUCH_SHARE = {"diligent": 0.9, "steady": 0.7, "patchy": 0.5, "sparse": 0.4}
BOOK_ROLES = ("SDR", "BDR")


@dataclass(frozen=True)
class WeekOfWork:
    """What the reps did in one simulated week (ending the day before `as_of`)."""

    as_of: date
    tasks: int
    touched_by_rep: dict[str, int]


def book_reps(store: CrmStore) -> list[str]:
    """Active book reps (SDR/BDR), by Id so that habits are assigned deterministically."""
    with store.connection() as con:
        rows = con.execute(
            'SELECT "Id" FROM "User" WHERE "Book_Role__c" IN (?, ?) AND "IsActive" = 1 '
            'ORDER BY "Id"',
            BOOK_ROLES,
        ).fetchall()
    return [r[0] for r in rows]


def assign_habits(rep_ids: Sequence[str], seed: int) -> dict[str, str]:
    """Each rep gets a work habit; every habit is used when there are enough reps."""
    habits = list(TOUCH_SHARE)
    order = np.random.default_rng(seed).permutation(len(rep_ids))
    return {rep_ids[i]: habits[k % len(habits)] for k, i in enumerate(order.tolist())}


def advance_week(store: CrmStore, habits: Mapping[str, str], *, seed: int, week: int) -> WeekOfWork:
    """Move the CRM clock 7 days on, then log this week's touches dated inside the week.

    Tasks are created through the store's API path (ids, system dates from the clock), owned
    by the rep, on accounts the rep owns now: Completed, Outbound, Manual, not automated.
    """
    store.clock.advance(WEEK)
    today = store.clock.today()
    rng = np.random.default_rng([seed, week])
    records: list[dict[str, object]] = []
    touched: dict[str, int] = {}
    with store.connection() as con:
        for rep_id, habit in sorted(habits.items()):
            owned = [
                r[0]
                for r in con.execute(
                    'SELECT "Id" FROM "Account" WHERE "OwnerId" = ? AND "IsDeleted" = 0 '
                    'ORDER BY "Id"',
                    (rep_id,),
                ).fetchall()
            ]
            if not owned:
                continue
            k = round(TOUCH_SHARE[habit] * len(owned))
            chosen = np.sort(rng.choice(len(owned), size=k, replace=False))
            touched[rep_id] = len(chosen)
            for i in chosen.tolist():
                kind = "Call" if rng.random() < 0.5 else "Email"
                records.append(
                    {
                        "OwnerId": rep_id,
                        "WhatId": owned[i],
                        "Subject": f"{kind} (simulated week {week})",
                        "Type": kind,
                        "ActivityDate": format_date(
                            today - timedelta(days=int(rng.integers(1, 7)))
                        ),
                        "Status": "Completed",
                        "Direction__c": "Outbound",
                        "Is_Automated__c": False,
                        "Source__c": "Manual",
                    }
                )
    for start in range(0, len(records), 2_000):
        store.insert("Task", records[start : start + 2_000], actor_id=None)
    store.close()
    log.info("week %d: %d tasks logged, clock now %s", week, len(records), today)
    return WeekOfWork(as_of=today, tasks=len(records), touched_by_rep=touched)
