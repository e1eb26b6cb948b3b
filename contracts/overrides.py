"""Per-run acceptance of an intended row-count drop or empty source (an auditable override).

A table-level row-count failure blocks the whole cycle, and so does an object a cycle needs
with no live rows at all (an empty CRM). When a person knows the drop is real (e.g. a CRM
clean-up that hard-deleted accounts, or a new org), they accept it for one object in one run:
`books run --accept-row-drop Account --reason ...` or the Dagster run tags below. The request is
recorded in `ops.row_drop_overrides` (who, why, which run, how it was asked for) before the
contracts run; the contract then waives only that object's row-count floor (or its empty-source
rule) in only that run, and writes the rows it accepted into the same record. Other rules still
block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from ingest.fields import object_specs

# Dagster run tags carrying the override (set by `books run`, or by hand on a launched run).
TAG_ACCEPT_ROW_DROP = "books/accept_row_drop"  # comma-separated Salesforce object names
TAG_ACCEPTED_BY = "books/accept_row_drop_by"
TAG_ACCEPT_REASON = "books/accept_row_drop_reason"

DDL = """
create table if not exists ops.row_drop_overrides (
    run_id varchar not null,        -- the books run the override applies to (and only it)
    object varchar not null,        -- Salesforce API name, e.g. 'Account'
    accepted_by varchar not null,   -- who asked
    reason varchar not null,        -- why
    requested_via varchar not null, -- 'books run' or 'dagster run <id>'
    requested_at timestamptz not null,
    observed_rows bigint,           -- set when the contract used it: live rows accepted
    floor_rows bigint,              -- ... and the floor that was waived
    primary key (run_id, object)
)
"""


@dataclass(frozen=True)
class RowDropOverride:
    """One person's acceptance of a row-count drop for one object in one run."""

    run_id: str
    object: str
    accepted_by: str
    reason: str
    requested_via: str


def parse_objects(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Object names from a tag value or CLI list; an unknown name fails naming the valid ones."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    names = tuple(sorted({item.strip() for item in items if item.strip()}))
    known = set(object_specs())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"accept row drop: unknown object(s) {', '.join(unknown)}; "
            f"expected Salesforce object names among {', '.join(sorted(known))}"
        )
    return names


def record_overrides(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    objects: Iterable[str],
    *,
    accepted_by: str,
    reason: str,
    requested_via: str,
    requested_at: datetime,
) -> list[RowDropOverride]:
    """Record the override for each object of `run_id` (idempotent: the first record stays)."""
    names = parse_objects(objects)
    if names and not (accepted_by.strip() and reason.strip()):
        raise ValueError(
            "accept row drop needs who and why: pass --by and --reason "
            f"(or the run tags {TAG_ACCEPTED_BY} and {TAG_ACCEPT_REASON})"
        )
    ensure_override_table(con)
    for name in names:
        con.execute(
            "insert into ops.row_drop_overrides (run_id, object, accepted_by, reason, "
            "requested_via, requested_at) values (?, ?, ?, ?, ?, ?) on conflict do nothing",
            [run_id, name, accepted_by.strip(), reason.strip(), requested_via, requested_at],
        )
    return [RowDropOverride(run_id, n, accepted_by, reason, requested_via) for n in names]


def ensure_override_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ops")
    con.execute(DDL)


def overrides_for(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, RowDropOverride]:
    """The overrides recorded for exactly this run, by object."""
    ensure_override_table(con)
    rows = con.execute(
        "select run_id, object, accepted_by, reason, requested_via "
        "from ops.row_drop_overrides where run_id = ?",
        [run_id],
    ).fetchall()
    return {row[1]: RowDropOverride(*row) for row in rows}


def mark_used(
    con: duckdb.DuckDBPyConnection, run_id: str, obj: str, observed: int, floor: int
) -> None:
    """Write down what the override let through (the audit trail of the accepted drop)."""
    con.execute(
        "update ops.row_drop_overrides set observed_rows = ?, floor_rows = ? "
        "where run_id = ? and object = ?",
        [observed, floor, run_id, obj],
    )
