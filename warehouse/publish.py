"""Publish the public tables into a separate analytics DuckDB file, swapped atomically.

Why: a DuckDB file has one writer, and while the cycle holds it no other process can open it.
Analysts and dashboards read `analytics.duckdb` instead, opened read-only. Each publish writes a
complete new file next to it (temp name), checkpoints and fsyncs it, then `os.replace`s it over
the old one, so a reader opens either the previous run's complete file or the new one, never a
mix. A reader that still has the old file open keeps reading the old inode until it reconnects.

Every published table carries `published_run_id`, and `_published_run` holds the run id and the
table list, so a reader can check what it sees. Connect with:
`duckdb data/analytics.duckdb -readonly` or `duckdb.connect(path, read_only=True)`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.lease import busy_error

log = logging.getLogger(__name__)

ANALYTICS_FILE = "analytics.duckdb"
RUN_COLUMN = "published_run_id"
RUN_TABLE = "_published_run"
DEFAULT_SCHEMAS = ("marts",)
# Analyst-facing tables outside `marts`: the append-only decisions with their outcomes, their
# explanations (the candidates each run considered, each rep's capacity) and the write-back log.
DEFAULT_TABLES = (
    "decisions.book_decisions",
    "decisions.book_decision_outcomes",
    "decisions.run_candidates",
    "decisions.run_rep_capacity",
    "ops.sync_log",
)


@dataclass(frozen=True)
class PublishReport:
    run_id: str
    analytics_path: Path
    tables: dict[str, int]  # "schema.table" -> rows published
    missing: tuple[str, ...]  # requested extra tables that do not exist (yet)


def _quote(name: str) -> str:
    """A quoted SQL identifier (names come from the catalog, but quote them properly anyway)."""
    return '"' + name.replace('"', '""') + '"'


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sources(
    con: duckdb.DuckDBPyConnection, catalog: str, schemas: Sequence[str], tables: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    found = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? order by 1, 2",
        [catalog],
    ).fetchall()
    chosen = [(s, t) for s, t in found if s in schemas]
    existing = {f"{s}.{t}" for s, t in found}
    missing = []
    for qualified in tables:
        if qualified in existing:
            schema, table = qualified.split(".", 1)
            if (schema, table) not in chosen:
                chosen.append((schema, table))
        else:
            missing.append(qualified)
    return chosen, missing


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def publish(
    warehouse_path: str | Path,
    analytics_path: str | Path,
    run_id: str,
    *,
    schemas: Sequence[str] = DEFAULT_SCHEMAS,
    tables: Sequence[str] = DEFAULT_TABLES,
    con: duckdb.DuckDBPyConnection | None = None,
) -> PublishReport:
    """Copy the public tables (every table/view of `schemas`, plus `tables`) stamped with
    `run_id` into a new analytics file and swap it in atomically.

    Pass `con` when the caller already holds the warehouse open for writing (the cycle, in the
    same process); otherwise the warehouse is attached read-only. Missing extra `tables` are
    reported, not fatal; nothing at all to publish is an error and leaves the old file.
    """
    analytics = Path(analytics_path).resolve()
    analytics.parent.mkdir(parents=True, exist_ok=True)
    tmp = analytics.with_name(f".{analytics.name}.{os.getpid()}.tmp")
    for leftover in (tmp, Path(f"{tmp}.wal")):
        leftover.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    if con is not None:  # the writer's connection: attach the new file to it
        session, src = con, con.execute("select current_database()").fetchone()[0]
        session.execute(f"attach {_text(str(tmp))} as _publish")
        dst = "_publish"
    else:  # a new file, with the warehouse attached read-only (busy -> one-line error)
        session = duckdb.connect(str(tmp))
        dst = session.execute("select current_database()").fetchone()[0]
        try:
            session.execute(
                f"attach {_text(str(Path(warehouse_path).resolve()))} as _source (read_only)"
            )
        except duckdb.Error as exc:
            session.close()
            tmp.unlink(missing_ok=True)
            raise busy_error(exc, warehouse_path) or exc from None
        src = "_source"
    try:
        chosen, missing = _sources(session, src, schemas, tables)
        if not chosen:
            raise ValueError(
                f"nothing to publish from {warehouse_path}: no tables in schemas "
                f"{list(schemas)} or {list(tables)}"
            )
        run = _text(run_id)
        for schema, table in chosen:
            target = f"{_quote(dst)}.{_quote(schema)}.{_quote(table)}"
            session.execute(f"create schema if not exists {_quote(dst)}.{_quote(schema)}")
            session.execute(
                f"create table {target} as select *, {run} as {RUN_COLUMN} "
                f"from {_quote(src)}.{_quote(schema)}.{_quote(table)}"
            )
            counts[f"{schema}.{table}"] = session.execute(
                f"select count(*) from {target}"
            ).fetchone()[0]
        session.execute(
            f"create table {_quote(dst)}.main.{RUN_TABLE} as select {run} as run_id, "
            f"{len(chosen)} as table_count, ? as tables",
            [sorted(counts)],
        )
        session.execute(f"checkpoint {_quote(dst)}")
    except BaseException:
        _close(session, con)
        tmp.unlink(missing_ok=True)
        raise
    _close(session, con)
    if Path(f"{tmp}.wal").exists():  # everything must be in the file we swap in
        raise RuntimeError(f"publish left a WAL beside {tmp}; refusing to swap it in")
    _fsync(tmp)
    os.replace(tmp, analytics)
    _fsync(analytics.parent)
    log.info("published %d tables for run %s to %s", len(counts), run_id, analytics)
    return PublishReport(run_id, analytics, counts, tuple(missing))


def _close(session: duckdb.DuckDBPyConnection, caller: duckdb.DuckDBPyConnection | None) -> None:
    """Detach the new file from the caller's connection, or close our own session."""
    if caller is not None:
        caller.execute("detach _publish")
    else:
        session.close()


def analytics_path(warehouse: str | Path) -> Path:
    """The analysts' read-only copy of the public tables, published beside the warehouse."""
    return Path(warehouse).resolve().with_name(ANALYTICS_FILE)


def published_run(analytics_path: str | Path) -> str | None:
    """The run id of the analytics file now in place (None before the first publish)."""
    path = Path(analytics_path)
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"select run_id from {RUN_TABLE}").fetchone()[0]
