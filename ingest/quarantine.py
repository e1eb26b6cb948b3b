"""Rows ingestion held back, written to `ops.quarantine` with where they came from and why.

Two stages write here besides the data contracts (contracts/store.py describes the table):
- 'extract': a CRM record whose value ingestion cannot load (longer than its Salesforce field
  allows, or not parseable as its type). The record is left out of raw; the warehouse keeps
  its previous version, if any, until the CRM holds a loadable one (its stamp then moves).
- 'landing': a landing-file row with a bad value or a missing key; the file's good rows load.
Values are stored cut short (a 10 MB value must not be copied into the audit table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from contracts.store import ensure_contract_tables

VALUE_PREVIEW = 200  # characters of an offending value kept in ops.quarantine


@dataclass(frozen=True)
class Rejected:
    """One held-back row: which object or feed, which record or file row, which column, why."""

    stage: str  # 'extract' | 'landing'
    object: str  # Salesforce API name, or the landing feed ('intent', 'engagement')
    column: str
    problem: str  # 'too_long' | 'unparseable' | 'empty_key'
    value: str | None
    reason: str
    record_id: str | None = None  # extract: the CRM Id
    file_name: str | None = None  # landing: 'intent/2025-01-06.csv'
    row_number: int | None = None  # landing: 1-based data row

    @property
    def rule(self) -> str:
        """Stable rule key, shaped as the contracts' ('<column>.<problem>')."""
        return f"{self.column}.{self.problem}"

    def describe(self) -> str:
        """One line naming where the row is and why it was held back."""
        where = (
            f"{self.file_name} row {self.row_number}"
            if self.file_name
            else f"{self.object} {self.record_id}"
        )
        return f"{where} column {self.column!r}: {self.reason}"


def preview(value: object) -> str | None:
    """The value as text, cut to VALUE_PREVIEW characters (with its full length when cut)."""
    if value is None:
        return None
    text = str(value)
    if len(text) <= VALUE_PREVIEW:
        return text
    return f"{text[:VALUE_PREVIEW]}... ({len(text)} characters)"


def record_rejected(
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[Rejected],
    run_id: str,
    detected_at: datetime,
) -> None:
    """Append `rows` to ops.quarantine under `run_id` (in the caller's transaction, if any)."""
    if not rows:
        return
    ensure_contract_tables(con)
    con.executemany(
        "insert into ops.quarantine (object, record_id, rule, value, reason, run_id, "
        "detected_at, stage, column_name, file_name, row_number) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [r.object, r.record_id, r.rule, preview(r.value), r.reason, run_id, detected_at,
             r.stage, r.column, r.file_name, r.row_number]
            for r in rows
        ],
    )  # fmt: skip


def save_rejected(warehouse_path: Path, rows: Sequence[Rejected], run_id: str | None) -> None:
    """`record_rejected` on a connection of its own, stamped now (a run outside a cycle,
    `run_id` None, is named `<stage>-<now>`)."""
    if not rows:
        return
    now = datetime.now(UTC)
    con = duckdb.connect(str(warehouse_path))
    try:
        record_rejected(con, rows, run_id or f"{rows[0].stage}-{now:%Y%m%dT%H%M%S}", now)
    finally:
        con.close()
