"""The twin: a local CRM file the simulation may write to, never the customer's CRM.

A twin holds either a generated world (`generate_twin`) or a copy of the CRM as the warehouse
last read it (`twin_from_warehouse`: the `raw_salesforce` tables, same ids). Each arm of a
simulation runs on its own copy (`copy_twin`), so arms never see each other's writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import duckdb

from ingest.fields import object_specs, snake
from local_crm.db import CrmStore, format_date, format_datetime, get_object, make_ids
from local_crm.server import ensure_default_credentials

RAW_SCHEMA = "raw_salesforce"
# Required CRM fields ingestion never extracts (personal names): a placeholder keeps the
# twin's rows valid; nothing in the product reads them.
_PLACEHOLDERS = {("Contact", "LastName"): "(not copied)", ("Lead", "LastName"): "(not copied)"}


class TwinError(ValueError):
    """The twin cannot be built (no warehouse, no raw tables, a target that holds data)."""


@dataclass(frozen=True)
class TwinSummary:
    path: Path
    clock: date
    rows: dict[str, int]


def generate_twin(path: Path, **world: Any) -> TwinSummary:
    """A generated world (`local_crm.generator.generate_world` arguments) in a new twin file."""
    from local_crm.generator import generate_world

    generate_world(path, **world)
    store = CrmStore(path)
    ensure_default_credentials(store)
    rows = {name: store.count(name) for name in ("User", "Account", "Task", "Signal__c")}
    return TwinSummary(Path(path), store.clock.today(), rows)


def copy_twin(source: Path, target: Path) -> Path:
    """A consistent copy of a twin (SQLite online backup: safe while the source is open)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise TwinError(f"{target} already exists; a twin copy goes to a new file")
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def twin_from_warehouse(warehouse: Path, target: Path) -> TwinSummary:
    """Copy the CRM as the warehouse last read it into a new local CRM file, ids unchanged.

    Reads only the warehouse (`raw_salesforce`, latest version of each id; deleted rows stay
    deleted); never connects to a CRM. The twin's clock: `_warehouse_clock`.
    """
    if not Path(warehouse).exists():
        raise TwinError(f"no warehouse at {warehouse}; run `books run` first")
    if Path(target).exists():
        raise TwinError(f"{target} already exists; the twin goes to a new file")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [RAW_SCHEMA],
            ).fetchall()
        }
        if "account" not in tables:
            raise TwinError(f"{warehouse} has no {RAW_SCHEMA}.account table; run `books run`")
        clock = _warehouse_clock(con)
        store = CrmStore(target)
        store.clock.set(clock)
        rows: dict[str, int] = {}
        with store.bulk_session():
            for spec in object_specs().values():
                if spec.table not in tables:
                    continue
                columns, values = _latest_rows(con, spec)
                rows[spec.name] = store.bulk_load(spec.name, columns, values)
    for name, n in rows.items():
        _advance_id_counter(store, name, n)
    ensure_default_credentials(store)
    return TwinSummary(Path(target), clock.date(), rows)


def _warehouse_clock(con: duckdb.DuckDBPyConnection) -> datetime:
    """The later of the newest account change the warehouse read and the start of the last
    as-of date a cycle ran for: the twin's "now" is never before what it holds."""
    stamp = con.execute(f"select max(system_modstamp) from {RAW_SCHEMA}.account").fetchone()[0]
    if stamp is None:
        raise TwinError("the warehouse's raw accounts hold no SystemModstamp")
    moments = [stamp.astimezone(UTC)]
    try:
        row = con.execute("select max(as_of_date) from ops.run_context").fetchone()
    except duckdb.Error:
        row = None
    if row and row[0]:
        as_of = row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0])[:10])
        moments.append(datetime.combine(as_of, time(), tzinfo=UTC))
    return max(moments)


def _latest_rows(
    con: duckdb.DuckDBPyConnection, spec: Any
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The newest version of each id in one raw table, as CRM column values."""
    obj = get_object(spec.name)

    cols = [f for f in spec.fields]
    select = ", ".join(f'"{snake(f.name)}"' for f in cols)
    order = snake(spec.cursor)
    raw = con.execute(
        f"select {select} from {RAW_SCHEMA}.{spec.table} "
        f'qualify row_number() over (partition by id order by "{order}" desc nulls last) = 1 '
        "order by id"
    ).fetchall()
    names = [f.name for f in cols]
    extra = [
        (f.name, _PLACEHOLDERS[(obj.name, f.name)])
        for f in obj.fields
        if (obj.name, f.name) in _PLACEHOLDERS and f.name not in names
    ]
    out = []
    for row in raw:
        values = [_crm_value(f.type, v) for f, v in zip(cols, row, strict=True)]
        out.append(tuple(values) + tuple(v for _, v in extra))
    return names + [n for n, _ in extra], out


def _crm_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return format_datetime(value.astimezone(UTC) if value.tzinfo else value)
    if kind == "date":
        return format_date(value)
    if kind == "boolean":
        return int(bool(value))
    return value


def _advance_id_counter(store: CrmStore, object_name: str, n: int) -> None:
    """Point the twin's id counter past every copied id it could mint, so a new record never
    takes a copied record's id (copies of a local CRM hold counter-made ids)."""
    obj = get_object(object_name)
    with store.connection() as con:
        held = {r[0] for r in con.execute(f'select "Id" from "{obj.name}"')}
    candidates = make_ids(obj.key_prefix, 1, n + 1000)
    taken = [i + 1 for i, cid in enumerate(candidates) if cid in held]
    if taken:
        store.set_meta(f"seq:{obj.name}", str(max(taken) + 1))
