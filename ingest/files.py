"""Landing-folder feeds into DuckDB `raw_files`: each file once, duplicates and bad files held back.

Feeds: `intent/*.csv` (intent provider: domain, topic, score, week_start_date) and
`engagement/*.parquet` (engagement platform export). Every file is identified by its name and
the SHA-256 of its bytes, recorded in `raw_files._ingested_files`:
- the same name and bytes again: skipped (already loaded);
- the same bytes under another name (a re-delivery): recorded as a duplicate, no rows loaded;
- the same name with new bytes (a corrected file): its earlier rows are replaced;
- a row with a value that does not parse as its column's type, or an empty key: held back in
  `ops.quarantine` (stage 'landing': file, 1-based data row, column, value, reason); the file's
  other rows load;
- a file that cannot be read, lacks a column, or has no loadable row: recorded in
  `raw_files._rejected_files` with the reason, logged, and held back whole; the other files
  still load. A rejected file is retried only when its bytes change.
Rows are also de-duplicated on their natural key (engagement: activity_id; intent: domain,
topic, week), so overlapping exports never double-count. One transaction per file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ingest.quarantine import Rejected, record_rejected

log = logging.getLogger(__name__)

SCHEMA = "raw_files"


class MalformedFile(ValueError):
    """A landing file that cannot be loaded; the message names the file, row and column."""


@dataclass(frozen=True)
class Feed:
    name: str
    folder: str
    pattern: str
    table: str
    key: tuple[str, ...]
    columns: dict[str, str]  # column -> DuckDB type
    reader: Callable[[Path], pl.DataFrame]


@dataclass
class FileIngestStats:
    """Outcome of one landing-folder scan."""

    loaded: list[str] = field(default_factory=list)  # "feed/file" loaded this run
    already_loaded: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # file -> file it duplicates
    rejected: dict[str, str] = field(default_factory=dict)  # file -> reason
    quarantined: dict[str, int] = field(default_factory=dict)  # file -> bad rows held back
    rows_loaded: dict[str, int] = field(default_factory=dict)  # table -> rows inserted


def _read_intent(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False)
    except Exception as exc:  # polars raises several error types for broken CSV
        raise MalformedFile(f"{path.name}: not a readable CSV ({exc})") from exc


def _read_engagement(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for broken Parquet
        raise MalformedFile(f"{path.name}: not a readable Parquet file ({exc})") from exc


FEEDS = (
    Feed(
        name="intent",
        folder="intent",
        pattern="*.csv",
        table="intent_surges",
        key=("domain", "topic", "week_start_date"),
        columns={
            "domain": "varchar",
            "topic": "varchar",
            "score": "double",
            "week_start_date": "date",
        },
        reader=_read_intent,
    ),
    Feed(
        name="engagement",
        folder="engagement",
        pattern="*.parquet",
        table="engagement_activities",
        key=("activity_id",),
        columns={
            "activity_id": "varchar",
            "account_domain": "varchar",
            "contact_email": "varchar",
            "rep_email": "varchar",
            "activity_type": "varchar",
            "direction": "varchar",
            "is_automated": "boolean",
            "occurred_at": "timestamptz",
        },
        reader=_read_engagement,
    ),
)

_POLARS = {
    "varchar": pl.String,
    "double": pl.Float64,
    "date": pl.Date,
    "boolean": pl.Boolean,
    "timestamptz": pl.Datetime("us", "UTC"),
}


def _cast(frame: pl.DataFrame, column: str, sql_type: str) -> tuple[pl.Series, pl.Series]:
    """Cast one column leniently: (typed column, mask of the values that did not parse)."""
    s = frame[column]
    target = _POLARS[sql_type]
    if s.dtype == target:
        return s, pl.Series(column, [False] * s.len(), pl.Boolean)
    if sql_type == "date" and s.dtype == pl.String:
        out = s.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    elif sql_type == "timestamptz" and s.dtype == pl.String:
        out = s.str.to_datetime(time_zone="UTC", strict=False).dt.cast_time_unit("us")
    elif sql_type == "timestamptz" and isinstance(s.dtype, pl.Datetime):
        out = s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s  # naive = UTC
        out = out.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    elif sql_type == "boolean" and s.dtype == pl.String:
        low = s.str.strip_chars().str.to_lowercase()
        out = (
            pl.when(low.is_in(["true", "1"]))
            .then(True)
            .when(low.is_in(["false", "0"]))
            .then(False)
            .otherwise(None)
        )
        out = frame.select(out.alias(column))[column]
    else:
        out = s.cast(target, strict=False)
    bad = s.is_not_null() & out.is_null()
    if s.dtype == pl.String:
        bad = bad & (s.str.strip_chars() != "")
    return out, bad


def _validate(feed: Feed, name: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[Rejected]]:
    """The file's loadable rows, typed and de-duplicated, and its bad rows (one entry per bad
    value: row number, column, reason). A file without the feed's columns, without rows, or
    without a single loadable row is malformed as a whole."""
    missing = [c for c in feed.columns if c not in frame.columns]
    if missing:
        raise MalformedFile(
            f"{name}: missing column(s) {missing}; expected {list(feed.columns)}, "
            f"got {frame.columns}"
        )
    if frame.height == 0:
        raise MalformedFile(f"{name}: no data rows")
    typed: dict[str, pl.Series] = {}
    rejected: list[Rejected] = []
    bad_rows = pl.Series("bad", [False] * frame.height, pl.Boolean)
    for column, sql_type in feed.columns.items():
        typed[column], bad = _cast(frame, column, sql_type)
        for row in bad.arg_true().to_list():
            rejected.append(_rejected(feed, name, row, column, frame[column][row],
                                      f"not a valid {sql_type}"))  # fmt: skip
        bad_rows = bad_rows | bad
    for key in feed.key:
        raw = frame[key]
        empty = raw.is_null()
        if raw.dtype == pl.String:
            empty = empty | (raw.str.strip_chars() == "")
        for row in empty.arg_true().to_list():
            rejected.append(_rejected(feed, name, row, key, raw[row], "key column is empty"))
        bad_rows = bad_rows | empty
    if bad_rows.all():
        first = min(rejected, key=lambda r: r.row_number or 0)
        raise MalformedFile(f"{name}: no loadable row ({len(rejected)} bad value(s); first: "
                            f"{first.describe()})")  # fmt: skip
    good = pl.DataFrame(typed).filter(~bad_rows)
    deduped = good.unique(subset=list(feed.key), keep="last", maintain_order=True)
    if deduped.height < good.height:
        log.warning(
            "%s: %d row(s) repeat a key %s within the file; the last one is kept",
            name,
            good.height - deduped.height,
            feed.key,
        )
    return deduped, sorted(rejected, key=lambda r: (r.row_number or 0, r.column))


def _rejected(feed: Feed, name: str, row: int, column: str, value: object, why: str) -> Rejected:
    return Rejected(
        stage="landing",
        object=feed.name,
        column=column,
        problem="unparseable" if why.startswith("not ") else "empty_key",
        value=None if value is None else str(value),
        reason=f"{value!r} {why}" if why.startswith("not ") else why,
        file_name=name,
        row_number=row + 1,
    )


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    _exec(con, f"create schema if not exists {SCHEMA}")
    for feed in FEEDS:
        cols = ", ".join(f"{c} {t}" for c, t in feed.columns.items())
        _exec(
            con,
            f"create table if not exists {SCHEMA}.{feed.table} "
            f"({cols}, _file_name varchar not null, _loaded_at timestamptz not null)",
        )
    _exec(
        con,
        f"create table if not exists {SCHEMA}._ingested_files (feed varchar not null, "
        "file_name varchar not null, content_hash varchar not null, status varchar not null, "
        "duplicate_of varchar, rows_loaded bigint not null, loaded_at timestamptz not null, "
        "primary key (feed, file_name))",
    )
    _exec(
        con,
        f"create table if not exists {SCHEMA}._rejected_files (feed varchar not null, "
        "file_name varchar not null, content_hash varchar not null, reason varchar not null, "
        "rejected_at timestamptz not null, primary key (feed, file_name))",
    )


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> None:
    """Run a statement to completion (DuckDB 2 keeps a pending result until it is fetched)."""
    con.execute(sql, params or []).fetchall()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_file(
    con: duckdb.DuckDBPyConnection, feed: Feed, name: str, frame: pl.DataFrame, loaded_at: datetime
) -> int:
    """Replace this file's earlier rows, drop rows superseded by key, insert; returns new rows."""
    table = f"{SCHEMA}.{feed.table}"
    batch = frame.with_columns(
        pl.lit(name).alias("_file_name"), pl.lit(loaded_at).alias("_loaded_at")
    ).to_arrow()
    con.register("_batch", batch)
    try:
        _exec(con, f"delete from {table} where _file_name = ?", [name])
        keys = ", ".join(feed.key)
        cols = ", ".join([*feed.columns, "_file_name", "_loaded_at"])
        if feed.name == "intent":
            # A later file's score for the same (domain, topic, week) supersedes the old one.
            _exec(con, f"delete from {table} where ({keys}) in (select {keys} from _batch)")
            _exec(con, f"insert into {table} ({cols}) select {cols} from _batch")
            return frame.height
        # Activities are immutable events: keep the first delivery, never count one twice.
        before = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        _exec(
            con,
            f"insert into {table} ({cols}) select {cols} from _batch b "
            f"where not exists (select 1 from {table} t where "
            + " and ".join(f"t.{k} = b.{k}" for k in feed.key)
            + ")",
        )
        return con.execute(f"select count(*) from {table}").fetchall()[0][0] - before
    finally:
        con.unregister("_batch")


