"""Run the data contracts over `raw_salesforce.*`: quarantine bad rows, gate on bad tables.

Split (and why): row rules run as SQL in DuckDB, one `insert ... select` per object, so every
failing row is written to `ops.quarantine` with its id, rule and value, at DuckDB speed. The
table-level facts (does the table exist, its columns and their types, live/deleted row counts,
the row-count floor from the previous passed load) are also computed in SQL, and Great
Expectations validates those small facts frames (`contracts.gx_suites`). Any table-level
failure makes the report fail: the orchestration's blocking asset check stops everything
downstream (dbt, decisions, write-back).

Unchanged raw data is not checked again: when every table has the same row counts, newest
`_dlt_load_id` and columns as at the latest run (which passed, under the same rules), that run's
results are carried forward under the new run id in SQL alone, without importing GX.

Changed tables are row-checked incrementally when they can be: if the latest run checked the
object under the same rules and column types, only its rows of later loads (`_dlt_load_id >`
that run's newest) and the rows it quarantined are checked again. Why that is exact: loads are
merges on id committed in load-id order, a changed row always arrives with a new load id, and
raw never loses an id, so a row that passed every rule (references included) still passes; a
quarantined row may have become valid (its reference arrived), so it is re-checked.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from contracts import gx_suites
from contracts.overrides import mark_used, overrides_for
from contracts.rules import (
    MAX_ROW_DROP,
    NONEMPTY_OBJECTS,
    RAW_SCHEMA,
    RowRule,
    frozen_columns,
    row_rules,
    sql_text,
)
from contracts.store import ensure_contract_tables
from ingest.fields import object_specs

log = logging.getLogger(__name__)

# Columns every raw table needs besides the contract's (row identity and load, from dlt).
SYSTEM_COLUMNS = {"_dlt_load_id": "VARCHAR", "_dlt_id": "VARCHAR"}
_RECHECK = "_books_contract_recheck"  # temp table: the rows of one object an incremental run checks
RULES_VERSION = "3"  # bump when the checks change in a way the rule texts do not show


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
    accepted_drop: str | None = None  # a drop below the floor accepted for this run: by whom

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ContractReport:
    """What one contract run found; `passed` is False when any table-level rule failed."""

    run_id: str
    tables: dict[str, TableResult]
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    carried_forward: bool = False  # raw unchanged since the latest passed run: results reused

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
        reused = (
            " (raw unchanged: previous results carried forward)" if self.carried_forward else ""
        )
        return f"data contracts {state}; {total} rows quarantined{reused}"


@dataclass(frozen=True)
class _Facts:
    """What SQL knows about one present raw table."""

    columns: dict[str, str]  # column -> DuckDB type
    live_rows: int
    deleted_rows: int
    max_load_id: str | None
    fingerprint: str  # rules + column types + newest load id: equal means "nothing to re-check"


@dataclass(frozen=True)
class _Baseline:
    """The latest passed load of one object."""

    live_rows: int
    deleted_rows: int
    columns: tuple[str, ...]


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


def _catalog(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Raw table -> {column: DuckDB type}, from one catalog query."""
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = ? order by table_name, ordinal_position",
        [RAW_SCHEMA],
    ).fetchall():
        out.setdefault(table, {})[column] = dtype
    return out


