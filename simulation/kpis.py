"""KPIs of one arm for one simulated week, from what the twin holds at the week's end.

Pure arithmetic over a `Snapshot` (read from the twin by `read_snapshot`), so the definitions
can be checked by hand on a tiny world. Every KPI is arm-neutral: it reads owners, touches,
signals, opportunities and returns from the CRM, never the engine's own tables, so the static
arm (no engine) is measured the same way.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

WORKED_DAYS = 30  # "worked" = touched in the last 30 days, the coverage promise
HOT_DAYS = 7  # a hot account should be touched within 7 days of its signal
HIGH_TIERS = ("A", "B")

KPI_DESCRIPTIONS: dict[str, str] = {
    "ab_worked_30d_share": "A/B-tier accounts touched by a rep in the last 30 days / A/B accounts",
    "hot_touched_7d_share": "signals of the period at least 7 days old whose account a rep "
    "touched within 7 days / those signals",
    "median_days_to_first_touch": "median days from a signal of the period to the first rep "
    "touch on its account (touched signals only)",
    "book_productivity": "accounts in reps' books touched in the last 30 days / accounts in books",
    "gini_book_size": "Gini of the number of accounts per active rep's book (0 = equal)",
    "gini_book_value": "Gini of the summed AnnualRevenue per active rep's book (0 = equal)",
    "never_touched": "accounts in reps' books at the week's end with no touch in the period",
    "opportunities_created": "opportunities created in the week",
    "pipeline_created": "Amount of the opportunities created in the week",
    "to_pool": "owner changes in the week from a rep to a pool user (retrievals, returns, "
    "releases)",
    "from_pool": "owner changes in the week from a pool user to a rep (distribution, routing)",
    "returns.<reason>": "returns applied in the week, by reason (Return_Date__c in the week)",
    "rep_utilisation": "mean over available reps of min(1, accounts they touched in the week / "
    "accounts they can work in a week)",
}


@dataclass
class Snapshot:
    """The world at a week's end, as the KPIs need it."""

    owners: dict[str, str]  # account -> owner at the week's end
    values: dict[str, float]  # account -> AnnualRevenue
    tiers: dict[str, str]  # account -> fit tier (A-D) of the managed prospects
    reps: dict[str, float]  # available book rep -> accounts they can work per week
    pool_users: set[str]
    touches: list[tuple[str, str, date]]  # (account, rep, day) manual rep touches
    signals: list[tuple[str, str, date]]  # (signal, account, day) signals of the period
    opportunities: list[tuple[str, date, float]]  # (account, created day, amount)
    returns: list[tuple[str, str, date]]  # (account, reason, return day)
    moves: list[tuple[str, date, str, str]]  # (account, day, old owner, new owner)
    period_start: date = date.min
    book_reps: set[str] = field(default_factory=set)  # active book reps (available or not)


