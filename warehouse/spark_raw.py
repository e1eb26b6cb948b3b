"""What moves between the DuckDB side and Spark: the sources in, the models the Python side
reads (the write-back's sync models) out. Both as Parquet under the Spark table directory
($BOOKS_SPARK_WAREHOUSE): `raw/<schema>/<table>/` in, `tables/<schema>.db/<table>/` out.

Why a copy in: ingestion (dlt, the contracts, the quarantine) and the ops tables (run context,
the write-back's decision outcome log, whose one DDL is Python's) stay on the DuckDB side, where
row-level updates and sequences are safe; Spark gets exactly what a DuckDB build would read.
dbt registers the copies as Spark tables itself (on-run-start hook `register_sources`), so no
Spark session is needed here and dbt's session (its `spark` profile target, the one place for
the session's settings) owns the metastore. Landing the CRM objects as Parquet directly (dlt's
filesystem destination) is the next step.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

# What the dbt sources read: the ingested raw schemas and the Python side's ops tables/views.
RAW_SCHEMAS = ("raw_salesforce", "raw_files", "ops")


def raw_dir(spark_warehouse: Path) -> Path:
    """Where the source copies live; dbt_project/macros/spark_sources.sql reads the same."""
    return Path(spark_warehouse).resolve() / "raw"


def table_dir(spark_warehouse: Path, relation: str) -> Path:
    """The folder of a model's Parquet files: Spark's managed-table location in the metastore
    of the `spark` profile target (`spark.sql.warehouse.dir` is `<warehouse>/tables`)."""
    schema, table = relation.split(".")
    return Path(spark_warehouse).resolve() / "tables" / f"{schema}.db" / table


def export_raw_to_parquet(duckdb_path: Path, parquet_dir: Path) -> list[tuple[str, str, Path]]:
    """Write every table and view of RAW_SCHEMAS to `parquet_dir/schema/table/` (one file).

    Returns (schema, table, folder) for each. Timestamps with time zone are written as UTC
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


def export_for_spark(duckdb_path: Path, spark_warehouse: Path) -> list[str]:
    """Copy what the dbt sources read to `raw_dir(spark_warehouse)`; returns `schema.table`s.

    The ops tables dbt reads (run context, decision outcome log) are first ensured in DuckDB
    (`ensure_run_context_tables` -> `reverse_etl.outcomes.ensure`, their one DDL), so a fresh
    warehouse gives Spark the same, empty, tables with the same columns: the decision models
    build on Spark as they do on DuckDB.
    """
    from warehouse.run_context import ensure_run_context_tables

    with duckdb.connect(str(duckdb_path)) as con:
        ensure_run_context_tables(con)
    files = export_raw_to_parquet(duckdb_path, raw_dir(spark_warehouse))
    return [f"{schema}.{table}" for schema, table, _ in files]


def read_table(spark_warehouse: Path, relation: str) -> pl.DataFrame:
    """A model Spark built, read from its Parquet files (no Spark session: the caller may be a
    process whose next dbt step on Spark needs the metastore, which only one JVM may open).

    Raises FileNotFoundError naming the folder when the model was never built."""
    folder = table_dir(spark_warehouse, relation)
    if not folder.is_dir():
        raise FileNotFoundError(f"{relation}: no Spark table at {folder}; run dbt on spark first")
    with duckdb.connect() as con:
        return con.sql(f"select * from read_parquet('{folder}/*.parquet')").pl()


# The built tables the Python side's report, analytics file and `books explain` read.
SERVED_SCHEMAS = ("intermediate", "marts", "decisions")


def mirror_to_duckdb(
    spark_warehouse: Path, duckdb_path: Path, schemas: tuple[str, ...] = SERVED_SCHEMAS
) -> list[str]:
    """Copy every table Spark built in `schemas` into the DuckDB warehouse (replacing it), so the
    report and the analytics file read this run's tables; returns the `schema.table`s copied.

    Views are not copied: dbt recreates them on DuckDB over these tables (`dbt run --select
    config.materialized:view`), so a view over the outcome log still reads the log as the
    write-back leaves it. The write-back's plan does not read this copy: it reads Spark's sync
    tables (`read_table`)."""
    copied = []
    with duckdb.connect(str(duckdb_path)) as con:
        for schema in schemas:
            root = Path(spark_warehouse).resolve() / "tables" / f"{schema}.db"
            folders = sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
            con.execute(f'create schema if not exists "{schema}"')
            views = {
                name
                for (name,) in con.execute(
                    "select view_name from duckdb_views() where schema_name = ?", [schema]
                ).fetchall()
            }
            for folder in folders:
                if not any(folder.glob("*.parquet")):
                    raise FileNotFoundError(f"{schema}.{folder.name}: no Parquet file in {folder}")
                relation = f'"{schema}"."{folder.name}"'
                if folder.name in views:  # a view on a DuckDB build, a table on Spark's
                    con.execute(f"drop view {relation}")
                con.execute(
                    f"create or replace table {relation} as "
                    f"select * from read_parquet('{folder}/*.parquet')"
                )
                copied.append(f"{schema}.{folder.name}")
    return copied
