"""Reconciliation: find and load every CRM row the incremental extract missed.

Why: the extract asks for rows stamped at or after `newest loaded - look-back`. A row committed
later than its stamp (a long transaction, a restore, a bulk load by another tool, a clock
difference) by more than the look-back is never asked for again. No window is wide enough, so a
pass compares the CRM's ids and cursors (an id-only query, Bulk 2.0 above `bulk_threshold`
rows) with the warehouse's and loads every row that is missing there or older than in the CRM,
through the same dlt merge on Id as the extract (no duplicates). Each pass is recorded in
`ops.reconciliation` (one row per object: found and fixed).

`count_gaps` is the cheap check every run makes: the CRM's row count (`COUNT()`, deleted and
archived rows included) against the warehouse's distinct ids.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from crm.salesforce import SalesforceConnection
from ingest.arrow import records_to_arrow
from ingest.fields import ObjectSpec, object_specs, snake
from ingest.salesforce import DATASET, IngestConfig, make_pipeline, salesforce_source

log = logging.getLogger(__name__)

IDS_PER_QUERY = 200  # ids per `WHERE Id IN (...)` fetch: well inside SOQL's length limit
OPS_DDL = """
create schema if not exists ops;
create table if not exists ops.reconciliation (
    run_id varchar not null,
    object varchar not null,
    crm_rows bigint not null,             -- ids in the CRM (deleted and archived included)
    warehouse_rows_before bigint not null,
    missing bigint not null,              -- in the CRM, not in the warehouse
    older bigint not null,                -- in both, older cursor in the warehouse
    fixed bigint not null,                -- rows loaded by this pass
    warehouse_rows_after bigint not null,
    reconciled_at timestamptz not null    -- audit stamp only; no rule reads it
);
"""


@dataclass(frozen=True)
class ReconcileStats:
    """One object's reconciliation: what was found missing or stale, and what was loaded."""

    object_name: str
    crm_rows: int
    warehouse_rows_before: int
    missing: int
    older: int
    fixed: int
    warehouse_rows_after: int

    @property
    def found(self) -> int:
        return self.missing + self.older


def _crm_cursors(conn: SalesforceConnection, spec: ObjectSpec, cfg: IngestConfig) -> pl.DataFrame:
    """(id, cursor) of every CRM row, deleted and archived ones included."""
    soql = f"SELECT Id, {spec.cursor} FROM {spec.name}"
    pages = conn.query_all_pages(soql, include_deleted=True)
    first = next(pages, [])
    if (conn.last_total_size or 0) <= cfg.bulk_threshold:
        rows = first + [r for page in pages for r in page]
        frame = pl.DataFrame(
            {"id": [r["Id"] for r in rows], "stamp": [r[spec.cursor] for r in rows]},
            schema={"id": pl.String, "stamp": pl.String},
        )
    else:
        pages.close()
        chunks = [
            pl.read_csv(io.BytesIO(c), schema={"Id": pl.String, spec.cursor: pl.String})
            for c in conn.bulk_query_csv(soql, include_deleted=True)
            if c.strip()
        ]
        frame = (
            pl.concat(chunks).rename({"Id": "id", spec.cursor: "stamp"})
            if chunks
            else pl.DataFrame(schema={"id": pl.String, "stamp": pl.String})
        )
    cursor = (
        pl.col("stamp")
        .str.replace(r"Z$", "+0000")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC")
        .dt.cast_time_unit("us")
    )
    return frame.select("id", cursor.alias("crm_cursor"))


def _warehouse_cursors(con: duckdb.DuckDBPyConnection, spec: ObjectSpec) -> pl.DataFrame:
    cursor = snake(spec.cursor)
    table = con.sql(
        f'select id, max("{cursor}") as wh_cursor from {DATASET}."{spec.table}" group by id'
    ).to_arrow_table()
    frame = pl.DataFrame(pl.from_arrow(table))
    return frame.with_columns(
        pl.col("wh_cursor").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    )


def _stale_ids(crm: pl.DataFrame, warehouse: pl.DataFrame) -> tuple[list[str], list[str]]:
    """(ids missing in the warehouse, ids whose warehouse cursor is older than the CRM's)."""
    joined = crm.join(warehouse, on="id", how="left")
    missing = joined.filter(pl.col("wh_cursor").is_null())["id"].to_list()
    older = joined.filter(pl.col("wh_cursor") < pl.col("crm_cursor"))["id"].to_list()
    return sorted(missing), sorted(older)


