"""The staging layer on a real Spark cluster equals the same layer on DuckDB: one generated
world, ingested once by the production path into DuckDB, its raw layer copied to Parquet and
registered on Spark; both engines build the staging models from it, and every model holds the
same rows (hash of sorted, normalised rows)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from local_crm.generator import generate_world
from tests.dbt.conftest import ingest_world
from tests.dbt.dbt_helpers import DBT_PROJECT_DIR, REPO_ROOT, failures, policy_vars, run_dbt
from warehouse.run_context import ensure_run_context_tables
from warehouse.spark_cluster import SparkCluster
from warehouse.spark_raw import export_raw_to_parquet, register_parquet_tables, spark_session

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = date(2025, 3, 31)
SELECT = ["path:models/staging"]


def _normal(value: Any) -> Any:
    """One spelling per value across engines: UTC instants, floats to 9 digits."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, float | Decimal):
        return round(float(value), 9)
    return value


def _digest(columns: list[str], rows: list[tuple]) -> tuple[list[str], int, str]:
    lines = sorted(repr(tuple(_normal(v) for v in row)) for row in rows)
    return columns, len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spark_world")
    generate_world(
        root / "crm.sqlite",
        accounts=200,
        reps=6,
        seed=11,
        as_of=AS_OF,
        landing_dir=root / "landing",
        policy_path=REPO_ROOT / "books.yml",
    )
    ingest_world(root / "crm.sqlite", root / "landing", root / "warehouse.duckdb")
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        ensure_run_context_tables(con)  # sources the models read; vars carry the values
    return {"root": root, "warehouse": root / "warehouse.duckdb"}


def test_staging_models_hold_the_same_rows_on_spark_and_duckdb(
    world: dict[str, Path], cluster: SparkCluster
) -> None:
    root, warehouse = world["root"], world["warehouse"]
    dbt_vars = policy_vars(AS_OF.isoformat())
    files = export_raw_to_parquet(warehouse, root / "parquet")  # before DuckDB adds staging
    duck = run_dbt(["run", "--select", *SELECT], warehouse, dbt_vars, root / "duck")
    assert not failures(duck)

    os.environ["BOOKS_SPARK_MASTER"] = cluster.master_url
    os.environ["BOOKS_SPARK_WAREHOUSE"] = str(root / "spark")
    session = spark_session(cluster.master_url, root / "spark")
    register_parquet_tables(session, files)
    spark = dbtRunner().invoke(
        ["run", "--target", "spark", "--select", *SELECT]
        + ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        + ["--target-path", str(root / "spark_target"), "--log-path", str(root / "spark_logs")]
        + ["--vars", json.dumps(dbt_vars)]
    )
    assert not failures(spark)

    models = [r.node for r in spark.result.results]
    assert len(models) > 10
    # same settings as the dbt-duckdb connection this process still holds (read_only would clash)
    with duckdb.connect(str(warehouse)) as con:
        for node in models:
            name = f"{node.schema}.{node.alias}"
            duck_rel = con.sql(f"select * from {name}")
            spark_df = session.sql(f"select * from {name}")
            expected = _digest(duck_rel.columns, duck_rel.fetchall())
            actual = _digest(spark_df.columns, [tuple(r) for r in spark_df.collect()])
            assert actual == expected, name
