"""Invariants the lab checks around every simulated cycle, from the twin (what the CRM holds).

A violation stops the simulation and names the day, the rep or account, and the rule:
- `book_above_target`: a rep received accounts in a cycle and their book (owned accounts in
  status working or stale) ended above their role's `target_size`; no route may do that;
- `moved_without_decision`: the cycle changed an account's owner (an `AccountHistory` row at
  the cycle's CRM time by the write-back user) that no decision of the run asked for, or
  changed it twice;
- `held_out_moved`: the cycle changed the owner of an account the arm's policy holds out (a
  holdout experiment's control group, `books.held_out_accounts`);
- `warehouse_differs_from_twin`: after the cycle (and its re-runs), the warehouse's write-back
  ledger and the twin disagree: a write recorded `applied` whose values the twin does not hold,
  or an owner change the write-back made that no applied write records.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from policy import Policy

BOOK_STATUSES = ("working", "stale")


@dataclass(frozen=True)
class Violation:
    day: date
    rule: str
    subject: str  # the rep or account
    detail: str

    def __str__(self) -> str:
        return f"{self.day}: {self.rule} for {self.subject}: {self.detail}"


class InvariantViolation(RuntimeError):
    """An invariant failed after a simulated cycle; the message names day, subject and rule."""

    def __init__(self, arm: str, violations: list[Violation]) -> None:
        self.violations = violations
        lines = "; ".join(str(v) for v in violations[:5])
        more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"arm {arm}: invariant violated: {lines}{more}")


@dataclass(frozen=True)
class BookState:
    owners: dict[str, str]  # account -> owner
    books: dict[str, set[str]]  # rep -> accounts in status working/stale
    targets: dict[str, int]  # rep -> target_size of their role


def read_books(crm_db: Path, policy: Policy) -> BookState:
    """Owners, books and targets as the twin holds them now."""
    roles = {role: design.target_size for role, design in policy.books.roles.items()}
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        targets = {
            uid: roles[role]
            for uid, role in con.execute('select "Id", "Book_Role__c" from "User"')
            if role in roles
        }
        rows = con.execute(
            'select "Id", "OwnerId", "Book_Status__c" from "Account" where "IsDeleted" = 0'
        ).fetchall()
    finally:
        con.close()
    books: dict[str, set[str]] = defaultdict(set)
    for account, owner, status in rows:
        if owner in targets and status in BOOK_STATUSES:
            books[owner].add(account)
    return BookState({a: o for a, o, _ in rows}, dict(books), targets)


def check_books(day: date, before: BookState, after: BookState) -> list[Violation]:
    """Reps who received accounts and ended above their target."""
    out = []
    for rep, target in sorted(after.targets.items()):
        book = after.books.get(rep, set())
        received = sorted(a for a in book if before.owners.get(a) != rep)
        if received and len(book) > target:
            out.append(Violation(day, "book_above_target", rep,
                                 f"book {len(book)} > target {target} after receiving "
                                 f"{len(received)} (e.g. {received[0]})"))  # fmt: skip
    return out


def owner_changes_at(crm_db: Path, moment: datetime, actor: str) -> Counter:
    """(account, old owner, new owner) of every OwnerId change `actor` made at `moment` (the
    CRM clock stands still during a simulated cycle, so this is the cycle's writes)."""
    from local_crm.db import format_datetime

    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            'select "AccountId", "OldValue", "NewValue" from "AccountHistory" '
            'where "Field" = \'OwnerId\' and "CreatedDate" = ? and "CreatedById" = ?',
            (format_datetime(moment), actor),
        ).fetchall()
    finally:
        con.close()
    return Counter(rows)


def run_ids(warehouse: Path) -> set[str]:
    """Every run id the warehouse knows (decisions and write-back ledger); none before the
    first cycle. The runs of one cycle (a killed attempt and its re-runs) are the new ones."""
    if not Path(warehouse).exists():
        return set()
    found: set[str] = set()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in ("decisions.book_decisions", "ops.write_ledger"):
            try:
                found |= {
                    r[0] for r in con.execute(f"select distinct run_id from {table}").fetchall()
                }
            except duckdb.CatalogException:
                continue
    return found