def _fetch(conn: SalesforceConnection, spec: ObjectSpec, ids: Sequence[str]) -> Iterator[pa.Table]:
    """Typed Arrow batches of the full rows with these ids."""
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        quoted = ", ".join(f"'{i}'" for i in chunk)
        soql = f"{spec.soql()} WHERE Id IN ({quoted})"
        for page in conn.query_all_pages(soql, include_deleted=True):
            yield records_to_arrow(spec, page)


def _loaded_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [DATASET]
        ).fetchall()
    }


def reconcile(
    conn: SalesforceConnection,
    warehouse_path: str | Path,
    *,
    run_id: str,
    objects: Sequence[str] | None = None,
    config: IngestConfig | None = None,
) -> dict[str, ReconcileStats]:
    """Load every row missing or stale in the warehouse, for objects loaded before.

    Objects whose raw table does not exist yet are left to the extract's first load.
    """
    cfg = config or IngestConfig()
    path = Path(warehouse_path).resolve()
    specs = object_specs()
    names = list(objects) if objects is not None else list(specs)
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        loaded = _loaded_tables(con)
        before = {n: _warehouse_cursors(con, specs[n]) for n in names if specs[n].table in loaded}
    found: dict[str, tuple[int, list[str], list[str]]] = {}
    for name, warehouse in before.items():
        crm = _crm_cursors(conn, specs[name], cfg)
        missing, older = _stale_ids(crm, warehouse)
        found[name] = (crm.height, missing, older)
        if missing or older:
            log.warning(
                "%s: reconciliation found %d rows missing and %d older in the warehouse",
                name,
                len(missing),
                len(older),
            )
    batches = {
        name: _fetch(conn, specs[name], missing + older)
        for name, (_, missing, older) in found.items()
        if missing or older
    }
    fixed: dict[str, int] = {}
    if batches:
        counted = {name: _counting(rows, fixed, name) for name, rows in batches.items()}
        info = make_pipeline(path, cfg.pipelines_dir).run(salesforce_source(counted))
        info.raise_on_failed_jobs()
    stats = {}
    with duckdb.connect(str(path)) as con:
        con.execute(OPS_DDL)
        for name, (crm_rows, missing, older) in found.items():
            after = con.execute(
                f'select count(distinct id) from {DATASET}."{specs[name].table}"'
            ).fetchall()[0][0]
            stats[name] = ReconcileStats(
                name, crm_rows, before[name].height, len(missing), len(older),
                fixed.get(name, 0), int(after),
            )  # fmt: skip
        _record(con, run_id, list(stats.values()))
    return stats


def _counting(rows: Iterator[pa.Table], into: dict[str, int], name: str) -> Iterator[pa.Table]:
    into[name] = 0
    for batch in rows:
        into[name] += batch.num_rows
        yield batch


def _record(con: duckdb.DuckDBPyConnection, run_id: str, stats: list[ReconcileStats]) -> None:
    now = datetime.now(UTC)
    con.executemany(
        "insert into ops.reconciliation values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [run_id, s.object_name, s.crm_rows, s.warehouse_rows_before, s.missing, s.older,
             s.fixed, s.warehouse_rows_after, now]
            for s in stats
        ],
    )  # fmt: skip


def count_gaps(
    conn: SalesforceConnection, warehouse_path: str | Path, objects: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """{object: (CRM rows, warehouse rows)} for every loaded object whose counts differ."""
    path = Path(warehouse_path).resolve()
    specs = object_specs()
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        loaded = _loaded_tables(con)
        warehouse = {
            name: int(
                con.execute(
                    f'select count(distinct id) from {DATASET}."{specs[name].table}"'
                ).fetchall()[0][0]
            )
            for name in objects
            if specs[name].table in loaded
        }
    gaps = {}
    for name, wh_rows in warehouse.items():
        pages = conn.query_all_pages(f"SELECT COUNT() FROM {name}", include_deleted=True)
        try:
            next(pages, [])
        finally:
            pages.close()
        crm_rows = conn.last_total_size or 0
        if crm_rows != wh_rows:
            gaps[name] = (crm_rows, wh_rows)
    return gaps


def describe_gaps(gaps: dict[str, tuple[int, int]]) -> str:
    """One line for the run's warning: which objects differ, and what will fix it."""
    parts = [f"{name}: CRM {crm:,}, warehouse {wh:,}" for name, (crm, wh) in sorted(gaps.items())]
    return (
        "CRM and warehouse row counts differ after this run (" + "; ".join(parts) + "); the "
        "next reconciliation (daily, or `books run --reconcile`) loads the missing rows"
    )
