"""Time one whole dbt build (`--selector books_cycle`) on the loopback Spark cluster, and the
same build on DuckDB, on one generated world: wall time and the slowest nodes of each.

Why a script of its own: the Spark build's cost is mostly fixed (per statement, per model),
so the figures that matter are the whole build's wall time and where it goes, not a size
curve. Usage (heavy: nice it, it starts a master and two workers and stops them):

    nice -n 15 .venv-spark/bin/python -m benchmarks.spark_build --accounts 300 --root /tmp/sb
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from policy import load_policy, policy_dbt_env, policy_version
from policy.paths import temporary_env
from warehouse.spark_cluster import spark_cluster

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
AS_OF = date(2025, 3, 31)
RUN_ID = "bench-spark"

log = logging.getLogger(__name__)


def prepare_world(root: Path, accounts: int, reps: int, as_of: date = AS_OF) -> Path:
    """Generate a world, ingest it into DuckDB the production way and write the run context."""
    from local_crm.generator import generate_world
    from tests.dbt.conftest import ingest_world
    from warehouse.run_context import write_run_context

    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "warehouse.duckdb"
    generate_world(
        root / "crm.sqlite",
        accounts=accounts,
        reps=reps,
        seed=11,
        as_of=as_of,
        landing_dir=root / "landing",
        policy_path=REPO_ROOT / "books.yml",
    )
    ingest_world(root / "crm.sqlite", root / "landing", warehouse)
    version = policy_version(load_policy(REPO_ROOT / "books.yml"))
    with duckdb.connect(str(warehouse)) as con:
        write_run_context(con, RUN_ID, as_of, version)
    return warehouse


def dbt_build(target: str, work: Path, warehouse: Path) -> tuple[float, list[dict[str, Any]]]:
    """`dbt build --selector books_cycle` on `target`; wall seconds and the node results.

    Spark runs in this process, so its session (dbt-spark's `session` method) can be queried
    afterwards; DuckDB in a dbt subprocess, as a cycle runs it, so the file is free afterwards
    (an in-process dbt-duckdb keeps its connection open)."""
    env = {
        "BOOKS_WAREHOUSE": str(warehouse),
        **policy_dbt_env(load_policy(REPO_ROOT / "books.yml")),
    }
    args = ["build", "--selector", "books_cycle", "--target", target]
    args += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    with temporary_env(env):
        started = time.monotonic()
        if target == "spark":
            from dbt.cli.main import dbtRunner

            ok = dbtRunner().invoke(args).success
        else:
            dbt = Path(sys.executable).parent / "dbt"
            ok = subprocess.run([str(dbt), *args], capture_output=True, check=False).returncode == 0
        wall = time.monotonic() - started
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    bad = [r["unique_id"] for r in results if r["status"] in ("error", "fail")]
    if not ok or bad:
        raise RuntimeError(f"dbt build on {target} failed: {bad[:10]}; log in {work / 'logs'}")
    return wall, results


def slowest(results: list[dict[str, Any]], n: int = 8) -> list[tuple[str, float]]:
    timed = [(r["unique_id"].split(".")[-1], float(r["execution_time"])) for r in results]
    return sorted(timed, key=lambda t: -t[1])[:n]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--skip-duckdb", action="store_true")
    args = parser.parse_args(argv)
    from warehouse.spark_raw import export_for_spark

    root = args.root.resolve()
    started = time.monotonic()
    warehouse = prepare_world(root, args.accounts, args.reps)
    figures: dict[str, Any] = {"accounts": args.accounts, "prepare_s": time.monotonic() - started}
    with spark_cluster(root / "cluster", workers=2, worker_memory="1g") as cluster:
        started = time.monotonic()
        export_for_spark(warehouse, root / "spark")
        figures["raw_to_parquet_s"] = time.monotonic() - started
        env = {
            "BOOKS_SPARK_MASTER": cluster.master_url,
            "BOOKS_SPARK_WAREHOUSE": str(root / "spark"),
        }
        with temporary_env(env):
            wall, results = dbt_build("spark", root / "spark_dbt", warehouse)
        figures["spark_build_s"] = wall  # includes the Spark session's start (driver JVM)
        figures["spark_nodes"] = len(results)
        figures["spark_slowest"] = slowest(results)
        figures["spark_sum_node_s"] = sum(float(r["execution_time"]) for r in results)
        from pyspark.sql import SparkSession

        SparkSession.builder.getOrCreate().stop()  # dbt's in-process session, before the cluster
    if not args.skip_duckdb:
        wall, results = dbt_build("duckdb", root / "duck_dbt", warehouse)
        figures["duckdb_build_s"] = wall
        figures["duckdb_slowest"] = slowest(results, 3)
    (root / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))  # noqa: T201 - a command-line report


if __name__ == "__main__":
    main()
