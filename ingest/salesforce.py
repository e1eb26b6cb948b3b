"""dlt source over a CRM connection: one merge resource per object into DuckDB `raw_salesforce`.

Incremental on SystemModstamp (CreatedDate for immutable AccountHistory) with a look-back
window: each run asks for rows with `cursor >= max loaded cursor - look-back`, so a row whose
transaction committed late (stamped earlier than rows we already saw) is still picked up; rows
whose (Id, cursor) is already in the raw table are dropped before loading, so a run without
CRM changes loads nothing and leaves every raw row (including `_dlt_load_id`) untouched.

Why the cursor comes from the raw table and not from dlt's `incremental` state: the look-back
de-duplication needs the (Id, cursor) pairs already loaded, and those live in the table; the
table is also the only thing that cannot disagree with what was really loaded.

All objects are read with `queryAll`, so soft-deleted rows (IsDeleted = true) and archived
Tasks/Events (older than a year, hidden from `query`) arrive too. A first load, or any pull
above `bulk_threshold` rows, goes through Bulk API 2.0 (CSV pages parsed to Arrow); small
incremental pulls use the REST query.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import dlt
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from crm.salesforce import SalesforceConnection
from ingest.arrow import csv_to_arrow, records_to_arrow
from ingest.fields import ObjectSpec, object_specs, snake

log = logging.getLogger(__name__)

DATASET = "raw_salesforce"
PIPELINE_NAME = "books_salesforce"

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class IngestConfig:
    """Tunables; defaults suit both the local CRM and a real org."""

    lookback: timedelta = timedelta(minutes=15)
    bulk_threshold: int = 10_000  # incremental pulls larger than this switch to Bulk 2.0
    bulk_page_rows: int = 100_000  # maxRecords per Bulk 2.0 result page
    pipelines_dir: Path | None = None  # dlt working dir; default beside the warehouse


@dataclass(frozen=True)
class LoadStats:
    """What one object's ingestion did in one run."""

    object_name: str
    table: str
    rows_loaded: int  # new or changed rows merged into the raw table
    rows_fetched: int  # rows the CRM returned, incl. look-back rows already loaded
    deleted_rows: int  # loaded rows with is_deleted = true
    method: Literal["bulk", "rest"]
    since: datetime | None  # cursor lower bound used (None = full load)
    seconds: float


@dataclass
class _Tally:
    fetched: int = 0
    loaded: int = 0
    deleted: int = 0
    method: Literal["bulk", "rest"] = "rest"
    since: datetime | None = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None


def default_pipelines_dir(warehouse_path: Path) -> Path:
    """dlt state lives beside the warehouse, never in ~/.dlt, so each warehouse is isolated."""
    return warehouse_path.parent / ".dlt" / warehouse_path.stem


def _soql_datetime(value: datetime) -> str:
    # SOQL datetime literal; floored to the second (the window only grows, dedup handles it).
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _loaded_window(
    warehouse_path: Path, spec: ObjectSpec, lookback: timedelta
) -> tuple[datetime | None, pl.DataFrame]:
    """(lower bound for the next pull, (id, cursor) pairs already loaded at/after it)."""
    cursor = snake(spec.cursor)
    empty = pl.DataFrame(
        {"id": [], cursor: []}, schema={"id": pl.String, cursor: pl.Datetime("us", "UTC")}
    )
    if not warehouse_path.exists():
        return None, empty
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        found = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [DATASET, spec.table],
        ).fetchall()[0][0]
        if not found:
            return None, empty
        con.execute("set TimeZone = 'UTC'").fetchall()
        latest = con.execute(f'select max("{cursor}") from {DATASET}."{spec.table}"').fetchall()
        if latest[0][0] is None:
            return None, empty
        since = latest[0][0] - lookback
        seen_arrow = con.sql(
            f'select id, "{cursor}" from {DATASET}."{spec.table}" where "{cursor}" >= $since',
            params={"since": since},
        ).to_arrow_table()
    finally:
        con.close()
    seen = pl.DataFrame(pl.from_arrow(seen_arrow)).with_columns(
        pl.col(cursor).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    )
    return since, seen


def _pull(
    conn: SalesforceConnection, spec: ObjectSpec, since: datetime | None, cfg: IngestConfig, tally
) -> Iterator[pa.Table]:
    """Typed Arrow batches from REST or Bulk 2.0, choosing by size."""
    soql = spec.soql(_soql_datetime(since) if since else None)
    if since is not None:
        pages = conn.query_all_pages(soql, include_deleted=True)
        first = next(pages, [])
        total = conn.last_total_size or 0
        if total <= cfg.bulk_threshold:
            tally.method = "rest"
            yield records_to_arrow(spec, first)
            for page in pages:
                yield records_to_arrow(spec, page)
            return
        pages.close()
        log.info("%s: %d rows changed since %s; switching to Bulk 2.0", spec.name, total, since)
    tally.method = "bulk"
    for chunk in conn.bulk_query_csv(soql, include_deleted=True, max_records=cfg.bulk_page_rows):
        if chunk.strip():
            yield csv_to_arrow(spec, chunk)


