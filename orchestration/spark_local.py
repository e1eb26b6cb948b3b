"""`books demo --engine spark`: the same cycle with its dbt build on a throw-away loopback Spark
cluster (a master and two workers, warehouse/spark_cluster.py), stopped when the demo ends.

The engine is chosen in one place, the policy's `warehouse:` section; the demo does not edit the
user's books.yml but writes a copy beside the warehouse with `engine: spark` and points the run
at it. The engine is not part of the policy version, so the copy decides exactly as the
original (same run id, same decisions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from policy import BooksPaths, load_policy
from policy.paths import temporary_env
from warehouse.engine import PROFILE_MASTER_ENV, PROFILE_WAREHOUSE_DIR_ENV


def spark_policy_copy(policy_file: Path, out: Path) -> Path:
    """`policy_file` with `warehouse.engine: spark`, written to `out` and validated."""
    data = yaml.safe_load(Path(policy_file).read_text()) or {}
    data.setdefault("warehouse", {})["engine"] = "spark"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(out)
    return out


@contextmanager
def local_spark(paths: BooksPaths, workers: int = 2) -> Iterator[BooksPaths]:
    """Start a loopback cluster beside the warehouse and yield `paths` whose policy runs on it.

    The Spark settings go to the environment variables the copied policy names (the defaults
    BOOKS_SPARK_MASTER / BOOKS_SPARK_WAREHOUSE, which the dbt profile reads as well)."""
    from warehouse.spark_cluster import spark_cluster

    policy = load_policy(paths.policy)
    names = policy.warehouse.spark
    base = paths.warehouse.parent
    spark_paths = dataclasses.replace(
        paths, policy=spark_policy_copy(paths.policy, base / "spark" / "books.spark.yml")
    )
    with spark_cluster(base / "spark" / "cluster", workers=workers) as cluster:
        env = {
            names.master_env: cluster.master_url,
            names.warehouse_dir_env: str(base / "spark"),
            PROFILE_MASTER_ENV: cluster.master_url,
            PROFILE_WAREHOUSE_DIR_ENV: str(base / "spark"),
            **spark_paths.as_env(),
        }
        with temporary_env(env):
            yield spark_paths
