"""dlt source over a CRM connection: one merge resource per object into DuckDB `raw_salesforce`.

Incremental on SystemModstamp (CreatedDate for immutable AccountHistory) with a look-back
window: each run asks for rows with `cursor >= max loaded cursor - look-back`, so a row whose
transaction committed late (stamped earlier than rows we already saw) is still picked up; rows
whose (Id, cursor, content) is already in the raw table are dropped before loading, so a run
without CRM changes loads nothing and leaves every raw row (including `_dlt_load_id`) untouched,
while a new version that shares its predecessor's stamp is still loaded.

Why the cursor comes from the raw table and not from dlt's `incremental` state: the look-back
de-duplication needs the rows already loaded, and those live in the table; the
table is also the only thing that cannot disagree with what was really loaded.

All objects are read with `queryAll`, so soft-deleted rows (IsDeleted = true) and archived
Tasks/Events (older than a year, hidden from `query`) arrive too. A first load, or any pull
above `bulk_threshold` rows, goes through Bulk API 2.0 (CSV pages parsed to Arrow); small
incremental pulls use the REST query.

Two write paths, one per concern:
- incremental runs (the raw table holds rows): the dlt merge resource below, only for objects
  whose first page has new rows; a run where no object changed does not start dlt at all;
- the first load of an object (raw table absent or empty): dlt creates the typed table from an
  empty batch (so its schema and state own the table), then Bulk 2.0 pages are appended
  straight from Arrow into DuckDB with the same columns, that dlt load's `_dlt_load_id` and a
  random `_dlt_id`. Why: at a million accounts dlt's extract -> normalise -> staging -> merge
  copies cost several times the extraction itself, and an empty table needs no merge.
  One transaction per object: a failed first load leaves the table empty, so the next run
  simply loads it again. A thread reads the next page while this one is parsed and inserted.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
from ingest.quarantine import Rejected, save_rejected

log = logging.getLogger(__name__)

DATASET = "raw_salesforce"
PIPELINE_NAME = "books_salesforce"

Progress = Callable[[str, int], None]
_CONTENT = "_books_content_hash"  # per-row hash of the extracted fields (look-back dedupe)
_ROW = "_books_row"


@dataclass(frozen=True)
class IngestConfig:
    """Tunables; defaults suit both the local CRM and a real org."""

    lookback: timedelta = timedelta(minutes=15)
    bulk_threshold: int = 10_000  # incremental pulls larger than this switch to Bulk 2.0
    bulk_page_rows: int = 250_000  # maxRecords per Bulk 2.0 result page
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
    quarantined: tuple[Rejected, ...] = ()  # records held back (ops.quarantine, stage extract)


@dataclass
class _Tally:
    fetched: int = 0
    loaded: int = 0
    deleted: int = 0
    method: Literal["bulk", "rest"] = "rest"
    since: datetime | None = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    rejected: list[Rejected] = field(default_factory=list)  # held back: not in `fetched`


def default_pipelines_dir(warehouse_path: Path) -> Path:
    """dlt state lives beside the warehouse, never in ~/.dlt, so each warehouse is isolated."""
    return warehouse_path.parent / ".dlt" / warehouse_path.stem


def _soql_datetime(value: datetime) -> str:
    # SOQL datetime literal; floored to the second (the window only grows, dedup handles it).
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _loaded_windows(
    warehouse_path: Path, specs: Sequence[ObjectSpec], lookback: timedelta
) -> tuple[dict[str, tuple[datetime | None, pl.DataFrame]], set[str]]:
    """Per object: (lower bound for the next pull, (id, cursor) pairs already loaded at/after
    it); and the objects whose raw table exists but is empty.

    One read-only connection for all objects (opening the file is most of the cost when
    nothing changed)."""
    out = {spec.name: (None, _empty_seen(spec)) for spec in specs}
    if not warehouse_path.exists():
        return out, set()
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'").fetchall()
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [DATASET],
            ).fetchall()
        }
        for spec in specs:
            if spec.table in tables:
                out[spec.name] = _loaded_window(con, spec, lookback)
    finally:
        con.close()
    empty = {s.name for s in specs if s.table in tables and out[s.name][0] is None}
    return out, empty


def _crm_is_empty(conn: SalesforceConnection, spec: ObjectSpec) -> bool:
    """True when the CRM has no rows of `spec` at all (deleted/archived included).

    Why: an object loaded before but still empty would otherwise start a first load, and with
    it a dlt run, on every run."""
    pages = conn.query_all_pages(f"SELECT Id FROM {spec.name} LIMIT 1", include_deleted=True)
    try:
        return not next(pages, [])
    finally:
        pages.close()


def _empty_seen(spec: ObjectSpec) -> pl.DataFrame:
    return _seen_keys(spec, spec.arrow_schema.empty_table())


def _seen_keys(spec: ObjectSpec, rows: pa.Table) -> pl.DataFrame:
    """(id, cursor, content hash) of typed rows: what makes a fetched row "already loaded".

    Why the content too: two versions of a record may share a stamp (a clock that stood still,
    a write within the stamp's resolution); (id, stamp) alone would drop the newer one."""
    frame = pl.from_arrow(rows.select(spec.arrow_schema.names).cast(spec.arrow_schema))
    assert isinstance(frame, pl.DataFrame)
    return frame.select(
        pl.col("id"), pl.col(snake(spec.cursor)), frame.hash_rows(seed=0).alias(_CONTENT)
    )


def _loaded_window(
    con: duckdb.DuckDBPyConnection, spec: ObjectSpec, lookback: timedelta
) -> tuple[datetime | None, pl.DataFrame]:
    cursor = snake(spec.cursor)
    latest = con.execute(f'select max("{cursor}") from {DATASET}."{spec.table}"').fetchall()
    if latest[0][0] is None:
        return None, _empty_seen(spec)
    since = latest[0][0] - lookback
    present = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [DATASET, spec.table],
        ).fetchall()
    }
    columns = ", ".join(
        f'"{c}"' if c in present else f'null as "{c}"' for c in spec.arrow_schema.names
    )
    seen_arrow = con.sql(
        f'select {columns} from {DATASET}."{spec.table}" where "{cursor}" >= $since',
        params={"since": since},
    ).to_arrow_table()
    return since, _seen_keys(spec, seen_arrow)


