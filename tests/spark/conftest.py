"""Spark fixtures: one loopback standalone cluster (a master, two one-core workers) per test
session, stopped at the end. Imports of pyspark stay inside fixtures so the default suite
(without the spark extra) still collects these files; they are deselected there (marker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warehouse.spark_cluster import SparkCluster, spark_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    with spark_cluster(tmp_path_factory.mktemp("spark"), workers=2, worker_memory="1g") as c:
        yield c
