"""Dagster pool slots at a cycle's start: a dead run's are freed, a live run's are waited for
with a line saying which run holds them, and then named in a one-line error."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.pools import (
    PoolBusyError,
    free_slots_of_ended_runs,
    release_dead_run,
    wait_for_pools,
    wait_for_warehouse_file,
)
from orchestration.runner import execute_job, open_instance

POOL = "duckdb_writer"


@dg.op(pool=POOL)
def write_warehouse() -> None:
    pass


@dg.job
def one_writer() -> None:
    write_warehouse()


@pytest.fixture
def instance(tmp_path: Path) -> dg.DagsterInstance:
    return open_instance(tmp_path / "dagster")  # the runner's instance: pool limit 1


def _holding_run(instance: dg.DagsterInstance) -> str:
    """A run (not ended) holding the pool's one slot, as a killed run leaves it."""
    run_id = str(uuid.uuid4())
    instance.create_run_for_job(one_writer, run_id=run_id)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.claim_concurrency_slot(POOL, run_id, "write_warehouse").is_claimed
    return run_id


def _holders(instance: dg.DagsterInstance) -> set[str]:
    return {c.run_id for c in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_a_dead_runs_slot_is_freed_and_the_run_marked_failed(instance) -> None:
    dead = _holding_run(instance)
    line = release_dead_run(instance, dead, "pid 4242 is gone")
    assert line is not None and dead in line and "pid 4242 is gone" in line
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert _holders(instance) == set()
    wait_for_pools(instance, [POOL], "next-run", wait_seconds=0, say=print)  # returns at once


def test_a_live_holder_is_waited_for_visibly_then_named(instance) -> None:
    live = _holding_run(instance)
    lines: list[str] = []
    with pytest.raises(PoolBusyError, match=f"pool {POOL} held by run {live}"):
        wait_for_pools(
            instance, [POOL], "next-run", wait_seconds=0.3, say=lines.append, poll_seconds=0.05
        )
    assert lines and lines[0].startswith(f"waiting for pool {POOL} held by run {live}")
    assert _holders(instance) == {live}  # a live run keeps its slot


def test_slots_of_ended_runs_are_freed_and_live_ones_kept(instance) -> None:
    ended = _holding_run(instance)
    instance.report_run_failed(instance.get_run_by_id(ended))
    assert free_slots_of_ended_runs(instance, [POOL])
    assert _holders(instance) == set()
    live = _holding_run(instance)
    assert free_slots_of_ended_runs(instance, [POOL]) == []
    assert _holders(instance) == {live}


def _lock_holder(warehouse: Path, seconds: float) -> subprocess.Popen:
    """A process holding the DuckDB file open for writing, as a killed run's dbt build does."""
    code = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(float(sys.argv[2])); "
        "print('releasing', flush=True); con.close(); time.sleep(1)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(warehouse), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_leftover_lock_is_waited_for_then_named(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = _lock_holder(warehouse, 60)
    lines: list[str] = []
    try:
        with pytest.raises(PoolBusyError, match=f"locked by pid {holder.pid}"):
            wait_for_warehouse_file(
                warehouse, wait_seconds=0.3, say=lines.append, poll_seconds=0.05
            )
    finally:
        holder.kill()
        holder.wait()
    assert lines and f"waiting for pid {holder.pid}" in lines[0]
    wait_for_warehouse_file(warehouse, wait_seconds=0, say=lines.append)  # free: at once


def test_the_wait_ends_when_the_leftover_exits(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = _lock_holder(warehouse, 1.5)
    try:
        wait_for_warehouse_file(warehouse, wait_seconds=60, say=lambda _: None, poll_seconds=0.1)
        # returned only once the holder let the file go (it says so just before)
        ready, _, _ = select.select([holder.stdout], [], [], 0)
        assert ready and holder.stdout.readline().strip() == "releasing"
    finally:
        holder.kill()
        holder.wait()


def test_a_leftover_dbt_between_two_models_is_waited_for(tmp_path: Path) -> None:
    """A killed run's dbt build opens the file model by model: between two models the file is
    free, yet the build is still there. The wait follows the process, not only the lock."""
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    script = tmp_path / "dbt"  # named like the dbt entry point; never opens the file
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(1.5)\n")
    env = {**os.environ, "BOOKS_WAREHOUSE": str(warehouse)}
    leftover = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert leftover.stdout is not None and leftover.stdout.readline().strip() == "started"
        lines: list[str] = []
        wait_for_warehouse_file(warehouse, wait_seconds=60, say=lines.append, poll_seconds=0.1)
        assert leftover.poll() is not None, "returned while the leftover dbt still ran"
        assert lines and f"dbt pid {leftover.pid}" in lines[0]
    finally:
        leftover.kill()
        leftover.wait()


@dg.op
def another_run_takes_the_pool(context) -> None:  # noqa: ANN001 (dagster reads the hint)
    """Between two steps of this run, another live run claims the pool's one slot."""
    _holding_run(context.instance)


@dg.op(pool=POOL, ins={"after": dg.In(dg.Nothing)})
def write_after() -> None:
    pass


@dg.job
def blocked_mid_run() -> None:
    write_after(after=another_run_takes_the_pool())


HANG_GUARD_SECONDS = 120  # not a speed goal: a run that never gives up would wait forever


def test_a_step_blocked_mid_run_says_by_whom_then_gives_up(instance) -> None:
    run_id = str(uuid.uuid4())
    lines: list[str] = []
    done: dict[str, object] = {}

    def execute() -> None:
        done["result"] = execute_job(
            blocked_mid_run, instance, run_id, {}, step_wait_seconds=0.5, progress=lines.append
        )

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    assert not worker.is_alive(), "the blocked step still waits: the run never gives up"
    result, collected = done["result"]
    (holder,) = _holders(instance) - {run_id}
    assert not result.success
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    held = f"pool {POOL} held by run {holder} (step write_warehouse)"
    assert any(line.startswith(f"step write_after waiting for {held}") for line in lines), lines
    assert collected["failed"] == ["write_after"]
    reason = collected["reasons"]["write_after"]
    assert held in reason and "\n" not in reason
    # Re-runnable: the stopped run neither holds nor queues for a slot; once the holder ends,
    # the pool's next run goes through.
    info = instance.event_log_storage.get_concurrency_info(POOL)
    assert run_id not in {c.run_id for c in info.claimed_slots}
    assert run_id not in {p.run_id for p in info.pending_steps}
    instance.report_run_failed(instance.get_run_by_id(holder))
    free_slots_of_ended_runs(instance, [POOL])
    assert one_writer.execute_in_process(instance=instance).success
