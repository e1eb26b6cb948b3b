"""The raw layer on Spark, first version: copy a DuckDB warehouse's raw and ops schemas to
Parquet and register each file set as a Spark table of the same schema.table name, so the dbt
project's sources resolve unchanged on the `spark` target.

Why a copy: it lets the whole dbt project run on Spark against exactly what the production
ingestion writes today. The next step lands the CRM objects and landing files as Parquet
directly (dlt's filesystem destination), without DuckDB in between.

Also the one place for the Spark session's settings (`spark_conf`), which the dbt profile's
`spark` target mirrors from the same environment variables, so a loader and dbt running in
one process share one session and one metastore.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

# What the dbt sources read: the ingested raw schemas and the Python side's ops tables/views.
RAW_SCHEMAS = ("raw_salesforce", "raw_files", "ops")
MASTER_ENV = "BOOKS_SPARK_MASTER"
WAREHOUSE_DIR_ENV = "BOOKS_SPARK_WAREHOUSE"


def spark_conf(master: str, warehouse_dir: Path) -> dict[str, str]:
    """Session settings: the master, where managed tables and the (Derby) metastore live, small
    executors (a shared machine), no web UI. Keep in step with dbt_project/profiles.yml."""
    warehouse_dir = Path(warehouse_dir).resolve()
    return {
        "spark.master": master,
        "spark.app.name": "dynamic-books",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.memory": "1g",
        "spark.executor.memory": "512m",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(warehouse_dir / "tables"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={warehouse_dir / 'metastore_db'};create=true"
        ),
    }


def spark_session(master: str, warehouse_dir: Path) -> Any:
    """The process's Spark session with Hive support (dbt-spark's `session` method reuses it)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_conf(master, warehouse_dir).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def session_from_env() -> Any:
    """A session from BOOKS_SPARK_MASTER / BOOKS_SPARK_WAREHOUSE, like the dbt profile."""
    master = os.environ.get(MASTER_ENV)
    warehouse_dir = os.environ.get(WAREHOUSE_DIR_ENV)
    if not master or not warehouse_dir:
        raise RuntimeError(f"set {MASTER_ENV} and {WAREHOUSE_DIR_ENV} to use the spark engine")
    return spark_session(master, Path(warehouse_dir))


def export_raw_to_parquet(duckdb_path: Path, parquet_dir: Path) -> list[tuple[str, str, Path]]:
    """Write every table and view of RAW_SCHEMAS to `parquet_dir/schema/table/` (one file).

    Returns (schema, table, file) for each. Timestamps with time zone are written as UTC
    instants, which Spark reads as TIMESTAMP in the session's UTC time zone.
    """
    written = []
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        relations = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "union all select schema_name, view_name from duckdb_views() where not internal "
            "order by 1, 2"
        ).fetchall()
        for schema, table in relations:
            if schema not in RAW_SCHEMAS:
                continue
            target = Path(parquet_dir).resolve() / schema / table
            target.mkdir(parents=True, exist_ok=True)
            file = target / "part-0.parquet"
            con.execute(f'copy (select * from "{schema}"."{table}") to \'{file}\' (format parquet)')
            written.append((schema, table, target))
    return written


def register_parquet_tables(session: Any, files: list[tuple[str, str, Path]]) -> None:
    """Create each schema and an external Parquet table over each file (replacing any)."""
    for schema in sorted({schema for schema, _, _ in files}):
        session.sql(f"create database if not exists `{schema}`")
    for schema, table, file in files:
        session.sql(f"drop table if exists `{schema}`.`{table}`")
        session.sql(f"create table `{schema}`.`{table}` using parquet location '{file}'")