def run_file_ingest(
    landing_dir: str | Path,
    warehouse_path: str | Path,
    *,
    loaded_at: datetime | None = None,
    run_id: str | None = None,
) -> FileIngestStats:
    """Load new landing files into raw_files; never raises for a bad file or row (held back).

    `loaded_at` stamps `_loaded_at` (audit only; defaults to the current time). `run_id` names
    the run in ops.quarantine (default: `files-<loaded_at>`).
    """
    landing = Path(landing_dir).resolve()
    stamp = loaded_at or datetime.now(UTC)
    run_id = run_id or f"files-{stamp:%Y%m%dT%H%M%S}"
    stats = FileIngestStats(rows_loaded={feed.table: 0 for feed in FEEDS})
    Path(warehouse_path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(Path(warehouse_path).resolve()))
    try:
        _ensure_tables(con)
        for feed in FEEDS:
            _ingest_feed(con, feed, landing / feed.folder, stamp, run_id, stats)
    finally:
        con.close()
    return stats


def _ingest_feed(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    folder: Path,
    stamp: datetime,
    run_id: str,
    stats: FileIngestStats,
) -> None:
    if not folder.is_dir():
        log.info("landing folder %s does not exist; no %s files", folder, feed.name)
        return
    known = {
        name: (digest, status)
        for name, digest, status in con.execute(
            f"select file_name, content_hash, status from {SCHEMA}._ingested_files where feed = ?",
            [feed.name],
        ).fetchall()
    }
    by_hash = {digest: name for name, (digest, status) in known.items() if status == "loaded"}
    rejected = dict(
        con.execute(
            f"select file_name, content_hash from {SCHEMA}._rejected_files where feed = ?",
            [feed.name],
        ).fetchall()
    )
    for path in sorted(p for p in folder.glob(feed.pattern) if p.is_file()):
        name = path.name
        label = f"{feed.folder}/{name}"
        digest = _sha256(path)
        if known.get(name, (None,))[0] == digest:
            stats.already_loaded.append(label)
            continue
        if rejected.get(name) == digest:
            log.warning("%s is still held back (rejected earlier, unchanged)", label)
            stats.rejected[label] = "unchanged since rejected"
            continue
        original = by_hash.get(digest)
        if original is not None and original != name:
            log.info("%s duplicates %s (same content); not loaded again", label, original)
            _record(con, feed, name, digest, "duplicate", original, 0, stamp)
            known[name] = (digest, "duplicate")
            stats.duplicates[label] = f"{feed.folder}/{original}"
            continue
        try:
            frame, bad = _validate(feed, label, feed.reader(path))
        except MalformedFile as exc:
            reason = str(exc)
            log.error("rejected landing file %s: %s", label, reason)
            _exec(
                con,
                f"insert or replace into {SCHEMA}._rejected_files values (?, ?, ?, ?, ?)",
                [feed.name, name, digest, reason, stamp],
            )
            rejected[name] = digest
            stats.rejected[label] = reason
            continue
        _exec(con, "begin transaction")
        try:
            rows = _load_file(con, feed, name, frame, stamp)
            record_rejected(con, bad, run_id, stamp)
            _record(con, feed, name, digest, "loaded", None, rows, stamp)
            _exec(
                con,
                f"delete from {SCHEMA}._rejected_files where feed = ? and file_name = ?",
                [feed.name, name],
            )
            _exec(con, "commit")
        except BaseException:
            _exec(con, "rollback")
            raise
        known[name] = (digest, "loaded")
        by_hash[digest] = name
        stats.loaded.append(label)
        stats.rows_loaded[feed.table] += rows
        log.info("loaded %s: %d new row(s) into %s.%s", label, rows, SCHEMA, feed.table)
        if bad:
            held = len({r.row_number for r in bad})
            stats.quarantined[label] = held
            log.warning(
                "%s: %d bad row(s) held back in ops.quarantine (run %s), e.g. %s",
                label, held, run_id, bad[0].describe(),
            )  # fmt: skip


def _record(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    name: str,
    digest: str,
    status: str,
    duplicate_of: str | None,
    rows: int,
    stamp: datetime,
) -> None:
    _exec(
        con,
        f"insert or replace into {SCHEMA}._ingested_files values (?, ?, ?, ?, ?, ?, ?)",
        [feed.name, name, digest, status, duplicate_of, rows, stamp],
    )
