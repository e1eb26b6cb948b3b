"""The loopback cluster is a real one: SQL runs on both workers' executors, and leaving the
context manager stops every daemon it started."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from warehouse.spark_cluster import HOST, spark_cluster

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _master_status(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://{HOST}:{ui_port}/json/", timeout=5) as response:
        return json.load(response)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def test_sql_runs_on_both_workers_and_the_cluster_stops(tmp_path: Path) -> None:
    from pyspark.sql import SparkSession

    with spark_cluster(tmp_path, workers=2, worker_memory="768m") as cluster:
        session = (
            SparkSession.builder.master(cluster.master_url)
            .appName("books-cluster-test")
            .config("spark.driver.host", HOST)
            .config("spark.executor.memory", "512m")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        try:
            total = session.sql("select sum(id) as s from range(0, 100000, 1, 4)").collect()[0].s
            status = _master_status(cluster.web_ui_port)
        finally:
            session.stop()
        master_port = int(cluster.master_url.rsplit(":", 1)[1])
    assert total == sum(range(100000))
    assert status["aliveworkers"] == 2
    # each worker offers its one core to this application's executor
    assert [w["coresused"] for w in status["workers"]] == [1, 1]
    assert not _listening(master_port)
    assert not list((tmp_path / "pids").glob("*.pid"))