def decided_moves(warehouse: Path, runs: set[str]) -> set[tuple[str, str, str]]:
    """(account, from owner, to owner) of the runs' decisions that move an account."""
    if not runs:
        return set()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select account_id, from_owner_id, to_owner_id from decisions.book_decisions "
            "where run_id in (select unnest(?)) and account_id is not null "
            "and from_owner_id is distinct from to_owner_id",
            [sorted(runs)],
        ).fetchall()
    return {tuple(r) for r in rows}


def check_moves(day: date, changes: Counter, decided: set[tuple[str, str, str]]) -> list[Violation]:
    """Owner changes the run did not decide, or wrote more than once."""
    out = []
    for (account, old, new), n in sorted(changes.items()):
        if (account, old, new) not in decided:
            out.append(Violation(day, "moved_without_decision", account, f"{old} -> {new}"))
        elif n > 1:
            out.append(Violation(day, "moved_without_decision", account,
                                 f"{old} -> {new} written {n} times"))  # fmt: skip
    return out


def check_held_out(day: date, changes: Counter, held_out: frozenset[str]) -> list[Violation]:
    """Owner changes the cycle made on held-out accounts (the engine must leave them alone)."""
    return [
        Violation(day, "held_out_moved", account, f"{old} -> {new}")
        for (account, old, new) in sorted(changes)
        if account in held_out
    ]


def applied_writes(warehouse: Path, run_ids: set[str]) -> dict[str, dict[str, object]]:
    """Account -> the field values the ledger records as applied by `run_ids` (later wins)."""
    if not run_ids:
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select record_id, after_json from ops.write_ledger where sobject = 'Account' "
            "and state = 'applied' and run_id in (select unnest(?)) order by updated_at",
            [sorted(run_ids)],
        ).fetchall()
    out: dict[str, dict[str, object]] = {}
    for record, after in rows:
        out.setdefault(record, {}).update(json.loads(after))
    return out


def check_warehouse(
    day: date, crm_db: Path, applied: dict[str, dict[str, object]], changes: Counter
) -> list[Violation]:
    """The ledger's applied writes hold in the twin, and every owner change is among them."""
    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        fields = sorted({f for values in applied.values() for f in values})
        cols = ", ".join(f'"{f}"' for f in ["Id", *fields])
        twin = {r[0]: dict(zip(fields, r[1:], strict=True))
                for r in con.execute(f'select {cols} from "Account"')}  # fmt: skip
    finally:
        con.close()
    out = []
    for account, values in sorted(applied.items()):
        held = twin.get(account, {})
        wrong = sorted(f for f, v in values.items() if not _same(held.get(f), v))
        if wrong:
            out.append(Violation(day, "warehouse_differs_from_twin", account,
                                 f"applied {wrong[0]}={values[wrong[0]]!r}, twin holds "
                                 f"{held.get(wrong[0])!r}"))  # fmt: skip
    for account, _, new in sorted(changes):
        if applied.get(account, {}).get("OwnerId") != new:
            out.append(Violation(day, "warehouse_differs_from_twin", account,
                                 f"owner changed to {new} with no applied write recording it"))  # fmt: skip
    return out


def _same(twin: object, wanted: object) -> bool:
    """A ledger value (JSON) equals the twin's (SQLite: booleans as 0/1, dates as text)."""
    if wanted is None or twin is None:
        return wanted is None and twin is None
    if isinstance(wanted, bool):
        return bool(twin) == wanted
    if isinstance(wanted, int | float) and isinstance(twin, int | float):
        return float(twin) == float(wanted)
    return str(twin)[: len(str(wanted))] == str(wanted) if wanted else str(twin) == ""
