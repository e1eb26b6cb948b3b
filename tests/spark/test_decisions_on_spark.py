"""A cycle's decisions do not depend on the engine: one generated world, ingested once by the
production path, its run context written as a cycle writes it; the cycle's dbt build
(`--selector books_cycle`, gates included) runs on DuckDB and on the loopback Spark cluster
from the same sources; the decision record, both sync models, every public mart and the
write-back plan read from Spark's tables are the same as DuckDB's (hash of sorted, normalised
rows, run metadata left out, doubles to 1e-6), and so is every staging model (the sources' copy on Spark
reads as the ingested tables do)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from benchmarks.spark_build import RUN_ID, dbt_build, prepare_world
from policy.paths import temporary_env
from reverse_etl.plan import build_plan, load_sync_rows
from warehouse.spark_cluster import SparkCluster
from warehouse.spark_raw import export_for_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = date(2025, 3, 31)
DECISIONS = (
    "decisions.book_decisions",
    "sync.sync_salesforce__accounts",
    "sync.sync_salesforce__leads",
)
# Stamped by the run, not decided: the same run id on both engines, but left out on principle.
RUN_METADATA = frozenset({"run_id", "decided_at", "built_at", "loaded_at", "written_at"})


def _normal(value: Any) -> Any:
    """One spelling per value across engines: UTC instants, every number a float."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, float | Decimal):
        return float(value)
    return value


def _key(row: tuple) -> str:
    """Sort key of a row: its values, numbers to 4 decimals (a tie-break only)."""
    return repr(tuple(round(v, 4) if isinstance(v, float) else v for v in row))


def _table(columns: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    """The columns without run metadata and the rows, normalised and sorted."""
    keep = [i for i, c in enumerate(columns) if c not in RUN_METADATA]
    normal = [tuple(_normal(row[i]) for i in keep) for row in rows]
    return [columns[i] for i in keep], sorted(normal, key=_key)


def _same(expected: tuple[list[str], list[tuple]], actual: tuple[list[str], list[tuple]]) -> bool:
    """Same columns and rows; doubles equal to 1e-6 relative (DuckDB and Spark differ in the
    last digits of power() and of decimal division: about 1e-8 on the scores)."""
    if expected[0] != actual[0] or len(expected[1]) != len(actual[1]):
        return False
    for want, got in zip(expected[1], actual[1], strict=True):
        for a, b in zip(want, got, strict=True):
            both_float = isinstance(a, float) and isinstance(b, float)
            if not (math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) if both_float else a == b):
                return False
    return True


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cluster: SparkCluster) -> Iterator[dict]:
    """Both engines' builds of one world (200 accounts) for one as-of date and run id."""
    root = tmp_path_factory.mktemp("decisions_on_spark")
    warehouse = prepare_world(root, accounts=200, reps=6, as_of=AS_OF)
    spark_dir = root / "spark"
    export_for_spark(warehouse, spark_dir)  # before DuckDB's build adds its own schemas
    dbt_build("duckdb", root / "duck_dbt", warehouse)
    env = {"BOOKS_SPARK_MASTER": cluster.master_url, "BOOKS_SPARK_WAREHOUSE": str(spark_dir)}
    with temporary_env(env):
        dbt_build("spark", root / "spark_dbt", warehouse)
    from pyspark.sql import SparkSession

    session = SparkSession.builder.getOrCreate()  # dbt's in-process session
    yield {"warehouse": warehouse, "spark_dir": spark_dir, "session": session}
    session.stop()


def _both(built: dict, relation: str) -> tuple[tuple, tuple]:
    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        duck = con.sql(f"select * from {relation}")
        expected = _table(duck.columns, duck.fetchall())
    frame = built["session"].sql(f"select * from {relation}")
    actual = _table(frame.columns, [tuple(r) for r in frame.collect()])
    return actual, expected


def test_decisions_and_sync_models_are_the_same_on_spark_and_duckdb(built: dict) -> None:
    for relation in DECISIONS:
        actual, expected = _both(built, relation)
        assert expected[1] or relation.endswith("leads"), f"{relation} is empty on DuckDB"
        assert _same(expected, actual), relation


def _relations(built: dict, schema: str) -> list[str]:
    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        return [
            f"{schema}.{name}"
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "order by 1",
                [schema],
            ).fetchall()
        ]


@pytest.mark.parametrize(("schema", "at_least"), [("marts", 10), ("staging", 10)])
def test_public_marts_and_staging_are_the_same_on_spark_and_duckdb(
    built: dict, schema: str, at_least: int
) -> None:
    relations = _relations(built, schema)
    assert len(relations) >= at_least
    different = [r for r in relations if not _same(*reversed(_both(built, r)))]
    assert not different


def test_the_write_back_plan_read_from_spark_is_duckdbs(built: dict) -> None:
    warehouse = built["warehouse"]
    from_duckdb = build_plan(load_sync_rows(warehouse, RUN_ID), RUN_ID)
    from_spark = build_plan(
        load_sync_rows(warehouse, RUN_ID, spark_warehouse=built["spark_dir"]), RUN_ID
    )
    assert from_duckdb.changes, "the world's first cycle writes something"
    assert [c.change_key for c in from_spark.changes] == [c.change_key for c in from_duckdb.changes]
