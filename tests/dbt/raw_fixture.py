"""Build the DuckDB raw layer (CONTRACTS.md) for dbt tests without running the ingest pipeline.

Tests need a warehouse whose `raw_salesforce.*` / `raw_files.*` tables look exactly like what
dlt writes, so the dbt models are exercised against the real contract and not a hand-made blob.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import duckdb
import polars as pl
from dlt.common.normalizers.naming.snake_case import NamingConvention

from local_crm.schema import OBJECTS, SObject

log = logging.getLogger(__name__)

_NAMING = NamingConvention()

# Salesforce field type -> DuckDB column type of the raw layer (CONTRACTS.md).
_DUCK_TYPES = {
    "id": "varchar",
    "reference": "varchar",
    "string": "varchar",
    "url": "varchar",
    "email": "varchar",
    "picklist": "varchar",
    "textarea": "varchar",
    "boolean": "boolean",
    "int": "bigint",
    "double": "double",
    "currency": "double",
    "date": "date",
    "datetime": "timestamptz",
}

RAW_FILES_DDL = {
    "intent_surges": (
        "domain varchar, topic varchar, score double, week_start_date date, "
        "_file_name varchar, _loaded_at timestamptz"
    ),
    "engagement_activities": (
        "activity_id varchar, account_domain varchar, contact_email varchar, rep_email varchar, "
        "activity_type varchar, direction varchar, is_automated boolean, "
        "occurred_at timestamptz, _file_name varchar, _loaded_at timestamptz"
    ),
}


def table_name(obj: SObject) -> str:
    """dlt's snake_case name of an object's raw table (`Signal__c` -> `signal_c`)."""
    return _NAMING.normalize_table_identifier(obj.name)


def column_name(field_name: str) -> str:
    """dlt's snake_case name of a field's raw column (`OwnerId` -> `owner_id`)."""
    return _NAMING.normalize_identifier(field_name)


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw_salesforce")
    con.execute("create schema if not exists raw_files")
    for obj in OBJECTS.values():
        cols = [f"{column_name(f.name)} {_DUCK_TYPES[f.type]}" for f in obj.fields]
        cols += ["_dlt_load_id varchar not null", "_dlt_id varchar not null"]
        con.execute(
            f"create table if not exists raw_salesforce.{table_name(obj)} ({', '.join(cols)})"
        )
    for name, ddl in RAW_FILES_DDL.items():
        con.execute(f"create table if not exists raw_files.{name} ({ddl})")


def create_empty_raw(duckdb_path: str | Path) -> None:
    """Create every raw table of the contract, empty, so `dbt build` can run on a fresh file."""
    with duckdb.connect(str(duckdb_path)) as con:
        _create_tables(con)


def _cast(expr: str, field_type: str) -> str:
    """SQL that turns the SQLite text/number value into the raw layer's type."""
    if field_type == "datetime":
        return f"strptime({expr}, '%Y-%m-%dT%H:%M:%S.%g%z')"
    if field_type == "boolean":
        return f"cast(cast({expr} as bigint) as boolean)"
    return f"cast({expr} as {_DUCK_TYPES[field_type]})"


def load_raw_from_crm(
    sqlite_path: str | Path, duckdb_path: str | Path, load_id: str = "1700000000.0"
) -> dict[str, int]:
    """Copy every object table of a local CRM SQLite file into `raw_salesforce.*`.

    Returns the row count per raw table. Existing raw rows are replaced (one load).
    """
    counts: dict[str, int] = {}
    src = sqlite3.connect(str(sqlite_path))
    try:
        with duckdb.connect(str(duckdb_path)) as con:
            _create_tables(con)
            for obj in OBJECTS.values():
                target = f"raw_salesforce.{table_name(obj)}"
                con.execute(f"delete from {target}")
                present = {r[1] for r in src.execute(f'pragma table_info("{obj.name}")')}
                fields = [f for f in obj.fields if f.name in present]
                if not fields:
                    log.warning("CRM file %s has no table %s", sqlite_path, obj.name)
                    counts[table_name(obj)] = 0
                    continue
                select = ", ".join(f'"{f.name}"' for f in fields)
                rows = src.execute(f'select {select} from "{obj.name}"').fetchall()
                counts[table_name(obj)] = len(rows)
                if not rows:
                    continue
                stage = pl.DataFrame(
                    [tuple(None if v is None else str(v) for v in row) for row in rows],
                    schema={f"c{i}": pl.Utf8 for i in range(len(fields))},
                    orient="row",
                )
                con.register("_stage", stage)
                target_cols = ", ".join(column_name(f.name) for f in fields)
                casts = ", ".join(_cast(f"c{i}", f.type) for i, f in enumerate(fields))
                con.execute(
                    f"insert into {target} ({target_cols}, _dlt_load_id, _dlt_id) "
                    f"select {casts}, '{load_id}', md5(c0 || '{load_id}') from _stage"
                )
                con.unregister("_stage")
    finally:
        src.close()
    log.info("loaded raw_salesforce from %s: %s", sqlite_path, counts)
    return counts
