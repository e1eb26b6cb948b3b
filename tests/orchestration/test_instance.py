"""Several processes opening one fresh DAGSTER_HOME at once (a `books run` and a scheduled run on a
new machine) all get the instance: without the lock, SQLite storage creation races and both fail
with "table ... already exists" (seen in CI)."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest


def _open_at(home: str, start_at: float, out: mp.Queue) -> None:
    from orchestration.runner import open_instance  # imported before the common start time

    time.sleep(max(0.0, start_at - time.time()))
    try:
        instance = open_instance(Path(home))
        out.put(("ok", len(instance.get_runs())))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.put(("error", repr(exc)))


@pytest.mark.slow
def test_processes_opening_a_fresh_home_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start_at = time.time() + 15  # after every child has imported dagster
    procs = [
        ctx.Process(target=_open_at, args=(str(tmp_path / "dagster"), start_at, out))
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert results == [("ok", 0)] * 4, results
    assert (tmp_path / "dagster" / "dagster.yaml").exists()


def test_a_new_dagster_home_has_telemetry_off(tmp_path: Path) -> None:
    """`books ui` and `books run` write the home's dagster.yaml: no usage data leaves the
    machine unless a person turns it on."""
    from orchestration.runner import open_instance

    instance = open_instance(tmp_path / "dagster")
    try:
        assert instance.telemetry_enabled is False
    finally:
        instance.dispose()
