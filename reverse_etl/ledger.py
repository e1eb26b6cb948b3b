"""The write-back ledger (outbox) and `sync_log` in the warehouse DuckDB, schema `ops`.

Every change is committed `planned` before any CRM call, moves to `sending` before its write
and to an outcome after it, each step its own short transaction, so a process killed at any
point leaves a ledger the next run can finish (`reverse_etl.apply.recover`). `acked` means the
CRM reported the write saved and the read-back has not yet confirmed it.

States: planned -> sending -> acked -> applied; or sending -> retry | rejected; planned ->
unchanged | conflict | rejected (decided on the pre-write re-read); planned | retry ->
superseded (a newer run, or a re-run of the same run that decided again, did not keep it).
`sync_log` gets one append-only row per attempted change when it reaches an outcome, written
in the same transaction as the state, and so does the decision outcome log
(`reverse_etl.outcomes`). `readback_mismatches` counts the times the CRM answered a write of
the change saved and the read-back did not find it (a silent drop).

Rows name their CRM object (`sobject`: Account, Lead) and record (`record_id`). A ledger made
before leads were written (an `account_id` column, no `sobject`) is migrated in place on connect.

Connections are opened per step and closed at once: DuckDB allows one writer per file.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from reverse_etl import outcomes
from reverse_etl.guards import ensure_holds_table
from reverse_etl.plan import Plan, canonical_json

Clock = Callable[[], dt.datetime]

PLANNED, SENDING, ACKED, RETRY = "planned", "sending", "acked", "retry"
APPLIED, UNCHANGED, CONFLICT, REJECTED, SUPERSEDED = (
    "applied",
    "unchanged",
    "conflict",
    "rejected",
    "superseded",
)
OUTCOMES = (APPLIED, UNCHANGED, CONFLICT, REJECTED)  # terminal, logged to sync_log
STATES = (PLANNED, SENDING, ACKED, RETRY, *OUTCOMES, SUPERSEDED)
IN_FLIGHT = (SENDING, ACKED)

_DDL = """
create schema if not exists ops;
create table if not exists ops.write_plans (
    run_id varchar not null,
    planned_seq bigint not null,
    planned_at timestamptz not null,
    changes integer not null,
    moves integer not null,
    owned_accounts integer not null,
    status varchar not null,          -- planned | blocked | overridden
    blocked_reasons varchar,
    overridden_at timestamptz
);
create table if not exists ops.write_ledger (
    change_key varchar not null,
    run_id varchar not null,
    record_id varchar not null,
    fields varchar not null,          -- JSON list, sorted
    before_json varchar not null,     -- canonical JSON {field: value read this run}
    after_json varchar not null,      -- canonical JSON {field: desired value}
    is_move boolean not null,
    state varchar not null,
    attempts integer not null,
    error_code varchar,
    error_message varchar,
    bulk_job_id varchar,
    planned_at timestamptz not null,
    updated_at timestamptz not null,
    sobject varchar not null default 'Account'
);
create table if not exists ops.sync_log (
    change_key varchar not null,
    run_id varchar not null,
    record_id varchar not null,
    fields varchar not null,
    before_json varchar not null,
    after_json varchar not null,
    outcome varchar not null,         -- applied | unchanged | conflict | rejected | retry | held
    attempts integer not null,
    error_code varchar,
    error_message varchar,
    planned_at timestamptz not null,
    finished_at timestamptz not null,
    sobject varchar not null default 'Account'
);
alter table ops.write_ledger add column if not exists readback_mismatches integer default 0;
alter table ops.sync_log add column if not exists readback_mismatches integer default 0;
"""

# Ledgers written before leads: rename account_id -> record_id, add sobject (all Account).
_MIGRATE = ("write_ledger", "sync_log")


def utc_now() -> dt.datetime:
    """Default stamp for ledger rows (operational metadata only; no decision reads it)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LedgerRow:
    change_key: str
    run_id: str
    sobject: str
    record_id: str
    before: dict[str, str | None]
    after: dict[str, str | None]
    state: str
    attempts: int
    bulk_job_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Transition:
    """One state change of one ledger row (outcome fields are optional)."""

    change_key: str
    state: str
    attempts: int
    error_code: str | None = None
    error_message: str | None = None
    bulk_job_id: str | None = None
    readback_mismatch: bool = False  # answered saved, read back without the values