def gini(values: Iterable[float]) -> float:
    """Gini coefficient (mean absolute difference / twice the mean); 0 for none or all zero."""
    xs = sorted(float(v) for v in values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((2 * i - n + 1) * x for i, x in enumerate(xs))
    return weighted / (n * total)


def weekly_kpis(snap: Snapshot, week_start: date, week_end: date) -> dict[str, float | None]:
    """Every KPI for the week [week_start, week_end] (both days included)."""
    in_week = lambda d: week_start <= d <= week_end  # noqa: E731
    worked_since = week_end - timedelta(days=WORKED_DAYS - 1)
    touched_30d = {a for a, _, d in snap.touches if worked_since <= d <= week_end}
    touched_period = {a for a, _, d in snap.touches if snap.period_start <= d <= week_end}
    high = [a for a, t in snap.tiers.items() if t in HIGH_TIERS]
    book_reps = snap.book_reps or set(snap.reps)
    books: dict[str, list[str]] = defaultdict(list)
    for account, owner in snap.owners.items():
        if owner in book_reps:
            books[owner].append(account)
    in_books = [a for accounts in books.values() for a in accounts]
    out: dict[str, float | None] = {
        "ab_worked_30d_share": _share(sum(a in touched_30d for a in high), len(high)),
        **_hot_kpis(snap, week_end),
        "book_productivity": _share(sum(a in touched_30d for a in in_books), len(in_books)),
        "gini_book_size": gini(len(books.get(r, ())) for r in sorted(book_reps)),
        "gini_book_value": gini(
            sum(snap.values.get(a, 0.0) for a in books.get(r, ())) for r in sorted(book_reps)
        ),
        "never_touched": float(sum(a not in touched_period for a in in_books)),
        "opportunities_created": float(sum(in_week(d) for _, d, _ in snap.opportunities)),
        "pipeline_created": float(sum(x for _, d, x in snap.opportunities if in_week(d))),
        "to_pool": float(
            sum(
                in_week(d) and new in snap.pool_users and old not in snap.pool_users
                for _, d, old, new in snap.moves
            )
        ),  # fmt: skip
        "from_pool": float(
            sum(
                in_week(d) and old in snap.pool_users and new not in snap.pool_users
                for _, d, old, new in snap.moves
            )
        ),  # fmt: skip
        "rep_utilisation": _utilisation(snap, week_start, week_end),
    }
    reasons: dict[str, int] = defaultdict(int)
    for _, reason, d in snap.returns:
        if in_week(d):
            reasons[reason] += 1
    for reason, n in sorted(reasons.items()):
        out[f"returns.{reason}"] = float(n)
    return out


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _hot_kpis(snap: Snapshot, week_end: date) -> dict[str, float | None]:
    first_touch: dict[str, list[date]] = defaultdict(list)
    for account, _, d in snap.touches:
        first_touch[account].append(d)
    due = within = 0
    delays = []
    for _, account, signal_day in snap.signals:
        if not snap.period_start <= signal_day <= week_end:
            continue
        after = [d for d in first_touch.get(account, ()) if signal_day <= d <= week_end]
        first = min(after) if after else None
        if first is not None:
            delays.append((first - signal_day).days)
        if signal_day + timedelta(days=HOT_DAYS) <= week_end:
            due += 1
            within += first is not None and (first - signal_day).days <= HOT_DAYS
    return {
        "hot_touched_7d_share": _share(within, due),
        "median_days_to_first_touch": float(statistics.median(delays)) if delays else None,
    }


def _utilisation(snap: Snapshot, week_start: date, week_end: date) -> float | None:
    worked: dict[str, set[str]] = defaultdict(set)
    for account, rep, d in snap.touches:
        if week_start <= d <= week_end:
            worked[rep].add(account)
    shares = [min(1.0, len(worked[r]) / cap) for r, cap in sorted(snap.reps.items()) if cap > 0]
    return sum(shares) / len(shares) if shares else None


def read_snapshot(
    crm_db: Path,
    tiers: Mapping[str, str],
    capacity: Mapping[str, float],
    period_start: date,
    until: date,
) -> Snapshot:
    """The twin at the end of `until` (read-only SQL on the file; the KPIs' own reading).

    `capacity`: accounts per week of each modelled rep (the behaviour's calibration);
    touches are manual, non-automated Tasks/Events by a book rep on an account.
    """
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        users = con.execute(
            'select "Id", "Book_Role__c", "IsActive", "Out_Of_Office_Until__c" from "User" '
            'where "IsDeleted" = 0'
        ).fetchall()
        end = until.isoformat()
        book = {u for u, role, active, _ in users if role in ("SDR", "BDR") and active}
        available = {
            u: float(capacity.get(u, 0.0))
            for u, role, active, away in users
            if u in book and not (away and away >= end)
        }
        pool = {u for u, role, _, _ in users if role == "Pool"}
        accounts = con.execute(
            'select "Id", "OwnerId", coalesce("AnnualRevenue", 0), "Return_Reason__c", '
            '"Return_Date__c" from "Account" where "IsDeleted" = 0'
        ).fetchall()
        touches = []
        for table in ("Task", "Event"):
            touches += [
                (a, o, date.fromisoformat(d))
                for a, o, d in con.execute(
                    f'select "AccountId", "OwnerId", "ActivityDate" from "{table}" '
                    'where "IsDeleted" = 0 and "AccountId" is not null '
                    'and coalesce("Is_Automated__c", 0) = 0 '
                    "and coalesce(\"Source__c\", 'Manual') not in ('Sequence', 'Marketing') "
                    'and "ActivityDate" <= ?',
                    (end,),
                )
                if o in book
            ]
        signals = [
            (s, a, date.fromisoformat(d))
            for s, a, d in con.execute(
                'select "Id", "Account__c", "Signal_Date__c" from "Signal__c" '
                'where "IsDeleted" = 0 and "Signal_Date__c" between ? and ?',
                (period_start.isoformat(), end),
            )
        ]
        opportunities = [
            (a, date.fromisoformat(c[:10]), float(x or 0))
            for a, c, x in con.execute(
                'select "AccountId", "CreatedDate", "Amount" from "Opportunity" '
                'where "IsDeleted" = 0 and substr("CreatedDate", 1, 10) between ? and ?',
                (period_start.isoformat(), end),
            )
        ]
        moves = [
            (a, date.fromisoformat(c[:10]), old, new)
            for a, c, old, new in con.execute(
                'select "AccountId", "CreatedDate", "OldValue", "NewValue" from "AccountHistory" '
                'where "Field" = \'OwnerId\' and substr("CreatedDate", 1, 10) between ? and ?',
                (period_start.isoformat(), end),
            )
        ]
    finally:
        con.close()
    return Snapshot(
        owners={a: o for a, o, *_ in accounts},
        values={a: float(v) for a, _, v, _, _ in accounts},
        tiers=dict(tiers),
        reps=available,
        pool_users=pool,
        touches=touches,
        signals=signals,
        opportunities=opportunities,
        returns=[
            (a, reason, date.fromisoformat(d))
            for a, _, _, reason, d in accounts
            if reason and d and period_start.isoformat() <= d <= end
        ],
        moves=moves,
        period_start=period_start,
        book_reps=book,
    )