def _rules_hash(obj: str) -> str:
    text = repr((RULES_VERSION, MAX_ROW_DROP, frozen_columns()[obj], row_rules()[obj]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _facts(
    con: duckdb.DuckDBPyConnection, catalog: Mapping[str, Mapping[str, str]]
) -> dict[str, _Facts]:
    """Counts and newest load id of every present raw table, in one scan query."""
    present = {n: s.table for n, s in object_specs().items() if catalog.get(s.table)}
    if not present:
        return {}
    parts = []
    for name, table in present.items():
        cols = catalog[table]
        deleted = "coalesce(is_deleted, false)" if "is_deleted" in cols else "false"
        load = "max(_dlt_load_id)" if "_dlt_load_id" in cols else "null"
        parts.append(
            f"select '{name}', count(*) filter (where not {deleted}), "
            f"count(*) filter (where {deleted}), cast({load} as varchar) "
            f'from {RAW_SCHEMA}."{table}"'
        )
    out = {}
    for name, live, deleted, load_id in con.execute(" union all ".join(parts)).fetchall():
        cols = dict(catalog[present[name]])
        out[name] = _Facts(
            cols, int(live), int(deleted), load_id, _fingerprint(name, cols, load_id)
        )
    return out


def _latest_run(con: duckdb.DuckDBPyConnection) -> tuple[str, bool] | None:
    row = con.execute(
        "select run_id, passed from ops.contract_runs order by seq desc limit 1"
    ).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


def _unchanged_since(con: duckdb.DuckDBPyConnection, facts: Mapping[str, _Facts]) -> str | None:
    """The latest run's id if it passed and every raw table is exactly as it saw it."""
    latest = _latest_run(con)
    if latest is None or not latest[1] or len(facts) != len(object_specs()):
        return None
    seen = {
        obj: (live, deleted, fingerprint)
        for obj, live, deleted, fingerprint in con.execute(
            "select object, live_rows, deleted_rows, fingerprint from ops.contract_loads "
            "where run_id = ?",
            [latest[0]],
        ).fetchall()
    }
    now = {obj: (f.live_rows, f.deleted_rows, f.fingerprint) for obj, f in facts.items()}
    return latest[0] if seen == now else None


def _baselines(con: duckdb.DuckDBPyConnection) -> dict[str, _Baseline]:
    """Per object, its latest passed load (the next run's row-count and frozen-column base)."""
    rows = con.execute(
        "select object, live_rows, deleted_rows, columns from ("
        "  select loads.*, row_number() over (partition by loads.object order by runs.seq desc)"
        "    as rn from ops.contract_loads as loads"
        "  join ops.contract_runs as runs on runs.run_id = loads.run_id where loads.passed"
        ") where rn = 1"
    ).fetchall()
    return {obj: _Baseline(int(live), int(dead), tuple(cols)) for obj, live, dead, cols in rows}


def _min_rows(facts: _Facts, baseline: _Baseline | None) -> tuple[int, int]:
    """(row-count floor, rows deleted since the baseline)."""
    if baseline is None:
        return 0, 0
    newly_deleted = max(0, facts.deleted_rows - baseline.deleted_rows)
    floor = max(0, math.ceil((baseline.live_rows - newly_deleted) * (1 - MAX_ROW_DROP)))
    return floor, newly_deleted


@dataclass(frozen=True)
class _Since:
    """The latest run's complete check of one object: re-check the loads after its newest."""

    run_id: str
    load_id: str


def _quarantine_sql(rules: tuple[RowRule, ...], relation: str) -> str:
    """Every failing (row, rule) of the raw rows in `relation`."""
    parts = []
    for rule in rules:
        live = " and coalesce(t.is_deleted, false) = false" if rule.live_only else ""
        parts.append(
            f"select '{rule.object}' as object, t.id as record_id, '{rule.name}' as rule, "
            f"cast(t.{rule.column} as varchar) as value, "
            f"{sql_text(rule.reason)} as reason, t._dlt_id as dlt_id, "
            f"{sql_text(rule.column)} as column_name "
            f"from {relation} as t where ({rule.bad_when}){live}"
        )
    return " union all ".join(parts)


def _rows_to_check(
    con: duckdb.DuckDBPyConnection, obj: str, table: str, since: _Since | None
) -> str:
    """The relation of `table`'s rows to check: all of them, or (with `since`) its rows of later
    loads and the rows `since` quarantined, copied once so each rule scans only those."""
    raw = f"{RAW_SCHEMA}.{table}"
    if since is None:
        return raw
    con.execute(  # two selects, not one `or`: each filter then narrows the scan on its own
        f"create or replace temp table {_RECHECK} as "
        f"select * from {raw} where _dlt_load_id > $load_id union all "
        f"select * from {raw} where _dlt_load_id <= $load_id and _dlt_id in "
        "(select dlt_id from ops.quarantine where run_id = $run_id and object = $object "
        "and stage = 'contract')",
        {"load_id": since.load_id, "run_id": since.run_id, "object": obj},
    )
    return _RECHECK


def _incremental_since(
    con: duckdb.DuckDBPyConnection,
    latest: tuple[str, bool] | None,
    name: str,
    table: str,
    facts: _Facts,
) -> _Since | None:
    """Where the `latest` run left `name`, if it checked it under today's rules and columns.

    That run must have passed: then every table had its columns, so every rule ran. And the
    loads it saw may have lost rows (replaced by newer versions) but never gained one: a row
    written later under an old load id (never done by ingestion) makes the check a full one."""
    if latest is None or not latest[1]:
        return None
    row = con.execute(
        "select max_load_id, fingerprint, passed, live_rows + deleted_rows "
        "from ops.contract_loads where run_id = ? and object = ?",
        [latest[0], name],
    ).fetchone()
    if row is None or row[0] is None or not row[2]:
        return None
    if _fingerprint(name, facts.columns, row[0]) != row[1]:
        return None
    (seen_loads_rows,) = con.execute(
        f"select count(*) from {RAW_SCHEMA}.{table} where _dlt_load_id <= ?", [row[0]]
    ).fetchone()
    return _Since(latest[0], str(row[0])) if seen_loads_rows <= row[3] else None


def _fingerprint(name: str, columns: Mapping[str, str], load_id: str | None) -> str:
    text = repr((_rules_hash(name), sorted(columns.items()), load_id))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _runnable_rules(
    obj: str, columns: Mapping[str, str], catalog: Mapping[str, Mapping[str, str]]
) -> tuple[RowRule, ...]:
    """Rules whose columns (and referenced table) exist with their contract types.

    The others cannot run; their table fails the column checks anyway."""
    if not {"id", "is_deleted", "_dlt_id"} <= set(columns):
        return ()
    contract = frozen_columns()[obj]
    return tuple(
        r
        for r in row_rules()[obj]
        if columns.get(r.column) == contract.get(r.column) and _references_present(r, catalog)
    )


def _references_present(rule: RowRule, catalog: Mapping[str, Mapping[str, str]]) -> bool:
    """A referential rule needs its target table with an `id` column."""
    for spec in object_specs().values():
        if f"{RAW_SCHEMA}.{spec.table} as ref" in rule.bad_when:
            return "id" in catalog.get(spec.table, {})
    return True


def _run(con: duckdb.DuckDBPyConnection, run_id: str, stamp: datetime) -> ContractReport:
    ensure_contract_tables(con)
    # Only this stage's rows: ingestion may have quarantined rows under the same run id.
    con.execute("delete from ops.quarantine where run_id = ? and stage = 'contract'", [run_id])
    for table in ("contract_loads", "contract_runs"):
        con.execute(f"delete from ops.{table} where run_id = ?", [run_id])
    catalog = _catalog(con)
    facts = _facts(con, catalog)
    previous = _unchanged_since(con, facts)
    if previous is not None:
        report = _carry_forward(con, run_id, previous, facts, stamp)
    else:
        report = _check(con, run_id, catalog, facts, stamp)
    con.execute(
        "insert into ops.contract_runs select ?, coalesce(max(seq), 0) + 1, ?, ?, ? "
        "from ops.contract_runs",
        [run_id, report.passed, report.failures, stamp],
    )
    log.info("%s (run %s)", report.summary(), run_id)
    for failure in report.failures:
        log.error("data contract failed: %s", failure)
    return report


def _check(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    catalog: Mapping[str, Mapping[str, str]],
    facts: Mapping[str, _Facts],
    stamp: datetime,
) -> ContractReport:
    """The full check: row rules in SQL, table facts validated by GX."""
    # GX imports for seconds, mostly holding the GIL; DuckDB releases it while the row rules
    # run, so both proceed at once on two cores.
    loader = threading.Thread(target=gx_suites.validator, name="gx-import", daemon=True)
    loader.start()
    specs = object_specs()
    latest = _latest_run(con)
    since = {
        name: _incremental_since(con, latest, name, specs[name].table, f)
        for name, f in facts.items()
    }
    for name, f in facts.items():
        rules = _runnable_rules(name, f.columns, catalog)
        if rules:
            rows = _rows_to_check(con, name, specs[name].table, since[name])
            con.execute(
                "insert into ops.quarantine (object, record_id, rule, value, reason, run_id, "
                "detected_at, dlt_id, stage, column_name) select object, record_id, rule, value, "
                f"reason, ?, ?, dlt_id, 'contract', column_name "
                f"from ({_quarantine_sql(rules, rows)})",
                [run_id, stamp],
            )
    con.execute(f"drop table if exists {_RECHECK}")
    incremental = sorted(name for name, s in since.items() if s is not None)
    if incremental:
        log.info(
            "row rules checked on the loads after the latest run's and its quarantined rows only: %s",
            ", ".join(incremental),
        )
    baselines = _baselines(con)
    overrides = overrides_for(con, run_id)
    accepted: dict[str, str] = {}
    tables, columns = [], []
    floors: dict[str, int] = {}
    for name, spec in specs.items():
        f = facts.get(name)
        row = {"object": name, "schema": RAW_SCHEMA, "table": spec.table, "present": f is not None}
        if f is None:
            tables.append(row | {"live_rows": 0, "min_rows": 0, "baseline_rows": 0,
                                 "newly_deleted": 0, "max_drop": MAX_ROW_DROP,
                                 "is_empty_source": False})  # fmt: skip
            continue
        base = baselines.get(name)
        floors[name], newly_deleted = _min_rows(f, base)
        override = overrides.get(name)
        if override is not None and f.live_rows < floors[name]:
            # The person accepted this drop for this run: waive the floor, keep the audit.
            mark_used(con, run_id, name, f.live_rows, floors[name])
            accepted[name] = override.accepted_by
            log.warning(
                "row-count drop of %s accepted for run %s by %s (%s): %d live rows, floor %d",
                name, run_id, override.accepted_by, override.reason, f.live_rows, floors[name],
            )  # fmt: skip
            floors[name] = 0
        empty = name in NONEMPTY_OBJECTS and f.live_rows == 0
        if empty and override is not None:
            mark_used(con, run_id, name, 0, 1)
            accepted[name] = override.accepted_by
            log.warning(
                "no live %s rows accepted for run %s by %s (%s)",
                name, run_id, override.accepted_by, override.reason,
            )  # fmt: skip
            empty = False
        tables.append(row | {
            "live_rows": f.live_rows, "min_rows": floors[name],
            "baseline_rows": base.live_rows if base else 0, "newly_deleted": newly_deleted,
            "max_drop": MAX_ROW_DROP, "is_empty_source": empty,
        })  # fmt: skip
        required: dict[str, str | None] = {c: None for c in (base.columns if base else ())}
        required |= frozen_columns()[name] | SYSTEM_COLUMNS
        columns += [
            {"object": name, "schema": RAW_SCHEMA, "table": spec.table, "column": column,
             "present_type": f.columns.get(column), "contract_type": dtype}
            for column, dtype in sorted(required.items())
        ]  # fmt: skip
    loader.join()
    frames = _frames(tables, columns)
    failures: dict[str, list[str]] = {name: [] for name in specs}
    for failure in gx_suites.validator().validate(frames):
        failures[failure.object].append(failure.message)
    quarantined, by_rule = _quarantine_counts(con, run_id)
    results = {}
    for name, spec in specs.items():
        f = facts.get(name)
        results[name] = TableResult(
            name,
            spec.table,
            f.live_rows if f else 0,
            f.deleted_rows if f else 0,
            quarantined.get(name, 0),
            floors.get(name, 0),
            tuple(failures[name]),
            accepted.get(name),
        )
        if f is not None:
            _record_load(con, run_id, name, f, not failures[name])
    return ContractReport(run_id, results, by_rule)


def _frames(tables: list[dict], columns: list[dict]) -> dict:
    import pandas as pd

    return {
        gx_suites.TABLES: pd.DataFrame(tables),
        gx_suites.COLUMNS: pd.DataFrame(
            columns, columns=["object", "schema", "table", "column", "present_type",
                              "contract_type"]
        ).astype(object),
    }  # fmt: skip


def _quarantine_counts(
    con: duckdb.DuckDBPyConnection, run_id: str
) -> tuple[dict[str, int], dict[str, int]]:
    """(distinct quarantined rows per object, failing rows per `object.rule`) of one run."""
    per_object = dict(
        con.execute(
            "select object, count(distinct dlt_id) from ops.quarantine where run_id = ? "
            "and stage = 'contract' group by object",
            [run_id],
        ).fetchall()
    )
    by_rule = {
        f"{obj}.{rule}": int(n)
        for obj, rule, n in con.execute(
            "select object, rule, count(*) from ops.quarantine where run_id = ? "
            "and stage = 'contract' group by object, rule order by object, rule",
            [run_id],
        ).fetchall()
    }
    return {k: int(v) for k, v in per_object.items()}, by_rule


def _record_load(
    con: duckdb.DuckDBPyConnection, run_id: str, name: str, f: _Facts, passed: bool
) -> None:
    con.execute(
        "insert into ops.contract_loads (run_id, object, live_rows, deleted_rows, columns, "
        "passed, max_load_id, fingerprint) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, name, f.live_rows, f.deleted_rows, sorted(f.columns), passed,
         f.max_load_id, f.fingerprint],
    )  # fmt: skip


def _carry_forward(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    previous: str,
    facts: Mapping[str, _Facts],
    stamp: datetime,
) -> ContractReport:
    """Raw is unchanged since `previous` (which passed): its quarantine holds for this run."""
    con.execute(
        "insert into ops.quarantine (object, record_id, rule, value, reason, run_id, "
        "detected_at, dlt_id, stage, column_name) select object, record_id, rule, value, reason, "
        "?, ?, dlt_id, stage, column_name from ops.quarantine "
        "where run_id = ? and stage = 'contract'",
        [run_id, stamp, previous],
    )
    quarantined, by_rule = _quarantine_counts(con, run_id)
    results = {}
    for name, spec in object_specs().items():
        f = facts[name]
        floor, _ = _min_rows(f, _Baseline(f.live_rows, f.deleted_rows, ()))
        results[name] = TableResult(
            name, spec.table, f.live_rows, f.deleted_rows, quarantined.get(name, 0), floor, ()
        )
        _record_load(con, run_id, name, f, True)
    log.info("raw unchanged since contract run %s: its results carried forward", previous)
    return ContractReport(run_id, results, by_rule, carried_forward=True)
