"""Run the data contracts over `raw_salesforce.*`: quarantine bad rows, gate on bad tables.

Split (and why): row rules run as SQL in DuckDB, one `insert ... select` per object, so every
failing row is written to `ops.quarantine` with its id, rule and value, at DuckDB speed.
Great Expectations then validates the table-level contract (frozen columns, row count vs the
previous load) and re-checks the clean set against the rules' GX mirror; see
`contracts.gx_suites`. Type drift and a missing table are checked from DuckDB's catalog.
Any table-level failure makes the report fail: the orchestration's blocking asset check stops
everything downstream (dbt, decisions, write-back).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from contracts.rules import MAX_ROW_DROP, RAW_SCHEMA, RowRule, frozen_columns, row_rules
from contracts.store import ensure_contract_tables
from ingest.fields import object_specs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableResult:
    """The contract outcome of one raw table."""

    object: str
    table: str
    live_rows: int
    deleted_rows: int
    quarantined_rows: int  # distinct raw rows with at least one failing row rule
    min_rows: int  # the row-count floor applied (0 without a baseline)
    failures: tuple[str, ...]  # table-level failures: blocking

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ContractReport:
    """What one contract run found; `passed` is False when any table-level rule failed."""

    run_id: str
    tables: dict[str, TableResult]
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tables.values())

    @property
    def failures(self) -> list[str]:
        return [f"{t.table}: {msg}" for t in self.tables.values() for msg in t.failures]

    @property
    def quarantined(self) -> dict[str, int]:
        return {name: t.quarantined_rows for name, t in self.tables.items()}

    def summary(self) -> str:
        """One line for logs and the CLI."""
        total = sum(self.quarantined.values())
        state = "passed" if self.passed else f"FAILED ({'; '.join(self.failures)})"
        return f"data contracts {state}; {total} rows quarantined"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ?",
        [RAW_SCHEMA, table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def _baseline(con: duckdb.DuckDBPyConnection, obj: str) -> tuple[int, int, list[str]] | None:
    """(live_rows, deleted_rows, columns) of the latest passed load of `obj`, if any."""
    row = con.execute(
        "select loads.live_rows, loads.deleted_rows, loads.columns "
        "from ops.contract_loads as loads "
        "join ops.contract_runs as runs on runs.run_id = loads.run_id "
        "where loads.object = ? and loads.passed order by runs.seq desc limit 1",
        [obj],
    ).fetchone()
    return (int(row[0]), int(row[1]), list(row[2])) if row else None


def _quarantine_sql(rules: tuple[RowRule, ...], table: str) -> str:
    parts = []
    for rule in rules:
        live = " and coalesce(t.is_deleted, false) = false" if rule.live_only else ""
        parts.append(
            f"select '{rule.object}' as object, t.id as record_id, '{rule.name}' as rule, "
            f"cast(t.{rule.column} as varchar) as value, "
            f"'{rule.reason.replace(chr(39), chr(39) * 2)}' as reason, t._dlt_id as dlt_id "
            f"from {RAW_SCHEMA}.{table} as t where ({rule.bad_when}){live}"
        )
    return " union all ".join(parts)


def _check_table(
    con: duckdb.DuckDBPyConnection,
    obj: str,
    table: str,
    present: Mapping[str, str],
    baseline: tuple[int, int, list[str]] | None,
) -> tuple[list[str], int]:
    """Catalog-level failures (missing/retyped columns) and the row-count floor for GX."""
    failures: list[str] = []
    frozen = dict(frozen_columns()[obj])
    if baseline:
        frozen.update({c: present.get(c, "?") for c in baseline[2] if c not in frozen})
    for column, dtype in frozen_columns()[obj].items():
        if column in present and present[column] != dtype:
            failures.append(f"column {column} has type {present[column]}, contract says {dtype}")
    min_rows = 0
    if baseline:
        live, deleted = con.execute(
            f"select count(*) filter (where coalesce(is_deleted, false) = false), "
            f"count(*) filter (where is_deleted) from {RAW_SCHEMA}.{table}"
        ).fetchone()
        newly_deleted = max(0, int(deleted) - baseline[1])
        min_rows = max(0, math.ceil((baseline[0] - newly_deleted) * (1 - MAX_ROW_DROP)))
    return failures, min_rows


def run_contracts(
    warehouse_path: str | Path,
    run_id: str,
    *,
    detected_at: datetime | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> ContractReport:
    """Check every raw CRM table, quarantine failing rows, and record the run.

    `detected_at` is an audit stamp only (default: now, UTC); no rule depends on it. Re-running
    the same `run_id` replaces that run's results. Pass `con` to reuse an open writer connection.
    """
    from warehouse.lease import connect_warehouse

    stamp = detected_at or datetime.now(UTC)
    own = con is None
    con = con or connect_warehouse(warehouse_path)
    try:
        return _run(con, run_id, stamp)
    finally:
        if own:
            con.close()


def _run(con: duckdb.DuckDBPyConnection, run_id: str, stamp: datetime) -> ContractReport:
    from contracts.gx_suites import GxValidator

    ensure_contract_tables(con)
    for table in ("quarantine", "contract_loads", "contract_runs"):
        con.execute(f"delete from ops.{table} where run_id = ?", [run_id])
    validator = GxValidator()
    specs = object_specs()
    present_tables = {
        name: _columns(con, spec.table) for name, spec in specs.items() if _columns(con, spec.table)
    }
    results: dict[str, TableResult] = {}
    by_rule: dict[str, int] = {}
    for name, spec in specs.items():
        present = present_tables.get(name)
        if not present:
            results[name] = TableResult(
                name, spec.table, 0, 0, 0, 0, (f"table {RAW_SCHEMA}.{spec.table} is missing",)
            )
            continue
        missing_system = [c for c in ("id", "is_deleted", "_dlt_id") if c not in present]
        if missing_system:
            results[name] = TableResult(
                name, spec.table, 0, 0, 0, 0,
                (f"columns {missing_system} are missing from {RAW_SCHEMA}.{spec.table}",),
            )  # fmt: skip
            continue
        baseline = _baseline(con, name)
        failures, min_rows = _check_table(con, name, spec.table, present, baseline)
        # Rules on a missing or retyped column (or a missing referenced table) cannot run; the
        # table fails on the catalog check anyway.
        contract = frozen_columns()[name]
        rules = tuple(
            r
            for r in row_rules()[name]
            if present.get(r.column) == contract.get(r.column)
            and _references_present(r, present_tables)
        )
        if rules:
            con.execute(
                "insert into ops.quarantine (object, record_id, rule, value, reason, run_id, "
                f"detected_at, dlt_id) select object, record_id, rule, value, reason, ?, ?, dlt_id "
                f"from ({_quarantine_sql(rules, spec.table)})",
                [run_id, stamp],
            )
        frozen = sorted(set(frozen_columns()[name]) | set(baseline[2] if baseline else ()))
        columns = [c for c in frozen if c in present]
        frame = con.execute(
            f"select {', '.join(columns)}, exists (select 1 from ops.quarantine as q "
            f"where q.run_id = ? and q.dlt_id = t._dlt_id) as _quarantined "
            f"from {RAW_SCHEMA}.{spec.table} as t where coalesce(t.is_deleted, false) = false",
            [run_id],
        ).df()
        quarantined = frame.pop("_quarantined").astype(bool)
        gx = validator.validate(
            name, frame, quarantined, frozen=frozen, min_rows=min_rows, rules=rules
        )
        failures += [f"GX table expectation failed: {f}" for f in gx.table_failures]
        failures += [f"GX clean-set expectation failed: {f}" for f in gx.clean_failures]
        counts = con.execute(
            f"select count(*) filter (where coalesce(is_deleted, false) = false), "
            f"count(*) filter (where is_deleted) from {RAW_SCHEMA}.{spec.table}"
        ).fetchone()
        n_quarantined = con.execute(
            "select count(distinct dlt_id) from ops.quarantine where run_id = ? and object = ?",
            [run_id, name],
        ).fetchone()[0]
        for rule, n in con.execute(
            "select rule, count(*) from ops.quarantine where run_id = ? and object = ? "
            "group by rule order by rule",
            [run_id, name],
        ).fetchall():
            by_rule[f"{name}.{rule}"] = int(n)
        results[name] = TableResult(
            name,
            spec.table,
            int(counts[0]),
            int(counts[1]),
            int(n_quarantined),
            min_rows,
            tuple(failures),
        )
        con.execute(
            "insert into ops.contract_loads values (?, ?, ?, ?, ?, ?)",
            [run_id, name, int(counts[0]), int(counts[1]), sorted(present), not failures],
        )
    report = ContractReport(run_id, results, by_rule)
    con.execute(
        "insert into ops.contract_runs select ?, coalesce(max(seq), 0) + 1, ?, ?, ? "
        "from ops.contract_runs",
        [run_id, report.passed, report.failures, stamp],
    )
    log.info("%s (run %s)", report.summary(), run_id)
    for failure in report.failures:
        log.error("data contract failed: %s", failure)
    return report


def _references_present(rule: RowRule, present_tables: Mapping[str, Mapping[str, str]]) -> bool:
    """A referential rule needs its target table with an `id` column."""
    for name, spec in object_specs().items():
        if f"{RAW_SCHEMA}.{spec.table} as ref" in rule.bad_when:
            return "id" in present_tables.get(name, {})
    return True