def _pull(
    conn: SalesforceConnection, spec: ObjectSpec, since: datetime, cfg: IngestConfig, tally
) -> Iterator[pa.Table]:
    """Typed Arrow batches of rows changed since `since`, from REST or Bulk 2.0 by size."""
    soql = spec.soql(_soql_datetime(since))
    pages = conn.query_all_pages(soql, include_deleted=True)
    first = next(pages, [])
    total = conn.last_total_size or 0
    if total <= cfg.bulk_threshold:
        tally.method = "rest"
        yield records_to_arrow(spec, first, tally.rejected)
        for page in pages:
            yield records_to_arrow(spec, page, tally.rejected)
        return
    pages.close()
    log.info("%s: %d rows changed since %s; switching to Bulk 2.0", spec.name, total, since)
    tally.method = "bulk"
    for chunk in conn.bulk_query_csv(soql, include_deleted=True, max_records=cfg.bulk_page_rows):
        if chunk.strip():
            yield csv_to_arrow(spec, chunk, tally.rejected)


def _object_rows(
    conn: SalesforceConnection,
    spec: ObjectSpec,
    since: datetime,
    seen: pl.DataFrame,
    cfg: IngestConfig,
    tally: _Tally,
    progress: Progress | None,
) -> Iterator[pa.Table]:
    keys = ["id", snake(spec.cursor), _CONTENT]
    tally.started = time.perf_counter()
    for batch in _pull(conn, spec, since, cfg, tally):
        tally.fetched += batch.num_rows
        if seen.height and batch.num_rows:
            fetched = _seen_keys(spec, batch).with_row_index(_ROW)
            new = fetched.join(seen, on=keys, how="anti", nulls_equal=True)[_ROW]
            batch = batch.take(new.to_arrow())
        if batch.num_rows:
            tally.loaded += batch.num_rows
            tally.deleted += int(pc.sum(batch["is_deleted"]).as_py() or 0)
            yield batch
        if progress:
            progress(spec.name, tally.loaded)
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
    batches: dict[str, Iterator[pa.Table]],
):
    """The dlt source: one merge-on-id resource per object in `batches` (name -> Arrow batches).

    An object never loaded yet gets an empty typed batch: dlt creates its table, and
    `_first_load` fills it."""
    specs = object_specs()
    resources = []
    for name, rows in batches.items():
        spec = specs[name]
        hints = spec.column_hints
        hints[snake(spec.cursor)]["dedup_sort"] = "desc"
        resources.append(
            dlt.resource(
                rows,
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


def _changed_batches(
    conn: SalesforceConnection,
    specs: Sequence[ObjectSpec],
    windows: dict[str, tuple[datetime | None, pl.DataFrame]],
    cfg: IngestConfig,
    tallies: dict[str, _Tally],
    progress: Progress | None,
) -> dict[str, Iterator[pa.Table]]:
    """Batches of every already-loaded object that has new rows; objects without are left out.

    Each object's first page is read here (whether anything changed is known only then); the
    rest streams while dlt loads. Why: an object with nothing new would cost dlt's per-resource
    extract/normalise/load work for nothing, and a run where nothing changed needs no dlt at
    all."""
    out: dict[str, Iterator[pa.Table]] = {}
    for spec in specs:
        since, seen = windows[spec.name]
        if since is None:
            continue
        rows = _object_rows(conn, spec, since, seen, cfg, tallies[spec.name], progress)
        head = next(rows, None)
        if head is not None:
            out[spec.name] = itertools.chain([head], rows)
    return out


def _read_ahead(items: Iterator, depth: int = 2) -> Iterator:
    """Iterate `items` on a worker thread, `depth` items ahead (the CRM prepares and sends the
    next page while this thread parses and inserts the current one)."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item: object) -> bool:
        while not stop.is_set():  # the consumer may give up: never block forever
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    worker = threading.Thread(target=work, name="bulk-read-ahead", daemon=True)
    worker.start()
    try:
        while (item := box.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _first_load(
    conn: SalesforceConnection,
    warehouse_path: Path,
    specs: list[ObjectSpec],
    load_id: str,
    cfg: IngestConfig,
    tallies: dict[str, _Tally],
    progress: Progress | None,
) -> None:
    """Bulk 2.0 pages of never-loaded objects -> Arrow -> DuckDB, one transaction per object."""

    def pages() -> Iterator[tuple[ObjectSpec, bytes]]:
        for spec in specs:
            soql = spec.soql()
            for chunk in conn.bulk_query_csv(
                soql, include_deleted=True, max_records=cfg.bulk_page_rows
            ):
                yield spec, chunk
            yield spec, b""  # end of this object

    con = duckdb.connect(str(warehouse_path))
    try:
        con.execute("begin")
        current, mark = None, time.perf_counter()  # an object's time runs from the last commit
        for spec, chunk in _read_ahead(pages()):
            tally = tallies[spec.name]
            if spec.name != current:
                current, tally.method, tally.started = spec.name, "bulk", mark
            if not chunk:
                con.execute("commit")
                tally.finished = mark = time.perf_counter()
                log.info("%s: first load of %d rows via bulk", spec.name, tally.loaded)
                con.execute("begin")
                continue
            if not chunk.strip():
                continue
            batch = csv_to_arrow(spec, chunk, tally.rejected)
            _append(con, spec, batch, load_id)
            tally.fetched += batch.num_rows
            tally.loaded += batch.num_rows
            tally.deleted += int(pc.sum(batch["is_deleted"]).as_py() or 0)
            if progress:
                progress(spec.name, tally.loaded)
        con.execute("commit")
    finally:
        con.close()


def _append(
    con: duckdb.DuckDBPyConnection, spec: ObjectSpec, batch: pa.Table, load_id: str
) -> None:
    """Append a typed batch with dlt's row columns (load id of this run, random row id)."""
    cols = ", ".join(f'"{c}"' for c in batch.column_names)
    con.register("_books_batch", batch)
    try:
        con.execute(
            f'insert into {DATASET}."{spec.table}" ({cols}, _dlt_load_id, _dlt_id) '
            f"select {cols}, $load_id, replace(cast(gen_random_uuid() as varchar), '-', '') "
            "from _books_batch",
            {"load_id": load_id},
        )
    finally:
        con.unregister("_books_batch")


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
    run_id: str | None = None,
) -> dict[str, LoadStats]:
    """Extract changed rows of `objects` (default: all) and merge them into raw_salesforce.

    A record with a value ingestion cannot load is held back in ops.quarantine under `run_id`
    (default `extract-<now>`), and the other records load."""
    cfg = config or IngestConfig()
    path = Path(warehouse_path).resolve()
    specs = object_specs()
    names = list(objects) if objects is not None else list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown CRM object(s) {unknown}; known: {list(specs)}")
    windows, empty = _loaded_windows(path, [specs[n] for n in names], cfg.lookback)
    tallies = {name: _Tally(since=windows[name][0]) for name in names}
    first = [
        name
        for name in names
        if windows[name][0] is None and not (name in empty and _crm_is_empty(conn, specs[name]))
    ]
    batches = _changed_batches(conn, [specs[n] for n in names], windows, cfg, tallies, progress)
    batches |= {name: iter([specs[name].arrow_schema.empty_table()]) for name in first}
    if batches:
        pipeline = make_pipeline(path, cfg.pipelines_dir)
        info = pipeline.run(salesforce_source(batches))
        info.raise_on_failed_jobs()
        if first:
            if not info.loads_ids:
                raise RuntimeError(f"dlt created no load for the first load of {first}")
            _first_load(
                conn, path, [specs[n] for n in first], info.loads_ids[-1], cfg, tallies, progress
            )
    else:
        log.info("no CRM rows changed since the last load: nothing to load")
    stats = {}
    for name in names:
        t = tallies[name]
        stats[name] = LoadStats(
            object_name=name,
            table=specs[name].table,
            rows_loaded=t.loaded,
            rows_fetched=t.fetched + len({r.record_id for r in t.rejected}),
            deleted_rows=t.deleted,
            method=t.method,
            since=t.since,
            seconds=(t.finished or time.perf_counter()) - t.started,
            quarantined=tuple(t.rejected),
        )
    save_rejected(path, [r for t in tallies.values() for r in t.rejected], run_id)
    return stats