def connect(warehouse_path: str | Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(warehouse_path))
    con.execute(_DDL)
    _migrate(con)
    outcomes.ensure(con)
    return con


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a pre-lead ledger (account_id, no sobject) to the current columns."""
    old = con.execute(
        "select table_name from information_schema.columns where table_schema = 'ops' "
        "and column_name = 'account_id' and list_contains(?, table_name)",
        [list(_MIGRATE)],
    ).fetchall()
    for (table,) in old:
        con.execute(f"alter table ops.{table} rename column account_id to record_id")
        con.execute(
            f"alter table ops.{table} add column if not exists sobject varchar default 'Account'"
        )


def store_plan(
    warehouse_path: str | Path, plan: Plan, clock: Clock, *, full_cycle: bool = True
) -> None:
    """Commit the plan as `planned` rows (idempotent per change key) in one transaction.

    Unfinished (`planned`/`retry`) rows this plan decided again are superseded: an older run's
    rows when this run is a full cycle (it re-read the CRM and planned whatever is still
    needed) or plans the same record; this run's own rows it no longer plans (a re-run that
    decided differently). An out-of-cycle run (`full_cycle=False`: signals, returns) decides
    only its own accounts, so the others' unfinished changes stay for it to send. A re-plan of
    the same run keeps existing rows' states.
    """
    now = clock()
    frame = pl.DataFrame(
        {
            "change_key": [c.change_key for c in plan.changes],
            "sobject": [c.sobject for c in plan.changes],
            "record_id": [c.record_id for c in plan.changes],
            "fields": [json.dumps(list(c.fields)) for c in plan.changes],
            "before_json": [canonical_json(c.before) for c in plan.changes],
            "after_json": [canonical_json(c.after) for c in plan.changes],
            "is_move": [c.is_move for c in plan.changes],
        },
        schema={
            "change_key": pl.Utf8,
            "sobject": pl.Utf8,
            "record_id": pl.Utf8,
            "fields": pl.Utf8,
            "before_json": pl.Utf8,
            "after_json": pl.Utf8,
            "is_move": pl.Boolean,
        },
    )
    status = "blocked" if plan.is_blocked else "planned"
    with connect(warehouse_path) as con:
        con.execute("begin")
        con.register("_plan", frame)
        decided_again = (
            "state in (?, ?) and ((run_id <> ? and (? or (sobject, record_id) in "
            "(select (sobject, record_id) from _plan))) or (run_id = ? and change_key not in "
            "(select change_key from _plan)))"
        )
        params = [PLANNED, RETRY, plan.run_id, full_cycle, plan.run_id]
        stale = con.execute(
            f"select change_key, attempts from ops.write_ledger where {decided_again}", params
        ).fetchall()
        con.execute(
            f"update ops.write_ledger set state = ?, updated_at = ? where {decided_again}",
            [SUPERSEDED, now, *params],
        )
        outcomes.record_states(
            con,
            [(k, SUPERSEDED, n, "DECIDED_AGAIN", _SUPERSEDED_WHY) for k, n in stale],
            now,
            [SUPERSEDED],
        )
        # A re-run that plans a change again sends it again: refused before, or dropped by an
        # earlier re-plan of this run. Applied, unchanged and conflicts stay settled.
        con.execute(
            "update ops.write_ledger set state = ?, updated_at = ? where run_id = ? "
            "and state in (?, ?) and change_key in (select change_key from _plan)",
            [PLANNED, now, plan.run_id, REJECTED, SUPERSEDED],
        )
        con.execute(
            "insert into ops.write_ledger by name select p.change_key, ? as run_id, p.sobject, "
            "p.record_id, p.fields, p.before_json, p.after_json, p.is_move, ? as state, "
            "0 as attempts, ? as planned_at, ? as updated_at from _plan p "
            "where p.change_key not in (select change_key from ops.write_ledger)",
            [plan.run_id, PLANNED, now, now],
        )
        con.execute(
            "delete from ops.write_plans where run_id = ? and status <> 'overridden'", [plan.run_id]
        )
        exists = con.execute(
            "select count(*) from ops.write_plans where run_id = ?", [plan.run_id]
        ).fetchall()
        if not exists[0][0]:
            con.execute(
                "insert into ops.write_plans select ?, "
                "coalesce((select max(planned_seq) from ops.write_plans), 0) + 1, "
                "?, ?, ?, ?, ?, ?, null",
                [
                    plan.run_id,
                    now,
                    len(plan.changes),
                    plan.moves,
                    plan.owned_accounts,
                    status,
                    "; ".join(plan.blocked_reasons) or None,
                ],
            )
        con.unregister("_plan")
        outcomes.link_plan(con, plan.run_id, _held(plan), now)
        con.execute("commit")


_SUPERSEDED_WHY = "a later plan (a re-run of this date or a later run) decided again"


def _held(plan: Plan) -> dict[str, tuple[str, str]]:
    """Change key -> (code, reason) of the changes this plan keeps back unless overridden."""
    if plan.is_blocked:
        why = "; ".join(plan.blocked_reasons)
        return {c.change_key: ("PLAN_BLOCKED", why) for c in plan.changes}
    return {h.change_key: ("BOOK_SHARE_GUARD", h.reason) for h in plan.held}


def plan_status(warehouse_path: str | Path, run_id: str) -> str | None:
    with connect(warehouse_path) as con:
        row = con.execute(
            "select status from ops.write_plans where run_id = ?", [run_id]
        ).fetchall()
    return row[0][0] if row else None


def mark_overridden(warehouse_path: str | Path, run_id: str, clock: Clock) -> None:
    """Record that a person let a blocked plan through for this run only."""
    with connect(warehouse_path) as con:
        con.execute(
            "update ops.write_plans set status = 'overridden', overridden_at = ? where run_id = ?",
            [clock(), run_id],
        )


def rows(
    warehouse_path: str | Path,
    states: Sequence[str],
    run_id: str | None = None,
    change_keys: Iterable[str] | None = None,
) -> list[LedgerRow]:
    """Ledger rows in the given states (of one run, or of all runs; only `change_keys` if
    given), by object and record id. The writer asks per batch with `change_keys`: reading
    every acked row after each read-back chunk made a 118k-record bulk write quadratic."""
    sql = (
        "select change_key, run_id, sobject, record_id, before_json, after_json, state, "
        "attempts, "
        "bulk_job_id, error_code, error_message from ops.write_ledger "
        "where list_contains(?, state)"
    )
    params: list[object] = [list(states)]
    if run_id is not None:
        sql += " and run_id = ?"
        params.append(run_id)
    if change_keys is not None:
        sql += " and change_key in (select unnest(?::varchar[]))"
        params.append(list(change_keys))
    with connect(warehouse_path) as con:
        result = con.execute(sql + " order by sobject, record_id, change_key", params).fetchall()
    return [
        LedgerRow(k, r, o, a, json.loads(b), json.loads(af), s, n, j, ec, em)
        for k, r, o, a, b, af, s, n, j, ec, em in result
    ]


def transition(
    warehouse_path: str | Path,
    changes: Iterable[Transition],
    clock: Clock,
    *,
    log_retry: bool = False,
) -> None:
    """Commit state changes in one transaction; outcomes also append their sync_log row.

    With `log_retry`, rows moving to `retry` are logged too (a run ending with records still
    failing records that they were attempted n times).
    """
    items = list(changes)
    if not items:
        return
    now = clock()
    frame = pl.DataFrame(
        {
            "change_key": [t.change_key for t in items],
            "state": [t.state for t in items],
            "attempts": [t.attempts for t in items],
            "error_code": [t.error_code for t in items],
            "error_message": [t.error_message for t in items],
            "bulk_job_id": [t.bulk_job_id for t in items],
            "mismatch": [int(t.readback_mismatch) for t in items],
        },
        schema={
            "change_key": pl.Utf8,
            "state": pl.Utf8,
            "attempts": pl.Int32,
            "error_code": pl.Utf8,
            "error_message": pl.Utf8,
            "bulk_job_id": pl.Utf8,
            "mismatch": pl.Int32,
        },
    )
    logged = list(OUTCOMES) + ([RETRY] if log_retry else [])
    with connect(warehouse_path) as con:
        con.execute("begin")
        con.register("_t", frame)
        con.execute(
            "update ops.write_ledger as l set state = t.state, attempts = t.attempts, "
            "error_code = t.error_code, error_message = t.error_message, "
            "bulk_job_id = t.bulk_job_id, updated_at = ?, "
            "readback_mismatches = coalesce(l.readback_mismatches, 0) + t.mismatch "
            "from _t as t where l.change_key = t.change_key",
            [now],
        )
        con.execute(
            "insert into ops.sync_log by name select l.change_key, l.run_id, l.sobject, "
            "l.record_id, l.fields, l.before_json, l.after_json, t.state as outcome, "
            "t.attempts, t.error_code, t.error_message, l.planned_at, ? as finished_at, "
            "l.readback_mismatches from _t as t join ops.write_ledger as l using (change_key) "
            "where list_contains(?, t.state)",
            [now, logged],
        )
        con.unregister("_t")
        outcomes.record_states(
            con,
            [(t.change_key, t.state, t.attempts, t.error_code, t.error_message) for t in items],
            now,
            logged,
        )
        con.execute("commit")


def counts_by_object(warehouse_path: str | Path, run_id: str) -> dict[str, dict[str, int]]:
    """Ledger rows of one run per object and state: the per-object write-back metadata."""
    with connect(warehouse_path) as con:
        result = con.execute(
            "select sobject, state, count(*) from ops.write_ledger where run_id = ? "
            "group by all order by all",
            [run_id],
        ).fetchall()
    out: dict[str, dict[str, int]] = {}
    for sobject, state, n in result:
        out.setdefault(sobject, {})[state] = n
    return out


def counts(warehouse_path: str | Path, run_id: str | None = None) -> dict[str, int]:
    """Ledger rows per state (optionally of one run): the figure a person checks first."""
    sql = "select state, count(*) from ops.write_ledger"
    params: list[object] = []
    if run_id is not None:
        sql += " where run_id = ?"
        params.append(run_id)
    with connect(warehouse_path) as con:
        return dict(con.execute(sql + " group by state", params).fetchall())


def log_held(warehouse_path: str | Path, run_id: str, keys: Iterable[str], clock: Clock) -> None:
    """One `sync_log` row (outcome `held`) per change a guard kept back in this pass."""
    keys = sorted(keys)
    if not keys:
        return
    with connect(warehouse_path) as con:
        con.execute(
            "insert into ops.sync_log by name select change_key, run_id, sobject, record_id, "
            "fields, before_json, after_json, 'held' as outcome, attempts, "
            "'GUARD_HOLD' as error_code, 'held back by a guard; not sent' as error_message, "
            "planned_at, ? as finished_at, readback_mismatches from ops.write_ledger "
            "where run_id = ? and state = ? and change_key in (select unnest(?::varchar[]))",
            [clock(), run_id, PLANNED, keys],
        )


def run_summary(
    warehouse_path: str | Path, run_id: str, held: Iterable[str] = ()
) -> tuple[dict[str, int], dict[str, int]]:
    """The figures a person reads after a run (every pass of this run id), and the CRM codes
    of the changes still failing: applied, fixed_by_retry (applied after a read-back found a
    write missing), still_failing, conflicts, held, unchanged, superseded."""
    with connect(warehouse_path) as con:
        con.execute("create or replace temp table _held as select unnest(?::varchar[]) as k",
                    [sorted(held)])  # fmt: skip
        row = con.execute(
            "select count(*) filter (where state = 'applied'), "
            "count(*) filter (where state = 'applied' and readback_mismatches > 0), "
            "count(*) filter (where state in ('retry', 'rejected')), "
            "count(*) filter (where state = 'conflict'), "
            "count(*) filter (where state = 'planned' and change_key in (select k from _held)), "
            "count(*) filter (where state = 'unchanged'), "
            "count(*) filter (where state = 'superseded') "
            "from ops.write_ledger where run_id = ?",
            [run_id],
        ).fetchall()[0]
        codes = dict(
            con.execute(
                "select coalesce(error_code, 'UNKNOWN'), count(*) from ops.write_ledger "
                "where run_id = ? and state in ('retry', 'rejected') group by all order by all",
                [run_id],
            ).fetchall()
        )
        con.execute("drop table _held")
    names = ("applied", "fixed_by_retry", "still_failing", "conflicts", "held", "unchanged",
             "superseded")  # fmt: skip
    return dict(zip(names, (int(n) for n in row), strict=True)), codes


def unfinished_of_earlier_runs(warehouse_path: str | Path, run_id: str) -> list[LedgerRow]:
    """`planned`/`retry` rows of other runs no later plan decided again (an out-of-cycle run
    came after them), from plans that were not blocked and not held back by a guard."""
    with connect(warehouse_path) as con:
        ensure_holds_table(con)
        keys = [
            r[0]
            for r in con.execute(
                "select l.change_key from ops.write_ledger as l "
                "join ops.write_plans as p using (run_id) "
                "where l.run_id <> ? and l.state in (?, ?) and p.status <> 'blocked' "
                "and l.change_key not in (select change_key from ops.write_holds "
                "where released_at is null)",
                [run_id, PLANNED, RETRY],
            ).fetchall()
        ]
    return rows(warehouse_path, (PLANNED, RETRY), change_keys=keys) if keys else []
