"""The run's parameters as data: `ops.run_context` (one row) and `ops.run_cycle_ids`; and the
place that makes sure every ops table dbt reads exists before dbt runs.

Why tables and not dbt vars: dbt throws its partial parse away whenever `--vars` change, and
the as-of date and run id change every cycle (a full reparse costs seconds per cycle). Python
writes these two tables before each dbt build; dbt reads them at execution time (macros
`as_of_date()`, `run_id()`, `policy_version()`, `cycle_mode()` in macros/policy.sql, and the
sources `ops.run_context` / `ops.run_cycle_ids`), so only the policy travels as a var.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import duckdb

from reverse_etl import outcomes

log = logging.getLogger(__name__)

SCHEMA = "ops"
CYCLE_MODES = ("full", "signals", "returns")

_DDL = (
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {SCHEMA}.run_context (
        run_id varchar not null,
        as_of_date date not null,
        policy_version varchar not null,
        cycle_mode varchar not null,
        written_at timestamp not null,
        dry_run boolean not null default false
    )""",
    # tables written before dry_run existed
    f"alter table {SCHEMA}.run_context add column if not exists dry_run boolean default false",
    f"create table if not exists {SCHEMA}.run_cycle_ids (id varchar not null)",
)


@dataclass(frozen=True)
class RunContext:
    """One row of ops.run_context (without its audit timestamp) and the run's ids."""

    run_id: str
    as_of_date: date
    policy_version: str
    cycle_mode: str = "full"
    cycle_ids: tuple[str, ...] = ()
    dry_run: bool = False  # a dry run decides and plans but records no history


def ensure_run_context_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ops and the ops tables dbt reads if missing (empty), so dbt can always
    read them: both run context tables and the write-back's decision outcome log (its one DDL
    is in reverse_etl/outcomes.py; dbt's staging view over it needs the table to exist)."""
    for statement in _DDL:
        con.execute(statement)
    outcomes.ensure(con)


def write_run_context(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of_date: date,
    policy_version: str,
    cycle_mode: str = "full",
    cycle_ids: Iterable[str] = (),
    dry_run: bool = False,
) -> RunContext:
    """Replace ops.run_context and ops.run_cycle_ids whole with this run's values.

    `cycle_ids` are the Signal__c ids of a 'signals' run or the Account ids of a 'returns'
    run; a 'full' run has none. `written_at` is audit only (when the row was written). A
    `dry_run` makes dbt leave the append-only decision history untouched, so the real run that
    follows decides exactly what the dry run showed.
    """
    context = _validated(run_id, as_of_date, policy_version, cycle_mode, cycle_ids, dry_run)
    ensure_run_context_tables(con)
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {SCHEMA}.run_context")
        con.execute(
            f"insert into {SCHEMA}.run_context (run_id, as_of_date, policy_version, cycle_mode, "
            "written_at, dry_run) values (?, ?, ?, ?, current_timestamp::timestamp, ?)",
            [
                context.run_id,
                context.as_of_date,
                context.policy_version,
                context.cycle_mode,
                context.dry_run,
            ],
        )
        con.execute(f"delete from {SCHEMA}.run_cycle_ids")
        if context.cycle_ids:
            con.executemany(
                f"insert into {SCHEMA}.run_cycle_ids values (?)", [[i] for i in context.cycle_ids]
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    log.info(
        "run context: run %s as of %s (%s, %d ids)",
        context.run_id,
        context.as_of_date,
        context.cycle_mode,
        len(context.cycle_ids),
    )
    return context


def read_run_context(con: duckdb.DuckDBPyConnection) -> RunContext | None:
    """The stored run context, or None when the tables are missing or empty."""
    try:
        rows = con.execute(
            f"select run_id, as_of_date, policy_version, cycle_mode, dry_run "
            f"from {SCHEMA}.run_context"
        ).fetchall()
        ids = con.execute(f"select id from {SCHEMA}.run_cycle_ids order by id").fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return None  # missing, or written before dry_run existed: rewrite it
    if len(rows) != 1:
        return None
    run_id, as_of, version, mode, dry_run = rows[0]
    return RunContext(run_id, as_of, version, mode, tuple(i for (i,) in ids), bool(dry_run))


def _validated(
    run_id: str,
    as_of_date: date,
    policy_version: str,
    cycle_mode: str,
    cycle_ids: Iterable[str],
    dry_run: bool,
) -> RunContext:
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    if not policy_version:
        raise ValueError("policy_version must be a non-empty string")
    if not isinstance(as_of_date, date):
        raise ValueError(f"as_of_date must be a date, got {as_of_date!r}")
    if cycle_mode not in CYCLE_MODES:
        raise ValueError(f"cycle_mode must be one of {', '.join(CYCLE_MODES)}, got {cycle_mode!r}")
    ids = tuple(sorted({str(i) for i in cycle_ids}))
    if any(not i for i in ids):
        raise ValueError("cycle_ids must not contain empty ids")
    if ids and cycle_mode == "full":
        raise ValueError(f"a 'full' run carries no cycle ids, got {len(ids)}")
    return RunContext(run_id, as_of_date, policy_version, cycle_mode, ids, bool(dry_run))