def _object_rows(
    conn: SalesforceConnection,
    spec: ObjectSpec,
    since: datetime | None,
    seen: pl.DataFrame,
    cfg: IngestConfig,
    tally: _Tally,
    progress: Progress | None,
) -> Iterator[pa.Table]:
    cursor = snake(spec.cursor)
    tally.started = time.perf_counter()
    for batch in _pull(conn, spec, since, cfg, tally):
        tally.fetched += batch.num_rows
        if seen.height and batch.num_rows:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            batch = frame.join(seen, on=["id", cursor], how="anti").to_arrow().cast(batch.schema)
        if batch.num_rows:
            tally.loaded += batch.num_rows
            tally.deleted += int(pc.sum(batch["is_deleted"]).as_py() or 0)
            yield batch
        if progress:
            progress(spec.name, tally.loaded)
    if since is None and tally.fetched == 0:
        # First load of an empty object: an empty batch still creates the typed raw table,
        # so dbt sources exist from day one.
        yield spec.arrow_schema.empty_table()
    tally.finished = time.perf_counter()
    log.info(
        "%s: fetched %d via %s since %s, loading %d",
        spec.name,
        tally.fetched,
        tally.method,
        since,
        tally.loaded,
    )


def salesforce_source(
    conn: SalesforceConnection,
    warehouse_path: Path,
    objects: Iterable[str],
    cfg: IngestConfig,
    tallies: dict[str, _Tally],
    progress: Progress | None = None,
):
    """The dlt source: one merge-on-id resource per requested object."""
    specs = object_specs()
    resources = []
    for name in objects:
        spec = specs[name]
        since, seen = _loaded_window(warehouse_path, spec, cfg.lookback)
        tally = tallies.setdefault(name, _Tally(since=since))
        hints = spec.column_hints
        hints[snake(spec.cursor)]["dedup_sort"] = "desc"
        resources.append(
            dlt.resource(
                _object_rows(conn, spec, since, seen, cfg, tally, progress),
                name=spec.table,
                table_name=spec.table,
                primary_key="id",
                write_disposition={"disposition": "merge", "strategy": "delete-insert"},
                columns=hints,
            )
        )

    @dlt.source(name="salesforce", max_table_nesting=0)
    def salesforce():
        return resources

    return salesforce()


def _configure_dlt() -> None:
    # Arrow batches get dlt's load id and row id like dict rows do (raw contract), and dlt
    # never phones home at run time.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
    dlt.config["load.truncate_staging_dataset"] = True


def make_pipeline(warehouse_path: Path, pipelines_dir: Path | None = None) -> dlt.Pipeline:
    """The dlt pipeline writing `raw_salesforce` in the warehouse file."""
    _configure_dlt()
    pdir = pipelines_dir or default_pipelines_dir(warehouse_path)
    if not warehouse_path.exists() and (pdir / PIPELINE_NAME).exists():
        # A fresh warehouse must not inherit schema/state of a deleted one.
        shutil.rmtree(pdir / PIPELINE_NAME)
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(str(warehouse_path)),
        dataset_name=DATASET,
        pipelines_dir=str(pdir),
        progress=None,
    )


def run_salesforce_ingest(
    conn: SalesforceConnection,
    warehouse_path: str | Path,
    *,
    objects: Sequence[str] | None = None,
    progress: Progress | None = None,
    config: IngestConfig | None = None,
) -> dict[str, LoadStats]:
    """Extract changed rows of `objects` (default: all) and merge them into raw_salesforce."""
    cfg = config or IngestConfig()
    path = Path(warehouse_path).resolve()
    specs = object_specs()
    names = list(objects) if objects is not None else list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown CRM object(s) {unknown}; known: {list(specs)}")
    pipeline = make_pipeline(path, cfg.pipelines_dir)
    tallies: dict[str, _Tally] = {}
    source = salesforce_source(conn, path, names, cfg, tallies, progress)
    info = pipeline.run(source)
    info.raise_on_failed_jobs()
    stats = {}
    for name in names:
        t = tallies[name]
        stats[name] = LoadStats(
            object_name=name,
            table=specs[name].table,
            rows_loaded=t.loaded,
            rows_fetched=t.fetched,
            deleted_rows=t.deleted,
            method=t.method,
            since=t.since,
            seconds=(t.finished or time.perf_counter()) - t.started,
        )
    return stats
